"""``skbpr.model_selection``: the import path of :mod:`skbpr.evaluation.splitters` from before the layout by role.

The name is the same module object (``sys.modules`` entry), so every name,
public or not, monkeypatching and pickles made before the move keep working.
"""

import sys

from skbpr.evaluation import splitters as _home

sys.modules[__name__] = _home
