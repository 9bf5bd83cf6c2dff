"""Fixtures for the serving tests: a SQLite store with small scikit-learn models registered in it."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.registry.client import RegistryClient
from loopml.store import Store, open_store
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun


@pytest.fixture(autouse=True)
def _private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the model cache (under the system temp dir) inside this test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


@pytest.fixture(scope="session")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True, as_frame=True)
    return features, target


@dataclass
class Registered:
    """Model "iris": versions 1-3 (logistic regression, C=1 / C=0.01 / a decision tree), @champion -> 1."""

    store: Store
    tracking: TrackingClient
    registry: RegistryClient
    X: pd.DataFrame
    models: dict[int, Any]

    def register(self, model: Any, name: str = "iris", example: pd.DataFrame | None = None, **log: Any) -> int:
        run = self.tracking.create_run("serving", capture=False)
        info = ActiveRun(self.tracking, run).log_model(
            model, "model", input_example=self.X.head() if example is None else example, **log
        )
        return self.registry.register_model(info.uri, name).version

    def expected(self, version: int, rows: pd.DataFrame) -> list[Any]:
        return self.models[version].predict(rows).tolist()


def open_sqlite(folder: Path) -> Store:
    return open_store(f"sqlite:///{folder / 'loopml.db'}", artifacts_url=str(folder / "artifacts"))


def register_iris(store: Store, X: pd.DataFrame, y: pd.Series) -> Registered:
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    tracking = TrackingClient(store)
    found = Registered(store, tracking, RegistryClient(tracking), X, {})
    for version, model in enumerate(
        (
            LogisticRegression(max_iter=500),
            LogisticRegression(C=0.01, max_iter=500),
            DecisionTreeClassifier(max_depth=2, random_state=0),
        ),
        start=1,
    ):
        found.models[version] = model.fit(X, y)
        assert found.register(model) == version
    found.registry.set_alias("iris", "champion", 1)
    return found


@pytest.fixture(scope="session")
def template(
    tmp_path_factory: pytest.TempPathFactory, iris: tuple[pd.DataFrame, pd.Series]
) -> tuple[Path, dict[int, Any]]:
    """A store folder with the iris versions registered, built once per test process and copied per test."""
    folder = tmp_path_factory.mktemp("serving-template")
    store = open_sqlite(folder)
    try:
        models = register_iris(store, *iris).models
    finally:
        store.close()
    return folder, models


@pytest.fixture
def sql_store(tmp_path: Path, template: tuple[Path, dict[int, Any]]) -> Iterator[Store]:
    """A fresh copy of the template store (SQLite, models registered): seconds cheaper than registering anew."""
    folder = tmp_path / "store"
    shutil.copytree(template[0], folder)
    opened = open_sqlite(folder)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def registered(
    sql_store: Store, template: tuple[Path, dict[int, Any]], iris: tuple[pd.DataFrame, pd.Series]
) -> Registered:
    tracking = TrackingClient(sql_store)
    return Registered(sql_store, tracking, RegistryClient(tracking), iris[0], template[1])


@pytest.fixture
def serve(asgi_client: Callable[..., Any], sql_store: Store) -> Iterator[Callable[..., Any]]:
    """``serve(**options)`` -> a TestClient over ``create_serving_app(sql_store, **options)``, started."""
    from loopml.serving.app import create_serving_app

    opened: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("poll_interval_s", 60.0)  # tests refresh by hand: no timing games
        client = asgi_client(create_serving_app(sql_store, **options), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    try:
        yield make
    finally:
        for client in opened:
            with warnings.catch_warnings():
                client.__exit__(None, None, None)


def service(client: Any) -> Any:
    """The PredictionService behind a serving TestClient."""
    return client.app.state.service
