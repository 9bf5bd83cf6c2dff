"""Importing the user's own module that a command names (a policies file, a pipeline's module)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from loopml.errors import InvalidValueError


def import_user_module(name: str, what: str = "") -> ModuleType:
    """``name`` imported: a dotted name found from the current folder (as ``python -m`` does), or a ``.py`` path.

    A missing file, a module that cannot be found and a syntax error are the
    user's mistake (InvalidValueError, one line); any other error raised while
    the module runs is their code failing, and keeps its traceback.
    ``what`` (``"policies "``) names the kind of module in the messages.
    """
    if name.endswith(".py"):
        path = Path(name).resolve()
        if not path.is_file():
            raise InvalidValueError(f"No {what}file {name!r} (looked for {path}).")
        folder, name = str(path.parent), path.stem
    else:
        folder = os.getcwd()
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise InvalidValueError(f"Cannot import the {what}module {name!r}: {exc}. Run from the folder that holds it.") from exc
    except SyntaxError as exc:
        raise InvalidValueError(
            f"The {what}module {name!r} has a syntax error: {exc.msg} ({exc.filename}, line {exc.lineno})."
        ) from exc
