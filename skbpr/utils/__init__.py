"""Helpers every layer uses: argument validation, signatures read from source, atomic file writes."""
