"""The TrackingStore contract, run against every backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import math

import pytest

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.datasets import ColumnProfile, Dataset
from loopml.entities.search import OrderBy
from loopml.entities.tracking import Metric, RunStatus
from loopml.errors import (
    ArtifactNotFoundError,
    DatasetNotFoundError,
    ExperimentAlreadyExistsError,
    ExperimentNotFoundError,
    InvalidValueError,
    MetricNotFoundError,
    ParamConflictError,
    RunNotActiveError,
    RunNotFoundError,
)
from loopml.tracking.search import parse_filter, parse_order_by


@pytest.fixture
def tracking(store):
    return store.tracking


@pytest.fixture
def experiment(tracking):
    return tracking.create_experiment("exp")


def new_run(tracking, experiment, name="r", start_time=1000, **kwargs):
    return tracking.create_run(experiment.experiment_id, name=name, user="tester", start_time=start_time, **kwargs)


# -- experiments ----------------------------------------------------------------------


def test_experiments_are_created_listed_and_found(tracking):
    first = tracking.create_experiment("alpha")
    second = tracking.create_experiment("beta")
    assert [e.name for e in tracking.list_experiments()] == ["alpha", "beta"]
    assert tracking.get_experiment(first.experiment_id) == first
    assert tracking.get_experiment_by_name("beta") == second


def test_duplicate_experiment_is_refused_and_nothing_changes(tracking):
    tracking.create_experiment("alpha")
    with pytest.raises(ExperimentAlreadyExistsError, match="alpha"):
        tracking.create_experiment("alpha")
    assert len(tracking.list_experiments()) == 1


def test_unknown_experiment_suggests_close_names(tracking):
    tracking.create_experiment("churn-model")
    with pytest.raises(ExperimentNotFoundError, match="Did you mean 'churn-model'"):
        tracking.get_experiment_by_name("churn-modle")
    with pytest.raises(ExperimentNotFoundError):
        tracking.get_experiment(999)


# -- runs --------------------------------------------------------------------------------


def test_run_is_created_with_params_and_tags_and_ended(tracking, experiment):
    run = new_run(tracking, experiment, params={"lr": "0.1"}, tags={"team": "risk"})
    assert run.info.status is RunStatus.RUNNING
    stored = tracking.get_run(run.run_id)
    assert stored.params == {"lr": "0.1"}
    assert stored.tags == {"team": "risk"}
    assert stored.info.user == "tester"
    ended = tracking.end_run(run.run_id, RunStatus.FINISHED, 5000)
    assert ended.info.status is RunStatus.FINISHED
    assert ended.info.end_time == 5000
    assert ended.info.duration_ms == 4000


def test_ending_twice_is_refused(tracking, experiment):
    run = new_run(tracking, experiment)
    tracking.end_run(run.run_id, RunStatus.FAILED, 2000)
    with pytest.raises(RunNotActiveError, match="FAILED"):
        tracking.end_run(run.run_id, RunStatus.FINISHED, 3000)
    assert tracking.get_run(run.run_id).info.status is RunStatus.FAILED


def test_unknown_run_and_parent_are_refused(tracking, experiment):
    with pytest.raises(RunNotFoundError):
        tracking.get_run("0" * 32)
    with pytest.raises(RunNotFoundError):
        new_run(tracking, experiment, parent_run_id="f" * 32)
    with pytest.raises(ExperimentNotFoundError):
        tracking.create_run(12345, name="x", user="u", start_time=1)
    assert tracking.search_runs(None, None, (), 10, None).runs == ()


def test_nested_run_records_its_parent(tracking, experiment):
    parent = new_run(tracking, experiment, name="sweep")
    child = new_run(tracking, experiment, name="trial", parent_run_id=parent.run_id)
    assert tracking.get_run(child.run_id).info.parent_run_id == parent.run_id


# -- metrics ------------------------------------------------------------------------------


def test_nan_and_infinities_round_trip_exactly(tracking, experiment):
    run = new_run(tracking, experiment)
    points = [Metric("m", v, i, 10 + i) for i, v in enumerate([math.nan, math.inf, -math.inf, -0.0, 1e-300, 1.5])]
    tracking.log_batch(run.run_id, metrics=points)
    history = tracking.get_metric_history(run.run_id, "m")
    assert math.isnan(history[0].value)
    assert [p.value for p in history[1:]] == [math.inf, -math.inf, -0.0, 1e-300, 1.5]
    assert [p.step for p in history] == [0, 1, 2, 3, 4, 5]
    assert tracking.get_run(run.run_id).metrics["m"] == 1.5


def test_latest_metric_is_highest_step_then_latest_time(tracking, experiment):
    run = new_run(tracking, experiment)
    tracking.log_batch(run.run_id, metrics=[Metric("acc", 0.9, 5, 100), Metric("acc", 0.1, 2, 200)])
    assert tracking.get_run(run.run_id).metrics["acc"] == 0.9
    tracking.log_batch(run.run_id, metrics=[Metric("acc", 0.3, 1, 999)])  # an older step, logged later
    assert tracking.get_run(run.run_id).metrics["acc"] == 0.9
    tracking.log_batch(run.run_id, metrics=[Metric("acc", 0.95, 5, 300)])
    assert tracking.get_run(run.run_id).metrics["acc"] == 0.95
    tracking.log_batch(run.run_id, metrics=[Metric("acc", math.nan, 6, 300)])
    assert math.isnan(tracking.get_run(run.run_id).metrics["acc"])
    assert len(tracking.get_metric_history(run.run_id, "acc")) == 5


def test_metric_history_errors_name_the_metric(tracking, experiment):
    run = new_run(tracking, experiment)
    tracking.log_batch(run.run_id, metrics=[Metric("accuracy", 1.0, 0, 1)])
    with pytest.raises(MetricNotFoundError, match="Did you mean 'accuracy'"):
        tracking.get_metric_history(run.run_id, "acuracy")
    with pytest.raises(RunNotFoundError):
        tracking.get_metric_history("a" * 32, "accuracy")


def test_batch_with_conflicting_param_writes_nothing(tracking, experiment):
    run = new_run(tracking, experiment, params={"lr": "0.1"})
    with pytest.raises(ParamConflictError, match="lr"):
        tracking.log_batch(
            run.run_id,
            metrics=[Metric("loss", 1.0, 0, 1)],
            params={"lr": "0.2", "depth": "3"},
            tags={"t": "x"},
        )
    stored = tracking.get_run(run.run_id)
    assert stored.params == {"lr": "0.1"}
    assert stored.metrics == {}
    assert stored.tags == {}
    tracking.log_batch(run.run_id, params={"lr": "0.1"})  # the same value again is fine


def test_tags_are_overwritten_and_may_be_set_after_the_end(tracking, experiment):
    run = new_run(tracking, experiment, tags={"stage": "dev"})
    tracking.end_run(run.run_id, RunStatus.FINISHED, 2000)
    tracking.log_batch(run.run_id, tags={"stage": "reviewed"})
    assert tracking.get_run(run.run_id).tags == {"stage": "reviewed"}
    with pytest.raises(RunNotActiveError):
        tracking.log_batch(run.run_id, metrics=[Metric("late", 1.0, 0, 1)])
    with pytest.raises(RunNotActiveError):
        tracking.log_batch(run.run_id, params={"late": "1"})


def test_idempotency_key_applies_a_batch_once(tracking, experiment):
    run = new_run(tracking, experiment)
    batch = [Metric("loss", float(i), i, i) for i in range(10)]
    tracking.log_batch(run.run_id, metrics=batch, idempotency_key="k1")
    tracking.log_batch(run.run_id, metrics=batch, idempotency_key="k1")  # a retry
    tracking.log_batch(run.run_id, metrics=batch, idempotency_key="k2")
    assert len(tracking.get_metric_history(run.run_id, "loss")) == 20


# -- search -----------------------------------------------------------------------------


@pytest.fixture
def population(tracking, experiment):
    """Six runs with varied params, metrics and tags; returns {name: run_id}."""
    rows = [
        ("a", "rf", 0.91, 0.30, "risk", RunStatus.FINISHED, 10),
        ("b", "rf", 0.72, 0.50, "risk", RunStatus.FAILED, 20),
        ("c", "gbm", 0.95, 0.20, "growth", RunStatus.FINISHED, 30),
        ("d", "lr", 0.60, math.nan, "growth", RunStatus.FINISHED, 40),
        ("e", "lr", math.nan, 0.90, None, RunStatus.RUNNING, 50),
        ("f", "gbm", None, None, None, RunStatus.FINISHED, 60),
    ]
    ids = {}
    for name, model, acc, loss, team, status, start in rows:
        tags = {"team": team} if team else {}
        run = new_run(tracking, experiment, name=name, start_time=start, params={"model": model, "depth": str(start // 10)}, tags=tags)
        points = [Metric(k, v, 0, start) for k, v in (("acc", acc), ("loss", loss)) if v is not None]
        if points:
            tracking.log_batch(run.run_id, metrics=points)
        if status is not RunStatus.RUNNING:
            tracking.end_run(run.run_id, status, start + 5)
        ids[name] = run.run_id
    return ids


def names(page):
    return [run.info.name for run in page.runs]


def search(tracking, text=None, order=None, max_results=100, token=None, experiments=None):
    return tracking.search_runs(experiments, parse_filter(text), parse_order_by(order), max_results, token)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc > 0.9", {"a", "c"}),
        ("metrics.acc >= 0.91", {"a", "c"}),
        ("metrics.acc < 0.9", {"b", "d"}),
        ("metrics.acc = 0.6", {"d"}),
        ("metrics.acc != 0.6", {"a", "b", "c", "e"}),
        ("metrics.acc = nan", {"e"}),
        ("metrics.loss = nan", {"d"}),
        ("metrics.acc is null", {"f"}),
        ("metrics.acc is not null", {"a", "b", "c", "d", "e"}),
        ("params.model = 'rf'", {"a", "b"}),
        ("params.model != 'rf'", {"c", "d", "e", "f"}),
        ("params.model in ('rf', 'lr')", {"a", "b", "d", "e"}),
        ("params.model not in ('rf', 'lr')", {"c", "f"}),
        ("params.model like 'g%'", {"c", "f"}),
        ("params.model like 'G%'", set()),
        ("params.model ilike 'G%'", {"c", "f"}),
        ("params.depth > 4", {"e", "f"}),
        ("params.depth = 3", {"c"}),
        ("params.depth in (1, 2)", {"a", "b"}),
        ("tags.team = 'growth'", {"c", "d"}),
        ("tags.team is null", {"e", "f"}),
        ("status = 'FINISHED'", {"a", "c", "d", "f"}),
        ("attributes.status != 'FINISHED'", {"b", "e"}),
        ("name in ('a', 'f')", {"a", "f"}),
        ("name like 'a%'", {"a"}),
        ("start_time >= 40", {"d", "e", "f"}),
        ("duration = 5", {"a", "b", "c", "d", "f"}),
        ("metrics.acc > 0.9 and params.model = 'rf'", {"a"}),
        ("metrics.acc > 0.9 or params.model = 'lr'", {"a", "c", "d", "e"}),
        ("(metrics.acc > 0.9 or metrics.loss > 0.8) and tags.team = 'growth'", {"c"}),
        ("params.model = 'rf' and (metrics.acc > 0.9 or status = 'FAILED')", {"a", "b"}),
        ("not params.model = 'rf'", {"c", "d", "e", "f"}),
    ],
)
def test_filters_select_exactly_the_matching_runs(tracking, population, text, expected):
    assert set(names(search(tracking, text))) == expected


def test_order_by_metric_puts_missing_values_last_in_both_directions(tracking, population):
    assert names(search(tracking, order=["metrics.acc DESC"])) [:4] == ["c", "a", "b", "d"]
    assert names(search(tracking, order=["metrics.acc ASC"]))[:4] == ["d", "b", "a", "c"]
    assert set(names(search(tracking, order=["metrics.acc DESC"]))[4:]) == {"e", "f"}


def test_default_order_is_newest_first_and_ties_are_stable(tracking, population):
    assert names(search(tracking)) == ["f", "e", "d", "c", "b", "a"]
    assert names(search(tracking, order=["params.model"])) == ["f", "c", "e", "d", "b", "a"]


def test_pages_cover_every_run_once(tracking, population):
    seen, token = [], None
    while True:
        page = search(tracking, order=["metrics.acc DESC"], max_results=4, token=token)
        seen += names(page)
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == ["a", "b", "c", "d", "e", "f"]
    assert len(seen) == 6


def test_search_is_scoped_to_experiments(tracking, population):
    other = tracking.create_experiment("other")
    new_run(tracking, other, name="z")
    assert names(search(tracking, experiments=[other.experiment_id])) == ["z"]
    assert len(search(tracking)) == 7


def test_bad_paging_arguments_are_refused(tracking, population):
    with pytest.raises(InvalidValueError, match="page_token"):
        search(tracking, token="not-a-token")
    with pytest.raises(InvalidValueError, match="max_results"):
        search(tracking, max_results=0)


def test_search_returns_params_metrics_and_tags(tracking, population):
    run = search(tracking, "name = 'a'").runs[0]
    assert run.params == {"model": "rf", "depth": "1"}
    assert run.metrics == {"acc": 0.91, "loss": 0.30}
    assert run.tags == {"team": "risk"}
    assert OrderBy("attribute", "name") in parse_order_by("name")


# -- datasets ----------------------------------------------------------------------------


def make_dataset(digest="ab" * 32, name="iris"):
    return Dataset(
        digest=digest,
        name=name,
        source="pandas",
        n_rows=3,
        schema={"x": "float64"},
        profile=(ColumnProfile(name="x", dtype="float64", n_missing=0, min=1.0, max=3.0, mean=2.0, std=1.0),),
        storage_digest=None,
        storage_format=None,
        created_at=1,
    )


def test_a_dataset_is_stored_once_and_linked_to_each_run(tracking, experiment):
    first, second = new_run(tracking, experiment), new_run(tracking, experiment)
    tracking.log_dataset_input(first.run_id, make_dataset(), "train")
    tracking.log_dataset_input(first.run_id, make_dataset(), "train")
    stored = tracking.log_dataset_input(second.run_id, make_dataset(name="iris-copy"), "test")
    assert stored.name == "iris"  # the first record of that digest is kept
    assert stored.profile[0].mean == 2.0
    assert [(i.name, i.context) for i in tracking.get_run(first.run_id).inputs] == [("iris", "train")]
    assert [(i.name, i.context) for i in tracking.get_run(second.run_id).inputs] == [("iris-copy", "test")]


def test_datasets_are_found_by_digest_prefix_and_name(tracking, experiment):
    run = new_run(tracking, experiment)
    tracking.log_dataset_input(run.run_id, make_dataset("ab" * 32), "train")
    tracking.log_dataset_input(run.run_id, make_dataset("ac" * 32, name="wine"), "train")
    assert tracking.get_dataset("abab").digest == "ab" * 32
    assert tracking.get_dataset("wine@acac").name == "wine"
    with pytest.raises(InvalidValueError, match="ambiguous"):
        tracking.get_dataset("a")
    with pytest.raises(DatasetNotFoundError):
        tracking.get_dataset("iris@acac")
    with pytest.raises(InvalidValueError, match="Malformed"):
        tracking.get_dataset("iris@%")


# -- artifact index ---------------------------------------------------------------------------


def test_artifact_entries_list_by_folder_and_replace_by_path(tracking, experiment):
    run = new_run(tracking, experiment)
    tracking.log_artifact_entries(
        run.run_id,
        [
            ArtifactEntry("model/model.skops", "1" * 64, 10),
            ArtifactEntry("model/meta.json", "2" * 64, 5),
            ArtifactEntry("model_card.md", "3" * 64, 7),
            ArtifactEntry("a_b/x", "4" * 64, 1),
        ],
    )
    assert [e.path for e in tracking.list_artifacts(run.run_id, "model")] == ["model/meta.json", "model/model.skops"]
    assert [e.path for e in tracking.list_artifacts(run.run_id, "a%b")] == []
    assert len(tracking.list_artifacts(run.run_id)) == 4
    tracking.log_artifact_entries(run.run_id, [ArtifactEntry("model_card.md", "5" * 64, 9)])
    assert tracking.get_artifact_entry(run.run_id, "model_card.md") == ArtifactEntry("model_card.md", "5" * 64, 9)
    with pytest.raises(ArtifactNotFoundError, match="nope"):
        tracking.get_artifact_entry(run.run_id, "nope")


def test_values_a_column_cannot_hold_are_invalid_input_not_store_faults(tracking, experiment):
    from loopml.errors import InvalidInputError

    for call in (lambda: tracking.get_experiment(2**40), lambda: tracking.create_experiment("a\x00b")):
        try:
            call()
        except InvalidInputError:
            pass  # PostgreSQL refuses the value
        except ExperimentNotFoundError:
            pass  # SQLite accepts it and finds nothing
    assert [e.name for e in tracking.list_experiments()] in (["exp"], ["exp", "a\x00b"])
