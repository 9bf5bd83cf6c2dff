"""A small, offline hyperparameter sweep that shows what loopml records.

``run_demo`` trains nine scikit-learn classifiers on the breast-cancer data
bundled with scikit-learn, each as a child run of one "sweep" run, logging
params, both dataset splits (by content hash), test metrics, a per-stage
metric history, a confusion-matrix figure, the classification report and the
fitted model itself. It then ranks the runs with ``search_runs``, registers the
best model as the next version of ``breast-cancer-classifier`` with its
validation evidence, points ``@champion`` at it, promotes it to production,
loads it back by alias to check its predictions, deploys it, serves it on
127.0.0.1 with the prediction service (``loopml serve``'s app, in a thread),
sends it the held-out rows as real HTTP requests and prints their latency,
and prints the version's lineage and the audit events of those steps. It writes to whatever store the
environment names (by default ``./.loopml``); running it again registers the
next version and moves ``@champion`` there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from rich import box
from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from loopml.config import hide_password
from loopml.timestamps import now_ms

if TYPE_CHECKING:
    from loopml.demo_features import FeatureDemo
    from loopml.demo_loop import LoopResult
    from loopml.entities.audit import AuditEvent
    from loopml.registry.lineage import LineageNode

EXPERIMENT = "breast-cancer-demo"
DATASET = "breast-cancer"
MODEL_NAME = "breast-cancer-classifier"
CHAMPION = "champion"
RANDOM_STATE = 42
TEST_SIZE = 0.25
#: the promotion gate: the best run's test metric must reach this
GATE_METRIC = "roc_auc"
GATE_THRESHOLD = 0.95


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo created: child run ids ranked by test ROC AUC, best first, and the version registered.

    ``lineage`` is the registered version's lineage tree; ``audit_actions`` the
    actions the audit log recorded for the demo's registry steps, in order.
    """

    experiment: str
    parent_run_id: str
    child_run_ids: tuple[str, ...]
    best_run_id: str
    elapsed_s: float
    model_name: str
    version: int
    promoted: bool
    predictions_match: bool
    lineage: LineageNode
    audit_actions: list[str]
    served: Served | None = None
    loop: LoopResult | None = None
    features: FeatureDemo | None = None  # the feature-store step (loopml.demo_features)


@dataclass(frozen=True, slots=True)
class Served:
    """What serving the champion over HTTP measured: one request per held-out row, then one batch of them all."""

    url: str
    requests: int
    p50_ms: float
    p99_ms: float
    requests_per_s: float
    batch_ms: float
    predictions_match: bool
    logged: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model configuration of the sweep."""

    name: str
    model: str
    params: dict[str, Any]
    build: Callable[[], Any]


def candidates() -> list[Candidate]:
    """The sweep: 3 logistic regressions, 4 random forests, 2 gradient-boosting models."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def logreg(c: float) -> Callable[[], Any]:
        return lambda: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    def forest(n: int, depth: int | None) -> Callable[[], Any]:
        return lambda: RandomForestClassifier(n_estimators=n, max_depth=depth, random_state=RANDOM_STATE)

    def boosting(lr: float) -> Callable[[], Any]:
        return lambda: GradientBoostingClassifier(learning_rate=lr, random_state=RANDOM_STATE)

    sweep = [
        Candidate(f"logreg-C{c:g}", "logistic_regression", {"C": c, "max_iter": 2000, "scaler": "standard"}, logreg(c))
        for c in (0.1, 1.0, 10.0)
    ]
    sweep += [
        Candidate(
            f"forest-{n}-d{depth or 'max'}",
            "random_forest",
            {"n_estimators": n, "max_depth": "None" if depth is None else depth},
            forest(n, depth),
        )
        for n in (50, 200)
        for depth in (4, None)
    ]
    sweep += [
        Candidate(f"gboost-lr{lr:g}", "gradient_boosting", {"learning_rate": lr, "n_estimators": 100}, boosting(lr))
        for lr in (0.1, 0.05)
    ]
    return sweep


def run_demo(
    console: Console,
    experiment: str = EXPERIMENT,
    *,
    render_lineage: Callable[[LineageNode], RenderableType] | None = None,
    render_audit: Callable[[list[AuditEvent]], RenderableType] | None = None,
    close_loop: bool = True,
    feature_store: bool = True,
) -> DemoResult:
    """Train the sweep, register and promote the best model, print what happened, and return what was created.

    ``render_lineage`` and ``render_audit`` draw the version's lineage tree and
    the demo's audit events (the CLI passes its own renderers); when None,
    those two sections are left out.
    """
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: no display needed, no window opened

    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    import loopml

    started = time.perf_counter()
    data = load_breast_cancer(as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=TEST_SIZE, random_state=RANDOM_STATE, stratify=data.target
    )
    labels = [str(name) for name in data.target_names]
    sweep = candidates()
    client = loopml.get_tracking_client()
    fitted: dict[str, Any] = {}

    progress = Progress(
        TextColumn("[bold]{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with (
        progress,
        loopml.start_run(
            "sweep",
            experiment=experiment,
            params={
                "model": "sweep",
                "dataset": DATASET,
                "test_size": TEST_SIZE,
                "random_state": RANDOM_STATE,
                "n_candidates": len(sweep),
            },
            tags={"demo": "true"},
        ) as parent,
    ):
        task = progress.add_task("training", total=len(sweep))
        for candidate in sweep:
            progress.update(task, description=candidate.name)
            with loopml.start_run(candidate.name, experiment=experiment, parent=parent, tags={"demo": "true"}) as run:
                fitted[run.run_id] = _train_one(run, candidate, X_train, X_test, y_train, y_test, labels)
            progress.advance(task)
        progress.update(task, description="done")

        page = client.search_runs(
            experiment,
            filter=f"attributes.parent_run_id = '{parent.run_id}'",
            order_by=["metrics.roc_auc DESC", "metrics.log_loss ASC"],
            max_results=100,
            as_frame=False,
        )
        ranked = list(page)
        best = ranked[0]
        parent.log_metrics({"best_roc_auc": best.metrics["roc_auc"], "best_accuracy": best.metrics["accuracy"]})
        parent.set_tags({"best_run_id": best.run_id, "best_run_name": best.info.name})

    console.print()
    console.print(_ranking_table(ranked, experiment))
    registered = _register_best(console, ranked, parent.run_id, fitted[best.run_id], X_test)
    served = _serve_champion(console, fitted[best.run_id], X_test) if registered.promoted else None
    lineage = loopml.get_lineage(f"models:/{MODEL_NAME}/{registered.version}")
    events = [e for e in _model_events(registered.window_start) if e.event_id not in registered.seen]
    elapsed = time.perf_counter() - started
    result = DemoResult(
        experiment=experiment,
        parent_run_id=parent.run_id,
        child_run_ids=tuple(run.run_id for run in ranked),
        best_run_id=best.run_id,
        elapsed_s=elapsed,
        model_name=MODEL_NAME,
        version=registered.version,
        promoted=registered.promoted,
        predictions_match=registered.predictions_match,
        lineage=lineage,
        audit_actions=[event.action for event in events],
        served=served,
    )
    if render_lineage is not None:
        console.print()
        console.print(Text(f"Lineage of models:/{MODEL_NAME}/{registered.version}", style="bold"))
        console.print(render_lineage(lineage))
    if render_audit is not None:
        console.print()
        console.print(Text(f"Audit log of this demo ({len(events)} events)", style="bold"))
        console.print(render_audit(events))
    if registered.promoted and close_loop:
        result = replace(result, loop=_close_the_loop(console))
    if feature_store:  # a feature view over the same data, trained through it, served by entity key
        from loopml.demo_features import run_feature_demo

        result = replace(result, features=run_feature_demo(console, f"{experiment}-features", data))
    console.print()
    console.print(
        _summary_panel(client, experiment, parent.run_id, ranked, elapsed, registered, served, result.loop)
    )
    _print_next(console, result)
    return result


def _close_the_loop(console: Console) -> LoopResult:
    """Watch the champion, shift its traffic, and let the agent retrain, gate, canary and promote."""
    from loopml.config import get_settings
    from loopml.demo_loop import decisions_table, run_loop

    console.print()
    console.print(Text("Closing the loop: monitor -> drift alert -> retrain -> gates -> canary -> promotion", style="bold"))
    report = get_settings().home / "reports" / "breast-cancer-drift.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    loop = run_loop(console, MODEL_NAME, report_path=str(report))
    console.print()
    console.print(decisions_table(loop))
    return loop


@dataclass(frozen=True, slots=True)
class _Registered:
    version: int
    promoted: bool
    predictions_match: bool
    events: list[AuditEvent]
    window_start: int
    seen: frozenset[int]


def _register_best(console: Console, ranked: list[Any], sweep_id: str, model: Any, X_test: Any) -> _Registered:
    """Register the best run's model, store the evidence, and (if it passes the gate) make it the champion."""
    import numpy as np

    import loopml
    from loopml.errors import AliasNotFoundError, ModelNotFoundError

    best = ranked[0]
    # The demo's events are those that appear from here on. Reading by time alone would trust
    # this machine's clock to match the store's (a tracking server's may be off), so read a
    # generous window now and again at the end, and keep what is new.
    window_start = now_ms() - _AUDIT_WINDOW_MS
    seen = {event.event_id for event in _model_events(window_start)}
    previous: int | None = None
    with contextlib.suppress(AliasNotFoundError, ModelNotFoundError):
        previous = loopml.get_model_version(MODEL_NAME, CHAMPION).version
    version = loopml.register_model(
        f"runs:/{best.run_id}/model",
        MODEL_NAME,
        description=f"Best of {len(ranked)} candidates in sweep run {sweep_id} ({best.info.name}).",
        tags={"dataset": DATASET, "model": best.params.get("model", ""), "sweep_run_id": sweep_id, "demo": "true"},
    )
    score = best.metrics[GATE_METRIC]
    passed = score >= GATE_THRESHOLD
    loopml.set_evidence(
        MODEL_NAME,
        version.version,
        {
            "gate": f"{GATE_METRIC} >= {GATE_THRESHOLD}",
            "passed": passed,
            GATE_METRIC: score,
            "test_metrics": {key: best.metrics[key] for key in (*_METRICS, "fit_time_s") if key in best.metrics},
            "compared_runs": [
                # rounded: this list shows the ranking; the selected run's exact metrics are above
                {"run_id": run.run_id, "name": run.info.name, GATE_METRIC: round(run.metrics[GATE_METRIC], 4)}
                for run in ranked
            ],
            "ranked_by": "metrics.roc_auc DESC, metrics.log_loss ASC",
            "sweep_run_id": sweep_id,
        },
    )
    console.print()
    tick = Text("✓ ", style="bold green")
    console.print(
        Text.assemble(
            tick,
            "Registered ",
            (best.info.name, "bold"),
            " as ",
            (f"{MODEL_NAME} v{version.version}", "bold"),
            f" ({version.uri})",
        ),
        soft_wrap=True,
    )
    gate = f"{GATE_METRIC} {score:.4f} ≥ {GATE_THRESHOLD}"
    if not passed:
        console.print(
            Text.assemble(
                ("✗ ", "bold red"),
                f"Gate failed: {GATE_METRIC} {score:.4f} < {GATE_THRESHOLD}; "
                f"v{version.version} stays a candidate and @{CHAMPION} does not move",
            ),
            soft_wrap=True,
        )
        loaded_uri = version.uri
    else:
        console.print(Text.assemble(tick, f"Gate {gate} passed; evidence stored with the version"), soft_wrap=True)
        reason = f"best of {len(ranked)} by test {GATE_METRIC}; gate {gate} passed"
        in_production = [v.version for v in loopml.search_model_versions(MODEL_NAME, stage="production")]
        loopml.set_alias(MODEL_NAME, CHAMPION, version.version, reason=reason)  # the stage follows: production
        line = Text.assemble(tick, (f"@{CHAMPION}", "magenta"), f" → v{version.version}")
        if previous is not None:
            line.append(f" (was v{previous})")
        line.append("; stage ")
        line.append("production", style="green")
        if in_production:
            line.append(f" ({', '.join(f'v{number}' for number in in_production)} archived)")
        console.print(line, soft_wrap=True)
        loaded_uri = f"models:/{MODEL_NAME}@{CHAMPION}"
    loaded = loopml.load_model(loaded_uri)
    expected = np.asarray(model.predict(X_test))
    got = np.asarray(loaded.predict(X_test))
    match = expected.shape == got.shape and bool(np.array_equal(expected, got))
    if match:
        console.print(
            Text.assemble(tick, f"Loaded {loaded_uri}: its {len(got)} test predictions equal the trained model's"),
            soft_wrap=True,
        )
    else:
        differ = int(np.sum(expected != got)) if expected.shape == got.shape else len(expected)
        console.print(
            Text(f"✗ Loaded {loaded_uri}: {differ} of {len(expected)} test predictions differ", style="bold red"),
            soft_wrap=True,
        )
    events = [event for event in _model_events(window_start) if event.event_id not in seen]
    return _Registered(
        version=version.version,
        promoted=passed,
        predictions_match=match,
        events=events,
        window_start=window_start,
        seen=frozenset(seen),
    )


def _serve_champion(console: Console, model: Any, X_test: Any) -> Served:
    """Deploy @champion, serve it on a free 127.0.0.1 port in a thread, and time real HTTP requests to it."""
    import socket
    import statistics
    import threading

    import httpx
    import numpy as np
    import uvicorn

    import loopml
    from loopml.serving.app import create_serving_app

    loopml.deploy(MODEL_NAME, CHAMPION, reason=f"demo: serve @{CHAMPION}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    app = create_serving_app(loopml.get_tracking_client().store, models=[MODEL_NAME], poll_interval_s=0.5)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="loopml-demo-serve", daemon=True)
    started = now_ms()
    thread.start()
    rows = X_test.to_dict(orient="records")
    path = f"/v1/models/{MODEL_NAME}/predict"
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            deadline = time.monotonic() + 60
            while not server.started or http.get("/readyz").status_code != 200:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("the demo's prediction service did not start")
                time.sleep(0.02)
            http.post(path, json={"inputs": rows[0]}).raise_for_status()  # the first request of a connection
            latencies, answers = [], []
            began = time.perf_counter()
            for row in rows:
                sent = time.perf_counter()
                response = http.post(path, json={"inputs": row})
                latencies.append((time.perf_counter() - sent) * 1000)
                response.raise_for_status()
                answers.extend(response.json()["predictions"])
            elapsed = time.perf_counter() - began
            sent = time.perf_counter()
            batch = http.post(path, json={"records": rows})
            batch_ms = (time.perf_counter() - sent) * 1000
            batch.raise_for_status()
    finally:
        server.should_exit = True
        thread.join(timeout=30)  # the app's shutdown writes the prediction log out
    expected = np.asarray(model.predict(X_test)).tolist()
    match = answers == expected and batch.json()["predictions"] == expected
    logged = len(loopml.search_predictions(MODEL_NAME, since=started))
    ordered = sorted(latencies)
    served = Served(
        url=url,
        requests=len(rows),
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        requests_per_s=len(rows) / elapsed,
        batch_ms=batch_ms,
        predictions_match=match,
        logged=logged,
    )
    tick = Text("✓ ", style="bold green") if match else Text("✗ ", style="bold red")
    console.print(
        Text.assemble(
            tick,
            "Deployed ",
            (f"@{CHAMPION}", "magenta"),
            f" and served it at {url}: {served.requests} held-out rows as HTTP requests, p50 {served.p50_ms:.2f} ms, "
            f"p99 {served.p99_ms:.2f} ms, {served.requests_per_s:.0f} req/s; all {served.requests} in one batch: "
            f"{served.batch_ms:.1f} ms; {served.logged} requests in the prediction log",
        ),
        soft_wrap=True,
    )
    return served


_AUDIT_WINDOW_MS = 10 * 60 * 1000


def _model_events(since_ms: int) -> list[AuditEvent]:
    import loopml

    return cast("list[AuditEvent]", loopml.search_audit_events(target=MODEL_NAME, since=since_ms, max_results=100_000))


def _train_one(
    run: Any, candidate: Candidate, X_train: Any, X_test: Any, y_train: Any, y_test: Any, labels: list[str]
) -> Any:
    """Fit one candidate, log everything about it (the model too) to ``run``, and return the fitted model."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        accuracy_score,
        classification_report,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    run.log_params({"model": candidate.model, **candidate.params, "random_state": RANDOM_STATE})
    run.log_dataset(X_train, DATASET, context="train")
    run.log_dataset(X_test, DATASET, context="test")

    model = candidate.build()
    tick = time.perf_counter()
    model.fit(X_train, y_train)
    fit_time = time.perf_counter() - tick

    proba = model.predict_proba(X_test)[:, 1]
    predicted = model.predict(X_test)
    run.log_metrics(
        {
            "accuracy": accuracy_score(y_test, predicted),
            "f1": f1_score(y_test, predicted),
            "roc_auc": roc_auc_score(y_test, proba),
            "log_loss": log_loss(y_test, proba),
            "fit_time_s": fit_time,
        }
    )
    for step, deviance in enumerate(getattr(model, "train_score_", ())):
        run.log_metric("train_deviance", float(deviance), step=step)

    figure, axes = plt.subplots(figsize=(4, 4))
    try:
        ConfusionMatrixDisplay.from_predictions(y_test, predicted, display_labels=labels, ax=axes, colorbar=False)
        axes.set_title(candidate.name)
        run.log_figure(figure, "confusion_matrix.png")
    finally:
        plt.close(figure)
    report = classification_report(y_test, predicted, target_names=labels, output_dict=True)
    run.log_dict(report, "classification_report.json")
    run.log_model(model, "model", input_example=X_train.head())
    return model


# -- output ----------------------------------------------------------------------------------

_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
_NOT_SHOWN = frozenset({"model", "random_state", "max_iter", "scaler"})


def _ranking_table(ranked: list[Any], experiment: str) -> Table:
    table = Table(
        title=f"{experiment}: child runs ranked by test ROC AUC",
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        show_edge=False,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Run", style="bold", no_wrap=True)
    table.add_column("Model and key params", overflow="fold")
    for metric in _METRICS:
        table.add_column(metric, justify="right", no_wrap=True)
    table.add_column("Fit", justify="right", no_wrap=True)
    for rank, run in enumerate(ranked, start=1):
        model = Text(run.params.get("model", ""))
        params = " ".join(f"{k}={v}" for k, v in sorted(run.params.items()) if k not in _NOT_SHOWN)
        model.append(f" {params}", style="dim")
        table.add_row(
            str(rank),
            Text(run.info.name),
            model,
            *(f"{run.metrics[key]:.4f}" for key in _METRICS),
            f"{run.metrics['fit_time_s']:.2f}s",
            style="green" if rank == 1 else None,
        )
    return table


def _summary_panel(
    client: Any,
    experiment: str,
    parent_id: str,
    ranked: list[Any],
    elapsed: float,
    registered: _Registered,
    served: Served | None = None,
    loop: LoopResult | None = None,
) -> Panel:
    from loopml.config import get_settings

    best = ranked[0]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("Tracking store", Text(hide_password(client.store.url)))
    grid.add_row("Artifacts", Text(get_settings().artifacts_url))
    grid.add_row("Experiment", Text(experiment))
    grid.add_row("Runs", f"{len(ranked)} child runs of sweep run {parent_id}; all done in {elapsed:.1f}s")
    grid.add_row("Best run", Text.assemble((best.run_id, "green"), f"  {best.info.name}"))
    grid.add_row("", f"roc_auc {best.metrics['roc_auc']:.4f}, accuracy {best.metrics['accuracy']:.4f}")
    model = Text.assemble((f"{MODEL_NAME} v{registered.version}", "green"))
    if registered.promoted:
        model.append("  @champion, production", style="")
    else:
        model.append("  candidate (gate failed)", style="red")
    grid.add_row("Registered", model)
    if served is not None:
        grid.add_row("Served", Text.assemble((served.url, "cyan"), f"  ({CHAMPION}, prediction log on)"))
        grid.add_row(
            "",
            f"{served.requests} requests: p50 {served.p50_ms:.2f} ms, p99 {served.p99_ms:.2f} ms, "
            f"{served.requests_per_s:.0f} req/s (one client); {served.requests} rows in one batch: {served.batch_ms:.1f} ms",
        )
    if loop is not None:
        grid.add_row("Monitored", Text.assemble(
            f"normal traffic {loop.baseline_status}; shifted traffic ", (loop.shifted_status, "red"),
            f": drifted {', '.join(loop.drifted_columns)}",
        ))  # fmt: skip
        grid.add_row("Drift report", Text(loop.report_path, style="cyan"))
        task = loop.task
        outcome = "no retrain" if task is None else f"task {task.task_id} {task.state}: {task.outcome}"
        grid.add_row("Closed the loop", Text(outcome, style="green" if task is not None and task.state == "succeeded" else "red"))
    return Panel(grid, title="loopml demo", title_align="left", border_style="green", expand=False)


def next_commands(result: DemoResult) -> list[str]:
    """Commands worth trying on what the demo recorded."""
    second = result.child_run_ids[1] if len(result.child_run_ids) > 1 else result.best_run_id
    commands = [
        f"loopml runs list -e {result.experiment}",
        f"loopml runs show {result.best_run_id}",
        f"loopml runs compare {result.best_run_id} {second}",
        f'loopml runs list -e {result.experiment} -f "params.model = \'random_forest\'" -o "metrics.f1 DESC"',
        f"loopml models show {result.model_name}",
        f"loopml models show {result.model_name}@{CHAMPION}",
        f"loopml lineage models:/{result.model_name}@{CHAMPION}",
        f"loopml audit --target {result.model_name}",
        f"loopml serve -m {result.model_name}@{CHAMPION}   # then POST /v1/models/{result.model_name}/predict",
    ]
    if result.loop is not None:  # what only the closed loop creates: a deployment, a monitor, a loop task
        from loopml.demo_loop import MONITOR

        commands += [
            "loopml deployments list",
            f"loopml monitor show {MONITOR}",
            f"loopml monitor report {MONITOR} --out report.html",
            "loopml loop status",
        ]
    return commands


def _print_next(console: Console, result: DemoResult) -> None:
    console.print(Text("Try next (from this folder, or with the same LOOPML_HOME):", style="bold"))
    for command in next_commands(result):
        # soft_wrap: long commands stay on one line, so they copy and paste intact
        console.print(Text(f"  {command}", style="cyan"), soft_wrap=True)
    console.print(Text("See it in a browser: loopml ui   then open", style="bold"))
    for url in ui_pages(result):
        console.print(Text(f"  {url}", style="cyan"), soft_wrap=True)


def ui_pages(result: DemoResult, base: str = "http://127.0.0.1:5000") -> list[str]:
    """The web UI's pages worth a look after the demo (``loopml ui`` serves them)."""
    return [
        f"{base}/   (experiments; {result.experiment} holds the sweep)",
        f"{base}/runs/{result.parent_run_id}   (the sweep: its child runs, datasets, artifacts)",
        f"{base}/runs/{result.best_run_id}   (the best run)",
    ]

