"""MLflow tracking stores that many processes write to at once.

The helpers live in :mod:`skbpr.tracking.shared_store`, beside the other
tracking-store code that :class:`skbpr.callbacks.MLflowCallback` uses; they
are re-exported here, where the distributed commands and their users import
them.
"""

from skbpr.tracking.shared_store import DATABASE_SCHEMES, is_database_uri, prepare_tracking_store

__all__ = ["DATABASE_SCHEMES", "is_database_uri", "prepare_tracking_store"]
