"""Which candidate of a search a fold run belongs to: a digest of its parameters, checked among its siblings.

:class:`~skbpr.callbacks.MLflowCallback` numbers the fold runs of a
scikit-learn search (``skbpr.cv_candidate``) from the order of the copies
``sklearn.base.clone`` makes of it, which is the order of ``cv_results_`` in
the scikit-learn versions skbpr is tested with, not a promise: a search class
or a loop of one's own that clones in another order would number runs wrongly.
So every such run also carries ``skbpr.cv_params_digest``, a digest of the
parameters it was fitted with (:func:`params_digest`), which names the
candidate whatever the number says: :func:`candidate_digest` gives the digest
of a row of ``cv_results_["params"]``, to join runs to rows by. And as each
fold run opens, :func:`check_candidate` compares it with the runs already
recorded for its search and number: another digest, or the same split twice,
means the number is wrong; it warns and tags the runs involved
``skbpr.cv_candidate_unverified=true`` rather than leave a wrong number
unmarked.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping
from typing import Any

from skbpr.tracking.stores import summarise

__all__ = [
    "CANDIDATE_TAG",
    "DIGEST_TAG",
    "RENUMBERED_TAG",
    "SEARCH_TAG",
    "UNVERIFIED_TAG",
    "candidate_digest",
    "check_candidate",
    "params_digest",
    "reconcile_search_runs",
]

CANDIDATE_TAG = "skbpr.cv_candidate"
DIGEST_TAG = "skbpr.cv_params_digest"
SEARCH_TAG = "skbpr.cv_search"
SPLIT_TAG = "skbpr.cv_split"
UNVERIFIED_TAG = "skbpr.cv_candidate_unverified"
RENUMBERED_TAG = "skbpr.cv_candidate_renumbered"

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # in reprs: differs between the processes of one search


def params_digest(params: Mapping[str, Any]) -> str:
    """A digest of an estimator's parameters, as :class:`~skbpr.callbacks.MLflowCallback` tags a run with it.

    Parameters
    ----------
    params : mapping
        ``get_params(deep=False)`` of the estimator. ``callbacks`` is left
        out; each value is summarised as the callback logs it (plain values
        as text, objects by repr without memory addresses, so that every
        process of a parallel search computes the same digest).

    Returns
    -------
    str
        16 hexadecimal digits of the SHA-256 of the summary.

    Examples
    --------
    >>> from skbpr import HybridBPR
    >>> from skbpr.tracking.candidates import params_digest
    >>> a = params_digest(HybridBPR(learning_rate=0.1).get_params(deep=False))
    >>> a == params_digest(HybridBPR(learning_rate=0.1, callbacks=[print]).get_params(deep=False))
    True
    >>> a == params_digest(HybridBPR(learning_rate=0.05).get_params(deep=False))
    False
    >>> len(a)
    16
    """
    summary = {str(k): _ADDRESS.sub("", summarise(v)) for k, v in params.items() if k != "callbacks"}
    text = json.dumps(summary, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def candidate_digest(estimator: Any, params: Mapping[str, Any]) -> str:
    """The ``skbpr.cv_params_digest`` of the fold runs of one candidate of a search.

    Parameters
    ----------
    estimator : estimator
        The search's estimator (``search.estimator``), whose callbacks
        include the :class:`~skbpr.callbacks.MLflowCallback`.
    params : mapping
        The candidate's parameters, a row of ``search.cv_results_["params"]``.

    Returns
    -------
    str
        :func:`params_digest` of ``estimator``'s parameters updated with
        ``params``: the parameters the candidate's fold fits had.

    Raises
    ------
    ValueError
        When a key of ``params`` is not a parameter of ``estimator`` (a
        nested key such as ``"step__alpha"`` names a parameter of an inner
        estimator: pass that one, with the key's last part).
    """
    merged = dict(estimator.get_params(deep=False))
    unknown = [k for k in params if k not in merged]
    if unknown:
        raise ValueError(
            f"params has keys {unknown} that are not parameters of {type(estimator).__name__}; for a nested key "
            "such as 'step__alpha' pass the inner estimator that holds the callback, and its own parameter names"
        )
    merged.update(params)
    return params_digest(merged)


def check_candidate(recorder: Any, tags: Mapping[str, str]) -> list[str]:
    """Check a fold run's candidate number against the runs already recorded for its search and number.

    Runs that share ``skbpr.cv_search`` and ``skbpr.cv_candidate`` must
    share ``skbpr.cv_params_digest`` and have distinct ``skbpr.cv_split``.
    When one does not, a ``UserWarning`` names both runs and the parameters
    that differ, and this run and the clashing ones are tagged
    ``skbpr.cv_candidate_unverified=true``.

    Parameters
    ----------
    recorder : RunRecorder
        The recorder of the fold run, already open (its tags are written).
    tags : mapping
        The fold run's tags, with the four above.

    Returns
    -------
    list of str
        Ids of the clashing runs (empty when the number checks out).
    """
    search, candidate = tags[SEARCH_TAG], tags[CANDIDATE_TAG]
    digest, split = tags[DIGEST_TAG], tags.get(SPLIT_TAG)
    query = f"tags.`{SEARCH_TAG}` = '{search}' and tags.`{CANDIDATE_TAG}` = '{candidate}'"
    siblings = [r for r in recorder.find_runs(query) if r.info.run_id != recorder.run_id]
    clashes = [r for r in siblings if r.data.tags.get(DIGEST_TAG) != digest or r.data.tags.get(SPLIT_TAG) == split]
    if not clashes:
        return []
    other = clashes[0]
    theirs, mine = other.data.params, recorder.params
    differ = sorted(
        k for k in set(theirs) | set(mine) if not k.startswith(("data.", "env.")) and theirs.get(k) != mine.get(k)
    )
    what = (
        "parameters that differ: " + ", ".join(f"{k}={mine.get(k)!r} here, {theirs.get(k)!r} there" for k in differ)
        if differ
        else f"the same split {split}"
    )
    warnings.warn(
        f"MLflow run {recorder.run_id} ({DIGEST_TAG}={digest}, split {split}) and run {other.info.run_id} "
        f"({DIGEST_TAG}={other.data.tags.get(DIGEST_TAG)}, split {other.data.tags.get(SPLIT_TAG)}) are both tagged "
        f"{CANDIDATE_TAG}={candidate} in search {search}, but {what}: the search did not clone its estimator in the "
        f"order of cv_results_, which the candidate numbers are counted from. The {1 + len(clashes)} runs are tagged "
        f"{UNVERIFIED_TAG}=true; join runs to cv_results_ rows by {DIGEST_TAG} "
        "(skbpr.tracking.candidates.candidate_digest) instead",
        UserWarning,
        stacklevel=3,
    )
    recorder.log(tags={UNVERIFIED_TAG: "true"})
    for run in clashes:
        recorder.tag_other_run(run.info.run_id, UNVERIFIED_TAG, "true")
    return [r.info.run_id for r in clashes]


def reconcile_search_runs(
    recorder: Any,
    parent_run_id: str,
    estimator: Any,
    candidates: list[Mapping[str, Any]],
    *,
    search_id: str | None = None,
) -> int:
    """Check every fold run of a finished search against ``cv_results_``, and renumber those numbered wrongly.

    A fold run's ``skbpr.cv_params_digest`` names its candidate whatever
    order the search cloned in; this joins it to the row of
    ``cv_results_["params"]`` with that digest. A run whose
    ``skbpr.cv_candidate`` is another row gets the right number, keeps the
    wrong one as ``skbpr.cv_candidate_renumbered``, and a ``UserWarning``
    says how many were renumbered. A run whose digest matches no row, or
    several, is tagged ``skbpr.cv_candidate_unverified=true``; one whose
    number checks out is tagged ``skbpr.cv_candidate_unverified=false``
    where the check at fit time had doubted it.

    Parameters
    ----------
    recorder : RunRecorder
        An open recorder in the store of the search's runs.
    parent_run_id : str
        The run the search's fold runs are nested under.
    estimator : estimator
        The search's estimator (``search.estimator``).
    candidates : list of mapping
        ``search.cv_results_["params"]``.
    search_id : str or None, default=None
        The search's ``skbpr.cv_search`` tag (the ``search_id`` of
        ``search.best_estimator_``'s callback): only its fold runs are
        checked. ``None``: every fold run under ``parent_run_id``, for a
        parent that holds one search.

    Returns
    -------
    int
        How many fold runs were renumbered.
    """
    rows: dict[str, list[int]] = {}
    for i, params in enumerate(candidates):
        rows.setdefault(candidate_digest(estimator, params), []).append(i)
    runs = recorder.find_runs(f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    renumbered, unjoined = 0, 0
    for run in runs:
        tags = run.data.tags
        if CANDIDATE_TAG not in tags or DIGEST_TAG not in tags or SPLIT_TAG not in tags:
            continue  # not a fold run of the search (the candidate summaries, the refit)
        if search_id is not None and tags.get(SEARCH_TAG) != search_id:
            continue  # another search under the same parent
        match = rows.get(tags[DIGEST_TAG], [])
        run_id = run.info.run_id
        if len(match) != 1:
            unjoined += 1
            recorder.tag_other_run(run_id, UNVERIFIED_TAG, "true")
        elif str(match[0]) != tags[CANDIDATE_TAG]:
            renumbered += 1
            recorder.tag_other_run(run_id, RENUMBERED_TAG, tags[CANDIDATE_TAG])
            recorder.tag_other_run(run_id, CANDIDATE_TAG, str(match[0]))
            recorder.tag_other_run(run_id, UNVERIFIED_TAG, "false")
        elif tags.get(UNVERIFIED_TAG) == "true":
            recorder.tag_other_run(run_id, UNVERIFIED_TAG, "false")
    problems = []
    if renumbered:
        problems.append(
            f"{renumbered} fold run(s) were numbered as another candidate than the one their parameters are in "
            f"cv_results_ (the search cloned its estimator in another order): they now carry the right "
            f"{CANDIDATE_TAG} and the wrong one as {RENUMBERED_TAG}"
        )
    if unjoined:
        problems.append(
            f"{unjoined} fold run(s) have parameters of no single candidate of cv_results_ and are tagged "
            f"{UNVERIFIED_TAG}=true"
        )
    if problems:
        warnings.warn(f"search under MLflow run {parent_run_id}: " + "; ".join(problems), UserWarning, stacklevel=2)
    return renumbered
