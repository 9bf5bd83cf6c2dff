"""The contract for registered models, versions, aliases, stages and approvals.

Every mutation appends its audit event in the same transaction, so the log
can never miss a change that happened nor record one that did not.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from loopml.entities.registry import ModelVersion, RegisteredModel, RequestStatus, Stage, TransitionRequest
from loopml.entities.search import Filter


class RegistryStore(ABC):
    """Registered models and versions. Each method is one transaction, audited."""

    @abstractmethod
    def create_model(
        self, name: str, *, description: str | None, tags: Mapping[str, str], require_approval: bool, actor: str
    ) -> RegisteredModel:
        """Raises ModelAlreadyExistsError."""

    @abstractmethod
    def get_model(self, name: str) -> RegisteredModel:
        """Raises ModelNotFoundError (suggesting close names)."""

    @abstractmethod
    def search_models(self, filter: Filter | None, max_results: int) -> list[RegisteredModel]:
        """Models matching a filter on ``name`` and ``tags.<key>``, by name."""

    @abstractmethod
    def create_version(
        self,
        name: str,
        *,
        run_id: str,
        source: str,
        description: str | None,
        tags: Mapping[str, str],
        actor: str,
    ) -> ModelVersion:
        """Register the next version of ``name`` (created if missing); numbers never repeat."""

    @abstractmethod
    def get_version(self, name: str, version: int) -> ModelVersion:
        """Raises ModelNotFoundError or ModelVersionNotFoundError."""

    @abstractmethod
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Raises ModelNotFoundError or AliasNotFoundError."""

    @abstractmethod
    def list_versions(
        self, name: str, *, stage: Stage | None = None, filter: Filter | None = None
    ) -> list[ModelVersion]:
        """Versions of one model, newest first."""

    @abstractmethod
    def set_alias(self, name: str, alias: str, version: int, *, actor: str, reason: str | None) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it if set). Returns the version."""

    @abstractmethod
    def delete_alias(self, name: str, alias: str, *, actor: str, reason: str | None) -> None:
        """Raises AliasNotFoundError."""

    @abstractmethod
    def transition(
        self,
        name: str,
        version: int,
        to_stage: Stage,
        *,
        actor: str,
        reason: str | None,
        archive_existing: bool,
        request_id: int | None = None,
    ) -> ModelVersion:
        """Move a version to ``to_stage``.

        Moving to production archives the current production version(s) when
        ``archive_existing``. With ``request_id`` the request must be APPROVED
        for this version and stage; it becomes APPLIED in the same transaction.
        """

    @abstractmethod
    def create_request(
        self, name: str, version: int, to_stage: Stage, *, actor: str, comment: str | None
    ) -> TransitionRequest:
        """Ask for a transition that needs approval."""

    @abstractmethod
    def decide_request(self, request_id: int, *, approve: bool, actor: str, comment: str | None) -> TransitionRequest:
        """Approve or reject a PENDING request. Raises InvalidTransitionError otherwise."""

    @abstractmethod
    def list_requests(
        self, name: str, *, version: int | None = None, status: RequestStatus | None = None
    ) -> list[TransitionRequest]:
        """Requests of a model, newest first."""

    @abstractmethod
    def set_evidence(self, name: str, version: int, evidence: Mapping[str, Any], *, actor: str) -> ModelVersion:
        """Replace the version's validation evidence (metrics, test results)."""

    @abstractmethod
    def delete_version(self, name: str, version: int, *, actor: str, reason: str | None) -> None:
        """Remove a version and its aliases; its number is never reused."""

    @abstractmethod
    def versions_of_runs(self, run_ids: Sequence[str]) -> list[ModelVersion]:
        """Every version registered from one of these runs (for lineage)."""
