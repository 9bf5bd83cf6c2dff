"""The prediction log's privacy and size controls: per-model redaction, erasure by entity key, retention.

``loopml.set_redaction("churn", {"email": "drop", "ssn": "hash", "zip": "truncate:3"}, entity_key="user_id")``
declares, on the registered model, what the log keeps of its inputs; the
store applies it before either log sink sees a row (see
``loopml.store.predictions.policy``). ``loopml.erase_predictions("user-42")``
removes every logged request (and its feedback) about that entity, and
``loopml.prune_predictions("30d")`` applies a retention once. Each is an
audited event (``predictions.policy``, ``predictions.erase``,
``predictions.prune``) with the actor (``LOOPML_ACTOR`` or the OS user).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from loopml.auth.audit import default_actor
from loopml.store.predictions.policy import LogPolicy
from loopml.store.serving import parse_retention
from loopml.uris import check_model_name

if TYPE_CHECKING:
    from loopml.store import Store


def _store() -> Store:
    from loopml.tracking.fluent import get_tracking_client

    return get_tracking_client().store


def set_redaction(
    name: str,
    rules: Mapping[str, str],
    *,
    entity_key: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> LogPolicy:
    """Declare how the prediction log redacts ``name``'s input columns, and which column is the entity key.

    ``rules`` maps a column to ``"drop"``, ``"hash"`` (HMAC-SHA256 keyed by ``LOOPML_REDACTION_KEY``, so equal
    values still join) or ``"truncate:N"``; ``entity_key`` names the column ``erase_predictions`` finds people
    by. ``{}`` and no entity key remove the policy. Rows logged earlier are not rewritten.
    """
    return _store().serving.set_log_policy(
        check_model_name(name), redact=rules, entity_key=entity_key, actor=actor or default_actor(), reason=reason
    )


def get_redaction(name: str) -> LogPolicy:
    """``name``'s log policy (redaction rules and entity key); an empty one when none was declared."""
    return _store().serving.get_log_policy(check_model_name(name))


def erase_predictions(
    key: str, *, model: str | None = None, reason: str | None = None, actor: str | None = None
) -> dict[str, int]:
    """Remove every logged request whose entity key is ``key`` (of ``model``, or of every model) and its feedback.

    Returns ``{"predictions": ..., "feedback": ...}``, the rows removed; audited without the key itself.
    """
    return _store().serving.erase_predictions(
        key, name=None if model is None else check_model_name(model), actor=actor or default_actor(), reason=reason
    )


def prune_predictions(older_than: str, *, actor: str | None = None) -> dict[str, int]:
    """Apply a retention such as ``"30d"`` now: remove logged predictions and feedback from before it."""
    return _store().serving.prune_predictions(parse_retention(older_than), actor=actor or default_actor())
