"""Model performance once labels arrive: metrics per time bucket and per segment, from predictions joined with labels.

Input columns (names are arguments, these are the defaults):

* ``time``: when the prediction was made (datetime; needed only with ``bucket``);
* ``prediction``: the model's output (a class, or a number for regression);
* ``label``: the true value, joined from feedback (see :func:`join_labels`);
* ``score`` (optional, classification): the predicted probability or score of
  the positive class, for ROC AUC and log loss;
* any other columns, used as segments with ``by=``.

The serving prediction log has the columns ``request_id``, ``time`` (UTC),
``model``, ``version``, ``inputs``, ``outputs``, ``latency_ms`` and ``status``;
feedback has ``request_id``, ``label`` and ``time``. ``join_labels(log,
feedback)`` turns them into the frame above (``outputs`` becomes
``prediction``, the feedback time ``label_time``), and
:func:`loopml.monitoring.operations.operations` reads latency and errors from
the log itself.

Every metric is computed for all groups at once with ``groupby`` sums (ranks
within groups for ROC AUC), never with a loop over rows or groups. The
definitions follow scikit-learn: binary precision/recall/F1 of ``pos_label``
(1 or True when the classes are {0, 1} or booleans), macro averages over the
classes present in the group otherwise, 0 where a ratio has no denominator;
ROC AUC and log loss for binary tasks only (NaN when a group holds one class,
or scores leave [0, 1] for log loss); R^2 of a constant label is 1 for a
perfect fit and 0 otherwise; MAPE divides by ``max(|label|, eps)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_float_dtype

from loopml.errors import InvalidValueError
from loopml.monitoring.frames import as_frame, require_columns
from loopml.monitoring.grouping import finish, group_keys

if TYPE_CHECKING:
    from pandas.api.extensions import ExtensionArray

EPS = float(np.finfo(np.float64).eps)
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
Task = Literal["auto", "classification", "regression"]


def performance(
    frame: pd.DataFrame,
    *,
    task: Task = "auto",
    bucket: str | None = None,
    by: str | Sequence[str] | None = None,
    score: str | None = None,
    pos_label: Any = None,
    time: str = "time",
    prediction: str = "prediction",
    label: str = "label",
) -> pd.DataFrame:
    """Classification or regression metrics per bucket and segment (``task="auto"``: regression when the labels or
    the predictions are floats that are not all whole numbers, classification otherwise). See
    :func:`classification_metrics` and :func:`regression_metrics`."""
    frame = as_frame(frame, "predictions", allow_empty=True)
    require_columns(frame, [prediction, label], "predictions")
    if task == "auto":
        task = _guess_task(frame[label], frame[prediction])
    if task == "classification":
        return classification_metrics(
            frame, bucket=bucket, by=by, score=score, pos_label=pos_label, time=time, prediction=prediction, label=label
        )
    if task == "regression":
        if score is not None or pos_label is not None:
            raise InvalidValueError("score and pos_label apply to classification only.")
        return regression_metrics(frame, bucket=bucket, by=by, time=time, prediction=prediction, label=label)
    raise InvalidValueError(f"task must be 'auto', 'classification' or 'regression', got {task!r}.")


def classification_metrics(
    frame: pd.DataFrame,
    *,
    bucket: str | None = None,
    by: str | Sequence[str] | None = None,
    score: str | None = None,
    pos_label: Any = None,
    time: str = "time",
    prediction: str = "prediction",
    label: str = "label",
) -> pd.DataFrame:
    """One row per bucket and segment: the keys, ``n``, accuracy, precision, recall, f1, roc_auc, log_loss.

    Rows without a label are left out. ROC AUC and log loss need ``score`` (the positive class's
    probability or score) and a binary task; they are NaN otherwise. Labels and predictions must be of
    one kind: where one side holds numbers and the other strings, the strings are read as numbers
    (feedback sent as ``"1"`` for a prediction ``1``), or InvalidValueError when they are not numbers.
    """
    frame = _labelled(frame, [prediction, label, *([score] if score else [])])
    y_true, y_pred = _comparable(frame[label], label, frame[prediction], prediction)
    frame = frame.assign(**{label: y_true, prediction: y_pred})
    classes = pd.unique(pd.concat([y_true, y_pred], ignore_index=True))
    positive = _positive_label(classes, pos_label)
    work, keys, names = group_keys(
        frame.assign(_correct=(y_true == y_pred).to_numpy()), bucket=bucket, by=by, time=time, which="predictions"
    )
    grouped = work.groupby(keys, observed=True, dropna=False, sort=True)
    table = pd.DataFrame({"n": grouped.size()})
    table["accuracy"] = grouped["_correct"].mean()
    if positive is not None:
        table = table.join(_binary(work, keys, y_true == positive, y_pred == positive))
        if score is not None:
            table = table.join(_ranked(work, keys, y_true == positive, score))
    else:
        table = table.join(_macro(work, keys, label, prediction))
    for column in CLASSIFICATION_METRICS:
        if column not in table:
            table[column] = np.nan
    return finish(table[["n", *CLASSIFICATION_METRICS]], names, time)


def regression_metrics(
    frame: pd.DataFrame,
    *,
    bucket: str | None = None,
    by: str | Sequence[str] | None = None,
    time: str = "time",
    prediction: str = "prediction",
    label: str = "label",
) -> pd.DataFrame:
    """One row per bucket and segment: the keys, ``n``, mae, rmse, r2, mape (rows without a label left out)."""
    frame = _labelled(frame, [prediction, label])
    y_true = _floats(frame[label], label)
    y_pred = _floats(frame[prediction], prediction)
    error = y_pred - y_true
    work = frame.assign(
        _abs=np.abs(error),
        _sq=error**2,
        _pct=np.abs(error) / np.maximum(np.abs(y_true), EPS),
        _y=y_true,
    )
    work, keys, names = group_keys(work, bucket=bucket, by=by, time=time, which="predictions")
    grouped = work.groupby(keys, observed=True, dropna=False, sort=True)
    work["_dev"] = (work["_y"] - grouped["_y"].transform("mean")) ** 2
    grouped = work.groupby(keys, observed=True, dropna=False, sort=True)
    sums = grouped[["_abs", "_sq", "_pct", "_dev"]].sum()
    n = grouped.size()
    table = pd.DataFrame({"n": n})
    table["mae"] = sums["_abs"] / n
    table["rmse"] = np.sqrt(sums["_sq"] / n)
    residual, spread = sums["_sq"].to_numpy(), sums["_dev"].to_numpy()
    perfect = np.where(residual == 0, 1.0, 0.0)
    table["r2"] = np.where(spread > 0, 1 - residual / np.where(spread > 0, spread, 1.0), perfect)
    table["mape"] = sums["_pct"] / n
    return finish(table, names, time)


def join_labels(
    predictions: pd.DataFrame, feedback: pd.DataFrame, *, how: Literal["inner", "left"] = "inner"
) -> pd.DataFrame:
    """Attach feedback labels to logged predictions by ``request_id``.

    ``predictions`` is the prediction log (``request_id``, ``time``, ``model``, ``version``,
    ``inputs``, ``outputs``, ``latency_ms``, ``status``); its ``outputs`` column is renamed
    ``prediction`` unless one exists already. ``feedback`` has ``request_id``, ``label`` and
    optionally ``time``: when a request got several labels the last one wins (latest ``time``, then
    the later row). The feedback time comes back as ``label_time``. ``how="inner"`` keeps labelled
    predictions only, ``"left"`` keeps every prediction (label NaN where none came).
    """
    predictions = as_frame(predictions, "predictions", allow_empty=True)
    feedback = as_frame(feedback, "feedback", allow_empty=True)
    require_columns(predictions, ["request_id"], "predictions")
    require_columns(feedback, ["request_id", "label"], "feedback")
    if how not in ("inner", "left"):
        raise InvalidValueError(f"how must be 'inner' or 'left', got {how!r}.")
    if "prediction" not in predictions.columns and "outputs" in predictions.columns:
        predictions = predictions.rename(columns={"outputs": "prediction"})
    labels = feedback[["request_id", "label", *(["time"] if "time" in feedback.columns else [])]]
    if "time" in labels.columns:
        labels = labels.sort_values("time", kind="stable").rename(columns={"time": "label_time"})
    labels = labels.drop_duplicates("request_id", keep="last")
    clashing = [c for c in labels.columns if c != "request_id" and c in predictions.columns]
    if clashing:
        predictions = predictions.drop(columns=clashing)
    return predictions.merge(labels, on="request_id", how=how, validate="many_to_one")


# -- internals ---------------------------------------------------------------------------------------------


def _labelled(frame: pd.DataFrame, required: list[str]) -> pd.DataFrame:
    frame = as_frame(frame, "predictions", allow_empty=True)
    require_columns(frame, required, "predictions")
    return frame[frame[required].notna().all(axis=1)]


def _guess_task(labels: pd.Series, predictions: pd.Series) -> Task:
    """Regression when either side holds floats that are not all whole numbers; classification otherwise.

    The predictions count too: a regression target is often whole (counts, prices, scikit-learn's
    diabetes data), and judging by the labels alone would score a regressor's outputs as classes.
    """
    for series in (labels, predictions):
        values = series.dropna()
        if is_float_dtype(values.dtype) and not np.all(np.mod(values.to_numpy(dtype=np.float64), 1) == 0):
            return "regression"
    return "classification"


def _comparable(labels: pd.Series, label: str, predictions: pd.Series, prediction: str) -> tuple[pd.Series, pd.Series]:
    """Labels and predictions as values that compare equal when they name the same class.

    ``"1" == 1`` is False, so labels sent as text for numeric predictions (or the reverse) would score
    every row as wrong; categoricals with different categories cannot be compared at all. Categoricals
    become plain values; a mix of strings and numbers is read as numbers, or rejected when a string is
    not one (scikit-learn refuses such a mix too).
    """
    labels, predictions = (
        s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s for s in (labels, predictions)
    )
    classes = pd.unique(pd.concat([labels, predictions], ignore_index=True).astype(object))
    texts = [v for v in classes if isinstance(v, str)]
    if not texts or len(texts) == len(classes):
        return labels, predictions
    try:
        return pd.to_numeric(labels), pd.to_numeric(predictions)
    except (ValueError, TypeError) as exc:
        other = next(v for v in classes if not isinstance(v, str))
        raise InvalidValueError(
            f"Columns {label!r} and {prediction!r} mix strings and numbers (e.g. {texts[0]!r} and {other!r}), "
            "so no label would match its prediction; send labels of the same type as the predictions."
        ) from exc


def _positive_label(classes: np.ndarray | ExtensionArray, pos_label: Any) -> Any:
    """The positive class for binary metrics, or None for a multiclass (macro-averaged) task."""
    if pos_label is not None:
        return pos_label
    present = set(classes.tolist())
    if present <= {0, 1} or present <= {False, True}:
        return True if any(isinstance(v, (bool, np.bool_)) for v in present) else 1
    return None


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    num, den = numerator.to_numpy(dtype=np.float64), denominator.to_numpy(dtype=np.float64)
    return pd.Series(np.divide(num, den, out=np.zeros_like(num), where=den > 0), index=numerator.index)


def _binary(work: pd.DataFrame, keys: list[Any], truth: pd.Series, predicted: pd.Series) -> pd.DataFrame:
    t, p = truth.to_numpy(), predicted.to_numpy()
    flags = work.assign(_tp=t & p, _fp=~t & p, _fn=t & ~p)
    sums = flags.groupby(keys, observed=True, dropna=False, sort=True)[["_tp", "_fp", "_fn"]].sum()
    tp, fp, fn = sums["_tp"], sums["_fp"], sums["_fn"]
    return pd.DataFrame(
        {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn)}
    )


def _macro(work: pd.DataFrame, keys: list[Any], label: str, prediction: str) -> pd.DataFrame:
    """Macro-averaged precision, recall and F1 over the classes present (as label or prediction) in each group."""
    true_counts = work.groupby([*keys, label], observed=True, dropna=False).size().rename("true")
    pred_counts = work.groupby([*keys, prediction], observed=True, dropna=False).size().rename("pred")
    hits = work[work[label] == work[prediction]]
    tp_counts = hits.groupby([*keys, label], observed=True, dropna=False).size().rename("tp")
    pred_counts.index = pred_counts.index.set_names(true_counts.index.names)
    tp_counts.index = tp_counts.index.set_names(true_counts.index.names)
    per_class = pd.concat([true_counts, pred_counts, tp_counts], axis=1).fillna(0)
    per_class["precision"] = _ratio(per_class["tp"], per_class["pred"])
    per_class["recall"] = _ratio(per_class["tp"], per_class["true"])
    per_class["f1"] = _ratio(2 * per_class["tp"], per_class["true"] + per_class["pred"])
    levels = list(range(per_class.index.nlevels - 1))
    return per_class.groupby(level=levels, dropna=False)[["precision", "recall", "f1"]].mean()


def _ranked(work: pd.DataFrame, keys: list[Any], truth: pd.Series, score: str) -> pd.DataFrame:
    """ROC AUC from within-group ranks (Mann-Whitney U), and binary log loss, for every group at once."""
    scores = _floats(work[score], score)
    y = truth.to_numpy(dtype=np.float64)
    clipped = np.clip(scores, EPS, 1 - EPS)
    in_unit = (scores >= 0) & (scores <= 1)
    flags = work.assign(
        _s=scores,
        _y=y,
        _loss=-(y * np.log(clipped) + (1 - y) * np.log1p(-clipped)),
        _outside=~in_unit,
    )
    grouped = flags.groupby(keys, observed=True, dropna=False, sort=True)
    flags["_rank_pos"] = grouped["_s"].rank(method="average") * y
    grouped = flags.groupby(keys, observed=True, dropna=False, sort=True)
    sums = grouped[["_y", "_rank_pos", "_loss", "_outside"]].sum()
    n = grouped.size()
    positives, negatives = sums["_y"], n - sums["_y"]
    both = (positives > 0) & (negatives > 0)
    u = sums["_rank_pos"] - positives * (positives + 1) / 2
    auc = (u / (positives * negatives).where(both)).where(both)
    loss = (sums["_loss"] / n).where(sums["_outside"] == 0)
    return pd.DataFrame({"roc_auc": auc, "log_loss": loss})


def _floats(series: pd.Series, name: str) -> np.ndarray:
    if is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64)
    try:
        return pd.to_numeric(series).to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InvalidValueError(f"Column {name!r} must hold numbers: {exc}") from exc
