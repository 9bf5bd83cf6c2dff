"""``create_serving_app(store)``: the prediction service, an ASGI app of its own (the data plane).

It is separate from the control-plane server so that it scales on its own:
run as many replicas as the traffic needs, all reading deployments from
one store. Routes:

    POST /v1/models/{name}/predict                 the deployment's version (canary split, shadow copy)
    POST /v1/models/{name}@{alias}/predict         the version the alias points at
    POST /v1/models/{name}/versions/{v}/predict    a fixed version
    POST /v2/models/{name}[/versions/{v}]/infer    the same, in the Open Inference Protocol (KServe v2)
    POST /v1/feedback                              delayed ground truth: {"request_id": ..., "label": ...} or a list
    GET  /v1/models[/{name}]                       what is deployed: versions, traffic split, load state
    GET  /healthz  /readyz  /metrics               liveness, readiness (deployed models loaded), Prometheus

With ``auth`` the same API tokens as the control plane are required:
``viewer`` may predict and read, ``editor`` may also send feedback;
``/healthz``, ``/readyz``, ``/metrics`` and the v2 health routes stay open
(probes and scrapers carry no token).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from loopml.auth.guard import authorize, needs
from loopml.auth.headers import SecurityHeadersMiddleware
from loopml.entities.auth import Role
from loopml.entities.serving import Feedback
from loopml.errors import InvalidInputError, PayloadTooLargeError
from loopml.serving import binary
from loopml.serving.cache import DEFAULT_MAX_MODELS
from loopml.serving.errors import install_error_handlers
from loopml.serving.lane import PredictLane
from loopml.serving.metrics import CONTENT_TYPE
from loopml.serving.payloads import loads
from loopml.serving.predlog import DEFAULT_CAPACITY, DEFAULT_CAPACITY_BYTES
from loopml.serving.replicas import ReplicaHeartbeat
from loopml.serving.service import PredictionService
from loopml.serving.watcher import DEFAULT_POLL_INTERVAL_S
from loopml.store import Store
from loopml.store.serving import check_request_id
from loopml.timestamps import now_ms

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_FEEDBACK_ITEMS = 10_000
JSON = "application/json"

_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {
                    "type": "object",
                    "description": "Exactly one of records, columns or inputs; key (optional) keeps a caller on one "
                    "side of a canary split.",
                    "properties": {
                        "records": {"type": "array", "items": {"type": "object"}},
                        "columns": {"type": "object", "additionalProperties": {"type": "array"}},
                        "inputs": {"type": "object"},
                        "key": {"type": "string"},
                    },
                },
                "examples": {
                    "records": {"value": {"records": [{"x1": 1.0, "x2": 2}]}},
                    "columns": {"value": {"columns": {"x1": [1.0, 0.5], "x2": [2, 3]}}},
                    "inputs": {"value": {"inputs": {"x1": 1.0, "x2": 2}}},
                },
            }
        },
    }
}
_INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {"type": "object", "description": "An Open Inference Protocol (v2) inference request."},
                "example": {"id": "r1", "inputs": [{"name": "x1", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
            }
        },
    }
}


def create_serving_app(
    store: Store,
    *,
    models: Sequence[str] | None = None,
    auth: bool = False,
    max_loaded: int = DEFAULT_MAX_MODELS,
    max_memory: int | None = None,
    log_predictions: bool = True,
    log_capacity: int = DEFAULT_CAPACITY,
    log_capacity_bytes: int = DEFAULT_CAPACITY_BYTES,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    trusted: Sequence[str] | None = None,
    unsafe_pickle: bool = False,
    close_store: bool = False,
    freeze_gc: bool = False,
    replica_address: str | None = None,
    log_writer: str = "thread",
    store_uri: str | None = None,
) -> FastAPI:
    """The prediction service over ``store``.

    Args:
        store: where deployments, models and the prediction log live (SQL or a loopml server).
        models: ``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION`` to serve (loaded before the service is
            ready; a deployment in the store overrides the alias or version); None serves every
            model, each loaded on its first request.
        auth: require API tokens (``viewer`` predicts, ``editor`` sends feedback).
        max_loaded: most model versions in memory at once.
        max_memory: most bytes of models in memory (estimated from package sizes), or None.
        log_predictions: log every request and answer to the store through a bounded queue.
        log_capacity: records the queue holds before it sheds (counted in ``/metrics``).
        log_capacity_bytes: characters of request and answer text the log holds, queued or being
            written, before it sheds: what bounds its memory while the store is down.
        poll_interval_s: how often deployments and aliases are re-read.
        max_body_bytes: larger request bodies answer 413.
        trusted: type names skops may load beyond its defaults (see ``loopml.load_model``).
        unsafe_pickle: allow models saved with pickle.
        close_store: close ``store`` when the app shuts down.
        freeze_gc: move what is alive after start-up and after each model load out of the garbage
            collector's reach (``gc.freeze``): shorter collector pauses. For a process of its own
            (``loopml serve`` sets it), not for an app inside another program.
        replica_address: ``host:port`` this service listens on; when given, the service registers a
            heartbeat in the store (``loopml deployments list`` shows which replicas serve what).
        log_writer: ``"thread"`` writes the prediction log from a thread of this process; ``"process"``
            from a child process that opens the store at ``store_uri`` (None: the environment's), off this
            process's GIL (``loopml.serving.logwriter``; ``loopml serve`` uses it).
        store_uri: the store the log-writer process opens; it must be the one ``store`` is.

    Example:
        >>> app = create_serving_app(open_store(), models=["churn@champion"])  # doctest: +SKIP
        >>> uvicorn.run(app, port=8080)  # doctest: +SKIP
    """
    service = PredictionService(
        store,
        models=models,
        max_loaded=max_loaded,
        max_memory=max_memory,
        log_predictions=log_predictions,
        log_capacity=log_capacity,
        log_capacity_bytes=log_capacity_bytes,
        poll_interval_s=poll_interval_s,
        trusted=trusted,
        unsafe_pickle=unsafe_pickle,
        freeze_gc=freeze_gc,
        log_writer=log_writer,
        store_uri=store_uri,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        heartbeat = None
        if replica_address is not None:
            heartbeat = ReplicaHeartbeat(store.replicas, replica_address, service.watcher.serving,
                                         interval_s=max(poll_interval_s, 1.0))  # fmt: skip
            await run_in_threadpool(heartbeat.start)
        try:
            yield
        finally:
            if heartbeat is not None:
                await run_in_threadpool(heartbeat.stop)
            await run_in_threadpool(service.close)
            if close_store:
                store.close()

    app = FastAPI(
        title="loopml serving",
        summary="Predictions from registered models: deployments, canaries, shadows, a prediction log.",
        version="1",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.service = service
    app.state.store = store
    app.state.authenticator = None
    if auth:
        from loopml.auth.tokens import Authenticator

        app.state.authenticator = Authenticator(store)
    install_error_handlers(app)
    # The prediction routes are answered by the lane before FastAPI routing; the routes below document
    # them in the OpenAPI schema and answer the same way should the lane be bypassed.
    # added first, so inside the lane: the lane's answers carry the same headers, appended by the lane itself
    docs_paths = () if app.docs_url is None else (app.docs_url, f"{app.docs_url}/oauth2-redirect")
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=docs_paths)
    app.add_middleware(PredictLane, service=service, max_body_bytes=max_body_bytes)
    app.include_router(_guarded_routes(service, max_body_bytes))
    app.include_router(_public_routes(service))
    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or PayloadTooLargeError (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):  # str.isdigit alone accepts '²', which int() refuses
            raise InvalidInputError(f"Content-Length {declared[:40]!r} is not a number.")
        # more digits than the limit has is larger than it: int() would refuse thousands of them (a 500)
        digits = declared.lstrip("0") or "0"
        if len(digits) > len(str(limit)) or int(digits) > limit:
            raise PayloadTooLargeError(f"The request body is larger than this server accepts ({limit} bytes).")
        return await request.body()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"The request body is larger than this server accepts ({limit} bytes).")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(content: Any, status: int = 200) -> Response:
    return Response(json.dumps(content, ensure_ascii=False), status_code=status, media_type=JSON)


def _guarded_routes(service: PredictionService, limit: int) -> APIRouter:
    router = APIRouter(dependencies=[Depends(authorize)])

    async def answer(request: Request, name: str, version: str | None, *, v2: bool) -> Response:
        body = await read_body(request, limit)
        headers = request.headers
        answer = await service.predict(
            name,
            version,
            body,
            v2=v2,
            key=headers.get("x-loopml-key"),
            request_id=headers.get("x-request-id"),
            header_length=binary.header_length(headers.get("inference-header-content-length")) if v2 else None,
        )
        media_type = JSON if answer.header_length is None else "application/octet-stream"
        response = Response(answer.content, media_type=media_type)
        response.raw_headers.extend(answer.headers())
        return response

    @router.post("/v1/models/{name}/predict", tags=["predict"], openapi_extra=_PREDICT_BODY)
    @needs(Role.VIEWER)
    async def predict(name: str, request: Request) -> Response:
        """Predict with the model's deployment (``name``), or with an alias (``name@alias``).

        ``?explain=true`` adds each row's SHAP attributions (``explanations``), within the model's
        explanation budget (429 past it; see docs/responsible.md).
        """
        return await answer(request, name, None, v2=False)

    @router.post("/v1/models/{name}/versions/{version}/predict", tags=["predict"], openapi_extra=_PREDICT_BODY)
    @needs(Role.VIEWER)
    async def predict_version(name: str, version: str, request: Request) -> Response:
        """Predict with one fixed version (``?explain=true``: with each row's SHAP attributions)."""
        return await answer(request, name, version, v2=False)

    @router.post("/v2/models/{name}/infer", tags=["v2"], openapi_extra=_INFER_BODY)
    @needs(Role.VIEWER)
    async def infer(name: str, request: Request) -> Response:
        """Open Inference Protocol: the deployment's version (or ``name@alias``)."""
        return await answer(request, name, None, v2=True)

    @router.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], openapi_extra=_INFER_BODY)
    @needs(Role.VIEWER)
    async def infer_version(name: str, version: str, request: Request) -> Response:
        """Open Inference Protocol: one fixed version."""
        return await answer(request, name, version, v2=True)

    @router.get("/v1/models", tags=["models"])
    async def list_models() -> Response:
        """What this server serves: each model's route, traffic split, versions and their load state."""
        return _json(service.describe())

    @router.get("/v1/models/{name}", tags=["models"])
    async def get_model(name: str) -> Response:
        """One model's route and load state (404 when this server has no route for it)."""
        service.watcher.route(name)
        found = next(m for m in service.describe()["models"] if m["name"] == name)
        return _json(found)

    @router.get("/v2/models/{name}", tags=["v2"])
    async def model_metadata(name: str) -> Response:
        """Open Inference Protocol model metadata: the deployed version's input tensors."""
        route = service.watcher.route(name)
        predictor = service.cache.get((name, route.version)) or await service.cache.aload((name, route.version))
        specs = predictor.signature.inputs if predictor.signature is not None else ()
        types = {"integer": "INT64", "float": "FP64", "boolean": "BOOL"}
        datatype, shape = await run_in_threadpool(predictor.output_tensor)
        return _json(
            {
                "name": name,
                "versions": [str(v) for v in route.versions],
                "platform": f"loopml-{predictor.flavor}",
                "inputs": [{"name": s.name, "datatype": types.get(s.dtype, "BYTES"), "shape": [-1]} for s in specs],
                "outputs": [{"name": binary.OUTPUT, "datatype": datatype, "shape": shape}],
            }
        )

    @router.get("/v2/models/{name}/ready", tags=["v2"])
    async def model_ready(name: str) -> Response:
        route = service.watcher.route(name)
        ready = (name, route.version) in service.cache
        return _json({"name": name, "ready": ready}, 200 if ready else 503)

    @router.post("/v1/feedback", tags=["feedback"], status_code=201)
    @needs(Role.EDITOR)
    async def feedback(request: Request) -> Response:
        """Ground truth for earlier predictions: ``{"request_id": ..., "label": ...}``, a list of them, or ``{"items": [...]}``.

        Every request id must be in the prediction log (404 naming the unknown ones, nothing stored).
        """
        items = _feedback_items(loads(await read_body(request, limit)))
        await run_in_threadpool(service.log_feedback, items)
        return _json({"accepted": len(items)}, 201)

    return router


def _feedback_items(data: Any) -> list[Feedback]:
    if isinstance(data, dict) and "items" in data and set(data) == {"items"}:
        data = data["items"]
    entries = data if isinstance(data, list) else [data]
    if not entries or len(entries) > MAX_FEEDBACK_ITEMS:
        raise InvalidInputError(f"Send 1 to {MAX_FEEDBACK_ITEMS} feedback items at a time.")
    now = now_ms()
    items, problems = [], {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"request_id", "label"}:
            problems[str(index)] = 'expected {"request_id": ..., "label": ...}'
            continue
        try:
            items.append(Feedback(check_request_id(entry["request_id"]), entry["label"], now))
        except InvalidInputError as exc:
            problems[str(index)] = exc.message
    if problems:
        listed = "; ".join(f"item {where}: {what}" for where, what in list(problems.items())[:10])
        raise InvalidInputError(f"Invalid feedback: {listed}.")
    return items


def _public_routes(service: PredictionService) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> Response:
        """The process is up (liveness)."""
        return _json({"status": "ok"})

    @router.get("/readyz")
    async def readyz() -> Response:
        """Ready once the deployments have been read and the named models are loaded (503 until then)."""
        ready, waiting = service.watcher.readiness()
        return _json({"status": "ready" if ready else "loading", "waiting_for": waiting}, 200 if ready else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    @router.get("/v2/health/live", tags=["v2"])
    async def live() -> Response:
        return _json({"live": True})

    @router.get("/v2/health/ready", tags=["v2"])
    async def ready() -> Response:
        is_ready, _ = service.watcher.readiness()
        return _json({"ready": is_ready}, 200 if is_ready else 503)

    @router.get("/v2", tags=["v2"])
    async def server_metadata() -> Response:
        from importlib.metadata import version

        return _json({"name": "loopml", "version": version("loopml"), "extensions": [binary.EXTENSION]})

    return router
