"""The control-plane REST API: the Store behind FastAPI (``create_app``), run by ``serve``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.server.app import create_app as create_app
    from loopml.server.main import serve as serve

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import loopml.server` alone pulls in neither FastAPI nor uvicorn.
    if name == "create_app":
        from loopml.server.app import create_app

        return create_app
    if name == "serve":
        from loopml.server.main import serve

        return serve
    raise AttributeError(f"module 'loopml.server' has no attribute {name!r}")
