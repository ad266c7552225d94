"""skbpr: Bayesian Personalized Ranking as a scikit-learn estimator."""

__version__ = "0.1.0"
