from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidValueError, UnsupportedModelError
from loopml.models import PythonModel, load_model_from_run, log_model
from loopml.tracking.client import TrackingClient


class VocabScorer(PythonModel):
    """Counts words found in a vocabulary file shipped as an artifact."""

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.settings = {"lower": True}

    def load_context(self, artifacts: dict[str, Path]) -> None:
        self.vocab = set(artifacts["vocab"].read_text(encoding="utf-8").split())
        self.stopwords = set((artifacts["extra"] / "stop.txt").read_text(encoding="utf-8").split())

    def predict(self, frame: pd.DataFrame) -> list[float]:
        scores = []
        for text in frame["text"]:
            words = [w.lower() for w in text.split() if w.lower() not in self.stopwords]
            scores.append(self.weight * sum(w in self.vocab for w in words))
        return scores

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.full((len(frame), 2), 0.5)


class Echo(PythonModel):
    def predict(self, frame: pd.DataFrame) -> Any:
        return frame


class Holder(PythonModel):
    def __init__(self) -> None:
        self.blob = object()

    def predict(self, frame: pd.DataFrame) -> Any:
        return None


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("cat dog bird\n", encoding="utf-8")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "stop.txt").write_text("the a\n", encoding="utf-8")
    return {"vocab": vocab, "extra": extra}


def test_round_trip_with_artifacts(client: TrackingClient, run_id: str, sources: dict[str, Path]) -> None:
    model = VocabScorer(weight=2.0)
    example = {"text": ["the cat", "a dog and a bird"]}
    info = log_model(client, run_id, model, "scorer", input_example=example, artifacts=sources)
    assert info.flavor == "pyfunc"
    config = info.manifest["flavor_config"]
    assert config["class"] == f"{__name__}:VocabScorer"
    assert set(info.manifest["files"]) == {
        "python_model.json",
        "artifacts/vocab",
        "artifacts/extra/stop.txt",
        "input_example.json",
    }
    sources["vocab"].write_text("changed after logging\n", encoding="utf-8")  # the package holds a copy

    loaded = load_model_from_run(client, run_id, "scorer")
    assert isinstance(loaded.raw, VocabScorer)
    assert loaded.raw.weight == 2.0 and loaded.raw.settings == {"lower": True}
    assert loaded.predict(example) == [2.0, 4.0]
    assert loaded.predict({"text": "Cat the DOG"}) == [4.0]
    assert loaded.predict_proba(example).shape == (2, 2)


def test_pyfunc_gets_the_checked_frame(client: TrackingClient, run_id: str) -> None:
    log_model(client, run_id, Echo(), input_example={"b": [1], "a": [0.5]})
    loaded = load_model_from_run(client, run_id)
    out = loaded.predict([{"a": 2, "b": 3}])
    assert list(out.columns) == ["b", "a"] and out["a"].dtype == np.float64
    with pytest.raises(UnsupportedModelError, match="predict_proba"):
        loaded.predict_proba([{"a": 2, "b": 3}])


def test_state_must_be_json(client: TrackingClient, run_id: str) -> None:
    with pytest.raises(UnsupportedModelError, match=r"blob.*artifacts="):
        log_model(client, run_id, Holder())


def test_class_must_be_importable(client: TrackingClient, run_id: str) -> None:
    class Local(PythonModel):
        def predict(self, frame: pd.DataFrame) -> Any:
            return None

    with pytest.raises(UnsupportedModelError, match="cannot be imported"):
        log_model(client, run_id, Local())


def test_missing_class_at_load_is_a_clear_error(
    client: TrackingClient, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_model(client, run_id, Echo())
    import sys

    monkeypatch.delattr(sys.modules[__name__], "Echo")
    with pytest.raises(UnsupportedModelError, match="no class 'Echo'"):
        load_model_from_run(client, run_id)


def test_bad_artifacts_are_refused(client: TrackingClient, run_id: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="no such file"):
        log_model(client, run_id, Echo(), artifacts={"gone": tmp_path / "missing"})
    with pytest.raises(InvalidValueError, match="Artifact name"):
        log_model(client, run_id, Echo(), artifacts={"../up": tmp_path})
    with pytest.raises(InvalidValueError, match="unsafe_pickle"):
        log_model(client, run_id, Echo(), unsafe_pickle=True)
