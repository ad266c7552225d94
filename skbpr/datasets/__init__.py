"""Data sets: a synthetic generator and MovieLens and Last.fm loaders (at home in :mod:`skbpr.data.datasets`)."""

from skbpr.data.datasets import load_lastfm, load_movielens, make_interactions

__all__ = ["load_lastfm", "load_movielens", "make_interactions"]
