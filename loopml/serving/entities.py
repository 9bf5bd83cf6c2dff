"""Requests by entity key: ``{"entities": [{"customer_id": 42}]}`` in, online features fetched, then predict.

A model version says which features it needs, in this order of precedence:

1. explicitly, a version tag ``loopml.feature_service`` naming an applied feature service
   (``register_model(..., tags={"loopml.feature_service": "churn"})``);
2. from its training data's lineage: the run's ``loopml.feature_view.<view>`` tags (left by ``log_dataset`` of a
   ``get_historical_features`` result) name the views, and the model's signature names the features.

The model gets one row per entity with its signature's columns: a feature's online value, or a value the entity
row carries itself (request-time inputs). The prediction log records the entity keys together with the feature
values used (``{"records": [...]}``), so monitors, and the skew monitor in particular, see exactly what the model
saw. Freshness is counted in ``/metrics`` (values present, missing, stale) with each view's materialization lag.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool

from loopml.errors import FeatureReferenceError, FeatureViewNotFoundError, InvalidInputError
from loopml.serving.payloads import Payload, loads

if TYPE_CHECKING:
    from prometheus_client import Counter

    from loopml.features.online.base import OnlineStore
    from loopml.serving.metrics import ServingMetrics
    from loopml.serving.predictor import Predictor
    from loopml.store import Store

#: The model-version tag naming the feature service a version was trained with.
FEATURE_SERVICE_TAG = "loopml.feature_service"
#: The run-tag prefix ``get_historical_features`` lineage leaves: ``loopml.feature_view.<view>`` = version.
FEATURE_VIEW_TAG = "loopml.feature_view."
MAX_ENTITIES = 10_000
_KEYS = frozenset({"entities", "key"})


@dataclass(frozen=True)
class FeaturePlan:
    """What one model version asks the online store for, and the columns its rows get."""

    features: list[str] | None  # "view:feature" references, or None with a service
    service: str | None
    columns: list[str] | None  # the model's input columns in order (None: every feature, then nothing else)


def wants_entities(body: bytes) -> bool:
    """Whether a v1 body asks by entity key (a cheap byte test; ``parse`` checks the shape)."""
    return b'"entities"' in body


def parse(body: bytes) -> Payload | None:
    """``{"entities": [{...}, ...], "key"?: ...}`` as a Payload whose records are the entity rows.

    None when the body has no top-level ``entities`` (the byte test also matches a column or a value named
    "entities" inside an ordinary v1 body, which the caller then parses as v1).
    """
    data = loads(body)
    if not isinstance(data, dict) or "entities" not in data:
        return None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InvalidInputError(f"Unknown field(s) {', '.join(map(repr, unknown))} beside 'entities'.")
    rows = data["entities"]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and r for r in rows):
        raise InvalidInputError("'entities' must be a non-empty list of objects holding each entity's join keys.")
    if len(rows) > MAX_ENTITIES:
        raise InvalidInputError(f"'entities' holds {len(rows)} rows; at most {MAX_ENTITIES} per request.")
    key = data.get("key")
    if key is not None and (isinstance(key, bool) or not isinstance(key, str | int)):
        raise InvalidInputError(f"'key' must be a string or a whole number, got {type(key).__name__}.")
    return Payload(records=rows, key=None if key is None else str(key), body=body)


class EntityFeatures:
    """The serving process's link to the feature store: plans per model version, the online store, metrics."""

    def __init__(self, store: Store, metrics: ServingMetrics, *, online: OnlineStore | None = None) -> None:
        from prometheus_client import Counter

        self._store = store
        self._online = online
        self._plans: dict[tuple[str, int], FeaturePlan] = {}
        self._lock = threading.Lock()
        self.values: Counter = Counter(
            "loopml_serving_feature_values",
            "Feature values fetched for requests by entity key: present, missing (never stored) or stale (older "
            "than the view's ttl).",
            ["outcome"],
            registry=metrics.registry,
        )
        for outcome in ("present", "missing", "stale"):
            self.values.labels(outcome)
        metrics.registry.register(_LagCollector(self))

    @property
    def online(self) -> OnlineStore:
        """The online store named by the environment, opened on first use."""
        if self._online is None:
            with self._lock:
                if self._online is None:
                    from loopml.features.online import open_online_store

                    self._online = open_online_store()
        return self._online

    def plan(self, name: str, version: int, predictor: Predictor) -> FeaturePlan:
        """The features model version ``name``/``version`` uses (read from the registry once per version)."""
        found = self._plans.get((name, version))
        if found is None:
            found = self._plans[(name, version)] = _plan(self._store, name, version, predictor)
        return found

    async def fill(self, payload: Payload, predictor: Predictor, name: str, version: int) -> tuple[Payload, bytes]:
        """The model's rows for the entity rows in ``payload``, and the body to log (keys + features used)."""
        from loopml.features.cache import cache_for
        from loopml.features.online_features import lookup

        entities = payload.records or []
        plan = self._plans.get((name, version))
        if plan is None:
            plan = await run_in_threadpool(self.plan, name, version, predictor)
        cache = cache_for(self._store)  # in memory; the version is looked at every few seconds
        try:
            got = lookup(cache.get(), self.online, entities, plan.features, plan.service)
        except (FeatureViewNotFoundError, FeatureReferenceError):  # applied a moment ago: look now, once
            cache.invalidate()
            got = lookup(cache.get(), self.online, entities, plan.features, plan.service)
        present = len(entities) * len(got.features) - got.missing - got.stale
        self.values.labels("present").inc(present)
        if got.missing:
            self.values.labels("missing").inc(got.missing)
        if got.stale:
            self.values.labels("stale").inc(got.stale)
        columns = plan.columns or got.features
        rows = []
        for i, row in enumerate(got.rows):
            missing = [c for c in columns if c not in row]
            if missing:
                raise InvalidInputError(
                    f"entity row {i} lacks {missing[0]!r}: the model needs it and no feature of its service gives it."
                )
            rows.append({c: row[c] for c in columns})
        model_body = orjson.dumps({"records": rows})
        logged = orjson.dumps({"records": got.rows}, default=_iso)
        return Payload(records=rows, key=payload.key, body=model_body), logged

    def lags(self) -> dict[str, float]:
        """Seconds since each applied view's materialized-up-to time (views never materialized are left out)."""
        from loopml.features.cache import definitions_for

        views = definitions_for(self._store).views
        if not views:  # a server without feature views never opens (nor creates) an online store
            return {}
        now = datetime.now(UTC)
        out: dict[str, float] = {}
        for view in views:
            watermark = self.online.get_watermark(view)
            if watermark is not None:
                out[view] = max(0.0, (now - watermark).total_seconds())
        return out


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _plan(store: Store, name: str, version: int, predictor: Predictor) -> FeaturePlan:
    from loopml.features.cache import definitions_for

    mv = store.registry.get_version(name, version)
    signature = predictor.signature
    columns = [spec.name for spec in signature.inputs] if signature is not None else None
    service = mv.tags.get(FEATURE_SERVICE_TAG)
    if service:
        return FeaturePlan(None, service, columns)
    run = store.tracking.get_run(mv.run_id)
    views = [key.removeprefix(FEATURE_VIEW_TAG) for key in run.tags if key.startswith(FEATURE_VIEW_TAG)]
    if not views:
        raise InvalidInputError(
            f"Model version {name}/{version} declares no feature service (tag {FEATURE_SERVICE_TAG!r}) and its "
            "run logged no dataset from the feature store; send records instead of entities."
        )
    if columns is None:
        raise InvalidInputError(
            f"Model version {name}/{version} has no signature, so its features cannot be told from its lineage; "
            f"tag it {FEATURE_SERVICE_TAG!r} with the feature service it was trained with."
        )
    applied = definitions_for(store).views
    features = []
    for column in columns:
        owner = next((v for v in views if v in applied and column in applied[v].schema), None)
        if owner is not None:
            features.append(f"{owner}:{column}")
    if not features:
        raise InvalidInputError(f"None of model version {name}/{version}'s inputs is a feature of {views}.")
    return FeaturePlan(features, None, columns)


class _LagCollector:
    """``loopml_feature_materialization_lag_seconds{view}``, read from the online store at scrape time."""

    def __init__(self, features: EntityFeatures) -> None:
        self._features = features

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "loopml_feature_materialization_lag_seconds",
            "Seconds between now and the time up to which each feature view is materialized.",
            labels=["view"],
        )
        try:
            lags = self._features.lags()
        except Exception:  # a scrape must not fail because the feature store is away; the gauge goes missing
            lags = {}
        for view, seconds in sorted(lags.items()):
            family.add_metric([view], seconds)
        yield family
