"""HTML templates shared by everything loopml renders: the monitoring report now, the web UI next.

``base.html`` is the page (head, the inline ``base.css``, a ``content``
block); ``macros.html`` holds the pieces pages share (``table``, ``card``);
each domain keeps its pages in a folder named after it
(``monitoring/report.html``). The files are package data, loaded through
:class:`jinja2.PackageLoader`, so they work from a wheel or a zip as well as a
checkout. Autoescaping is always on: column names and categories come from
users' data, and only markup we produce ourselves (the figures' SVG) is passed
in as :class:`markupsafe.Markup`.

This package imports nothing from loopml, so any layer, the UI included, may
use it.
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined


@cache
def environment() -> Environment:
    """The one Jinja environment for loopml's templates (autoescaping, undefined names are errors)."""
    return Environment(
        loader=PackageLoader("loopml", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
