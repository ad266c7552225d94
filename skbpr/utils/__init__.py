"""Helpers every layer uses: argument validation."""
