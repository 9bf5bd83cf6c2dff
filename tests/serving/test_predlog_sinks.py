"""Both prediction-log sinks behind one ServingStore interface: windows, filters, feedback joins, retention."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest

from loopml.entities.serving import Feedback
from loopml.errors import InvalidValueError, PredictionNotFoundError
from loopml.store.serving import parse_retention
from loopml.timestamps import now_ms
from tests.serving.predlog_helpers import DAY_MS, make_models, record


@pytest.fixture(params=["sql", "parquet"])
def sink(request, monkeypatch):
    """Which sink the store under test writes (LOOPML_PREDICTION_LOG, read when the store opens)."""
    monkeypatch.setenv("LOOPML_PREDICTION_LOG", request.param)
    return request.param


@pytest.fixture
def store(sink, store):  # the sink's variable is set before conftest's store opens
    return store


def test_every_reader_gets_the_same_windows_from_either_sink(store, sink, backend, tmp_path):
    make_models(store, "churn", "fraud")
    start = now_ms() - 3 * DAY_MS
    records = [record(f"r{i}", start + i * (DAY_MS // 4), version=1 + i % 2) for i in range(12)]
    records += [record("r0", start, role="shadow", version=3), record("f1", start + 5, model="fraud")]
    store.serving.log_predictions(records)

    everything = store.serving.read_predictions("churn")
    assert [r.request_id for r in everything] == ["r0", "r0", *[f"r{i}" for i in range(1, 12)]]
    assert {r.role for r in everything if r.request_id == "r0"} == {"main", "shadow"}
    window = store.serving.read_predictions("churn", since=start + DAY_MS, until=start + 2 * DAY_MS)
    assert [r.request_id for r in window] == ["r4", "r5", "r6", "r7"]
    assert window[0] == records[4]  # every field round-trips
    assert [r.request_id for r in store.serving.read_predictions("churn", version=2, role="main")] == [
        f"r{i}" for i in range(1, 12, 2)
    ]
    assert len(store.serving.read_predictions("churn", max_results=3)) == 3
    assert [r.request_id for r in store.serving.read_predictions("fraud")] == ["f1"]
    assert store.serving.read_predictions("nobody") == []

    # feedback lives in SQL for both sinks, joined by request id (and by model)
    store.serving.log_feedback([Feedback("r4", 1, start + DAY_MS), Feedback("f1", 0, start + 10)])
    assert [f.request_id for f in store.serving.read_feedback(name="churn")] == ["r4"]
    assert [f.request_id for f in store.serving.read_feedback(name="fraud")] == ["f1"]
    with pytest.raises(PredictionNotFoundError) as caught:
        store.serving.log_feedback([Feedback("r4", 1, 1), Feedback("ghost", 1, 1)])
    assert caught.value.request_ids == ["ghost"]
    assert len(store.serving.read_feedback()) == 2  # nothing of the refused batch was stored

    folder = tmp_path / "artifacts" / "prediction-log"
    if sink == "parquet":
        days = sorted(p.name for p in (folder / "model=churn").iterdir())
        # one folder per UTC day the records fall on: three or four, by the time of day the test runs
        utc_days = {dt.datetime.fromtimestamp(r.time / 1000, dt.UTC).date() for r in records if r.model == "churn"}
        assert days == [f"day={day.isoformat()}" for day in sorted(utc_days)]
        assert pq.read_table(next((folder / "model=fraud").glob("day=*/*.parquet"))).num_rows == 1
    else:
        assert not folder.exists()


def test_retention_removes_old_predictions_and_their_feedback_and_is_audited(store, sink):
    make_models(store, "churn")
    now = now_ms()
    old, recent = now - 40 * DAY_MS, now - 1000
    store.serving.log_predictions([record("old", old), record("new", recent)])
    store.serving.log_feedback([Feedback("old", 1, old + 1), Feedback("new", 0, recent + 1)])

    counts = store.serving.prune_predictions(parse_retention("30d"), actor="ops")

    assert counts["feedback"] == 1 and counts["predictions" if sink == "sql" else "files"] == 1
    assert [r.request_id for r in store.serving.read_predictions("churn")] == ["new"]
    assert [f.request_id for f in store.serving.read_feedback()] == ["new"]
    (event,) = store.audit.list_events(action="predictions.prune")
    assert event.actor == "ops" and event.after["feedback"] == 1


@pytest.mark.parametrize("bad", ["30", "0d", "d", "30 days", "-1d", 30, None])
def test_a_retention_must_be_a_number_and_a_unit(bad):
    with pytest.raises(InvalidValueError, match="log retention"):
        parse_retention(bad)


def test_an_unknown_sink_is_refused_by_name(monkeypatch, tmp_path):
    from loopml.store import open_store

    monkeypatch.setenv("LOOPML_PREDICTION_LOG", "kafka")
    with pytest.raises(InvalidValueError, match="LOOPML_PREDICTION_LOG must be one of sql, parquet"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}", artifacts_url=str(tmp_path / "a"))


def test_a_small_read_of_a_large_window_returns_the_first_rows_by_time_across_overlapping_files(tmp_path):
    from loopml.store.predictions.parquet import ParquetPredictionLog, records_table

    log = ParquetPredictionLog(str(tmp_path / "prediction-log"))
    start = now_ms() - DAY_MS
    for offset in (1, 0, 500):  # two replicas' files interleaved in time, then a later one
        log.write(records_table([record(f"t{offset}-{i}", start + offset + 2 * i) for i in range(100)]))
    for group in (1, 16):  # files read one at a time (stopping early) or all in one scan
        import loopml.store.predictions.parquet as module

        module._READ_GROUP, saved = group, module._READ_GROUP
        try:
            first = log.read("churn", max_results=10)
        finally:
            module._READ_GROUP = saved
        assert [r.time - start for r in first] == list(range(10))
    assert len(log.read("churn", since=start + 500)) == 100


@pytest.mark.parametrize("failing", ["_stage", "_publish"])
def test_a_batch_whose_second_file_fails_publishes_nothing_and_its_retry_stores_each_row_once(
    tmp_path, monkeypatch, failing
):
    from loopml.store.predictions.parquet import ParquetPredictionLog, records_table

    sink = ParquetPredictionLog(str(tmp_path / "log"))
    now = now_ms()
    batch = records_table([record("a1", now, model="a"), record("b1", now, model="b")])  # two files: one per model
    real = getattr(sink, failing)
    calls = []

    def second_fails(*args):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("the object store went away")
        return real(*args)

    monkeypatch.setattr(sink, failing, second_fails)
    with pytest.raises(OSError, match="went away"):
        sink.write(batch)
    assert sink.read("a") == [] and sink.read("b") == []  # what was written first was taken back
    assert not [p for p in (tmp_path / "log").rglob("*") if p.is_file()]  # and no hidden file was left
    monkeypatch.setattr(sink, failing, real)
    sink.write(batch)  # the writer's retry of the whole batch
    assert [r.request_id for r in sink.read("a")] == ["a1"] and [r.request_id for r in sink.read("b")] == ["b1"]


def test_a_read_keeps_only_its_models_rows_even_from_a_shared_folder(tmp_path):
    # a case-insensitive filesystem folds model=Iris into model=iris: the rows' own model column decides
    from loopml.store.predictions.parquet import ParquetPredictionLog, records_table

    sink = ParquetPredictionLog(str(tmp_path / "log"))
    now = now_ms()
    sink.write(records_table([record("mine", now, model="iris")]))
    folder = next((tmp_path / "log" / "model=iris").iterdir())
    pq.write_table(records_table([record("theirs", now, model="Iris")]), folder / f"part-{now:013d}-folded.parquet")
    assert [r.request_id for r in sink.read("iris")] == ["mine"]


def test_a_row_the_database_forbids_is_the_records_fault_and_its_error_quotes_no_value(db_url, backend, tmp_path):
    """The SQL sink says a refused row is the records' fault, so the log looks through the batch, not retries it."""
    import sqlalchemy

    from loopml.serving.predlog import refused_by_store
    from loopml.store import open_store

    store = open_store(db_url, artifacts_url=str(tmp_path / "artifacts"))
    make_models(store, "churn")
    engine = sqlalchemy.create_engine(db_url)
    with engine.begin() as conn:  # the database forbids one row, as a constraint or an audit trigger would
        if backend == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN IF NEW.request_id = 'poison' THEN "
                "RAISE EXCEPTION 'row forbidden' USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON predictions FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON predictions WHEN NEW.request_id = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'row forbidden'); END"
            )
    engine.dispose()
    now = now_ms()
    try:
        with pytest.raises(InvalidValueError, match="row forbidden") as caught:
            store.serving.log_predictions([record("a", now), record("poison", now, '{"ssn": "123-45-6789"}')])
        assert refused_by_store(caught.value) and "123-45-6789" not in str(caught.value)
        store.serving.log_predictions([record("b", now + 1)])  # the store itself is fine
        assert [r.request_id for r in store.serving.read_predictions("churn")] == ["b"]  # none of the refused batch
    finally:
        store.close()
