"""The ``skbpr`` command line.

Its commands are in :mod:`skbpr.cli.commands`, their YAML configuration in
:mod:`skbpr.cli.config`.

Building the parser and reading a configuration import no heavy dependency.
"""

from skbpr.cli.commands import CommandLineError, build_parser, load_data, load_model, main, split_data

__all__ = ["CommandLineError", "build_parser", "load_data", "load_model", "main", "split_data"]
