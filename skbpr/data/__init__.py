"""Data: the interactions container, its encoders, fold provenance and the data sets."""
