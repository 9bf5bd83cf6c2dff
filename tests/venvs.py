"""Virtualenvs of real third-party clients (MLflow, tritonclient, the KServe SDK, moto), one per client.

Each is created once under ``~/.cache/loopml-test-venvs/<name>`` (or
``$LOOPML_TEST_VENVS``) with pip from the configured package index, kept apart
from loopml's own environment because the clients' pins may clash with ours.
Creation holds a file lock, so parallel test workers build a venv once, and a
``.complete`` marker is written last, so a half-built venv is built again.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

VENVS = Path(os.environ.get("LOOPML_TEST_VENVS", Path.home() / ".cache" / "loopml-test-venvs"))


def cached_venv(name: str, packages: tuple[str, ...]) -> Path:
    """The python of the venv ``name`` with ``packages``, created on first use."""
    root = VENVS / name
    python = root / "bin" / "python"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".complete").exists():
            shutil.rmtree(root, ignore_errors=True)
            base = shutil.which("python3") or sys.executable  # a system python, not our .venv
            subprocess.run([base, "-m", "venv", str(root)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
                check=True,
                timeout=1800,
            )
            (root / ".complete").touch()
    return python


def run_client(python: Path, source: str, config: dict[str, Any], folder: Path) -> Any:
    """Run the client script ``source`` with ``python`` on ``config`` (a JSON file in ``folder``); its JSON answer.

    The environment loses ``LOOPML_*`` and ``PYTHON*``: the client sees only what the script is given.
    """
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "client.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPML_", "PYTHON"))}
    ran = subprocess.run(
        [str(python), str(folder / "client.py"), str(folder / "config.json")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-4000:]
    return json.loads(ran.stdout)
