"""``skbpr.config``: the import path of :mod:`skbpr.cli.config` from before the layout by role.

The name is the same module object (``sys.modules`` entry), so every name,
public or not, monkeypatching and pickles made before the move keep working.
"""

import sys

from skbpr.cli import config as _home

if __name__ == "__main__":  # python -m skbpr.config prints the example configuration
    print(_home.example_config(), end="")
else:
    sys.modules[__name__] = _home
