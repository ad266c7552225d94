"""Recommenders: :class:`~skbpr.models.hybrid.HybridBPR`, the popularity baseline and what they share."""
