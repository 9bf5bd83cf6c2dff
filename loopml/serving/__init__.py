"""The prediction service (the data plane): deployments, model cache, canary and shadow routing, prediction log.

``create_serving_app(store)`` builds the ASGI app that ``loopml serve`` runs;
``deploy``/``rollback`` record what it serves; ``predictions`` reads what it
answered. Names are imported on first use, so ``import loopml.serving``
loads neither FastAPI nor numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ServingClient": "loopml.serving.client",
    "create_serving_app": "loopml.serving.app",
    "deploy": "loopml.serving.fluent",
    "get_deployment": "loopml.serving.fluent",
    "list_deployments": "loopml.serving.fluent",
    "search_predictions": "loopml.serving.fluent",
    "rollback": "loopml.serving.fluent",
    "send_feedback": "loopml.serving.fluent",
    "serve": "loopml.serving.main",
}

__all__ = [
    "ServingClient",
    "create_serving_app",
    "deploy",
    "get_deployment",
    "list_deployments",
    "rollback",
    "search_predictions",
    "send_feedback",
    "serve",
]

if TYPE_CHECKING:
    from loopml.serving.app import create_serving_app
    from loopml.serving.client import ServingClient
    from loopml.serving.fluent import (
        deploy,
        get_deployment,
        list_deployments,
        rollback,
        search_predictions,
        send_feedback,
    )
    from loopml.serving.main import serve


_DEPRECATED: dict[str, str] = {
    "predictions": "search_predictions",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__, _DEPRECATED)
