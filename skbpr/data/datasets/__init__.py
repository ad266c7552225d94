"""Data sets: a synthetic generator and the MovieLens and Last.fm loaders."""

from skbpr.datasets.lastfm import load_lastfm
from skbpr.datasets.movielens import load_movielens
from skbpr.datasets.synthetic import make_interactions

__all__ = ["load_lastfm", "load_movielens", "make_interactions"]
