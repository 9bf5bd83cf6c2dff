"""Module-level serving one-liners (``loopml.deploy``, ``loopml.search_predictions``) over the default client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.entities.serving import Deployment
from loopml.serving.client import Moment, ServingClient

if TYPE_CHECKING:
    import pandas as pd


def get_serving_client() -> ServingClient:
    """A ServingClient over the process-wide tracking client (follows the LOOPML_* settings)."""
    from loopml.tracking.fluent import get_tracking_client

    return ServingClient(get_tracking_client())


def deploy(
    name: str,
    version_or_alias: int | str,
    canary: Mapping[str, Any] | None = None,
    shadow: Mapping[str, Any] | int | None = None,
    *,
    reason: str | None = None,
    actor: str | None = None,
) -> Deployment:
    """Serve ``name`` with a version or an alias; ``canary={"version": 7, "percent": 10}``, ``shadow={"version": 8}``.

    Recorded in the store as an audited ``deployment.create`` event; running
    ``loopml serve`` processes pick it up within seconds, without a restart.
    """
    return get_serving_client().deploy(name, version_or_alias, canary=canary, shadow=shadow, reason=reason, actor=actor)


def rollback(name: str, *, reason: str | None = None, actor: str | None = None) -> Deployment:
    """Return ``name`` to its previous deployment (an audited ``deployment.rollback``)."""
    return get_serving_client().rollback(name, reason=reason, actor=actor)


def get_deployment(name: str) -> Deployment:
    """The current deployment of ``name``; DeploymentNotFoundError when it has none."""
    return get_serving_client().get_deployment(name)


def list_deployments(name: str | None = None, *, current: bool = False, max_results: int = 1000) -> list[Deployment]:
    """Deployments of ``name`` (or of every model), newest first; ``current=True`` keeps one per model."""
    return get_serving_client().list_deployments(name, current=current, max_results=max_results)


def search_predictions(
    name: str,
    since: Moment = None,
    until: Moment = None,
    *,
    version: int | None = None,
    role: str | None = None,
    max_results: int = 100_000,
    flatten: bool = False,
    with_feedback: bool = False,
    keep_failed: bool = False,
) -> pd.DataFrame:
    """The prediction log of ``name`` as a DataFrame (see ``ServingClient.predictions``)."""
    return get_serving_client().search_predictions(
        name,
        since=since,
        until=until,
        version=version,
        role=role,
        max_results=max_results,
        flatten=flatten,
        with_feedback=with_feedback,
        keep_failed=keep_failed,
    )


def send_feedback(request_id: str | Sequence[Mapping[str, Any]], label: Any = None) -> int:
    """Record the ground truth of earlier predictions: ``(request_id, label)`` or a list of ``{"request_id", "label"}``."""
    return get_serving_client().send_feedback(request_id, label)
