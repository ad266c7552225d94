"""The command line's own error: an invalid option, reported with exit status 2."""

__all__ = ["CommandLineError"]


class CommandLineError(ValueError):
    """An invalid command-line option; the message names the option and the bad value (exit status 2)."""
