"""Lazy re-exports for the public packages, written once.

``loopml``, ``loopml.models``, ``loopml.pipelines``, ``loopml.serving`` and
``loopml.validation`` name their public objects in a table of dotted module
paths and import each on first use, so ``import loopml`` stays cheap (no
SQLAlchemy, pandas or scikit-learn; STYLE.md §6). Renamed names stay reachable
for one minor release: reading one warns with a DeprecationWarning that names
its replacement and the release that removes it.

Example:
    >>> __getattr__, __dir__ = lazy_exports(__name__, {"drift": "loopml.monitoring.drift"}, __all__)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: The release that removes the deprecated names of this one.
REMOVED_IN = "0.3"


def lazy_exports(
    package: str,
    exports: Mapping[str, str],
    public: Sequence[str],
    deprecated: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's ``__name__``.
        exports: public name -> the module that defines it.
        public: the package's ``__all__`` (what ``dir()`` lists).
        deprecated: old name -> the public name that replaces it.
    """
    renamed = dict(deprecated or {})

    def __getattr__(name: str) -> Any:
        replacement = renamed.get(name)
        if replacement is not None:
            warnings.warn(
                f"{package}.{name} is deprecated and will be removed in loopml {REMOVED_IN}; "
                f"use {package}.{replacement}.",
                DeprecationWarning,
                stacklevel=2,
            )
            return __getattr__(replacement)
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next read is a plain attribute
        return value

    def __dir__() -> list[str]:
        return list(public)

    return __getattr__, __dir__


def deprecated_alias(new: Callable[..., Any], old_name: str, owner: str) -> Callable[..., Any]:
    """A function (or method) named ``old_name`` that warns and calls ``new``: for renamed methods."""

    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"{owner}.{old_name} is deprecated and will be removed in loopml {REMOVED_IN}; use {owner}.{new.__name__}.",
            DeprecationWarning,
            stacklevel=2,
        )
        return new(*args, **kwargs)

    alias.__wrapped__ = new  # type: ignore[attr-defined]  # inspect.signature shows the real parameters
    alias.__name__ = old_name
    alias.__qualname__ = f"{owner}.{old_name}"
    alias.__doc__ = f"Deprecated: use :meth:`{new.__name__}` (removed in loopml {REMOVED_IN})."
    return alias
