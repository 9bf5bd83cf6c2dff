"""Applying feature definitions on every backend: versions, audit, the breaking-change guard, lineage."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from loopml.errors import FeatureChangeRefusedError, FeatureDefinitionError, FeatureViewNotFoundError
from loopml.features.apply import apply_features, load_definitions, models_using
from loopml.features.definitions import Entity, FeatureService, FeatureView
from loopml.features.offline import get_historical_features
from loopml.features.sources import FileSource
from loopml.registry.client import RegistryClient
from loopml.registry.lineage import lineage

CUSTOMER = Entity("customer", ["customer_id"])


def stats_view(path, schema=None, ttl="30d"):
    return FeatureView(
        "customer_stats",
        [CUSTOMER],
        FileSource(str(path)),
        ttl=ttl,
        schema=schema or {"orders_7d": "int64", "spend": "float64"},
    )


@pytest.fixture
def stats_file(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "event_time": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-02"]),
            "orders_7d": [1, 4, 2],
            "spend": [10.0, 40.0, 20.0],
        }
    )
    path = tmp_path / "stats.parquet"
    frame.to_parquet(path)
    return path


def test_apply_versions_only_changes_and_audits_each(store, stats_file):
    view = stats_view(stats_file)
    service = FeatureService("churn", [view[["orders_7d"]]])
    before = store.features.feature_definitions_version()
    first = apply_features([service], client=store, actor="ana")
    assert [(r.kind, r.name, r.version, r.changed) for r in first] == [
        ("entity", "customer", 1, True),
        ("view", "customer_stats", 1, True),
        ("service", "churn", 1, True),
    ]
    counter = store.features.feature_definitions_version()
    assert counter > before
    again = apply_features([service], client=store, actor="ana")
    assert [r.changed for r in again] == [False, False, False]
    assert store.features.feature_definitions_version() == counter

    wider = stats_view(stats_file, {"orders_7d": "int64", "spend": "float64", "visits": "int64"})
    (record,) = [r for r in apply_features([wider], client=store, actor="bo") if r.kind == "view"]
    assert (record.version, record.changed) == (2, True)
    assert store.features.feature_definitions_version() > counter
    assert store.features.get_feature_view("customer_stats").spec["schema"]["visits"] == "int64"
    assert store.features.get_feature_view("customer_stats", 1).fingerprint == first[1].fingerprint
    assert [r.version for r in store.features.feature_definition_history("view", "customer_stats")] == [1, 2]
    assert [r.name for r in store.features.list_feature_views()] == ["customer_stats"]
    assert store.features.get_feature_service("churn").spec["features"] == [
        {"view": "customer_stats", "features": ["orders_7d"]}
    ]
    applied = [(e.action, e.target, e.actor) for e in store.audit.list_events() if e.action.startswith("feature.")]
    assert applied == [
        ("feature.entity.apply", "customer/1", "ana"),
        ("feature.view.apply", "customer_stats/1", "ana"),
        ("feature.service.apply", "churn/1", "ana"),
        ("feature.view.apply", "customer_stats/2", "bo"),
    ]
    with pytest.raises(FeatureViewNotFoundError, match="customer_stat"):
        store.features.get_feature_view("customer_stat")
    with pytest.raises(FeatureViewNotFoundError, match="version 9"):
        store.features.get_feature_view("customer_stats", 9)


def test_bad_definitions_are_refused_and_nothing_is_stored(store):
    good = {"kind": "entity", "name": "customer", "spec": {"name": "customer", "join_keys": ["id"]}}
    for bad, field in [
        ({"kind": "table", "name": "x", "spec": {"name": "x"}}, "kind"),
        ({"kind": "view", "name": "no spaces", "spec": {"name": "no spaces"}}, "name"),
        ({"kind": "view", "name": "v", "spec": {"name": "w"}}, "spec"),
    ]:
        with pytest.raises(FeatureDefinitionError, match=field):
            store.features.apply_feature_definitions([good, bad], actor="ana")
    with pytest.raises(FeatureDefinitionError, match="twice"):
        store.features.apply_feature_definitions([good, good], actor="ana")
    assert store.features.feature_definitions_version() == 0
    assert store.features.list_feature_definitions("entity") == []


def test_rest_answers_4xx_naming_the_field_and_checks_roles(tmp_path, asgi_client):
    from loopml.auth.tokens import create_token
    from loopml.server.app import create_app
    from loopml.store import open_store

    sql = open_store(f"sqlite:///{tmp_path / 'rest.db'}", artifacts_url=str(tmp_path / "artifacts"))
    viewer = create_token(sql, "reader", "viewer", actor="admin").secret
    editor = create_token(sql, "writer", "editor", actor="admin").secret
    spec = {"name": "customer", "join_keys": ["id"]}
    good = {"definitions": [{"kind": "entity", "name": "customer", "spec": spec}], "actor": "claimed"}
    try:
        with asgi_client(create_app(sql, auth=True)) as http:
            as_viewer = {"Authorization": f"Bearer {viewer}"}
            as_editor = {"Authorization": f"Bearer {editor}"}
            assert http.post("/api/v1/features/apply", json=good).status_code == 401
            assert http.post("/api/v1/features/apply", json=good, headers=as_viewer).status_code == 403
            bad = {"definitions": [{"kind": "x", "name": "v", "spec": {}}], "actor": "a"}
            answer = http.post("/api/v1/features/apply", json=bad, headers=as_editor)
            assert answer.status_code == 422 and "kind" in answer.text
            wrong = {"definitions": [{"kind": "view", "name": "v", "spec": {"name": "w"}}], "actor": "a"}
            answer = http.post("/api/v1/features/apply", json=wrong, headers=as_editor)
            assert answer.status_code == 422 and answer.json()["error"]["type"] == "FeatureDefinitionError"
            applied = http.post("/api/v1/features/apply", json=good, headers=as_editor)
            assert applied.status_code == 200 and applied.json()[0]["created_by"] == "writer"
            missing = http.get("/api/v1/features/views/nothing", headers=as_viewer)
            assert missing.status_code == 404 and missing.json()["error"]["type"] == "FeatureViewNotFoundError"
            assert http.get("/api/v1/features/tables", headers=as_viewer).status_code == 422
            assert http.get("/api/v1/features/version", headers=as_viewer).json()["version"] >= 1
            listed = http.get("/api/v1/features/entities", headers=as_viewer).json()
            assert [(e["name"], e["version"], e["spec"]) for e in listed] == [("customer", 1, spec)]
    finally:
        sql.close()


def _train_and_register(store, stats_file, name="churn"):
    """A run that logs training data from get_historical_features, registered as a model version."""
    client = RegistryClient(_tracking(store))
    entity_df = pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": pd.to_datetime(["2024-01-06", "2024-01-03"]), "label": [1, 0]}
    )
    train = get_historical_features(entity_df, ["customer_stats:orders_7d"], client=store)
    assert train.attrs["loopml.feature_views"] == {"customer_stats": 1}
    run = client.tracking.create_run("features", capture=False)
    client.tracking.log_dataset(run.run_id, train, "train")
    client.tracking.log_artifact_bytes(run.run_id, {"model/loopml-model.json": b"{}", "model/model.bin": b"w"})
    client.tracking.end_run(run.run_id)
    return client, client.register_model(f"runs:/{run.run_id}/model", name)


def _tracking(store):
    from loopml.tracking.client import TrackingClient

    return TrackingClient(store)


def test_breaking_change_to_a_used_view_is_refused_unless_forced(store, stats_file):
    apply_features([stats_view(stats_file)], client=store, actor="ana")
    client, version = _train_and_register(store, stats_file)
    assert models_using("customer_stats", store) == [f"models:/churn/{version.version}"]

    tree = lineage(client, version.uri)
    (node,) = tree.find("feature_view")
    assert node.id == "customer_stats/1"
    assert node.attributes["definition"]["schema"] == {"orders_7d": "int64", "spend": "float64"}

    retyped = stats_view(stats_file, {"orders_7d": "float64", "spend": "float64"})
    with pytest.raises(FeatureChangeRefusedError, match=r"orders_7d.*int64 -> float64.*models:/churn/1"):
        apply_features([retyped], client=store, actor="ana")
    assert store.features.get_feature_view("customer_stats").version == 1

    added = stats_view(stats_file, {"orders_7d": "int64", "spend": "float64", "visits": "int64"})
    assert apply_features([added], client=store, actor="ana")[-1].version == 2

    forced = apply_features([retyped], client=store, actor="ana", force=True)
    assert forced[-1].version == 3
    (event,) = [e for e in store.audit.list_events() if e.target == "customer_stats/3"]
    assert event.evidence["forced"] is True
    assert event.evidence["used_by"] == ["models:/churn/1"]
    assert any("orders_7d" in change for change in event.evidence["breaking_changes"])


def test_load_definitions_runs_the_users_file(tmp_path, stats_file):
    source = tmp_path / "features.py"
    source.write_text(
        "from loopml.features.definitions import Entity, FeatureView\n"
        "from loopml.features.sources import FileSource\n"
        "customer = Entity('customer', ['customer_id'])\n"
        f"stats = FeatureView('customer_stats', [customer], FileSource({json.dumps(str(stats_file))}),"
        " ttl='30d', schema={'orders_7d': 'int64'})\n"
        "_private = 1\n"
    )
    found = load_definitions(source)
    assert sorted(type(d).__name__ for d in found) == ["Entity", "FeatureView"]
    with pytest.raises(FeatureDefinitionError, match="not a Python file"):
        load_definitions(tmp_path / "missing.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(FeatureDefinitionError, match="defines no"):
        load_definitions(empty)
