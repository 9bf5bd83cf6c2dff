"""The closed loop of ``loopml demo``: live traffic, a real shift, a drift alert, automatic retraining, promotion.

After the sweep has put a champion in production, this part keeps the model
served on 127.0.0.1 and drives the whole loop through the public API:

1. a monitor watches the deployed model against its training data (found
   through lineage); normal traffic with feedback labels passes the check;
2. the traffic shifts for real: an instrument reads 40% high, so every
   ``mean radius`` is x1.4 and every ``worst area`` (an area: radius squared)
   x1.96 — the check flags exactly those two columns and raises an alert;
3. the continuous-training agent reacts: it runs :func:`retrain_on_recent`
   (the champion's training data plus the recent labelled traffic), gates the
   challenger against the champion on a held-out part of that traffic, runs
   it as a canary on live traffic, and promotes it to ``@champion``.

The retraining pipeline lives at module level so its steps have a stable
source hash (the step cache keys on it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

import loopml

MONITOR = "breast-cancer-drift"
#: an instrument reading 40% high: radii x1.4, areas x1.4**2
SHIFT = {"mean radius": 1.4, "worst area": 1.96}
BASELINE_REQUESTS = 300
#: shifted requests before the alert; the data set's remaining rows (149) are kept back for the canary
SHIFTED_REQUESTS = 420
HOLDOUT_SHARE = 0.4
SEED = 7


def breast_cancer_frame() -> pd.DataFrame:
    """The 30 measurements and ``target`` (1 = benign) of scikit-learn's bundled data set."""
    from sklearn.datasets import load_breast_cancer

    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    return frame


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as the miscalibrated instrument reports it."""
    out = frame.copy()
    for column, factor in SHIFT.items():
        out[column] = out[column] * factor
    return out


# -- responsible ML: the sensitive attribute and the business metric the gates use ---------------------------
def size_band(features: pd.DataFrame) -> pd.Series:
    """The demo's sensitive attribute: patients with large or small tumours (``mean radius`` >= 15 or not).

    A new model may not serve either group worse than the champion does (``no_group_worse``).
    """
    band = (features["mean radius"] >= 15).map({True: "large", False: "small"})
    return band.rename("size band")


@loopml.metric(higher_is_better=False)
def screening_cost(predictions: Any, labels: Any, features: Any) -> float:
    """A missed malignant tumour (``target`` 0 read as 1, benign) costs 5; a false alarm costs 1."""
    import numpy as np

    predicted, actual = np.asarray(predictions), np.asarray(labels)
    return float(5 * ((predicted == 1) & (actual == 0)).sum() + ((predicted == 0) & (actual == 1)).sum())


# -- the retraining pipeline ---------------------------------------------------------------------------------
@loopml.step(outputs=("train", "holdout"), cache=False)
def labelled_traffic(model: str, since_ms: int, until_ms: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The requests ``model`` answered in ``[since_ms, until_ms)`` whose labels came back, split for training and holdout.

    Never cached: labels keep arriving for the same window. ``until_ms`` is the
    alert's time, so the canary's later traffic is never trained on.
    """
    from sklearn.datasets import load_breast_cancer

    features = list(load_breast_cancer().feature_names)
    log = loopml.search_predictions(model, since=since_ms, until=until_ms, role="main", flatten=True, with_feedback=True)
    log = log[log["label"].notna()]
    frame = log[features].assign(target=log["label"].astype(int)).sample(frac=1.0, random_state=seed)
    cut = int(len(frame) * (1 - HOLDOUT_SHARE))
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


@loopml.step
def champion_training_data(seed: int) -> pd.DataFrame:
    """The rows the demo's sweep trained on (the same split)."""
    from sklearn.model_selection import train_test_split

    from loopml.demo import RANDOM_STATE, TEST_SIZE

    frame = breast_cancer_frame()
    train, _ = train_test_split(frame, test_size=TEST_SIZE, random_state=RANDOM_STATE, stratify=frame["target"])
    rows: pd.DataFrame = train.reset_index(drop=True)
    return rows


@loopml.step
def combined(reference: pd.DataFrame, recent: pd.DataFrame) -> pd.DataFrame:
    """The old training data plus the recent labelled traffic: what the challenger learns from."""
    return pd.concat([reference, recent], ignore_index=True)


@loopml.step
def fit(train: pd.DataFrame) -> Any:
    """A scaled logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return model.fit(train.drop(columns="target"), train["target"])


@loopml.pipeline(experiment="breast-cancer-retrain")
def retrain_on_recent(model: str, since_ms: int, until_ms: int, seed: int = SEED) -> dict[str, Any]:
    recent, holdout = labelled_traffic(model, since_ms, until_ms, seed)
    train = combined(champion_training_data(seed), recent)
    # ``train`` becomes the new version's training dataset: its monitors' reference once it is champion
    return {"model": fit(train), "holdout": holdout, "target": "target", "train": train}


# -- live service and traffic --------------------------------------------------------------------------------
@contextmanager
def live_service(model: str) -> Iterator[str]:
    """``model`` served by the prediction service on a free 127.0.0.1 port (in a thread) while the block runs."""
    import socket

    import httpx
    import uvicorn

    from loopml.serving.app import create_serving_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_serving_app(loopml.get_tracking_client().store, models=[model], poll_interval_s=0.2)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="loopml-demo-loop-serve", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if server.started and httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo's prediction service did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def send(http: Any, model: str, frame: pd.DataFrame) -> list[str]:
    """One request per row of ``frame`` (without ``target``), then the rows' labels as feedback; the request ids."""
    ids = []
    for row in frame.drop(columns="target").to_dict(orient="records"):
        response = http.post(f"/v1/models/{model}/predict", json={"inputs": row})
        response.raise_for_status()
        ids.append(response.json()["request_id"])
    labels = [{"request_id": rid, "label": int(label)} for rid, label in zip(ids, frame["target"], strict=True)]
    http.post("/v1/feedback", json=labels).raise_for_status()
    return ids


def wait_logged(model: str, since_ms: int, count: int, timeout_s: float = 30.0) -> None:
    """Until the prediction log holds ``count`` requests of ``model`` since ``since_ms`` (its writer is batched)."""
    deadline = time.monotonic() + timeout_s
    while len(loopml.search_predictions(model, since=since_ms)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the prediction log did not reach {count} requests in {timeout_s:.0f} s")
        time.sleep(0.1)


@dataclass
class BackgroundTraffic:
    """Shifted requests with their labels, sent from a thread while the agent watches its canary."""

    url: str
    model: str
    rows: pd.DataFrame
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> BackgroundTraffic:
        self._thread = threading.Thread(target=self._run, name="loopml-demo-traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=30) as http:
            position = 0
            while not self._stop.is_set():
                batch = self.rows.iloc[position % len(self.rows) : position % len(self.rows) + 20]
                send(http, self.model, batch)
                self.sent += len(batch)
                position += 20


# -- the loop --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoopResult:
    """What the closed loop did: the checks, the alert, the retrain task and where the report is."""

    baseline_status: str
    shifted_status: str
    drifted_columns: list[str]
    alert_kinds: list[str]
    report_path: str
    task: Any
    champion_before: int
    champion_after: int
    events: list[Any]
    canary_requests: int


def run_loop(console: Any, model: str, *, report_path: str, progress: Any = None) -> LoopResult:
    """Serve ``model``'s champion, watch it, shift its traffic, and let the agent retrain and promote."""
    import httpx

    from loopml.loop import Agent, CanaryRules, beats_champion, business_metric, no_group_worse, policy, thresholds
    from loopml.monitoring.results import write_monitor_report

    registry = loopml.get_registry_client()
    champion_before = registry.get_model_version(model, "champion").version
    started_ms = int(time.time() * 1000)
    data = breast_cancer_frame()
    normal = data.sample(n=BASELINE_REQUESTS, random_state=SEED)
    # The shifted rows before the alert train the challenger; the rest reach it only as canary traffic,
    # so the canary judges it on rows it has never seen.
    shuffled = shifted(data.sample(frac=1.0, random_state=SEED + 1))
    drifted, unseen = shuffled.iloc[:SHIFTED_REQUESTS], shuffled.iloc[SHIFTED_REQUESTS:]

    loopml.monitor(MONITOR, model, checks=("data_drift", "prediction_drift", "performance"),
                   thresholds={"drift_share": 0.05, "accuracy_min": 0.95}, window={"last": SHIFTED_REQUESTS},
                   version="champion",
                   actions=["log"])  # fmt: skip
    with live_service(model) as url, httpx.Client(base_url=url, timeout=30) as http:
        send(http, model, normal)
        wait_logged(model, started_ms, BASELINE_REQUESTS)
        baseline = loopml.run_monitor(MONITOR)
        console.print(f"  monitor [bold]{MONITOR}[/]: {BASELINE_REQUESTS} normal requests -> {baseline.status}")

        shift_ms = int(time.time() * 1000)
        send(http, model, drifted)
        wait_logged(model, shift_ms, SHIFTED_REQUESTS)
        after = loopml.run_monitor(MONITOR)
        columns = list(after.drift.drifted_columns) if after.drift is not None else []
        console.print(
            f"  monitor [bold]{MONITOR}[/]: {SHIFTED_REQUESTS} requests from a miscalibrated instrument -> "
            f"[red]{after.status}[/] ({', '.join(a.kind for a in after.alerts)}); drifted columns: {columns}"
        )
        report = write_monitor_report(MONITOR, report_path)
        console.print(f"  drift report: [cyan]{report}[/]")

        retrain = policy(
            model,
            pipeline=retrain_on_recent,
            monitor=MONITOR,
            params={"model": model, "since_ms": shift_ms, "until_ms": int(time.time() * 1000)},
            gates=[
                thresholds({"accuracy": 0.95}),
                beats_champion("log_loss"),
                no_group_worse(size_band, metric="accuracy", min_rows=20),
                business_metric("screening_cost", max_relative_loss=0.01),
            ],
            rollout="canary:25%->100%",
            canary=CanaryRules(window_s=2.0, min_requests=25, min_labelled=20, timeout_s=60),
        )
        agent = Agent([retrain], on_progress=lambda _policy, stage: console.print(f"  agent: {stage}"))
        with BackgroundTraffic(url, model, unseen) as traffic:
            decisions = agent.tick()
        task = next((d.task for d in decisions if d.task is not None), None)
    champion_after = registry.get_model_version(model, "champion").version
    events = loopml.search_audit_events(target=model, since=started_ms)
    return LoopResult(
        baseline_status=baseline.status,
        shifted_status=after.status,
        drifted_columns=columns,
        alert_kinds=[a.kind for a in after.alerts],
        report_path=str(report),
        task=task,
        champion_before=champion_before,
        champion_after=champion_after,
        events=list(events),
        canary_requests=traffic.sent,
    )


def decisions_table(result: LoopResult) -> Any:
    """Every decision of the loop, oldest first: who or what made it, on what, and why."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title="The closed loop: every decision, from the audit log", box=box.SIMPLE_HEAD, header_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("Actor")
    table.add_column("Decision", style="bold")
    table.add_column("On")
    table.add_column("Why")
    for index, event in enumerate(result.events, 1):
        why = event.reason or ""
        if not why and event.after:
            why = ", ".join(f"{k}={v}" for k, v in list(event.after.items())[:3])
        table.add_row(str(index), Text(event.actor), Text(event.action), Text(event.target), Text(why[:110]))
    return table
