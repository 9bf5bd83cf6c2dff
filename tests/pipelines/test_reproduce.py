"""``loopml reproduce``: a pipeline run re-run from its commit matches; changed data or a missing commit is said."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PIPELINE = '''
import json
import pandas as pd
import loopml
from sklearn.linear_model import LogisticRegression


@loopml.step
def load(path: str) -> pd.DataFrame:
    return pd.read_csv(path)


@loopml.step
def fit(frame: pd.DataFrame, c: float) -> LogisticRegression:
    model = LogisticRegression(C=c, max_iter=2000).fit(frame[["x1", "x2"]], frame["y"])
    loopml.log_metric("train_accuracy", float(model.score(frame[["x1", "x2"]], frame["y"])))
    return model


@loopml.pipeline
def train(path: str = "data.csv", c: float = 1.0):
    return {"model": fit(load(path), c=c)}


if __name__ == "__main__":
    print(train.run(path="data.csv", c=0.5).run_id)
'''


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)  # fmt: skip


def _data(repo, flip=False):
    rows = ["x1,x2,y"] + [f"{i % 7},{(i * 3) % 5},{int((i % 7 + (i * 3) % 5 > 5) != flip)}" for i in range(60)]
    (repo / "data.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    repo = tmp_path / "project"
    repo.mkdir()
    (repo / "training.py").write_text(textwrap.dedent(PIPELINE))
    _data(repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "training.py")  # the data stays out of git, as data usually does
    _git(repo, "commit", "-qm", "pipeline")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "home")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LOOPML_TRACKING_URI", raising=False)
    monkeypatch.delenv("LOOPML_DB_URL", raising=False)
    import loopml

    loopml.set_tracking_uri(None)
    done = subprocess.run([sys.executable, "training.py"], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    yield repo, done.stdout.strip().splitlines()[-1]
    loopml.set_tracking_uri(None)


@pytest.mark.slow
def test_an_unchanged_pipeline_reproduces_and_changed_data_is_caught(repo):
    from loopml.pipelines.reproduce import reproduce

    path, run_id = repo
    result = reproduce(run_id, repo=path)
    assert result.matches, result.comparisons
    whats = {c.what for c in result.comparisons}
    assert "data:output" in whats and "metric:train_accuracy" in whats
    assert result.reproduced_run_id != run_id

    _data(path, flip=True)  # the same file name, other contents
    changed = reproduce(run_id, repo=path)
    assert not changed.matches
    assert [c.step for c in changed.data_changed] == ["load"]


def test_refusals_are_clear(repo, tmp_path):
    from loopml.errors import ReproductionError
    from loopml.pipelines.reproduce import reproduce

    path, run_id = repo
    other = tmp_path / "other"
    other.mkdir()
    _git(other, "init", "-q")
    with pytest.raises(ReproductionError, match="is not in the repository"):
        reproduce(run_id, repo=other)
    with pytest.raises(ReproductionError, match="not inside a git repository"):
        reproduce(run_id, repo=tmp_path / "home")

    import loopml

    with loopml.start_run("plain", capture=False) as plain:
        pass
    with pytest.raises(ReproductionError, match="not made by a loopml pipeline"):
        reproduce(plain.run_id, repo=path)
