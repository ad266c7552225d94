"""Tracking: the MLflow recorder every write goes through, the MLflow callback, and the plots.

:mod:`skbpr.tracking.recorder` holds :class:`RunRecorder`,
:mod:`skbpr.tracking.stores` the store helpers (both re-exported here, where
they were imported before the layout by role); :mod:`skbpr.tracking.callbacks` the :class:`MLflowCallback`;
:mod:`skbpr.tracking.plots` the learning-curve and sweep plots. MLflow is
imported only when a recorder is used.
"""

from skbpr.tracking.recorder import RunRecorder
from skbpr.tracking.stores import (
    FALLBACK_NAME,
    HTTP_SETTINGS,
    LOCK_RETRIES,
    PROBE_TIMEOUT,
    absolute_uri,
    default_fallback_uri,
    is_http,
    metric_key,
    probe,
    retry_locked,
    short_http,
    summarise,
)

__all__ = [
    "FALLBACK_NAME",
    "HTTP_SETTINGS",
    "LOCK_RETRIES",
    "PROBE_TIMEOUT",
    "RunRecorder",
    "absolute_uri",
    "default_fallback_uri",
    "is_http",
    "metric_key",
    "probe",
    "retry_locked",
    "short_http",
    "summarise",
]
