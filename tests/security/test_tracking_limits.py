"""Security review findings 5, 10 and 11: search key limits, server errors that leak nothing, key and value
grammar, and metric points lost to a vanished run.

Each check that takes ``store`` or ``client`` runs on SQLite, PostgreSQL and a live REST server.
"""

from __future__ import annotations

import json
import logging
import math

import pytest
import sqlalchemy

from loopml.entities.search import And, Comparison, OrderBy
from loopml.entities.tracking import Metric
from loopml.errors import InvalidFilterError, InvalidValueError, MetricsLostError, StoreError
from loopml.names import MAX_FILTER_KEYS, MAX_KEY_LENGTH, MAX_RUN_NAME_LENGTH
from loopml.tracking.buffer import flush_all
from loopml.tracking.runs import ActiveRun

# -- finding 5: a search naming many keys -------------------------------------------------------------


def _many_keys(n: int) -> And:
    return And(tuple(Comparison("metric", f"m{i}", ">", 0.0) for i in range(n)))


def test_a_filter_over_the_key_limit_is_a_4xx_naming_the_count_and_the_limit(store, client):
    run = client.create_run("e", capture=False)
    too_many = MAX_FILTER_KEYS + 14  # 64: one past SQLite's join limit
    with pytest.raises(InvalidFilterError, match=rf"{too_many} distinct .*limit is {MAX_FILTER_KEYS}"):
        store.tracking.search_runs(None, _many_keys(too_many), (), 10, None)
    # order_by keys count too, and the parser refuses the same before any request
    order = (OrderBy("param", "p1"), OrderBy("tag", "t1"))
    with pytest.raises(InvalidFilterError, match=rf"{MAX_FILTER_KEYS + 1} distinct"):
        store.tracking.search_runs(None, _many_keys(MAX_FILTER_KEYS - 1), order, 10, None)
    text = " and ".join(f"metrics.m{i} > 0" for i in range(too_many))
    with pytest.raises(InvalidFilterError, match=rf"limit is {MAX_FILTER_KEYS}"):
        client.search_runs(filter=text)
    # the same key named twice counts once; the limit itself is allowed
    twice = And((*_many_keys(MAX_FILTER_KEYS).items, Comparison("metric", "m0", "<", 1.0)))
    assert store.tracking.search_runs(None, twice, (), 10, None).runs == ()
    client.log_params(run.run_id, {"p": "1"})


def test_a_registry_filter_over_the_key_limit_is_a_4xx(store):
    tags = And(tuple(Comparison("tag", f"t{i}", "=", "x") for i in range(MAX_FILTER_KEYS + 1)))
    with pytest.raises(InvalidFilterError, match=rf"limit is {MAX_FILTER_KEYS}"):
        store.registry.search_models(tags, 10)


@pytest.fixture
def sql_store(tmp_path):
    from loopml.store import open_store

    opened = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    yield opened
    opened.close()


@pytest.fixture
def api(sql_store, asgi_client):
    from loopml.server.app import create_app

    with asgi_client(create_app(sql_store), raise_server_exceptions=False) as client:
        yield client


def test_a_server_error_answers_an_error_id_and_no_path_or_password(api, sql_store, monkeypatch, caplog):
    secret = "Cannot use the database at sqlite:////srv/secret/loopml.db (postgresql://bob:hunter2@db/x)"

    def broken_store(*_args: object) -> None:
        raise StoreError(secret)

    def broken_code(*_args: object) -> None:
        raise RuntimeError("unable to open /srv/secret/loopml.db for https://bob:hunter2@host/")

    for fault in (broken_store, broken_code):
        monkeypatch.setattr(sql_store.tracking, "get_run", fault)
        with caplog.at_level(logging.ERROR, logger="loopml.server"):
            response = api.get(f"/api/v1/runs/{'a' * 32}")
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "StoreError"
        for leak in ("/srv/secret", "hunter2", "bob", "loopml.db"):
            assert leak not in response.text
        assert error["error_id"] in error["message"]
        assert error["error_id"] in caplog.text and "/srv/secret/loopml.db" in caplog.text
        caplog.clear()


def test_a_prediction_service_error_answers_an_error_id_and_no_path():
    from loopml.serving.errors import loopml_error_response, unexpected_error_response

    for response in (
        loopml_error_response(StoreError("disk /var/lib/models/x.skops at s3://key:secret@bucket failed")),
        unexpected_error_response(OSError("/var/lib/models/x.skops: no space left")),
    ):
        body = json.loads(bytes(response.body))
        assert response.status_code == 500
        assert "/var/lib" not in response.body.decode() and "secret" not in response.body.decode()
        assert body["error"]["error_id"] in body["error"]["message"]


# -- finding 10: key grammar, limits and values --------------------------------------------------------

_BAD_KEYS = ["a\x00b", "a\nb", "a\tb", "a\rb", "\x1b[31mred", "line\u2028sep", "zero\u200bwidth", "x" * 251]


@pytest.mark.parametrize("key", _BAD_KEYS, ids=repr)
def test_keys_with_control_characters_or_too_long_are_refused_by_every_backend(store, client, key):
    run = client.create_run("e", capture=False)
    with pytest.raises(InvalidValueError, match="key"):
        store.tracking.log_batch(run.run_id, metrics=[Metric(key, 1.0, 0, 0)])
    with pytest.raises(InvalidValueError, match="key"):
        store.tracking.log_batch(run.run_id, params={key: "1"})
    with pytest.raises(InvalidValueError, match="key"):
        store.tracking.log_batch(run.run_id, tags={key: "1"})
    with pytest.raises(InvalidValueError, match="key"):
        client.log_params(run.run_id, {key: 1})
    active = ActiveRun(client, run)
    with pytest.raises(InvalidValueError, match="key"):
        active.log_metric(key, 1.0)
    active.end()
    assert client.get_run(run.run_id).params == {} and client.get_run(run.run_id).metrics == {}


def test_keys_users_write_today_are_still_accepted(store, client):
    run = client.create_run("e", capture=False)
    keys = ["acc", "val/loss", "a b", "lr-0.1_x", "métrique", "准确率", "k" * MAX_KEY_LENGTH, "tags:x=1"]
    store.tracking.log_batch(run.run_id, metrics=[Metric(k, 1.0, 0, 0) for k in keys], params={k: "1" for k in keys})
    assert set(client.get_run(run.run_id).metrics) == set(keys)


def test_run_names_are_capped_and_printable_on_every_backend(store, client):
    experiment = client.get_or_create_experiment("e").experiment_id
    for name in ("x" * 10_000, "x" * (MAX_RUN_NAME_LENGTH + 1), "two\nlines", "nul\x00"):
        with pytest.raises(InvalidValueError, match="Run name"):
            client.create_run("e", name=name, capture=False)
        with pytest.raises(InvalidValueError, match="Run name"):
            store.tracking.create_run(experiment, name=name, user="u", start_time=0)
    kept = client.create_run("e", name="n" * MAX_RUN_NAME_LENGTH, capture=False)
    assert client.get_run(kept.run_id).info.name == "n" * MAX_RUN_NAME_LENGTH


def test_negative_zero_round_trips_on_every_backend(client):
    run = ActiveRun(client, client.create_run("e", capture=False))
    run.log_metric("z", -0.0)
    run.log_metric("p", 0.0)
    run.log_metric("h", 1.0)
    run.log_metric("h", -0.0)
    run.end()
    stored = client.get_run(run.id).metrics
    assert math.copysign(1.0, stored["z"]) == -1.0
    assert math.copysign(1.0, stored["p"]) == 1.0
    assert math.copysign(1.0, stored["h"]) == -1.0
    assert [math.copysign(1.0, p.value) for p in client.get_metric_history(run.id, "h")] == [1.0, -1.0]
    # -0.0 == 0.0 in search, as in IEEE arithmetic
    found = client.search_runs(filter="metrics.z = 0 and metrics.p = 0", as_frame=False)
    assert [r.info.run_id for r in found.runs] == [run.id]


def test_numbers_too_large_for_a_float_are_invalid_values_naming_the_key(client):
    run = ActiveRun(client, client.create_run("e", capture=False))
    with pytest.raises(InvalidValueError, match="'huge'"):
        run.log_metric("huge", 10**400)
    with pytest.raises(InvalidValueError, match="'huge'"):
        run.log_metrics({"ok": 1, "huge": -(10**400)})
    run.end()
    assert client.get_run(run.id).metrics == {}


# -- finding 11: points lost to a run that vanished ------------------------------------------------------


def _delete_run(db_url: str, run_id: str) -> None:
    """What a store restarted from the wrong folder looks like to a client: the run is not there."""
    engine = sqlalchemy.create_engine(db_url)
    with engine.begin() as conn:
        for table in ("applied_batches", "latest_metrics", "metrics", "params", "tags", "runs"):
            conn.execute(sqlalchemy.text(f"DELETE FROM {table} WHERE run_id = :r"), {"r": run_id})
    engine.dispose()


def test_points_lost_to_a_vanished_run_raise_on_flush_with_the_count(store, client, db_url, caplog):
    run = ActiveRun(client, client.create_run("e", capture=False))
    run.log_metric("kept", 1.0)
    run.flush()
    _delete_run(db_url, run.id)
    for step in range(1_670):
        run.log_metric("loss", 0.5, step=step)
    with caplog.at_level(logging.ERROR, logger="loopml.tracking"):
        flush_all()  # what the background thread does each second: it must not swallow the loss
    with pytest.raises(MetricsLostError, match=rf"1670 metric points of run {run.id}") as caught:
        run.flush()
    assert caught.value.n_points == 1_670 and caught.value.run_id == run.id
    run.flush()  # reported once; nothing new was lost
    run.log_metric("loss", 0.25, step=2_000)
    with pytest.raises(MetricsLostError, match=r"\b1 metric points?\b"):
        run.end()


def test_points_lost_to_a_run_ended_elsewhere_raise_at_run_end(client):
    run = ActiveRun(client, client.create_run("e", capture=False))
    for step in range(25):
        run.log_metric("loss", 0.5, step=step)
    client.end_run(run.id)  # another process ended (killed) the run
    with pytest.raises(MetricsLostError, match=rf"25 metric points of run {run.id}"):
        run.end()
