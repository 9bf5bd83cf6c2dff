"""The prediction path: route a request to a version, predict, answer, log, and feed the shadow.

``PredictionService`` holds the pieces (model cache, deployment watcher,
prediction log, metrics, shadow worker) and runs one request in
``predict``. Everything it reads to route is in memory; the only waits on
the request path are a model's first load and the model itself. Cheap
models predict on the event loop (a thread hop costs more than they do),
slow ones in a worker thread.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
from starlette.concurrency import run_in_threadpool

from loopml.entities.serving import Feedback
from loopml.errors import (
    DeploymentNotFoundError,
    InvalidInputError,
    InvalidValueError,
    LoopMLError,
    NotFoundError,
    PredictionNotFoundError,
    ServiceUnavailableError,
)
from loopml.serving import binary
from loopml.serving.cache import DEFAULT_MAX_MODELS, ModelCache
from loopml.serving.entities import EntityFeatures, wants_entities
from loopml.serving.entities import parse as parse_entities
from loopml.serving.heap import keep_freed_heap
from loopml.serving.logwriter import LogWriterProcess
from loopml.serving.metrics import ServingMetrics
from loopml.serving.payloads import (
    Payload,
    binary_response,
    encode_predictions,
    parse_v1,
    parse_v2,
    v1_response,
    v2_response,
)
from loopml.serving.predictor import Predictor
from loopml.serving.predlog import (
    DEFAULT_CAPACITY,
    DEFAULT_CAPACITY_BYTES,
    LoggedPrediction,
    PredictionLog,
    StoreDestination,
)
from loopml.serving.requestids import RequestIds
from loopml.serving.routing import MAIN, SHADOW, Route
from loopml.serving.watcher import DEFAULT_POLL_INTERVAL_S, DeploymentWatcher, parse_model_spec
from loopml.store import Store
from loopml.store.serving import check_request_id
from loopml.timestamps import now_ms
from loopml.uris import check_alias, check_model_name

logger = logging.getLogger("loopml.serving")

#: Models whose predictions take less than this run on the event loop; slower ones in a thread.
INLINE_MAX_S = 0.002
INLINE_MAX_ROWS = 2_000
SHADOW_QUEUE = 1_000
#: How long feedback for a request answered here waits for the prediction-log writer before a 503.
FEEDBACK_WAIT_S = 10.0


class Answer(NamedTuple):
    """A prediction answer: the body, and the request id it carries (``replaced``: the caller's id it replaced)."""

    content: bytes
    request_id: str
    replaced: str | None
    header_length: int | None = None  # a v2 answer with binary outputs: its JSON header's length

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``X-Request-ID`` (the id used), and ``X-Request-ID-Rewritten-From`` when the caller's id was replaced.

        A binary v2 answer adds ``Inference-Header-Content-Length`` (where its JSON ends).
        """
        found = [(b"x-request-id", self.request_id.encode())]
        if self.replaced is not None:
            found.append((b"x-request-id-rewritten-from", self.replaced.encode()))
        if self.header_length is not None:
            found.append((b"inference-header-content-length", str(self.header_length).encode()))
        return found


class PredictionService:
    """Everything one prediction service process holds; ``start`` and ``close`` bracket its life."""

    def __init__(
        self,
        store: Store,
        *,
        models: Sequence[str] | None = None,
        max_loaded: int = DEFAULT_MAX_MODELS,
        max_memory: int | None = None,
        log_predictions: bool = True,
        log_capacity: int = DEFAULT_CAPACITY,
        log_capacity_bytes: int = DEFAULT_CAPACITY_BYTES,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        trusted: Sequence[str] | None = None,
        unsafe_pickle: bool = False,
        freeze_gc: bool = False,
        log_writer: str = "thread",
        store_uri: str | None = None,
    ) -> None:
        from loopml.registry.client import RegistryClient
        from loopml.tracking.client import TrackingClient

        self.store = store
        self.metrics = ServingMetrics()
        self._registry = RegistryClient(TrackingClient(store))
        self._trusted = None if trusted is None else list(trusted)
        self._unsafe_pickle = unsafe_pickle
        self._freeze_gc = freeze_gc
        self.cache = ModelCache(self._load, max_models=max_loaded, max_bytes=max_memory, metrics=self.metrics)
        specs = None if models is None else [parse_model_spec(m) for m in models]
        self.watcher = DeploymentWatcher(store.serving, self.cache, specs=specs, poll_interval_s=poll_interval_s)
        self._log_writer: LogWriterProcess | None = None
        if log_writer not in ("thread", "process"):
            raise InvalidValueError(f"log_writer must be 'thread' or 'process', got {log_writer!r}.")
        if log_predictions:  # the log holds bodies a batch long: keep their memory mapped (loopml.serving.heap)
            keep_freed_heap()
        if log_predictions and log_writer == "process":  # writes off this process's GIL (loopml.serving.logwriter)
            self._log_writer = LogWriterProcess(
                store_uri, sink=store.serving.prediction_sink, batching=store.serving.log_batching()
            )
        self.log = (
            PredictionLog(
                self._log_writer or StoreDestination(store.serving),
                capacity=log_capacity,
                capacity_bytes=log_capacity_bytes,
                metrics=self.metrics,
            )
            if log_predictions
            else None
        )
        self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopml-shadow")
        self._shadow_pending = 0
        self._shadow_lock = threading.Lock()
        self.request_ids = RequestIds()
        self.features = EntityFeatures(store, self.metrics)  # requests by entity key (loopml.serving.entities)
        self.metrics.watch(lambda: len(self.cache), lambda: self.cache.nbytes)

    def _load(self, name: str, version: int) -> Predictor:
        loaded = self._registry.load_model(
            f"models:/{name}/{version}", trusted=self._trusted, unsafe_pickle=self._unsafe_pickle
        )
        predictor = Predictor(loaded, name, version)
        if self._freeze_gc:
            gc.freeze()
        return predictor

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.log is not None:
            self.log.start()
        self.watcher.start()
        if self._freeze_gc:
            # Everything alive now (libraries, models) lives as long as the process: keep it out of the
            # collector's full passes, which otherwise walk it all and stall requests for tens of ms.
            gc.collect()
            gc.freeze()

    def close(self) -> None:
        """Stop polling, finish shadow work, write the prediction log out, release the models."""
        self.watcher.stop()
        self._shadow_pool.shutdown(wait=True, cancel_futures=True)
        if self.log is not None:
            self.log.close()
        if self._log_writer is not None:
            self._log_writer.close()
        self.cache.close()

    # -- one request ----------------------------------------------------------------------------
    async def predict(
        self,
        segment: str,
        version_text: str | None,
        body: bytes,
        *,
        v2: bool = False,
        key: str | None = None,
        request_id: str | None = None,
        header_length: int | None = None,
    ) -> Answer:
        """Answer one prediction request: ``segment`` is ``NAME`` or ``NAME@ALIAS`` from the path.

        The caller's request id (v2 ``id``, else ``X-Request-ID``) is kept unless this process answered it
        already; then the request gets a fresh id, and the answer names both (see ``RequestIds``).
        ``header_length`` is a v2 request's ``Inference-Header-Content-Length``: binary tensors follow.
        """
        start = time.perf_counter()
        try:
            name, version, route = await self._target(segment, version_text)
            by_entity_payload = parse_entities(body) if not v2 and wants_entities(body) else None
            by_entity = by_entity_payload is not None
            if by_entity_payload is not None:
                payload = by_entity_payload
            else:
                payload = parse_v2(body, header_length, model=name) if v2 else parse_v1(body)
        except LoopMLError as exc:
            self.metrics.rejected.labels(str(exc.http_status)).inc()
            raise
        role = MAIN
        if route is not None:
            version, role = route.choose(payload.key or key)
        assert version is not None
        predictor = self.cache.get((name, version))
        if predictor is None:
            try:
                predictor = await self.cache.aload((name, version))
            except LoopMLError as exc:
                if route is None and isinstance(exc, NotFoundError):
                    # the path named a version that does not exist: counted without a model label, as an
                    # unknown model is, so callers cannot grow the label set
                    self.metrics.rejected.labels(str(exc.http_status)).inc()
                else:
                    self.metrics.observe(name, version, role, exc.http_status, time.perf_counter() - start)
                raise
        if by_entity:  # fetch the version's online features; the log keeps the keys with the values used
            try:
                payload, body = await self.features.fill(payload, predictor, name, version)
            except LoopMLError as exc:
                self.metrics.observe(name, version, role, exc.http_status, time.perf_counter() - start)
                raise
        rid, replaced = self.request_ids.assign(_request_id(payload.request_id) or _request_id(request_id))
        if replaced is not None:
            self.metrics.request_ids_rewritten.inc()
        if payload.binary and self.log is not None:  # the log keeps JSON: the tensors' values as lists
            if payload.n_rows > INLINE_MAX_ROWS:  # tens of ms for 10,000 rows: not on the event loop
                body = await run_in_threadpool(binary.json_body, payload.tensors or [])
            else:
                body = binary.json_body(payload.tensors or [])
        try:
            result = np.atleast_1d(await self._run(predictor, payload))
        except LoopMLError as exc:
            self._finish(rid, name, version, role, body, _error_json(exc), start, exc.http_status)
            raise
        except Exception as exc:  # the model broke: a 500, still logged and counted
            error = json.dumps({"error": {"type": type(exc).__name__, "message": str(exc)}})
            self._finish(rid, name, version, role, body, error, start, 500)
            raise
        width = result.shape[1] if v2 and result.ndim == 2 else 0
        values = result.ravel().tolist() if width else result.tolist()
        predictions = encode_predictions(values)
        if v2 and payload.binary_output:
            answer, header = binary_response(result, predictor.name_json, version, rid, replaced)
            self._finish(rid, name, version, role, body, predictions, start, 200)
            return Answer(answer, rid, replaced, header)
        if v2:
            answer = v2_response(
                predictions, binary.datatype_of(result.dtype), len(result), predictor.name_json, version, rid, width,
                replaced,
            )
        else:
            answer = v1_response(predictions, predictor.name_json, version, rid, replaced)
        self._finish(rid, name, version, role, body, predictions, start, 200)
        if route is not None and route.shadow_version is not None:
            self._shadow(route.name, route.shadow_version, payload, body, rid)
        return Answer(answer, rid, replaced)

    async def _run(self, predictor: Predictor, payload: Payload) -> np.ndarray:
        """Predict: batched with concurrent requests, inline, or in a thread for slow models."""
        if predictor.cost_s >= INLINE_MAX_S or payload.n_rows > INLINE_MAX_ROWS:
            return await run_in_threadpool(predictor.predict, payload)
        fast, batcher = predictor.fast, predictor.batcher
        if batcher is not None and fast is not None and payload.no_booleans():
            array = fast.matrix(payload)
            if array is not None:
                return await batcher.submit(array)
        return predictor.predict(payload)

    async def _target(self, segment: str, version_text: str | None) -> tuple[str, int | None, Route | None]:
        """(model, version, route): the version is fixed by the path, or chosen from the route later."""
        if "@" in segment:
            name, _, alias = segment.partition("@")
        else:
            name, alias = segment, None
        try:
            check_model_name(name)
            if alias is not None:
                check_alias(alias)
        except LoopMLError as exc:
            raise DeploymentNotFoundError(f"No model {segment!r} here: {exc.message}") from None
        if version_text is not None:
            # isascii: str.isdigit also accepts digits such as '²' that int() refuses
            if not (version_text.isascii() and version_text.isdigit()) or not 1 <= int(version_text) <= 2**31 - 1:
                raise InvalidInputError(f"Version {version_text!r} in the path is not a whole number from 1.")
            self._check_served(name)
            return name, int(version_text), None
        if alias is not None:
            self._check_served(name)
            version = self.watcher.aliases.get((name, alias))
            if version is None:
                found = await run_in_threadpool(self._registry.get_model_version, name, alias)
                version = found.version
                self.watcher.watch_alias(name, alias, version)
            return name, version, None
        return name, None, self.watcher.route(name)

    def _check_served(self, name: str) -> None:
        if not self.watcher.serves(name):
            raise DeploymentNotFoundError(
                f"This server does not serve model {name!r}; it serves {self.watcher.describe()}."
            )

    def _finish(
        self,
        request_id: str,
        name: str,
        version: int,
        role: str,
        body: bytes,
        outputs: str,
        start: float,
        status: int,
    ) -> None:
        seconds = time.perf_counter() - start
        self.metrics.observe(name, version, role, status, seconds)
        if self.log is not None:
            self.log.offer(
                LoggedPrediction(request_id, now_ms(), name, version, role, body, outputs, seconds * 1000, status)
            )

    # -- shadow ----------------------------------------------------------------------------------
    def _shadow(self, name: str, version: int, payload: Payload, body: bytes, request_id: str) -> None:
        """Run the shadow version on a copy of the request in the shadow thread, if it keeps up."""
        with self._shadow_lock:
            if self._shadow_pending >= SHADOW_QUEUE:
                self.metrics.shadow_dropped.inc()
                return
            self._shadow_pending += 1
        copy = replace(payload, columns=None, matrix=None) if payload.tensors is not None else payload
        try:
            self._shadow_pool.submit(self._run_shadow, name, version, copy, body, request_id)
        except RuntimeError:  # shutting down
            with self._shadow_lock:
                self._shadow_pending -= 1

    def _run_shadow(self, name: str, version: int, payload: Payload, body: bytes, request_id: str) -> None:
        start = time.perf_counter()
        try:
            result = self.cache.load((name, version)).predict(payload)
            outputs, status = encode_predictions(result.tolist()), 200
        except LoopMLError as exc:
            outputs, status = _error_json(exc), exc.http_status
        except Exception as exc:  # the shadow must never take the service down
            logger.warning("Shadow %s/%s failed", name, version, exc_info=True)
            outputs, status = json.dumps({"error": {"type": type(exc).__name__, "message": str(exc)}}), 500
        finally:
            with self._shadow_lock:
                self._shadow_pending -= 1
        self._finish(request_id, name, version, SHADOW, body, outputs, start, status)

    # -- feedback -------------------------------------------------------------------------------
    def log_feedback(self, items: Sequence[Feedback]) -> None:
        """Store ground truth for logged requests (in a worker thread: it waits on the database).

        A request this process answered may still sit in the log's queue (the writer batches), so feedback
        naming one waits until the writer has written what was queued before it (ServiceUnavailableError
        after ``FEEDBACK_WAIT_S``). The store then refuses the whole batch, PredictionNotFoundError naming
        the ids, when one is not in the log; every item is counted by outcome.
        """
        log = self.log
        if log is not None and any(item.request_id in self.request_ids for item in items):
            self.metrics.feedback_log_waits.inc()
            if not log.barrier().wait(FEEDBACK_WAIT_S):
                self.metrics.feedback.labels("unavailable").inc(len(items))
                raise ServiceUnavailableError(
                    "The prediction log has not written the requests this feedback names yet (the store is slow "
                    "or down); send it again in a little while."
                )
        try:
            self.store.serving.log_feedback(items)
        except PredictionNotFoundError:
            self.metrics.feedback.labels("refused").inc(len(items))
            raise
        self.metrics.feedback.labels("accepted").inc(len(items))

    def describe(self) -> dict[str, Any]:
        """What ``/v1/models`` shows: routes, traffic split, load state, cache and log figures."""
        loaded = {(e.name, e.version): e for e in self.cache.entries()}
        loading = set(self.cache.loading())
        failed = self.cache.failures()

        def state(name: str, version: int) -> dict[str, Any]:
            key = (name, version)
            entry = loaded.get(key)
            if entry is not None:
                return {"state": "loaded", "bytes": entry.nbytes, "fast_path": entry.fast_path}
            if key in loading:
                return {"state": "loading"}
            if key in failed:
                return {"state": "failed", "error": failed[key]}
            return {"state": "not loaded"}

        models = []
        for name, route in sorted(self.watcher.routes.items()):
            traffic = [{"version": route.version, "role": "main", "percent": 100.0 - route.canary_percent}]
            if route.canary_version is not None:
                traffic.append({"version": route.canary_version, "role": "canary", "percent": route.canary_percent})
            models.append(
                {
                    "name": name,
                    "source": route.source,
                    "target": route.target,
                    "deployment_id": route.deployment_id,
                    "version": route.version,
                    "traffic": traffic,
                    "shadow": None if route.shadow_version is None else {"version": route.shadow_version},
                    "versions": {str(v): state(name, v) for v in route.versions},
                    "error": self.watcher.errors.get(name),
                }
            )
        routed = {(name, v) for name, route in self.watcher.routes.items() for v in route.versions}
        others = [
            {"name": name, "version": version, **state(name, version)}
            for (name, version) in sorted(loaded)
            if (name, version) not in routed
        ]
        errors = {name: why for name, why in self.watcher.errors.items() if name not in self.watcher.routes}
        log = self.log
        return {
            "models": models,
            "other_loaded_versions": others,
            "unrouted": errors,
            "serves": "all" if self.watcher.names is None else sorted(self.watcher.names),
            "cache": {
                "loaded": len(self.cache),
                "bytes": self.cache.nbytes,
                "max_loaded": self.cache.max_models,
                "max_bytes": self.cache.max_bytes,
                "evictions": self.cache.evictions,
            },
            "prediction_log": None
            if log is None
            else {"queue_depth": log.depth, "capacity": log.capacity, "written": log.written, "dropped": log.dropped},
        }


def _request_id(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_request_id(value)
    except LoopMLError:
        return None


def _error_json(exc: LoopMLError) -> str:
    error: dict[str, Any] = {"type": type(exc).__name__, "message": exc.message}
    problems = getattr(exc, "problems", None)
    if problems:
        error["problems"] = problems
    # escaped: a message quoting a client's text can hold a lone surrogate, which no sink can encode
    return json.dumps({"error": error})
