"""Every candidate the agent registers carries its explanations; an explained() gate reads them, not recomputes."""

from __future__ import annotations

import pytest

from loopml.explain import importance
from loopml.explain.importance import EVIDENCE_KEY
from loopml.loop import Agent, explained, policy, thresholds
from loopml.registry.client import RegistryClient
from tests.loop import library

MODEL = "bc-explained"


@pytest.fixture
def explanations(monkeypatch):
    """Every global explanation computed during the test, in order (the real function still runs)."""
    calls: list[dict] = []
    real = importance.global_explanation

    def counted(model, X, y=None, **options):
        calls.append(options)
        return real(model, X, y, **options)

    monkeypatch.setattr(importance, "global_explanation", counted)
    return calls


def test_a_candidate_version_carries_its_explanations_beside_the_gates_evidence(client, explanations) -> None:
    pol = policy(
        MODEL, pipeline=library.retrain, gates=[thresholds({"roc_auc": 0.9})], rollout="direct", schedule="0 3 * * *"
    )
    decision = Agent([pol], client=client, sleep=lambda _s: None).trigger(pol)
    assert decision.task.state == "succeeded", decision.task.details.get("traceback", decision.task.outcome)
    evidence = RegistryClient(client).get_model_version(MODEL, 1).evidence
    assert {"gates", "trigger", EVIDENCE_KEY} <= set(evidence)
    record = evidence[EVIDENCE_KEY]
    assert record["n_rows"] == len(library.data()) - 380 and "error" not in record
    assert {row["feature"] for row in record["permutation"]["importances"]} == set(library.FEATURES)
    assert record["shap"]["method"] == "linear" and len(record["background"]) == 50
    assert explanations == [{"max_rows": 500}]


def test_an_explained_gate_judges_the_registration_record_with_its_own_options(client, explanations) -> None:
    pol = policy(
        MODEL,
        pipeline=library.retrain,
        gates=[explained(n_repeats=2, max_rows=100)],
        rollout="direct",
        schedule="0 3 * * *",
    )
    decision = Agent([pol], client=client, sleep=lambda _s: None).trigger(pol)
    assert decision.task.state == "succeeded", decision.task.details.get("traceback", decision.task.outcome)
    assert explanations == [{"max_rows": 100, "n_repeats": 2}]  # once, at registration, with the gate's options
    evidence = RegistryClient(client).get_model_version(MODEL, 1).evidence
    record = evidence[EVIDENCE_KEY]
    assert record["n_rows"] == 100 and record["permutation"]["n_repeats"] == 2
    [gate] = evidence["gates"]
    assert gate["gate"] == "explanations" and gate["passed"] is True
    assert gate["figures"]["explanations"] == {key: value for key, value in record.items() if key != "background"}
