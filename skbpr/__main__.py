"""``python -m skbpr``: the ``skbpr`` command line."""

from skbpr.cli.commands import main

if __name__ == "__main__":
    raise SystemExit(main())
