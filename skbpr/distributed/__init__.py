"""Spreading skbpr's work over many processes and machines on existing engines.

- :mod:`skbpr.distributed.batch`: top-k recommendations for every user as
  DataFrames, one function for pandas, Spark ``mapInPandas`` and Dask
  ``map_partitions``.
- :mod:`skbpr.distributed.search`: scikit-learn searches on a Dask cluster
  (the joblib ``dask`` backend).
- :mod:`skbpr.distributed.tune`: Optuna studies shared by worker processes
  (RDB storage with heartbeats, or a journal file).
- :mod:`skbpr.distributed.stores`: MLflow stores prepared once before
  workers write to them concurrently (re-exported from
  :mod:`skbpr.tracking.shared_store`).

The commands that drive these (``skbpr tune``, ``skbpr sweep --scheduler``,
``skbpr recommend --all-users``) are in :mod:`skbpr.cli`, which imports this
package and never the reverse.

Nothing here trains one model on several machines: see ``docs/scaling.md``.
The engines (Dask, Optuna, Spark) are imported only by the functions that
use them.
"""

from __future__ import annotations
