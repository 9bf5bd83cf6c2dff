"""Pipelines the loop tests retrain with (module level, so their source can be hashed)."""

from __future__ import annotations

import time

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import loopml

FEATURES = ["mean radius", "mean texture", "mean concavity", "worst area", "worst smoothness"]


def data() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    return frame[[*FEATURES, "target"]].sample(frac=1.0, random_state=0).reset_index(drop=True)


@loopml.step(outputs=("train", "holdout"))
def split(seed: int) -> tuple:
    frame = data()
    return frame.iloc[:380], frame.iloc[380:]


@loopml.step
def fit(train: pd.DataFrame, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=5000).fit(train.drop(columns="target"), train["target"])


@loopml.pipeline
def retrain(seed: int = 0, c: float = 1.0):
    train, holdout = split(seed)
    return {"model": fit(train, c=c), "holdout": holdout, "target": "target"}


@loopml.pipeline
def retrain_declaring_its_data(seed: int = 0):
    train, holdout = split(seed)
    return {"model": fit(train, c=1.0), "holdout": holdout, "target": "target", "train": train}


@loopml.step(outputs=("train", "holdout"))
def slow_split(seed: int) -> tuple:
    time.sleep(1.0)  # long enough for an agent with a short stale_after_s to heartbeat meanwhile
    frame = data()
    return frame.iloc[:380], frame.iloc[380:]


@loopml.pipeline
def slow_retrain(seed: int = 0):
    train, holdout = slow_split(seed)
    return {"model": fit(train, c=1.0), "holdout": holdout, "target": "target"}


@loopml.pipeline
def no_target(seed: int = 0):
    train, holdout = split(seed)
    return {"model": fit(train, c=1.0), "holdout": holdout, "target": "label"}


@loopml.step
def explode(seed: int) -> pd.DataFrame:
    raise RuntimeError("the feature store is down")


@loopml.pipeline
def broken(seed: int = 0):
    return {"model": explode(seed), "holdout": explode(seed), "target": "target"}


def weak_champion() -> LogisticRegression:
    """Trained on 40 rows and one feature: any honest retrain beats it."""
    frame = data()
    few = frame.iloc[:40]
    model = LogisticRegression(max_iter=5000).fit(few[FEATURES].assign(**{f: 0.0 for f in FEATURES[1:]}), few["target"])
    return model
