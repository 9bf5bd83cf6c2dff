"""The contract for deployments, the prediction log and feedback.

A deployment is an audited decision (``deployment.create``,
``deployment.rollback``), appended in the same transaction as its row. The
prediction log and feedback are append-only and written in batches; they
are not audited (they are data, not decisions).
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from loopml.entities.serving import ROLES, Deployment, Feedback, PredictionRecord
from loopml.errors import InvalidValueError
from loopml.store.predictions.policy import LogPolicy
from loopml.uris import check_alias

#: The most rows one read of the prediction log or of feedback returns.
MAX_READ = 1_000_000


class ServingStore(ABC):
    """Deployments (one transaction each, audited), and batched appends of predictions and feedback."""

    @abstractmethod
    def create_deployment(
        self,
        name: str,
        *,
        target: str,
        canary_version: int | None,
        canary_percent: float | None,
        shadow_version: int | None,
        actor: str,
        reason: str | None,
    ) -> Deployment:
        """Make this the current deployment of ``name``.

        ``target`` is a version number (as a string) or an alias; it, the
        canary and the shadow must exist (ModelNotFoundError,
        ModelVersionNotFoundError, AliasNotFoundError otherwise).
        """

    @abstractmethod
    def rollback_deployment(self, name: str, *, actor: str, reason: str | None) -> Deployment:
        """Restore the deployment the current one replaced, as a new current deployment.

        Rolling back again goes one step further back. Raises
        DeploymentNotFoundError when there is nothing to return to.
        """

    @abstractmethod
    def current_deployment(self, name: str) -> Deployment:
        """The current deployment of ``name``; DeploymentNotFoundError when it has none."""

    @abstractmethod
    def current_deployments(self, names: Sequence[str] | None = None) -> list[Deployment]:
        """The current deployment of each model in ``names`` that has one (every model when None), by name.

        One query whatever the number of models: a prediction service polls it every second.
        """

    @abstractmethod
    def list_deployments(self, name: str | None = None, *, max_results: int = 1000) -> list[Deployment]:
        """Deployments of one model (or of all), newest first."""

    @abstractmethod
    def resolve_aliases(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The version each ``(name, alias)`` points at; pairs that do not exist are left out."""

    @abstractmethod
    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        """Append records in one transaction (one multi-row insert), never reusing a request id.

        A request id names one answered request in the whole log (any model, since feedback names the id
        alone): one answer row (``main`` or ``canary``) and at most one ``shadow`` row. A record whose id
        the log (or an earlier record of the batch) already holds in that place is stored under a new id,
        ``<id[:47]>.dup.<12 random hex digits>``: the first answer keeps the id, so feedback meant for it
        never lands on a later request that reused it (a caller repeating ids after a restart, or two
        replicas given the same id). A shadow record follows its answer's new id within the batch.
        """

    @abstractmethod
    def read_predictions(
        self,
        name: str,
        *,
        since: int | None = None,
        until: int | None = None,
        version: int | None = None,
        role: str | None = None,
        max_results: int = 100_000,
    ) -> list[PredictionRecord]:
        """Logged predictions of ``name`` with ``since <= time < until``, oldest first."""

    @abstractmethod
    def log_feedback(self, items: Sequence[Feedback]) -> None:
        """Append feedback in one transaction; a request id may get feedback more than once (the last wins).

        Every request id must be in the prediction log: otherwise PredictionNotFoundError names the
        unknown ones (``request_ids``) and nothing is stored, so a label never stands for a prediction
        that did not happen.
        """

    @abstractmethod
    def read_feedback(
        self,
        *,
        name: str | None = None,
        request_ids: Sequence[str] | None = None,
        since: int | None = None,
        until: int | None = None,
        max_results: int = 100_000,
    ) -> list[Feedback]:
        """Feedback with ``since <= time < until``, oldest first.

        With ``name``, only feedback on requests that model answered (joined
        through the prediction log); with ``request_ids``, only for those.
        """

    # -- the log at scale: policies, retention, erasure (revision 0013) -----------------------
    #: Where logged predictions live: "sql" (the predictions table) or "parquet" (files beside the artifacts).
    prediction_sink: str = "sql"

    def log_batching(self) -> tuple[int, float]:
        """(records per write, seconds between writes) that suit this store's sink: parquet wants larger files."""
        return (20_000, 1.0) if self.prediction_sink == "parquet" else (1_000, 0.25)

    @abstractmethod
    def set_log_policy(
        self,
        name: str,
        *,
        redact: Mapping[str, str],
        entity_key: str | None,
        actor: str,
        reason: str | None = None,
    ) -> LogPolicy:
        """Declare how ``name``'s logged inputs are redacted and which input column is the entity key (audited).

        ``redact`` maps a column to ``"drop"``, ``"hash"`` (HMAC-SHA256 keyed by ``LOOPML_REDACTION_KEY``) or
        ``"truncate:N"``; an empty mapping and no entity key remove the policy. It applies to rows logged from
        then on (within a few seconds on running services); rows already logged are not rewritten.
        """

    @abstractmethod
    def get_log_policy(self, name: str) -> LogPolicy:
        """``name``'s log policy (an empty one when none was declared)."""

    @abstractmethod
    def erase_predictions(
        self, key: str, *, name: str | None = None, actor: str, reason: str | None = None
    ) -> dict[str, int]:
        """Remove every logged request whose entity key is ``key`` (of ``name``, or of every model), and its feedback.

        The key is matched as its model's policy records it (hashed where the entity key column is hashed).
        Returns ``{"predictions": rows removed, "feedback": rows removed}``; audited as ``predictions.erase``
        with the key's digest, never the key itself.
        """

    @abstractmethod
    def prune_predictions(self, older_than_ms: int, *, actor: str) -> dict[str, int]:
        """Retention: remove logged predictions (and feedback, entity keys) from before ``now - older_than_ms``.

        The parquet sink removes whole days that ended before the cutoff. Audited as ``predictions.prune``.
        """


# -- checks shared by every backend ---------------------------------------------------


def check_percent(value: object) -> float:
    """A canary share: a number from 0 to 100."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 100
    ):
        raise InvalidValueError(f"A canary percent must be a number from 0 to 100, got {value!r}.")
    return float(value)


def check_version_number(value: object, what: str = "version") -> int:
    """A version number: a whole number from 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        raise InvalidValueError(f"The {what} must be a whole number from 1, got {value!r}.")
    return value


def check_target(target: object) -> str:
    """A deployment target: a version number (as text) or an alias."""
    # isascii: str.isdigit() is also true of "²" and other digits int() refuses
    if isinstance(target, str) and target.isascii() and target.isdigit():
        return str(check_version_number(int(target)))
    if not isinstance(target, str):
        raise InvalidValueError(f"A deployment target is a version number or an alias, got {target!r}.")
    return check_alias(target)


def check_deployment(
    target: object, canary_version: object, canary_percent: object, shadow_version: object
) -> tuple[str, int | None, float | None, int | None]:
    """A deployment's target, canary and shadow, checked and normalised (InvalidValueError naming the bad one).

    Every backend calls this before anything else: a server's schema would coerce ``"5"`` or ``True`` to a number.
    """
    if (canary_version is None) != (canary_percent is None):
        raise InvalidValueError("A canary needs both a version and a percent.")
    return (
        check_target(target),
        None if canary_version is None else check_version_number(canary_version, "canary version"),
        None if canary_percent is None else check_percent(canary_percent),
        None if shadow_version is None else check_version_number(shadow_version, "shadow version"),
    )


def check_role(value: object) -> str:
    """One of main, canary, shadow."""
    if value not in ROLES:
        raise InvalidValueError(f"Unknown prediction role {value!r}; roles are {', '.join(ROLES)}.")
    return str(value)


def check_max_results(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_READ:
        raise InvalidValueError(f"max_results must be an integer from 1 to {MAX_READ}, got {value!r}.")
    return value


_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def check_request_id(value: object) -> str:
    """Request ids: 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit (a UUID fits)."""
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise InvalidValueError(
            f"A request id must be 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit; "
            f"got {value!r}."
        )
    return value


_DURATION = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_retention(value: object) -> int:
    """A retention such as ``30d``, ``12h``, ``90m`` or ``3600s`` in milliseconds (InvalidValueError otherwise)."""
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise InvalidValueError(
            f"A log retention is a whole number and a unit (s, m, h or d), such as '30d'; got {value!r}."
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]
