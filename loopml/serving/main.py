"""Run the prediction service: ``serve(...)`` starts uvicorn on the ``app_from_env`` factory.

Uvicorn imports the factory by its dotted path in every worker process, so
``workers > 1`` works: ``serve`` writes its settings into the environment
(``LOOPML_SERVE_CONFIG``, JSON) and each worker builds its own app over the
store that ``LOOPML_DB_URL``/``LOOPML_TRACKING_URI`` name. Each worker has
its own model cache, prediction-log queue and metrics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from loopml.errors import InvalidValueError

APP_FACTORY = "loopml.serving.main:app_from_env"
CONFIG_ENV = "LOOPML_SERVE_CONFIG"
DEFAULT_PORT = 8080


def app_from_env() -> FastAPI:
    """The serving app over the store the environment names, configured by ``LOOPML_SERVE_CONFIG``."""
    from loopml.serving.app import create_serving_app
    from loopml.store import open_store

    config: dict[str, Any] = json.loads(os.environ.get(CONFIG_ENV) or "{}")
    config.setdefault("freeze_gc", True)  # the process is the service's alone
    config.setdefault("log_writer", "process")  # the log's writes off the event loop's GIL
    store_uri = config.pop("store_uri", None)
    store = open_store(store_uri)
    return create_serving_app(store, close_store=True, store_uri=store_uri, **config)


def serve(
    models: Sequence[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    workers: int = 1,
    store_uri: str | None = None,
    auth: bool = False,
    max_loaded: int | None = None,
    max_memory: int | None = None,
    log_predictions: bool = True,
    log_capacity: int | None = None,
    log_capacity_bytes: int | None = None,
    poll_interval_s: float | None = None,
    trusted: Sequence[str] | None = None,
    unsafe_pickle: bool = False,
    log_level: str = "info",
    access_log: bool = False,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> None:
    """Serve predictions until interrupted; ``models`` None serves every deployed model (``--all``).

    With ``ssl_certfile`` and ``ssl_keyfile`` (PEM files) it serves HTTPS.
    """
    import uvicorn

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers must be a whole number from 1, got {workers!r}.")
    config: dict[str, Any] = {
        "models": None if models is None else list(models),
        "auth": auth,
        "log_predictions": log_predictions,
        "trusted": None if trusted is None else list(trusted),
        "unsafe_pickle": unsafe_pickle,
        "store_uri": store_uri,
        "replica_address": f"{host}:{port}",  # each worker registers a heartbeat under it (issue 14)
    }
    optional = {"max_loaded": max_loaded, "max_memory": max_memory, "log_capacity": log_capacity,
                "log_capacity_bytes": log_capacity_bytes, "poll_interval_s": poll_interval_s}  # fmt: skip
    config.update({key: value for key, value in optional.items() if value is not None})
    os.environ[CONFIG_ENV] = json.dumps(config)
    # uvicorn picks httptools and uvloop when they are installed ("auto"); the access log costs
    # more than a fast prediction, so it is off unless asked for (the prediction log has every request).
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
