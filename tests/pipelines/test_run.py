"""Running pipelines locally: what is recorded, failures, retries, timeouts and the materialisers."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.errors import NoMaterializerError, PipelineDefinitionError, StepFailedError, StepTimeoutError
from loopml.pipelines import Materializer, OutputSink, OutputSource, pipeline, register_materializer, step
from loopml.pipelines import cache as step_cache
from loopml.pipelines.materializers import unregister_materializer

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@step
def make_frame(n: int) -> pd.DataFrame:
    calls["make_frame"] += 1
    return pd.DataFrame({"x": np.arange(n, dtype="int64"), "y": np.arange(n) * 0.5}, index=[f"r{i}" for i in range(n)])


@step(outputs=("train", "test"))
def split(frame: pd.DataFrame, test_share: float = 0.25) -> tuple:
    calls["split"] += 1
    cut = int(len(frame) * (1 - test_share))
    return frame.iloc[:cut], frame.iloc[cut:]


@step
def describe(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    calls["describe"] += 1
    loopml.log_metric("rows", len(train))  # the step's run is the active run
    return {"train": len(train), "test": len(test), "mean": float(train["y"].mean())}


@pipeline
def frames(n: int = 8):
    train, test = split(make_frame(n), test_share=0.25)
    return {"summary": describe(train, test), "test": test}


def test_a_pipeline_run_is_a_tracked_run_with_a_child_run_per_step(local_client):
    result = frames.run(n=8)
    assert result.output["summary"] == {"train": 6, "test": 2, "mean": 1.25}
    pd.testing.assert_frame_equal(result.output["test"], make_frame(8).iloc[6:])
    parent = local_client.get_run(result.run_id)
    assert parent.info.status.value == "FINISHED"
    assert parent.tags["loopml.pipeline"] == "frames"
    assert parent.tags["loopml.pipeline.source"] == "tests.pipelines.test_run:frames"
    assert parent.params == {"n": "8"}
    assert local_client.get_experiment(parent.info.experiment_id).name == "frames"
    children = local_client.search_runs(
        None, filter=f"attributes.parent_run_id = '{result.run_id}'", as_frame=False, order_by="attributes.start_time"
    )
    assert [c.tags["loopml.step.node"] for c in children] == ["make_frame", "split", "describe"]
    describe_run = next(c for c in children if c.info.name == "describe")
    assert describe_run.metrics == {"rows": 6.0}
    assert describe_run.tags[step_cache.ATTEMPTS_TAG] == "1"
    # lineage: the input digests are the outputs of split, and the DataFrame inputs are datasets
    lineage = json.loads(local_client.read_artifact(describe_run.info.run_id, step_cache.LINEAGE_ARTIFACT))
    assert lineage["inputs"]["train"] == {"$digest": result.steps["split"].outputs["train"].digest}
    assert lineage["outputs"]["output"]["digest"] == result.steps["describe"].outputs["output"].digest
    assert {(d.name, d.context) for d in describe_run.inputs} == {
        ("frames.split.train", "train"),
        ("frames.split.test", "test"),
    }
    split_run = local_client.get_run(result.steps["split"].run_id)
    assert split_run.params == {"test_share": "0.25"}
    assert json.loads(split_run.tags[step_cache.OUTPUTS_TAG])["train"][0] == "pandas"
    steps = json.loads(local_client.read_artifact(result.run_id, step_cache.STEPS_ARTIFACT))
    assert [s["node"] for s in steps["steps"]] == ["make_frame", "split", "describe"]
    assert json.loads(local_client.read_artifact(result.run_id, step_cache.PIPELINE_ARTIFACT))["nodes"][1][
        "upstream"
    ] == ["make_frame"]


def test_outputs_load_back_identical_after_a_cache_hit(local_client):
    first = frames.run(n=10)
    again = frames.run(n=10)
    assert again.n_cached == 3 and sum(calls.values()) == 3
    pd.testing.assert_frame_equal(again.output["test"], first.output["test"])  # index and dtypes kept
    assert again.load("split", "train").index.tolist() == [f"r{i}" for i in range(7)]


def test_a_failed_step_fails_the_run_with_its_traceback_and_the_rest_stays_cached(local_client):
    state = {"broken": True}

    @step
    def fragile(summary: dict) -> int:
        calls["fragile"] += 1
        if state["broken"]:
            raise RuntimeError("disk full")
        return summary["train"]

    @pipeline(name="frames")
    def flaky(n: int = 8):
        train, test = split(make_frame(n))
        return fragile(describe(train, test))

    with pytest.raises(StepFailedError) as caught:
        flaky.run(n=8)
    error = caught.value
    assert error.step == "fragile" and error.error_type == "RuntimeError" and error.attempts == 1
    assert "disk full" in error.traceback and 'raise RuntimeError("disk full")' in error.traceback
    assert isinstance(error.__cause__, RuntimeError)
    failed_run = local_client.get_run(error.run_id)
    assert failed_run.info.status.value == "FAILED" and "disk full" in failed_run.tags["loopml.traceback"]
    pipeline_run = local_client.search_runs("frames", filter="tags.loopml.pipeline = 'frames'", as_frame=False)[0]
    assert pipeline_run.info.status.value == "FAILED"
    assert pipeline_run.tags["loopml.error"].startswith("Step 'fragile' failed: RuntimeError: disk full")

    state["broken"] = False
    result = flaky.run(n=8)
    assert result.output == 6
    assert calls == {"make_frame": 1, "split": 1, "describe": 1, "fragile": 2}  # only the failed step ran again
    assert [r.cached for r in result.steps.values()] == [True, True, True, False]


def test_retries_with_backoff_until_the_step_succeeds(local_client):
    attempts: list[float] = []

    @step(retries=3, retry_delay=0.05, retry_backoff=2.0)
    def flaky(n: int) -> int:
        attempts.append(time.perf_counter())
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return n

    @pipeline
    def retried(n: int = 1):
        return flaky(n)

    result = retried.run()
    assert result.output == 1 and len(attempts) == 3 and result.steps["flaky"].attempts == 3
    assert attempts[1] - attempts[0] >= 0.05 and attempts[2] - attempts[1] >= 0.1  # the delay doubles
    assert local_client.get_run(result.steps["flaky"].run_id).tags[step_cache.ATTEMPTS_TAG] == "3"


def test_retries_stop_after_the_limit_and_skip_what_retry_on_excludes(local_client):
    @step(retries=2, retry_delay=0)
    def always(n: int) -> int:
        calls["always"] += 1
        raise ConnectionError("down")

    @step(retries=5, retry_delay=0, retry_on=ConnectionError)
    def wrong_kind(n: int) -> int:
        calls["wrong_kind"] += 1
        raise KeyError("bug")

    with pytest.raises(StepFailedError, match="after 3 attempts: ConnectionError: down") as caught:
        pipeline(lambda: always(1)).run()
    assert calls["always"] == 3 and caught.value.attempts == 3
    with pytest.raises(StepFailedError, match="after 1 attempt: KeyError"):
        pipeline(lambda: wrong_kind(1)).run()
    assert calls["wrong_kind"] == 1


def test_a_timeout_fails_the_attempt_and_is_retried(local_client):
    release = threading.Event()
    finished: list[float] = []

    @step(timeout=0.2, retries=1, retry_delay=0)
    def slow(seconds: float) -> float:
        calls["slow"] += 1
        if seconds > 0.1:
            release.wait(60)  # held until the test lets go: only the timeout can end the attempt early
        finished.append(seconds)
        return seconds

    try:
        with pytest.raises(StepFailedError, match=r"StepTimeoutError: Step 'slow' did not finish within 0\.2 s") as caught:
            pipeline(lambda: slow(2.0)).run()
        # Both attempts were abandoned while still blocked, rather than awaited.
        assert calls["slow"] == 2 and finished == [] and isinstance(caught.value.__cause__, StepTimeoutError)
        assert pipeline(lambda: slow(0.01)).run().output == 0.01
    finally:
        release.set()


def test_a_failed_validation_is_not_retried(local_client):
    from loopml.validation import checks

    @step(retries=3, retry_delay=0)
    def validated(frame: pd.DataFrame) -> pd.DataFrame:
        calls["validated"] += 1
        loopml.validate_data(frame, [checks.in_range("x", max=2), checks.row_count(min=100)], name="input")
        return frame

    @pipeline
    def guarded(n: int = 5):
        return validated(make_frame(n))

    with pytest.raises(StepFailedError, match="ValidationFailedError") as caught:
        guarded.run()
    assert calls["validated"] == 1
    assert "in_range [x]: 2 values outside" in caught.value.traceback and "row_count" in caught.value.traceback
    report = json.loads(local_client.read_artifact(caught.value.run_id, "validation/input.json"))
    assert report["n_violations"] == 2
    assert local_client.get_run(caught.value.run_id).tags["loopml.validation.input"] == "failed"


def test_several_outputs_must_match_the_declaration(local_client):
    @step(outputs=2)
    def pair() -> list:
        return [1]

    with pytest.raises(StepFailedError, match=r"declares 2 outputs .* returned a list of 1"):
        pipeline(lambda: pair()).run()


def test_builtin_materialisers_round_trip(local_client):
    values = {
        "json": {"a": [1, 2.5, None, "x"], "b": True},
        "bytes": b"\x00\x01raw",
        "series": pd.Series([1.5, 2.5], index=["a", "b"], name="price"),
        "array": np.arange(6, dtype="float32").reshape(2, 3),
        "numbered": pd.DataFrame(np.eye(2)),  # integer column names, as pd.DataFrame(array) gives
    }

    @step(outputs=tuple(values))
    def produce() -> tuple:
        return tuple(values.values())

    @step
    def consume(j: dict, b: bytes, s: pd.Series, a: np.ndarray, f: pd.DataFrame) -> list:
        return [j["b"], len(b), s.name, a.dtype.name, list(f.columns)]

    @pipeline
    def everything():
        j, b, s, a, f = produce()
        return {"seen": consume(j, b, s, a, f), "raw": [j, b, s, a, f]}

    everything.run()
    result = everything.run()  # all cached: every value is loaded back from the store
    assert result.n_cached == 2
    assert result.output["seen"] == [True, 5, "price", "float32", [0, 1]]
    j, b, s, a, f = result.output["raw"]
    pd.testing.assert_frame_equal(f, values["numbered"])
    assert j == values["json"] and b == values["bytes"]
    pd.testing.assert_series_equal(s, values["series"])
    np.testing.assert_array_equal(a, values["array"])
    assert a.dtype == np.float32
    kinds = {name: out.materializer for name, out in result.steps["produce"].outputs.items()}
    assert kinds == {"json": "json", "bytes": "bytes", "series": "pandas", "array": "numpy", "numbered": "pandas"}


def test_a_model_output_is_a_packaged_model_that_can_be_registered(local_client):
    from sklearn.linear_model import LogisticRegression

    @step
    def fit(frame: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression().fit(frame[["x"]], (frame["x"] > 3).astype(int))

    @step
    def score(model: LogisticRegression, frame: pd.DataFrame) -> float:
        return float(model.score(frame[["x"]], (frame["x"] > 3).astype(int)))

    @pipeline
    def training(n: int = 10):
        frame = make_frame(n)
        model = fit(frame)
        return {"model": model, "score": score(model, frame)}

    training.run()
    result = training.run()  # cached: the model comes back through skops, not pickle
    assert result.output["score"] == 1.0
    assert isinstance(result.output["model"], LogisticRegression)
    stored = result.steps["fit"].outputs["output"]
    assert stored.materializer == "model" and any(f[0] == "loopml-model.json" for f in stored.files)
    version = loopml.register_model(stored.uri, "pipeline-model")
    assert loopml.load_model(f"models:/pipeline-model/{version.version}").predict(pd.DataFrame({"x": [9]}))[0] == 1


def test_values_without_a_materialiser_are_refused_with_a_clear_error(local_client):
    @step
    def odd() -> object:
        return object()

    with pytest.raises(
        StepFailedError, match=r"NoMaterializerError: The output 'output' of step 'odd' is a builtins.object"
    ):
        pipeline(lambda: odd()).run()

    @step
    def tup() -> tuple:
        return (1, 2)

    with pytest.raises(StepFailedError, match="A tuple is not stored as JSON"):
        pipeline(lambda: tup()).run()


class Point:
    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y


class PointMaterializer(Materializer):
    name = "test.point"

    def handles(self, value: object) -> bool:
        return isinstance(value, Point)

    def save(self, value: Point, sink: OutputSink) -> None:
        sink.write("point.json", json.dumps([value.x, value.y]).encode())

    def load(self, source: OutputSource) -> Point:
        return Point(*json.loads(source.read("point.json")))


def test_registered_materialisers_store_custom_types(local_client):
    @step
    def origin() -> Point:
        return Point(1.0, 2.0)

    @step
    def norm(p: Point) -> float:
        return (p.x**2 + p.y**2) ** 0.5

    @pipeline
    def geometry():
        point = origin()
        return [norm(point), point]

    register_materializer(PointMaterializer())
    try:
        geometry.run()
        result = geometry.run()
        assert result.output[0] == pytest.approx(5**0.5)
        assert isinstance(result.output[1], Point) and result.output[1].y == 2.0
    finally:
        unregister_materializer("test.point")
    with pytest.raises(NoMaterializerError):  # unregistered: a Point constant can no longer be stored
        pipeline(lambda: norm(Point(0, 0))).trace()


def test_constants_are_stored_with_the_pipeline_run_and_hashed_by_content(local_client):
    @step
    def rows(frame: pd.DataFrame) -> int:
        calls["rows"] += 1
        return len(frame)

    @pipeline
    def counted(data: pd.DataFrame | None = None):
        return rows(data)

    frame = pd.DataFrame({"a": [1, 2, 3]})
    first = counted.run(data=frame)
    assert first.output == 3
    assert counted.run(data=frame.copy()).n_cached == 1  # same content, same key
    assert counted.run(data=frame.iloc[:2]).output == 2
    assert calls["rows"] == 2
    files = [e.path for e in local_client.list_artifacts(first.run_id, "constants")]
    assert files == ["constants/const0/data.parquet"]


def test_a_pipeline_started_inside_a_run_becomes_its_child(local_client):
    with loopml.start_run("sweep", capture=False) as outer:
        result = frames.run(n=4)
    assert local_client.get_run(result.run_id).info.parent_run_id == outer.run_id


def test_definition_errors_create_no_run(local_client):
    @pipeline
    def broken():
        return make_frame(1, 2, 3)

    with pytest.raises(PipelineDefinitionError):
        broken.run()
    assert not len(local_client.search_runs(None, as_frame=False))


def test_unknown_runner_is_refused_before_any_run(local_client):
    from loopml.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match=r"Unknown runner 'rya'.*Did you mean 'ray'"):
        frames.run(runner="rya")
    assert not len(local_client.search_runs(None, as_frame=False))


@step
def add_column(frame: pd.DataFrame) -> int:
    frame["extra"] = 1.0  # changes its input in place
    return len(frame.columns)


@step
def count_columns(frame: pd.DataFrame) -> int:
    return len(frame.columns)


@step
def extend(names: list) -> list:
    names.append("target")  # changes its param in place
    return names


@step
def count_names(names: list) -> int:
    return len(names)


@pipeline
def mutating(n: int = 3):
    frame = make_frame(n)
    names = ["x", "y"]
    return {
        "widths": [add_column(frame), count_columns(frame)],
        "frame": frame,
        "names": [extend(names), count_names(names)],
    }


def test_a_step_changing_its_input_in_place_changes_nothing_another_step_or_the_output_sees(local_client):
    first = mutating.run()
    assert first.output["widths"] == [3, 2]
    assert list(first.output["frame"].columns) == ["x", "y"]
    assert first.output["names"] == [["x", "y", "target"], 2]
    again = mutating.run()  # every step cached: the values come from the store
    assert again.n_cached == len(again.steps)
    assert again.output["widths"] == first.output["widths"] and again.output["names"] == first.output["names"]


def test_integer_column_names_keep_the_name_of_the_column_index(local_client):
    frame = pd.DataFrame(np.eye(2)).rename_axis(index="row", columns="feature")

    @step
    def produce() -> pd.DataFrame:
        return frame

    @pipeline
    def named():
        return produce()

    named.run()
    cached = named.run()
    assert cached.n_cached == 1
    pd.testing.assert_frame_equal(cached.output, frame)
