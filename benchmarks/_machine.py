"""What every benchmark needs around its workload: the machine it ran on and the peer tool's venv (stdlib only)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def machine() -> str:
    """``x86_64, 2 cores, Linux 6.1``: printed beside every figure, since they mean little without it."""
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def ensure_venv(venv: Path, packages: Sequence[str], say: Callable[[str], None]) -> Path:
    """The python of ``venv``, created with ``packages`` the first time (peers never share loopml's venv)."""
    python = venv / "bin" / "python"
    if not python.exists():
        say(f"creating {venv} with {' '.join(packages)} (one-off)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], check=True)
    return python


def this_python(root: Path) -> str:
    """This interpreter as a reproduce line shows it: relative to the checkout ``root`` where it lies inside."""
    python = Path(sys.executable)
    return os.path.relpath(python, root) if python.is_relative_to(root) else str(python)
