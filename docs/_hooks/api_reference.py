"""mkdocs hook: the Python API reference lists exactly what ``import loopml`` exports, read at build time.

A page under ``reference/`` holds prose and a marker line, ``<!-- loopml-api: loopml.tracking -->``; this
hook replaces the marker with one mkdocstrings directive (``::: loopml.tracking.fluent.start_run``) per
public name that ``loopml`` re-exports from that package, in the order of ``loopml.__all__``. So a name
added, renamed or removed in ``loopml/__init__.py`` shows up on its page at the next build, and a public
name that no page claims fails the strict build (a warning) instead of going undocumented.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.api_reference")
MARKER = re.compile(r"^<!-- loopml-api: (?P<package>[\w.]+) -->$", re.MULTILINE)
DIRECTIVE = re.compile(r"^::: (?P<identifier>[\w.]+)$", re.MULTILINE)
# names that are not API objects to document
SKIPPED = {"__version__"}

documented: set[str] = set()


def exports() -> dict[str, str]:
    """Public name -> the module ``loopml`` imports it from, in the order of ``loopml.__all__``."""
    import loopml

    table: dict[str, str] = loopml._EXPORTS
    return {name: table[name] for name in loopml.__all__ if name in table and name not in SKIPPED}


def directives(package: str) -> str:
    blocks = []
    for name, module in exports().items():
        if module == package or module.startswith(package + "."):
            documented.add(name)
            blocks.append(f"::: {module}.{name}\n")
    if not blocks:
        log.warning("reference page marker names %s, but loopml exports nothing from it", package)
    return "\n".join(blocks)


def on_pre_build(config: MkDocsConfig) -> None:
    documented.clear()  # mkdocs serve rebuilds in the same process


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    # a directive written by hand (``::: loopml.errors``) documents every export inside what it names
    for match in DIRECTIVE.finditer(markdown):
        identifier = match["identifier"]
        documented.update(
            name
            for name, module in exports().items()
            if f"{module}.{name}" == identifier or module == identifier or module.startswith(identifier + ".")
        )
    return MARKER.sub(lambda match: directives(match["package"]), markdown)


def on_post_build(config: MkDocsConfig, **_: Any) -> None:
    missing = sorted(set(exports()) - documented)
    if missing:
        log.warning(
            "loopml exports %s, but no reference page documents them: add a '<!-- loopml-api: PACKAGE -->' "
            "marker for their package to a page under docs/reference/",
            ", ".join(missing),
        )
