"""A version registered with a holdout carries its global explanation as evidence, on every store backend."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

import loopml
from loopml.errors import InvalidValueError, ModelNotFoundError, NotFoundError
from loopml.explain.importance import EVIDENCE_KEY
from loopml.models.package import log_model
from loopml.models.pyfunc import PythonModel
from loopml.registry.client import RegistryClient

COLUMNS = ["mean radius", "mean texture", "mean smoothness", "mean symmetry"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """Breast-cancer measurements whose label is decided by one column alone: ``mean radius`` above its median."""
    frame = load_breast_cancer(as_frame=True).frame[COLUMNS]
    return frame.assign(large=(frame["mean radius"] > frame["mean radius"].median()).astype(int))


def _logged(client, model, X) -> str:
    run = client.create_run("register-explained", capture=False)
    return log_model(client, run.run_id, model, "model", input_example=X.head()).uri


def _fitted(data: pd.DataFrame) -> DecisionTreeClassifier:
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(data[COLUMNS].iloc[:400], data["large"].iloc[:400])


def test_registering_with_a_holdout_stores_permutation_importance_that_ranks_the_deciding_column_first(
    client, data
) -> None:
    registry = RegistryClient(client)
    uri = _logged(client, _fitted(data), data[COLUMNS])
    holdout = data.iloc[400:]
    version = registry.register_model(
        uri, "tumour", holdout=holdout, target="large", explain_options={"n_repeats": 3}, actor="alice"
    )
    stored = registry.get_model_version("tumour", version.version).evidence
    assert stored == version.evidence
    record = stored[EVIDENCE_KEY]
    assert record["n_rows"] == len(holdout) and "error" not in record
    ranking = [row["feature"] for row in record["permutation"]["importances"]]
    assert ranking[0] == "mean radius" and record["permutation"]["n_repeats"] == 3
    assert record["permutation"]["importances"][0]["mean"] > 0.3 > record["permutation"]["importances"][1]["mean"]
    assert record["shap"]["method"] == "tree" and record["shap"]["mean_abs"][0]["feature"] == "mean radius"
    writes = client.store.audit.list_events(action="model_version.evidence", target=f"tumour/{version.version}")
    assert [(e.actor, e.target_type) for e in writes] == [("alice", "model_version")]
    assert writes[0].evidence[EVIDENCE_KEY]["permutation"] == record["permutation"]

    # features and labels apart (y=) work too, and the registry's other versions stay unexplained
    plain = registry.register_model(uri, "tumour")
    assert plain.evidence == {}
    apart = registry.register_model(uri, "tumour", holdout=holdout[COLUMNS], y=holdout["large"].to_numpy())
    assert apart.evidence[EVIDENCE_KEY]["permutation"]["importances"][0]["feature"] == "mean radius"


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"holdout": "data.csv", "target": "large"}, "holdout must be a pandas DataFrame"),
        ({"holdout": "frame", "target": "label"}, "target='label' names no column"),
        ({"holdout": "without radius", "target": "large"}, "does not fit the model's input"),
        ({"holdout": "no rows", "target": "large"}, "holdout has no rows"),
        ({"holdout": "features", "y": "too few"}, "one label per row"),
        ({"holdout": "frame", "target": "large", "explain_options": {"repeats": 3}}, "'repeats' is not one of them"),
        ({"holdout": "frame", "target": "large", "explain_options": {"max_rows": 0}}, "max_rows"),
        ({"target": "large"}, "pass holdout= too"),
    ],
)
def test_a_bad_holdout_is_refused_before_anything_is_registered(client, data, arguments, match) -> None:
    registry = RegistryClient(client)
    uri = _logged(client, _fitted(data), data[COLUMNS])
    frames = {
        "data.csv": "data.csv",
        "frame": data.iloc[400:],
        "without radius": data.iloc[400:].drop(columns=["mean radius"]),
        "no rows": data.iloc[:0],
        "features": data[COLUMNS].iloc[400:],
    }
    given = dict(arguments)
    if "holdout" in given:
        given["holdout"] = frames[given["holdout"]]
    if given.get("y") == "too few":
        given["y"] = data["large"].to_numpy()[:10]
    with pytest.raises(InvalidValueError, match=match):
        registry.register_model(uri, "refused", require_approval=True, **given)
    with pytest.raises(ModelNotFoundError):  # not even the model that require_approval would have created
        registry.get_registered_model("refused")


class Unreachable(PythonModel):
    """A model that scores through a service that is down while it is being registered."""

    def predict(self, frame: pd.DataFrame) -> Any:
        raise ConnectionError("the scoring service did not answer")


def test_a_model_that_cannot_be_explained_is_registered_with_a_note_and_a_warning(client, data, caplog) -> None:
    registry = RegistryClient(client)
    uri = _logged(client, Unreachable(), data[COLUMNS])
    with caplog.at_level(logging.WARNING, logger="loopml.explain"):
        version = registry.register_model(uri, "unexplained", holdout=data.iloc[400:], target="large")
    assert version.version == 1 and registry.get_model_version("unexplained", 1).source == uri
    record = registry.get_model_version("unexplained", 1).evidence[EVIDENCE_KEY]
    assert record["permutation"] is None and record["shap"] is None
    assert record["error"] == "explaining failed: ConnectionError: the scoring service did not answer"
    assert record["notes"] == [record["error"]]
    assert any("models:/unexplained/1 is registered without its explanations" in m for m in caplog.messages)


def test_the_module_level_one_liner_and_the_cli_register_with_a_holdout(loopml_env, data, tmp_path) -> None:
    from loopml.cli.main import app

    with loopml.start_run() as run:
        info = run.log_model(_fitted(data), "model", input_example=data[COLUMNS].head())
    version = loopml.register_model(info.uri, "tumour", holdout=data.iloc[400:], target="large")
    assert version.evidence[EVIDENCE_KEY]["permutation"]["importances"][0]["feature"] == "mean radius"

    data.iloc[400:].to_parquet(tmp_path / "holdout.parquet")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["models", "register", info.uri, "tumour", "--holdout", str(tmp_path / "holdout.parquet"), "--target", "large"],
    )
    assert result.exit_code == 0, result.output
    assert "most important: mean radius" in result.output
    assert EVIDENCE_KEY in loopml.get_model_version("tumour", 2).evidence
    bad = runner.invoke(app, ["models", "register", info.uri, "tumour", "--holdout", str(tmp_path / "x.txt")])
    assert bad.exit_code != 0 and "takes a .csv or .parquet file" in bad.output
    assert str(tmp_path) not in bad.output
    with pytest.raises(NotFoundError):
        loopml.get_model_version("tumour", 3)


def test_a_model_that_will_not_load_without_consent_is_registered_with_a_note(client, data) -> None:
    registry = RegistryClient(client)
    run = client.create_run("register-explained", capture=False)
    pickled = log_model(
        client, run.run_id, _fitted(data), "model", input_example=data[COLUMNS].head(), unsafe_pickle=True
    )
    version = registry.register_model(pickled.uri, "pickled", holdout=data.iloc[400:], target="large")
    record = registry.get_model_version("pickled", version.version).evidence[EVIDENCE_KEY]
    assert record["error"].startswith("the model could not be loaded to explain it: UntrustedTypeError")
    assert "unsafe_pickle=True" in record["error"] and record["permutation"] is None
