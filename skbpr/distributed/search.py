"""scikit-learn searches on a Dask cluster.

``GridSearchCV``, ``RandomizedSearchCV`` and ``cross_validate`` run their
fits through joblib; under joblib's ``dask`` backend the fits go to the
workers of a Dask cluster. :class:`skbpr.HybridBPR`, the ``Interactions``
container, the per-user splitters, the ranking scorers and
:class:`skbpr.callbacks.MLflowCallback` all pickle, so nothing else changes:
``cv_results_`` equal those of a local run with the same seeds, and the
fits' MLflow runs nest under the run active where the search was started.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from skbpr.utils.validation import invalid

__all__ = ["SCHEDULER_SCHEMES", "check_scheduler", "dask_backend"]

SCHEDULER_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def check_scheduler(address: Any) -> str:
    """The scheduler address, checked: ``tcp://HOST:PORT`` (or another Dask scheme).

    Examples
    --------
    >>> from skbpr.distributed.search import check_scheduler
    >>> check_scheduler("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    >>> check_scheduler("10.0.0.5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    skbpr.utils.validation.InvalidParameterError: scheduler must be a Dask scheduler address such as ..., got '10.0.0.5'
    """
    if isinstance(address, str) and "://" in address:
        scheme, rest = address.split("://", 1)
        if scheme in SCHEDULER_SCHEMES and rest:
            return address
    raise invalid("scheduler", "a Dask scheduler address such as 'tcp://HOST:8786'", address)


@contextlib.contextmanager
def dask_backend(scheduler: Any, *, timeout: float = 30.0) -> Iterator[Any]:
    """Send joblib's work (so scikit-learn's searches) to a Dask cluster inside the block.

    Parameters
    ----------
    scheduler : str or dask.distributed.Client
        A scheduler address (``tcp://HOST:8786``), connected to for the
        block and closed after it, or a client that stays open.
    timeout : float, default=30.0
        Seconds to wait for the scheduler before giving up with an
        ``OSError``.

    Yields
    ------
    dask.distributed.Client

    Raises
    ------
    ValueError
        For an address that is not a Dask scheduler address.
    OSError
        When the scheduler does not answer within ``timeout``.

    Examples
    --------
    >>> from dask.distributed import LocalCluster
    >>> from sklearn.model_selection import cross_val_score
    >>> from skbpr import HybridBPR
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.distributed.search import dask_backend
    >>> from skbpr.metrics import ndcg_scorer
    >>> from skbpr.model_selection import PerUserKFold
    >>> data = make_interactions(60, 40, 400, random_state=0)
    >>> model = HybridBPR(4, epochs=2, random_state=0, n_threads=1)
    >>> # processes=False: an in-process cluster (inproc:// addresses, no network)
    >>> with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
    ...                   dashboard_address=None) as cluster, dask_backend(cluster.scheduler_address):
    ...     scores = cross_val_score(model, data, cv=PerUserKFold(2, random_state=0), scoring=ndcg_scorer(5),
    ...                              n_jobs=-1)
    >>> scores.shape
    (2,)
    """
    import joblib
    from dask.distributed import Client

    own = not isinstance(scheduler, Client)
    if own:
        address = check_scheduler(scheduler)
        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise OSError(f"scheduler {address!r}: no Dask scheduler answered within {timeout:g} s ({exc})") from None
    else:
        client = scheduler
    try:
        with joblib.parallel_config(backend="dask", client=client, wait_for_workers_timeout=timeout):
            yield client
    finally:
        if own:
            client.close()
