"""A small, offline hyperparameter sweep that shows what loopml records.

``run_demo`` trains nine scikit-learn classifiers on the breast-cancer data
bundled with scikit-learn, each as a child run of one "sweep" run, logging
params, both dataset splits (by content hash), test metrics, a per-stage
metric history, a confusion-matrix figure and the classification report.
It then ranks the runs with ``search_runs`` and prints where everything lives.
It writes to whatever store the environment names (by default ``./.loopml``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

EXPERIMENT = "breast-cancer-demo"
DATASET = "breast-cancer"
RANDOM_STATE = 42
TEST_SIZE = 0.25


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo created: child run ids ranked by test ROC AUC, best first."""

    experiment: str
    parent_run_id: str
    child_run_ids: tuple[str, ...]
    best_run_id: str
    elapsed_s: float


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


def run_demo(console: Console, experiment: str = EXPERIMENT) -> DemoResult:
    """Train the sweep into the configured store, print the ranking, and return what was created."""
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
    client = loopml.get_client()

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
                _train_one(run, candidate, X_train, X_test, y_train, y_test, labels)
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

    elapsed = time.perf_counter() - started
    result = DemoResult(
        experiment=experiment,
        parent_run_id=parent.run_id,
        child_run_ids=tuple(run.run_id for run in ranked),
        best_run_id=best.run_id,
        elapsed_s=elapsed,
    )
    console.print()
    console.print(_ranking_table(ranked, experiment))
    console.print(_summary_panel(client, experiment, parent.run_id, ranked, elapsed))
    _print_next(console, result)
    return result


def _train_one(
    run: Any, candidate: Candidate, X_train: Any, X_test: Any, y_train: Any, y_test: Any, labels: list[str]
) -> None:
    """Fit one candidate and log everything about it to ``run``."""
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


def _summary_panel(client: Any, experiment: str, parent_id: str, ranked: list[Any], elapsed: float) -> Panel:
    from loopml.config import get_settings

    best = ranked[0]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("Tracking store", Text(_hide_password(client.store.url)))
    grid.add_row("Artifacts", Text(get_settings().artifacts_url))
    grid.add_row("Experiment", Text(experiment))
    grid.add_row("Runs", f"{len(ranked)} child runs of sweep run {parent_id}, trained in {elapsed:.1f}s")
    grid.add_row("Best run", Text.assemble((best.run_id, "green"), f"  {best.info.name}"))
    grid.add_row("", f"roc_auc {best.metrics['roc_auc']:.4f}, accuracy {best.metrics['accuracy']:.4f}")
    return Panel(grid, title="loopml demo", title_align="left", border_style="green", expand=False)


def next_commands(result: DemoResult) -> list[str]:
    """Commands worth trying on what the demo recorded."""
    second = result.child_run_ids[1] if len(result.child_run_ids) > 1 else result.best_run_id
    return [
        f"loopml runs list -e {result.experiment}",
        f"loopml runs show {result.best_run_id}",
        f"loopml runs compare {result.best_run_id} {second}",
        f'loopml runs list -e {result.experiment} -f "params.model = \'random_forest\'" -o "metrics.f1 DESC"',
    ]


def _print_next(console: Console, result: DemoResult) -> None:
    console.print(Text("Try next (from this folder, or with the same LOOPML_HOME):", style="bold"))
    for command in next_commands(result):
        # soft_wrap: long commands stay on one line, so they copy and paste intact
        console.print(Text(f"  {command}", style="cyan"), soft_wrap=True)


def _hide_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@/]+@", r"://\1:***@", url)
