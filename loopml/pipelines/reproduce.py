"""Re-run the pipeline that produced a model version, from its recorded commit, params and data, and compare.

``reproduce("models:/churn/3")`` walks from the version's run up to the
pipeline run that made it, checks out the commit that run recorded into a
temporary git worktree, runs the pipeline there with the recorded params and
no cache (in a fresh interpreter, so the code that runs is the commit's), and
compares the two runs step by step: the content hash of every DataFrame a
step produced (the data) and every metric a step logged (within a tolerance).

It refuses, before running anything, when the run recorded no commit or the
commit is not in the repository; it reports a mismatch when a DataFrame's hash
differs (the data changed since) or a metric moved more than the tolerance.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.errors import InvalidValueError, ReproductionError
from loopml.pipelines import cache as step_cache
from loopml.pipelines.run import SOURCE_TAG
from loopml.tracking.client import TrackingClient

REPRODUCES_TAG = "loopml.reproduces"
DATA_MATERIALIZERS = ("pandas", "numpy")


@dataclass(frozen=True)
class Comparison:
    """One compared figure: a step's data hash or metric, then and now."""

    step: str
    what: str  # "data:<output>" or "metric:<key>"
    original: Any
    reproduced: Any
    matches: bool


@dataclass(frozen=True)
class Reproduction:
    """The verdict: ``matches`` when every data hash is equal and every metric is within the tolerance."""

    original_run_id: str
    reproduced_run_id: str
    commit: str
    params: Mapping[str, str]
    tolerance: float
    comparisons: tuple[Comparison, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = ()

    @property
    def matches(self) -> bool:
        return all(c.matches for c in self.comparisons)

    @property
    def data_changed(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.what.startswith("data:") and not c.matches]


def pipeline_run_of(client: TrackingClient, run_id: str) -> Any:
    """The pipeline run ``run_id`` is, or the nearest ancestor that is one; ReproductionError when none is."""
    seen = set()
    current = client.get_run(run_id)
    while step_cache.PIPELINE_TAG not in current.tags or SOURCE_TAG not in current.tags:
        parent = current.info.parent_run_id
        if parent is None or parent in seen:
            raise ReproductionError(
                f"Run {run_id} was not made by a loopml pipeline (no run above it carries "
                f"'{step_cache.PIPELINE_TAG}'), so there is nothing to re-run."
            )
        seen.add(parent)
        current = client.get_run(parent)
    return current


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def reproduce(
    uri: str,
    *,
    repo: str | os.PathLike[str] = ".",
    tolerance: float = 1e-6,
    client: TrackingClient | None = None,
) -> Reproduction:
    """Re-run what produced ``uri`` (``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` or a run id) and compare."""
    from loopml.registry.client import RegistryClient
    from loopml.tracking import fluent

    if not isinstance(tolerance, int | float) or isinstance(tolerance, bool) or not tolerance >= 0:
        raise InvalidValueError(f"tolerance must be a number >= 0, got {tolerance!r}.")
    client = client or fluent.get_tracking_client()
    run_id = RegistryClient(client).resolve(uri).run_id if uri.startswith("models:/") else uri
    if run_id is None:
        raise ReproductionError(f"{uri} has no run recorded, so there is nothing to re-run.")
    original = pipeline_run_of(client, run_id)
    commit = original.tags.get("loopml.git.commit")
    if not commit:
        raise ReproductionError(
            f"Pipeline run {original.info.run_id} recorded no git commit (it ran outside a git checkout, or with "
            "capture=False): the code that produced it cannot be found."
        )
    root_out = _git(["rev-parse", "--show-toplevel"], Path(repo))
    if root_out.returncode != 0:
        raise ReproductionError(f"{Path(repo).resolve()} is not inside a git repository; pass repo= the checkout.")
    root = Path(root_out.stdout.strip())
    if _git(["cat-file", "-e", f"{commit}^{{commit}}"], root).returncode != 0:
        raise ReproductionError(
            f"Commit {commit[:12]} (recorded by run {original.info.run_id}) is not in the repository at {root}; "
            "fetch it (git fetch --all) and try again."
        )
    notes = []
    if original.tags.get("loopml.git.dirty") == "true":
        notes.append("the original run had uncommitted changes; this re-run uses the commit alone")
    recorded_cwd = Path(original.tags.get("loopml.source.cwd", str(root)))
    try:
        subdir = recorded_cwd.resolve().relative_to(root.resolve())
    except ValueError:
        subdir = Path()
    with tempfile.TemporaryDirectory(prefix="loopml-reproduce-") as scratch:
        tree = Path(scratch) / "tree"
        added = _git(["worktree", "add", "--detach", str(tree), commit], root)
        if added.returncode != 0:
            raise ReproductionError(f"Cannot check out {commit[:12]}: {added.stderr.strip()}")
        try:
            workdir = recorded_cwd if recorded_cwd.is_dir() else tree / subdir
            new_run_id = _rerun(client, tree / subdir, workdir, original)
        finally:
            _git(["worktree", "remove", "--force", str(tree)], root)
    comparisons = _compare(client, original.info.run_id, new_run_id, tolerance)
    return Reproduction(original.info.run_id, new_run_id, commit, dict(original.params), tolerance,
                        tuple(comparisons), tuple(notes))  # fmt: skip


def _rerun(client: TrackingClient, code: Path, cwd: Path, original: Any) -> str:
    """Run the pipeline in a fresh interpreter importing from ``code`` (the commit) in ``cwd``; return the run id.

    The working directory is the one the original run recorded (when it still
    exists), so relative data paths read the data as they did then, while the
    code comes from the commit.
    """
    spec = {
        "source": original.tags[SOURCE_TAG],
        "params": {k: json.loads(v) if _is_json(v) else v for k, v in original.params.items()},
        "tags": {REPRODUCES_TAG: original.info.run_id},
        "experiment_id": original.info.experiment_id,
        "script": _script(original.tags.get("loopml.source.command", ""), code),
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env["LOOPML_TRACKING_URI"] = client.store.url
    done = subprocess.run(
        [sys.executable, "-m", "loopml.pipelines.reproduce", json.dumps(spec)],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ReproductionError(
            f"The pipeline {spec['source']} failed when re-run at the recorded commit:\n{done.stderr.strip()[-3000:]}"
        )
    return lines[-1]


def _script(command: str, code: Path) -> str | None:
    """The commit's copy of the ``.py`` file a command line ran (a pipeline defined in a script is ``__main__:name``)."""
    script = next((part for part in command.split() if part.endswith(".py")), None)
    return None if script is None or Path(script).is_absolute() else str(code / script)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _steps(client: TrackingClient, run_id: str) -> dict[str, dict[str, Any]]:
    record = json.loads(client.read_artifact(run_id, step_cache.STEPS_ARTIFACT))
    return {step["node"]: step for step in record["steps"]}


def _compare(client: TrackingClient, original_id: str, new_id: str, tolerance: float) -> list[Comparison]:
    before, after = _steps(client, original_id), _steps(client, new_id)
    found = []
    for node, old in before.items():
        new = after.get(node)
        if new is None:
            found.append(Comparison(node, "step", old.get("status"), None, False))
            continue
        for name, output in old.get("outputs", {}).items():
            if output.get("materializer") in DATA_MATERIALIZERS:
                other = new.get("outputs", {}).get(name, {}).get("digest")
                found.append(Comparison(node, f"data:{name}", output["digest"], other, output["digest"] == other))
        if old.get("run_id") and new.get("run_id"):
            old_metrics = client.get_run(old["run_id"]).metrics
            new_metrics = client.get_run(new["run_id"]).metrics
            for key, value in sorted(old_metrics.items()):
                other = new_metrics.get(key)
                same = other is not None and (
                    math.isclose(value, other, rel_tol=tolerance, abs_tol=tolerance)
                    or (math.isnan(value) and math.isnan(other))
                )
                found.append(Comparison(node, f"metric:{key}", value, other, same))
    return found


def _main(spec_text: str) -> None:
    """In the re-run's interpreter: import the pipeline from the checked-out commit and run it without cache."""
    import importlib

    from loopml.tracking import fluent

    spec = json.loads(spec_text)
    module_name, _, qualname = spec["source"].partition(":")
    if module_name == "__main__":  # defined in a script: load the script (its main block does not run)
        import runpy

        if not spec.get("script"):
            raise ReproductionError(f"{spec['source']} was defined in a script whose path was not recorded.")
        target: Any = runpy.run_path(spec["script"], run_name="__loopml_reproduce__")[qualname.split(".")[0]]
        qualname = qualname.partition(".")[2]
    else:
        target = importlib.import_module(module_name)
    for part in filter(None, qualname.split(".")):
        target = getattr(target, part)
    client = fluent.get_tracking_client()
    experiment = client.store.tracking.get_experiment(spec["experiment_id"]).name
    from loopml.pipelines.run import run_pipeline

    result = run_pipeline(target, spec["params"], cache=False, client=client, experiment=experiment, tags=spec["tags"])
    print(result.run_id)


if __name__ == "__main__":
    _main(sys.argv[1])
