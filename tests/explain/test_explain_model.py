"""Global explanations stored as evidence on a model version, on every store backend."""

from __future__ import annotations

import json

import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression

from loopml.errors import InvalidValueError
from loopml.explain.importance import EVIDENCE_KEY, explain_model, importance_of
from loopml.explain.local import explain
from loopml.models.package import log_model
from loopml.registry.client import RegistryClient


def _register(client, model, X, name):
    run = client.create_run("explain", capture=False)
    info = log_model(client, run.run_id, model, "model", input_example=X.head())
    registry = RegistryClient(client)
    return registry, registry.register_model(info.uri, name)


def test_explain_model_stores_permutation_and_shap_importance_beside_other_evidence(client, task) -> None:
    X, y = task["X"], task["y"]
    model = RandomForestClassifier(n_estimators=15, random_state=0).fit(X.iloc[:400], y[:400])
    registry, version = _register(client, model, X, "credit")
    registry.set_evidence("credit", version.version, {"thresholds": {"passed": True}})
    holdout = X.iloc[400:].assign(label=y[400:])
    found = explain_model(f"models:/credit/{version.version}", holdout, target="label", client=registry, n_repeats=3)
    stored = registry.get_model_version("credit", version.version).evidence
    assert set(stored) == {"thresholds", EVIDENCE_KEY}
    assert stored[EVIDENCE_KEY] == json.loads(json.dumps(found.to_evidence()))
    reference = permutation_importance(model, X.iloc[400:], y[400:], scoring="accuracy", n_repeats=3, random_state=0)
    by_feature = {row["feature"]: row["mean"] for row in stored[EVIDENCE_KEY]["permutation"]["importances"]}
    assert by_feature == {c: pytest.approx(v) for c, v in zip(X.columns, reference.importances_mean, strict=True)}
    assert stored[EVIDENCE_KEY]["shap"]["method"] == "tree"
    assert set(importance_of(stored) or {}) == set(X.columns)
    assert len(stored[EVIDENCE_KEY]["background"]) == 50
    with pytest.raises(InvalidValueError, match="names no column"):
        explain_model(version, holdout, target="y", client=registry)


def test_a_loaded_linear_model_explains_from_its_example_or_stored_background(client, task) -> None:
    X, y = task["X"], task["y"]
    model = LogisticRegression().fit(X.iloc[:400], y[:400])
    registry, version = _register(client, model, X, "linear")
    loaded = registry.load_model(f"models:/linear/{version.version}")
    found = loaded.explain(X.iloc[400:403])  # the logged input example is the background
    assert found.method == "linear"
    assert found.values.sum(axis=1) + found.expected_value == pytest.approx(model.decision_function(X.iloc[400:403]))
    stored = explain_model(version, X.iloc[400:], client=registry)  # no labels: SHAP only
    assert stored.permutation is None and "no labels" in stored.notes[0]
    again = explain(registry.load_model(f"models:/linear/{version.version}"), X.iloc[400:403],
                    background=stored.background)  # fmt: skip
    assert again.values.sum(axis=1) + again.expected_value == pytest.approx(model.decision_function(X.iloc[400:403]))
