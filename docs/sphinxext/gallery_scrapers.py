"""An image scraper for figures made without pyplot.

``skbpr.plotting`` builds its figures with matplotlib's object-oriented API
(``matplotlib.figure.Figure``), so pyplot does not know them and
sphinx-gallery's matplotlib scraper does not see them. This scraper saves
every such figure bound to a name in the example's namespace, once. It runs
before the matplotlib scraper, while pyplot's figures still have a manager.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from sphinx_gallery.scrapers import figure_rst

_SEEN = "__skbpr_scraped_figures__"


def unmanaged_figures(block, block_vars, gallery_conf):
    """Save the new pyplot-less figures of a code block; return their reST."""
    from matplotlib.figure import Figure

    namespace = block_vars["example_globals"]
    seen = namespace.setdefault(_SEEN, set())
    paths = []
    for value in list(namespace.values()):
        if not isinstance(value, Figure) or id(value) in seen:
            continue
        seen.add(id(value))
        if value.canvas.manager is None:  # pyplot figures are left to the matplotlib scraper
            path = PurePosixPath(next(block_vars["image_path_iterator"]))
            value.savefig(path)
            paths.append(str(path))
    return figure_rst(paths, gallery_conf["src_dir"])
