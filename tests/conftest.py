"""Shared test configuration: a fixed, derandomised hypothesis profile for CI and local runs."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "skbpr",
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("skbpr")
