"""The prediction service (the data plane): deployments, model cache, canary and shadow routing, prediction log.

``create_serving_app(store)`` builds the ASGI app that ``loopml serve`` runs;
``deploy``/``rollback`` record what it serves; ``predictions`` reads what it
answered. Names are imported on first use, so ``import loopml.serving``
loads neither FastAPI nor numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "ServingClient": "loopml.serving.client",
    "create_serving_app": "loopml.serving.app",
    "deploy": "loopml.serving.fluent",
    "get_deployment": "loopml.serving.fluent",
    "list_deployments": "loopml.serving.fluent",
    "predictions": "loopml.serving.fluent",
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
    "predictions",
    "rollback",
    "send_feedback",
    "serve",
]

if TYPE_CHECKING:
    from loopml.serving.app import create_serving_app
    from loopml.serving.client import ServingClient
    from loopml.serving.fluent import deploy, get_deployment, list_deployments, predictions, rollback, send_feedback
    from loopml.serving.main import serve


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
