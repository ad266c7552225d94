"""Data sets: a synthetic generator and MovieLens loaders."""

from skbpr.datasets.movielens import load_movielens
from skbpr.datasets.synthetic import make_interactions

__all__ = ["load_movielens", "make_interactions"]
