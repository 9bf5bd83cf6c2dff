"""Real third-party clients for the interop tests, each in its own cached venv.

``mlflow_python`` is the interpreter of a venv holding the MLflow client and
scikit-learn, created once under ``~/.cache/loopml-test-venvs/mlflow`` (pip
from the configured package index; minutes the first time, instant after)
and kept apart from loopml's own environment because MLflow's pins may clash
with ours. Creation is guarded by a file lock, so parallel test workers build
it once. ``mlflow_env`` runs a client script against a live loopml server.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.venvs import cached_venv

MLFLOW_PACKAGES = ("mlflow>=3,<4", "scikit-learn")
HERE = Path(__file__).parent
WORKFLOW = HERE / "mlflow_workflow.py"


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The interpreter of the cached MLflow client venv."""
    return cached_venv("mlflow", MLFLOW_PACKAGES)


def run_client(
    python: Path,
    args: list[str],
    uri: str,
    cwd: Path,
    token: str | None = None,
    timeout: float = 300,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python args...`` with MLflow pointed at ``uri``; the client's own env is cleared of MLflow settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOOPML_"))}
    env.update(
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_ENABLE_ASYNC_LOGGING="false",
        GIT_PYTHON_REFRESH="quiet",
        PYTHONWARNINGS="ignore",
    )
    if token is not None:
        env["MLFLOW_TRACKING_TOKEN"] = token
    env.update(extra_env or {})
    return subprocess.run(
        [str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def result_of(done: subprocess.CompletedProcess[str]) -> Mapping[str, Any]:
    """The JSON a client script printed on its ``RESULT`` line; fails the test with its output otherwise."""
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            parsed: Mapping[str, Any] = json.loads(line[len("RESULT ") :])
            return parsed
    pytest.fail(f"the MLflow client failed (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}")


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., tuple[str, Any]]]:
    """``serve(auth=False)`` -> (URL, store): a fresh SQLite store behind ``create_app`` on the live test server."""
    from loopml.server.app import create_app
    from loopml.store import open_store

    opened: list[Any] = []
    url, switch = request.getfixturevalue("live_server")

    def serve(auth: bool = False) -> tuple[str, Any]:
        store = open_store(f"sqlite:///{tmp_path / 'server.db'}", artifacts_url=str(tmp_path / "server-artifacts"))
        opened.append(store)
        switch.app = create_app(store, auth=auth)
        return url, store

    yield serve
    switch.app = None
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def mlflow_file_store(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Mapping[str, Any]]:
    """An mlruns folder filled by the real MLflow client running the workflow script: (folder, its result)."""
    root = tmp_path_factory.mktemp("mlflow-file-store")
    folder = root / "mlruns"
    done = run_client(
        mlflow_python,
        [str(WORKFLOW), "fs", "2", "5"],
        folder.as_uri(),
        root,
        extra_env={"MLFLOW_ALLOW_FILE_STORE": "true"},
    )
    return folder, result_of(done)


@pytest.fixture
def fresh_cli_client() -> Iterator[None]:
    """Close the module-level client the ``loopml`` CLI opens (it points at this test's server) afterwards."""
    import loopml
    from loopml.tracking import fluent

    loopml.set_tracking_uri(None)
    yield
    if fluent._client is not None:
        fluent._client.close()
    fluent._client = None
    fluent._client_key = None
    loopml.set_tracking_uri(None)
