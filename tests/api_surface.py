"""The public API as text: every exported name of loopml and its lazy subpackages, with its signature.

Classes list their public methods too, since a user calls those as often as the functions. The
text is compared with ``tests/public_api.txt`` (the API of the last release) by
``tests/test_public_api.py``; regenerate that file at a release with
``python -m tests.api_surface > tests/public_api.txt``.
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from typing import Any

NAMESPACES = ("loopml", "loopml.models", "loopml.pipelines", "loopml.serving", "loopml.validation")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _signature(obj: Any) -> str:
    """Parameter names, kinds and defaults: what a caller relies on (annotations may sharpen freely)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    bare = signature.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    return _ADDRESS.sub("", str(bare))


def _describe(qualified: str, obj: Any) -> list[str]:
    if inspect.isclass(obj):
        lines = [f"class {qualified}{_signature(obj)}"]
        for attr, member in sorted(vars(obj).items()):
            if attr.startswith("_"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if inspect.isfunction(member):
                lines.append(f"    def {qualified}.{attr}{_signature(member)}")
            elif isinstance(member, property):
                lines.append(f"    property {qualified}.{attr}")
        return lines
    if callable(obj):
        return [f"def {qualified}{_signature(obj)}"]
    return [f"value {qualified}"]


def surface() -> list[str]:
    """One line per public name (and per public method of an exported class), sorted by namespace and name."""
    lines: list[str] = []
    for namespace in NAMESPACES:
        module = importlib.import_module(namespace)
        for name in sorted(getattr(module, "__all__", [])):
            if name.startswith("__"):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                obj = getattr(module, name)
            lines.extend(_describe(f"{namespace}.{name}", obj))
    return lines


if __name__ == "__main__":
    print("\n".join(surface()))
