"""ServingClient: deploy and roll back models, read the prediction log, send and read feedback.

Deployments are audited decisions (``deployment.create``,
``deployment.rollback``) recorded with the actor (``LOOPML_ACTOR`` or the
OS user unless given) and the reason. The prediction log comes back as a
pandas DataFrame, one row per request (or per predicted row with
``flatten=True``), with the delayed labels joined in on request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml._lazy import deprecated_alias
from loopml.auth.audit import default_actor
from loopml.entities.serving import Deployment, Feedback, PredictionRecord
from loopml.errors import InvalidValueError
from loopml.store.serving import check_percent, check_request_id, check_version_number
from loopml.timestamps import now_ms, to_ms
from loopml.tracking.client import TrackingClient
from loopml.uris import check_alias, check_model_name

if TYPE_CHECKING:
    import pandas as pd

    from loopml.store import Store

Moment = datetime | int | float | str | None
COLUMNS = ("request_id", "time", "model", "version", "role", "status", "latency_ms", "inputs", "outputs")
_FLAT_COLUMNS = frozenset({*COLUMNS[:7], "row", "prediction", "label"})


class ServingClient:
    """The serving API over one store (shared with a TrackingClient).

    Example:
        >>> client = ServingClient()
        >>> client.deploy("churn", "champion", canary={"version": 7, "percent": 10})  # doctest: +SKIP
        >>> client.search_predictions("churn", since="2026-01-01").head()  # doctest: +SKIP
    """

    def __init__(self, tracking: TrackingClient | None = None) -> None:
        self.tracking = tracking or TrackingClient()

    @property
    def store(self) -> Store:
        return self.tracking.store

    # -- deployments ---------------------------------------------------------------------------
    def deploy(
        self,
        name: str,
        version_or_alias: int | str,
        *,
        canary: Mapping[str, Any] | None = None,
        shadow: Mapping[str, Any] | int | None = None,
        reason: str | None = None,
        actor: str | None = None,
    ) -> Deployment:
        """Make ``version_or_alias`` the version ``name`` is served with; running servers follow within seconds.

        Args:
            name: the registered model.
            version_or_alias: a version number, an alias (servers follow it when it moves), or "latest"
                (the newest version now, recorded as its number).
            canary: ``{"version": 7, "percent": 10}`` sends that share of requests to version 7.
            shadow: ``{"version": 8}`` (or ``8``) runs version 8 on a copy of every request, logging its
                answers with role "shadow" and never returning them.
            reason: why, for the audit log.
        """
        check_model_name(name)
        target = _target(self, name, version_or_alias)
        canary_version = canary_percent = None
        if canary is not None:
            if not isinstance(canary, Mapping) or set(canary) != {"version", "percent"}:
                raise InvalidValueError(f'canary must be {{"version": V, "percent": P}}, got {canary!r}.')
            canary_version = check_version_number(canary["version"], "canary version")
            canary_percent = check_percent(canary["percent"])
        shadow_version = None
        if shadow is not None:
            if isinstance(shadow, Mapping):
                if set(shadow) != {"version"}:
                    raise InvalidValueError(f'shadow must be {{"version": V}}, got {shadow!r}.')
                shadow = shadow["version"]
            shadow_version = check_version_number(shadow, "shadow version")
        return self.store.serving.create_deployment(
            name,
            target=target,
            canary_version=canary_version,
            canary_percent=canary_percent,
            shadow_version=shadow_version,
            actor=actor or default_actor(),
            reason=reason,
        )

    def rollback(self, name: str, *, reason: str | None = None, actor: str | None = None) -> Deployment:
        """Return ``name`` to the deployment before the current one (again: one further back)."""
        return self.store.serving.rollback_deployment(name, actor=actor or default_actor(), reason=reason)

    def get_deployment(self, name: str) -> Deployment:
        """The current deployment of ``name``; DeploymentNotFoundError when it has none."""
        return self.store.serving.current_deployment(name)

    def list_deployments(
        self, name: str | None = None, *, current: bool = False, max_results: int = 1000
    ) -> list[Deployment]:
        """Deployments of ``name`` (or of every model), newest first; ``current`` keeps one per model."""
        if current:
            return self.store.serving.current_deployments(None if name is None else [name])
        return self.store.serving.list_deployments(name, max_results=max_results)

    # -- the prediction log ------------------------------------------------------------------------
    def search_predictions(
        self,
        name: str,
        *,
        since: Moment = None,
        until: Moment = None,
        version: int | None = None,
        role: str | None = None,
        max_results: int = 100_000,
        flatten: bool = False,
        with_feedback: bool = False,
        keep_failed: bool = False,
    ) -> pd.DataFrame:
        """The logged predictions of ``name`` as a DataFrame, oldest first.

        One row per request: ``request_id``, ``time`` (UTC), ``model``,
        ``version``, ``role`` (main, canary, shadow), ``status``,
        ``latency_ms``, ``inputs`` (a list of records) and ``outputs`` (the
        predictions, or the error). With ``flatten`` one row per predicted
        row instead: the input columns spread out (one named like a column
        of the log, ``time`` say, left out), ``row`` its position in the
        request and ``prediction`` its answer (failed requests left out, or
        with ``keep_failed`` one row each with no ``row`` and no
        ``prediction``, for an error rate beside the answers).
        With ``with_feedback`` a ``label`` column holds the latest feedback
        for the request (None where none came).
        """
        records = self.store.serving.read_predictions(
            name, since=to_ms(since), until=to_ms(until), version=version, role=role, max_results=max_results
        )
        labels = self._labels(name) if with_feedback else None
        return predictions_frame(records, flatten=flatten, labels=labels, keep_failed=keep_failed)

    predictions = deprecated_alias(search_predictions, "predictions", "ServingClient")

    def _labels(self, name: str) -> dict[str, Any]:
        return {f.request_id: f.label for f in self.store.serving.read_feedback(name=name, max_results=1_000_000)}

    def send_feedback(self, request_id: str | Sequence[Mapping[str, Any]], label: Any = None) -> int:
        """Record ground truth: ``send_feedback(request_id, label)`` or a list of ``{"request_id", "label"}``."""
        now = now_ms()
        if isinstance(request_id, str):
            items = [Feedback(check_request_id(request_id), label, now)]
        else:
            items = []
            for entry in request_id:
                if not isinstance(entry, Mapping) or set(entry) != {"request_id", "label"}:
                    raise InvalidValueError(
                        f'Each feedback item is {{"request_id": ..., "label": ...}}, got {entry!r}.'
                    )
                items.append(Feedback(check_request_id(entry["request_id"]), entry["label"], now))
        self.store.serving.log_feedback(items)
        return len(items)

    def feedback(
        self, name: str | None = None, *, since: Moment = None, until: Moment = None, max_results: int = 100_000
    ) -> pd.DataFrame:
        """Feedback received (on ``name``'s requests), oldest first: ``request_id``, ``label``, ``time``."""
        import pandas as pd

        found = self.store.serving.read_feedback(
            name=name, since=to_ms(since), until=to_ms(until), max_results=max_results
        )
        frame = pd.DataFrame([(f.request_id, f.label, f.time) for f in found], columns=["request_id", "label", "time"])
        frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
        return frame


def _target(client: ServingClient, name: str, version_or_alias: int | str) -> str:
    if isinstance(version_or_alias, str) and version_or_alias.isdigit():
        version_or_alias = int(version_or_alias)
    if isinstance(version_or_alias, int) and not isinstance(version_or_alias, bool):
        return str(check_version_number(version_or_alias))
    if version_or_alias == "latest":
        from loopml.registry.client import RegistryClient

        return str(RegistryClient(client.tracking).get_model_version(name, "latest").version)
    if isinstance(version_or_alias, str):
        return check_alias(version_or_alias)
    raise InvalidValueError(f"Deploy a version number or an alias, got {version_or_alias!r}.")


# -- reading the log back ------------------------------------------------------------------------


def input_records(body: str) -> list[dict[str, Any]] | Any:
    """The rows a logged request body held, as records; the parsed body itself when it has no known shape."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return data
    if isinstance(data.get("records"), list):
        return data["records"]
    if isinstance(data.get("columns"), dict):
        columns = data["columns"]
        return [dict(zip(columns, row, strict=False)) for row in zip(*columns.values(), strict=False)]
    inputs = data.get("inputs")
    if isinstance(inputs, dict):
        return [inputs]
    if isinstance(inputs, list) and all(isinstance(t, dict) and "name" in t and "data" in t for t in inputs):
        try:
            return _v2_records(inputs)
        except (TypeError, ValueError, KeyError):  # a malformed request, logged with its 422: kept as sent
            return data
    return data


def _v2_records(tensors: list[dict[str, Any]]) -> list[dict[str, Any]] | Any:
    if len(tensors) == 1 and len(tensors[0].get("shape") or ()) == 2:
        tensor = tensors[0]
        n, k = tensor["shape"]
        data = tensor["data"]
        rows = data if data and isinstance(data[0], list) else [data[i * k : (i + 1) * k] for i in range(n)]
        return [{f"{tensor['name']}[{j}]": value for j, value in enumerate(row)} for row in rows]
    columns = {t["name"]: [v[0] if isinstance(v, list) and len(v) == 1 else v for v in t["data"]] for t in tensors}
    return [dict(zip(columns, row, strict=False)) for row in zip(*columns.values(), strict=False)]


def predictions_frame(
    records: Sequence[PredictionRecord],
    *,
    flatten: bool = False,
    labels: Mapping[str, Any] | None = None,
    keep_failed: bool = False,
) -> pd.DataFrame:
    """Prediction records as a DataFrame (see :meth:`ServingClient.predictions`)."""
    import pandas as pd

    if not flatten:
        rows = [
            (
                r.request_id,
                r.time,
                r.model,
                r.version,
                r.role,
                r.status,
                r.latency_ms,
                input_records(r.inputs),
                _load(r.outputs),
            )
            for r in records
        ]
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
    else:
        flat: list[dict[str, Any]] = []
        for r in records:
            outputs = _load(r.outputs)
            inputs = input_records(r.inputs)
            head = {"request_id": r.request_id, "time": r.time, "model": r.model, "version": r.version, "role": r.role,
                    "status": r.status, "latency_ms": r.latency_ms}  # fmt: skip
            if r.status != 200 or not isinstance(outputs, list) or not isinstance(inputs, list):
                if keep_failed:
                    flat.append({**head, "row": None, "prediction": None})
                continue
            for index, (row, prediction) in enumerate(zip(inputs, outputs, strict=False)):
                # an input column named like a log column ("time", "status", ...) must not overwrite it
                values = {k: v for k, v in row.items() if k not in _FLAT_COLUMNS} if isinstance(row, dict) else {}
                flat.append({**head, "row": index, **values, "prediction": prediction})
        frame = pd.DataFrame(flat, columns=None if flat else [*COLUMNS[:7], "row", "prediction"])
    if labels is not None:
        frame["label"] = [labels.get(rid) for rid in frame["request_id"]]
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    return frame


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
