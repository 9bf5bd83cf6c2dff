"""``unreadable(...)``: a library's failure to read a model file, as a ``ModelIntegrityError`` a client may see.

XGBoost, LightGBM and PyTorch fail on a damaged file in many ways (their own
error classes, but also ``UnicodeDecodeError``, ``ValueError``, ``OSError``,
``RuntimeError``), and their messages carry the file's absolute path (the
model cache, under the server's temp folder) and the library's source
locations. The flavors turn every such failure into one error type, whose
message keeps the library's reason with each path cut to its last part.

Some parsers do worse than raise: LightGBM aborts the whole process on a
truncated model file. So a flavor records its file's sha256 in its config
at save time, and ``verified_bytes`` checks it before the library sees a byte.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopml.errors import ModelIntegrityError

#: XGBoost's prefix of every message: ``[16:49:05] /workspace/src/common/io.cc:144: ``.
_SOURCE_PREFIX = re.compile(r"^\s*\[[0-9:]+\]\s+\S+:[0-9]+:\s*")
#: An absolute path (POSIX or Windows) where a word starts; only its last part is kept.
_PATH = re.compile(r"(?<![^\s'\"`(\[<=])(?:[A-Za-z]:)?(?:[\\/][^\s\\/'\"`()\[\]<>]+)*[\\/]([^\s\\/'\"`()\[\]<>]+)")
_MAX_REASON = 300


def unreadable(what: str, exc: BaseException) -> ModelIntegrityError:
    """``ModelIntegrityError("<what>: <the library's first line, paths cut>")``; raise it ``from None``."""
    lines = str(exc).strip().splitlines()
    reason = _SOURCE_PREFIX.sub("", lines[0] if lines else "")
    reason = _PATH.sub(r"\1", reason)[:_MAX_REASON] or type(exc).__name__
    return ModelIntegrityError(f"{what}: {reason}")



def digests(folder: Path, *names: str) -> dict[str, str]:
    """``{file name: sha256 hex}`` of a flavor's files, recorded in its config when it is saved."""
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


def verified_bytes(folder: Path, name: str, config: Mapping[str, Any], what: str) -> bytes:
    """The bytes of ``folder / name``, refused (``ModelIntegrityError``) when they differ from the config's digest.

    Packages saved before the digests were recorded carry none; the manifest's digests still cover them.
    """
    try:
        data = (folder / name).read_bytes()
    except OSError as exc:
        raise unreadable(what, exc) from None
    expected = config.get("sha256")
    if expected is None:
        return data
    if not isinstance(expected, Mapping) or not isinstance(expected.get(name), str):
        raise ModelIntegrityError(f"{what}: the package's config lists no valid sha256 for {name}.")
    if hashlib.sha256(data).hexdigest() != expected[name]:
        raise ModelIntegrityError(f"{what}: {name} is not the file that was saved (its sha256 differs).")
    return data
