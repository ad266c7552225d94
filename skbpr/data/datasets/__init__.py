"""Data sets: a synthetic generator and the MovieLens and Last.fm loaders."""

from skbpr.data.datasets.lastfm import load_lastfm
from skbpr.data.datasets.movielens import load_movielens
from skbpr.data.datasets.synthetic import make_interactions

__all__ = ["load_lastfm", "load_movielens", "make_interactions"]
