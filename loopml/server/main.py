"""Run the server: ``serve(...)`` starts uvicorn on the ``app_from_env`` factory.

Uvicorn imports the factory by its dotted path in every worker process, so
``workers > 1`` works; each worker opens the store named by the environment
(``LOOPML_DB_URL``, ``LOOPML_ARTIFACTS_URL``, ``LOOPML_HOME``), which is why
``serve`` passes its arguments through the environment.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from loopml.errors import InvalidValueError

APP_FACTORY = "loopml.server.main:app_from_env"
#: Set to "1" by ``serve(auth=True)`` so that every worker process requires tokens.
AUTH_ENV = "LOOPML_SERVER_AUTH"
#: The artifact upload limit in bytes of every worker (``serve(max_upload_bytes=...)``); default 5 GiB.
MAX_UPLOAD_ENV = "LOOPML_SERVER_MAX_UPLOAD_BYTES"
#: Seconds a presigned artifact URL stays valid; set (by ``loopml server --artifacts-presign``) to redirect downloads.
PRESIGN_ENV = "LOOPML_SERVER_ARTIFACTS_PRESIGN_S"
#: "0" turns the web UI off (``serve`` sets it: no UI on a non-loopback host without auth, unless allowed).
UI_ENV = "LOOPML_SERVER_UI"


def app_from_env() -> FastAPI:
    """The app over the store the environment names; the store closes when the server stops."""
    from loopml.config import get_settings
    from loopml.server.app import create_app
    from loopml.store import open_store

    settings = get_settings()
    store = open_store(settings.db_url, artifacts_url=settings.artifacts_url)
    app = create_app(
        store,
        auth=os.environ.get(AUTH_ENV, "") == "1",
        max_upload_bytes=max_upload_bytes_from_env(),
        ui=os.environ.get(UI_ENV, "1") != "0",
    )
    presign = os.environ.get(PRESIGN_ENV, "").strip()
    app.state.artifacts_presign_s = int(presign) if presign.isdigit() and int(presign) > 0 else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    app.router.lifespan_context = lifespan
    return app


def ui_allowed(host: str, *, auth: bool, allow_insecure_ui: bool) -> bool:
    """Whether to serve the web UI: with auth, on a loopback host, or when the operator allows it anyway."""
    from loopml.config import is_loopback_host

    return auth or allow_insecure_ui or is_loopback_host(host)


def max_upload_bytes_from_env() -> int:
    """``$LOOPML_SERVER_MAX_UPLOAD_BYTES``, else the default; InvalidValueError unless a positive whole number."""
    from loopml.server.body_limit import DEFAULT_MAX_UPLOAD_BYTES

    raw = os.environ.get(MAX_UPLOAD_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_UPLOAD_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidValueError(f"{MAX_UPLOAD_ENV} must be a whole number of bytes from 1, got {raw!r}.")
    return int(raw)


def serve(
    store_uri: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    *,
    artifacts_url: str | None = None,
    auth: bool = False,
    max_upload_bytes: int | None = None,
    log_level: str = "info",
    allow_insecure_ui: bool = False,
) -> None:
    """Serve the REST API until interrupted.

    ``store_uri`` is a database URL (default: ``LOOPML_DB_URL``, else the
    SQLite file under ``LOOPML_HOME``); ``artifacts_url`` likewise defaults to
    ``LOOPML_ARTIFACTS_URL``; ``max_upload_bytes`` (artifact uploads, default
    ``LOOPML_SERVER_MAX_UPLOAD_BYTES``, else 5 GiB) likewise. The web UI is
    served at ``/`` unless ``host`` is not a loopback address and ``auth`` is
    off: then only the API is, unless ``allow_insecure_ui``.
    """
    import uvicorn

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers must be a whole number from 1, got {workers!r}.")
    if store_uri:
        os.environ["LOOPML_DB_URL"] = store_uri
    if artifacts_url:
        os.environ["LOOPML_ARTIFACTS_URL"] = artifacts_url
    os.environ[AUTH_ENV] = "1" if auth else "0"
    os.environ[UI_ENV] = "1" if ui_allowed(host, auth=auth, allow_insecure_ui=allow_insecure_ui) else "0"
    if max_upload_bytes is not None:
        if isinstance(max_upload_bytes, bool) or not isinstance(max_upload_bytes, int) or max_upload_bytes < 1:
            raise InvalidValueError(f"max_upload_bytes must be a whole number from 1, got {max_upload_bytes!r}.")
        os.environ[MAX_UPLOAD_ENV] = str(max_upload_bytes)
    max_upload_bytes_from_env()  # a bad value fails here, once, not in every worker
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level)
