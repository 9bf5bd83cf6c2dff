"""The tracking API as users call it: start_run, logging, artifacts, datasets, search."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.entities.tracking import RunStatus
from loopml.errors import (
    ArtifactPathError,
    InvalidFilterError,
    InvalidValueError,
    NoActiveRunError,
    ParamConflictError,
    RunNotActiveError,
)


def test_a_run_records_params_metrics_tags_and_ends_finished(loopml_env):
    loopml.set_experiment("exp")
    with loopml.start_run(name="first", params={"lr": 0.1, "layers": 3}, tags={"team": "risk"}) as run:
        run.log_metric("loss", 0.5)
        run.log_metric("loss", 0.25)
        run.log_metrics({"acc": 0.9, "f1": 0.8}, step=7)
        run.set_tag("stage", "dev")
        loopml.log_param("optimizer", "adam")
    stored = loopml.get_run(run.id)
    assert stored.info.status is RunStatus.FINISHED
    assert stored.info.end_time >= stored.info.start_time
    assert stored.params == {"lr": "0.1", "layers": "3", "optimizer": "adam"}
    assert stored.metrics == {"acc": 0.9, "f1": 0.8, "loss": 0.25}
    assert stored.tags["team"] == "risk" and stored.tags["stage"] == "dev"
    history = loopml.get_metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 0.5), (1, 0.25)]
    assert loopml.get_metric_history(run.id, "acc")[0].step == 7


def test_environment_and_command_are_captured(loopml_env):
    with loopml.start_run() as run:
        pass
    tags = loopml.get_run(run.id).tags
    for key in ("loopml.env.python", "loopml.env.platform", "loopml.env.host", "loopml.source.command"):
        assert tags[key]
    client = loopml.get_tracking_client()
    requirements = client.read_artifact(run.id, "loopml/environment/requirements.txt").decode()
    assert "sqlalchemy==" in requirements.lower()


def test_an_exception_fails_the_run_and_stores_the_traceback(loopml_env):
    with pytest.raises(ZeroDivisionError), loopml.start_run() as run:
        run.log_metric("before", 1.0)
        _ = 1 / 0
    stored = loopml.get_run(run.id)
    assert stored.info.status is RunStatus.FAILED
    assert "ZeroDivisionError" in stored.tags["loopml.traceback"]
    assert "1 / 0" in stored.tags["loopml.traceback"]
    assert stored.metrics == {"before": 1.0}  # buffered points are flushed on failure too


def test_keyboard_interrupt_kills_the_run(loopml_env):
    with pytest.raises(KeyboardInterrupt), loopml.start_run() as run:
        raise KeyboardInterrupt
    assert loopml.get_run(run.id).info.status is RunStatus.KILLED


def test_runs_started_inside_a_run_are_its_children(loopml_env):
    with loopml.start_run(name="sweep") as parent:
        for depth in (2, 4):
            with loopml.start_run(params={"depth": depth}) as child:
                assert loopml.active_run() is child
                loopml.log_metric("acc", depth / 10)
        assert loopml.active_run() is parent
    assert loopml.active_run() is None
    children = loopml.search_runs(filter=f"parent_run_id = '{parent.id}'", order_by="metrics.acc DESC", as_frame=False)
    assert [r.params["depth"] for r in children] == ["4", "2"]


def test_buffered_metrics_are_durable_after_flush(loopml_env):
    with loopml.start_run() as run:
        for i in range(2500):
            run.log_metric("x", float(i))
        run.flush()
        other_client = loopml.TrackingClient()  # a separate connection sees them
        assert len(other_client.get_metric_history(run.id, "x")) == 2500
        other_client.close()


def test_nan_and_inf_round_trip_through_the_api(loopml_env):
    with loopml.start_run() as run:
        for value in (math.nan, math.inf, -math.inf, np.float32(0.5), np.int64(3), True):
            run.log_metric("v", value)
    values = [p.value for p in loopml.get_metric_history(run.id, "v")]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, 0.5, 3.0, 1.0]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("", 1.0, "empty"),
        ("   ", 1.0, "empty"),
        (None, 1.0, "string"),
        ("x" * 251, 1.0, "limit"),
        ("acc", "0.9", "must be a number"),
        ("acc", None, "must be a number"),
        ("acc", [1.0], "must be a number"),
    ],
)
def test_bad_metrics_raise_at_the_call_and_log_nothing(loopml_env, key, value, message):
    with loopml.start_run() as run:
        with pytest.raises(InvalidValueError, match=message):
            run.log_metric(key, value)
        with pytest.raises(InvalidValueError):
            run.log_metric("ok", 1.0, step=1.5)
    assert loopml.get_run(run.id).metrics == {}


def test_params_are_immutable_and_bad_params_are_refused(loopml_env):
    with loopml.start_run(params={"lr": 0.1}) as run:
        run.log_param("lr", 0.1)
        with pytest.raises(ParamConflictError, match="lr"):
            run.log_param("lr", 0.2)
        with pytest.raises(InvalidValueError, match="None"):
            run.log_param("depth", None)
    assert loopml.get_run(run.id).params == {"lr": "0.1"}


def test_an_ended_run_takes_no_more_metrics(loopml_env):
    with loopml.start_run() as run:
        pass
    with pytest.raises(RunNotActiveError):
        run.log_metric("late", 1.0)
    with pytest.raises(NoActiveRunError, match="start_run"):
        loopml.log_metric("late", 1.0)


def test_artifacts_files_folders_text_dicts_and_figures(loopml_env, tmp_path):
    folder = tmp_path / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "summary.txt").write_text("ok")
    (folder / "plots" / "a.csv").write_text("x\n1\n")
    single = tmp_path / "config.yaml"
    single.write_text("lr: 0.1\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    with loopml.start_run() as run:
        run.log_artifact(single)
        run.log_artifact(folder)
        run.log_artifact(single, name="configs/prod.yaml")
        run.log_text("hello", "notes/hello.txt")
        run.log_dict({"a": [1, 2], "b": np.float64(0.5)}, "meta.json")
        run.log_figure(figure, "plots/curve.png")
    plt.close(figure)
    client = loopml.get_tracking_client()
    paths = {e.path for e in client.list_artifacts(run.id) if not e.path.startswith("loopml/")}
    assert paths == {
        "config.yaml",
        "configs/prod.yaml",
        "report/summary.txt",
        "report/plots/a.csv",
        "notes/hello.txt",
        "meta.json",
        "plots/curve.png",
    }
    assert json.loads(client.read_artifact(run.id, "meta.json")) == {"a": [1, 2], "b": 0.5}
    assert client.read_artifact(run.id, "plots/curve.png")[:8] == b"\x89PNG\r\n\x1a\n"
    out = loopml.download_artifacts(run.id, "report", tmp_path / "dl")
    assert (out / "plots" / "a.csv").read_text() == "x\n1\n"
    assert (out / "summary.txt").read_text() == "ok"


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", "a/../../b", "C:\\x", "a\\b", "", "a\x00b"])
def test_artifact_paths_outside_the_run_are_refused(loopml_env, tmp_path, bad):
    with loopml.start_run() as run, pytest.raises(ArtifactPathError):
        run.log_text("x", bad)
    assert [e.path for e in loopml.get_tracking_client().list_artifacts(run.id) if not e.path.startswith("loopml/")] == []


def test_the_same_dataset_is_stored_once(loopml_env):
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan], "city": ["a", "b", "a"]})
    with loopml.start_run() as first:
        logged = first.log_dataset(frame, "cities", context="train")
    with loopml.start_run() as second:
        again = second.log_dataset(frame.copy(), "cities", context="train")
        second.log_dataset(frame.iloc[::-1], "cities-reversed", context="test")
    assert logged.digest == again.digest
    assert logged.n_rows == 3
    assert dict(logged.schema) == {"x": "float64", "city": logged.schema["city"]}
    x_profile = next(c for c in logged.profile if c.name == "x")
    assert (x_profile.n_missing, x_profile.min, x_profile.max, x_profile.mean) == (1, 1.0, 2.0, 1.5)
    inputs = {i.context: i for i in loopml.get_run(second.id).inputs}
    assert inputs["train"].digest == logged.digest
    assert inputs["test"].digest != logged.digest  # row order counts by default
    pd.testing.assert_frame_equal(loopml.load_dataset(logged.ref), frame)
    assert loopml.get_dataset(logged.ref).digest == logged.digest


def test_search_runs_returns_a_frame_and_pages(loopml_env):
    loopml.set_experiment("search")
    for i in range(5):
        with loopml.start_run(name=f"r{i}", params={"model": "rf" if i % 2 else "lr"}, capture=False) as run:
            run.log_metric("acc", i / 10)
    frame = loopml.search_runs(filter="params.model = 'lr' and metrics.acc > 0.1", order_by=["metrics.acc DESC"])
    assert list(frame["name"]) == ["r4", "r2"]
    assert list(frame["metrics.acc"]) == [0.4, 0.2]
    first = loopml.search_runs(max_results=2, as_frame=False)
    second = loopml.search_runs(max_results=2, page_token=first.next_page_token, as_frame=False)
    assert len({r.run_id for r in [*first, *second]}) == 4
    with pytest.raises(InvalidFilterError) as caught:
        loopml.search_runs(filter="metrics.acc >> 1")
    assert caught.value.position == 12


def test_unknown_experiment_in_search_is_an_error(loopml_env):
    with pytest.raises(loopml.LoopMLError, match="No experiment named"):
        loopml.search_runs(experiment="does-not-exist")


def test_a_child_run_goes_to_its_parents_experiment(loopml_env):
    with loopml.start_run(experiment="sweeps") as parent, loopml.start_run() as child:
        pass
    assert loopml.get_run(child.id).info.experiment_id == loopml.get_run(parent.id).info.experiment_id
    found = loopml.search_runs(experiment="sweeps", filter=f"parent_run_id = '{parent.id}'", as_frame=False)
    assert [r.run_id for r in found] == [child.id]


def test_buffered_points_reach_the_store_within_seconds_without_flush(loopml_env):
    import time

    with loopml.start_run() as run:
        run.log_metric("x", 1.0)
        other = loopml.TrackingClient()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if len(other.get_metric_history(run.id, "x")) == 1:
                    break
            except loopml.LoopMLError:
                pass
            time.sleep(0.1)
        assert len(other.get_metric_history(run.id, "x")) == 1  # the background flusher wrote it
        other.close()


def test_points_are_flushed_at_interpreter_exit(loopml_env, tmp_path):
    import os
    import subprocess
    import sys

    script = (
        "import loopml\n"
        "run = loopml.start_run(name='abandoned', capture=False)\n"
        "for i in range(500): run.log_metric('x', float(i))\n"
        "print(run.id)\n"  # exits without flush() or end()
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy(), check=True)
    run_id = out.stdout.strip()
    assert [p.value for p in loopml.get_metric_history(run_id, "x")] == [float(i) for i in range(500)]
