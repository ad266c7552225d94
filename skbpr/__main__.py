"""``python -m skbpr``: the ``skbpr`` command line."""

from skbpr.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
