"""Capture what produced a run: the git state of the code, the host and the packages.

Everything here runs at every run start, so it is cheap (three ``git``
processes for a clean checkout, four when dirty; the package list is computed
once per process) and it never raises: a failure to capture is recorded as
"unknown" rather than breaking the user's training script.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from loopml.config import os_user

__all__ = ["GitInfo", "capture_environment", "capture_git", "installed_packages"]

_GIT_TIMEOUT_S = 10
_MAX_DIFF_BYTES = 5 * 1024 * 1024
_SCHEME_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@]*)@")


@dataclass(frozen=True, slots=True)
class GitInfo:
    """The git state of the working tree a run was started from.

    Attributes:
        commit: Full sha of ``HEAD``.
        branch: Current branch name, or None on a detached ``HEAD``.
        dirty: True when tracked files differ from ``HEAD`` or untracked files exist.
        diff: When dirty, ``git diff HEAD`` preceded by a ``#`` comment listing
            untracked files, truncated at 5 MiB with a marker line; else None.
        root: Absolute path of the work tree's top level.
        remote: URL of ``origin`` with any credentials removed, or None.
    """

    commit: str
    branch: str | None
    dirty: bool
    diff: str | None
    root: str
    remote: str | None


def capture_git(path: str | os.PathLike[str] | None = None) -> GitInfo | None:
    """Describe the git work tree containing ``path`` (default: the current directory).

    Args:
        path: A directory or file inside the work tree.

    Returns:
        The commit, branch, dirty flag, diff, root and remote; None when git is
        not installed, ``path`` is not inside a work tree, the repository has
        no commit yet, or git fails or times out. Never raises.
    """
    try:
        return _capture_git(path)
    except Exception:  # capture is best effort: never break the user's run
        return None


def capture_environment() -> dict[str, str]:
    """Describe the interpreter, host and invocation of the current process.

    Returns:
        A dict with exactly the keys ``python.version``, ``python.implementation``,
        ``platform``, ``host``, ``user``, ``command`` and ``cwd``; values that
        cannot be determined are ``"unknown"``.
    """
    argv = [str(a) for a in sys.argv]
    command = "<interactive>" if not argv or argv == [""] else shlex.join(argv)
    return {
        "python.version": platform.python_version(),
        "python.implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "host": _safe(socket.gethostname),
        "user": os_user(),
        "command": command,
        "cwd": _safe(os.getcwd),
    }


@functools.lru_cache(maxsize=1)
def installed_packages() -> str:
    """List the installed distributions as requirements.txt lines (``name==version``).

    Lines are sorted case-insensitively and deduplicated by normalised name
    (PEP 503), keeping the first distribution found on ``sys.path`` (the one
    imports resolve to). The result is cached for the life of the process
    because the package set rarely changes while a program runs; call
    ``installed_packages.cache_clear()`` after installing something.

    Returns:
        Newline-terminated lines, or an empty string when nothing is found.
    """
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"]
            version = dist.version
        except Exception:  # broken or partial metadata directory
            continue
        if not name or not version:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        seen.setdefault(key, f"{name}=={version}")
    lines = [seen[key] for key in sorted(seen)]
    return "".join(line + "\n" for line in lines)


# -- internals ---------------------------------------------------------------------------


def _safe(getter: Callable[[], object]) -> str:
    """Call a zero-argument getter, answering ``"unknown"`` if it fails or returns nothing."""
    try:
        value = getter()
    except Exception:
        return "unknown"
    return str(value) if value else "unknown"


def _git(cwd: str, *args: str) -> subprocess.CompletedProcess[str] | None:
    """Run ``git args`` in ``cwd``; None when git is missing, times out or cannot start."""
    env = dict(os.environ)
    env["GIT_OPTIONAL_LOCKS"] = "0"  # status must not take index.lock behind the user's back
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=_GIT_TIMEOUT_S,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _capture_git(path: str | os.PathLike[str] | None) -> GitInfo | None:
    """Body of :func:`capture_git`; may raise, the caller turns that into None."""
    cwd = os.path.abspath(os.fspath(path)) if path is not None else os.getcwd()
    if os.path.isfile(cwd):
        cwd = os.path.dirname(cwd)
    if not os.path.isdir(cwd):
        return None

    head = _git(cwd, "rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD")
    if head is None or head.returncode != 0:
        return None
    lines = head.stdout.splitlines()
    if len(lines) < 3:
        return None
    root, commit, branch = lines[0], lines[1], lines[2]

    remote_run = _git(root, "config", "--get", "remote.origin.url")
    remote = None
    if remote_run is not None and remote_run.returncode == 0 and remote_run.stdout.strip():
        remote = _strip_credentials(remote_run.stdout.strip())

    status = _git(root, "status", "--porcelain", "--untracked-files=normal")
    if status is None or status.returncode != 0:
        # status unknown: do not claim the tree is clean
        return GitInfo(commit=commit, branch=_branch(branch), dirty=True, diff=None, root=root, remote=remote)
    entries = [line for line in status.stdout.splitlines() if line.strip()]
    dirty = bool(entries)
    diff = _dirty_diff(root, entries) if dirty else None
    return GitInfo(commit=commit, branch=_branch(branch), dirty=dirty, diff=diff, root=root, remote=remote)


def _branch(abbrev: str) -> str | None:
    """``git rev-parse --abbrev-ref HEAD`` prints ``HEAD`` when detached."""
    return None if abbrev in ("", "HEAD") else abbrev


def _dirty_diff(root: str, status_entries: list[str]) -> str | None:
    """``git diff HEAD`` with a comment header listing untracked files, capped at 5 MiB."""
    untracked = [line[3:] for line in status_entries if line.startswith("??")]
    header = ""
    if untracked:
        header = "# Untracked files:\n" + "".join(f"#   {p}\n" for p in untracked)
    run = _git(root, "diff", "HEAD", "--no-color", "--no-ext-diff")
    body = run.stdout if run is not None and run.returncode == 0 else ""
    text = header + body
    if not text:
        return None
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) > _MAX_DIFF_BYTES:
        text = raw[:_MAX_DIFF_BYTES].decode("utf-8", "ignore")
        if not text.endswith("\n"):
            text += "\n"
        text += f"# loopml: diff truncated at {_MAX_DIFF_BYTES} bytes (full size {len(raw)} bytes)\n"
    return text


def _strip_credentials(url: str) -> str:
    """Remove ``user:password@`` (and http(s) tokens) from a remote URL.

    ``ssh://git@host/...`` and scp-like ``git@host:repo`` keep their user name,
    which is part of the address rather than a secret.
    """
    match = _SCHEME_USERINFO.match(url)
    if match is None:
        return url
    scheme, userinfo = match.group("scheme"), match.group("userinfo")
    if ":" in userinfo or scheme.lower() in ("http://", "https://"):
        return scheme + url[match.end() :]
    return url
