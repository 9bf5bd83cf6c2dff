"""griffe extension: read a Google-style ``Example:`` section as examples, like ``Examples:``.

STYLE.md asks for an ``Example:`` block (singular, as kedro writes it); griffe knows only the plural as
the section whose ``>>>`` lines are code, and renders the singular as an admonition whose ``>>>``
lines turn into Markdown quotes. Renaming the heading before the docstring is parsed keeps the
docstrings as they are and renders their examples as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

SINGULAR = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = SINGULAR.sub(r"\g<indent>Examples:", obj.docstring.value)
