"""RegistryClient: register, find, alias, promote and approve model versions.

Every mutation is recorded in the audit log by the store, in the same
transaction, with the actor (``LOOPML_ACTOR`` or the OS user unless given)
and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loopml._lazy import deprecated_alias
from loopml.auth.audit import default_actor
from loopml.entities.registry import MANIFEST_FILE as MANIFEST
from loopml.entities.registry import ModelVersion, RegisteredModel, RequestStatus, Stage, TransitionRequest
from loopml.errors import (
    ApprovalRequiredError,
    ArtifactNotFoundError,
    ConflictError,
    InvalidValueError,
    ModelAlreadyExistsError,
    ModelIntegrityError,
)
from loopml.tracking.client import TrackingClient
from loopml.tracking.validation import check_mapping
from loopml.uris import ModelUri, check_alias, check_model_name, parse_models_uri, parse_runs_uri

if TYPE_CHECKING:
    import pandas as pd

    from loopml.store.registry import RegistryStore


def _stage(value: Stage | str) -> Stage:
    try:
        return Stage(value.lower() if isinstance(value, str) else value)
    except ValueError as exc:
        stages = ", ".join(s.value for s in Stage)
        raise InvalidValueError(f"Unknown stage {value!r}; stages are {stages}.") from exc


def _version_number(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int | str):
        raise InvalidValueError(f"Version must be a whole number, got {version!r}.")
    if isinstance(version, str):
        if not version.isdigit():
            raise InvalidValueError(f"Version must be a whole number, got {version!r}.")
        version = int(version)
    if version < 1:
        raise InvalidValueError(f"Versions start at 1, got {version}.")
    return version


class RegistryClient:
    """The registry API over one store (shared with a TrackingClient)."""

    def __init__(self, tracking: TrackingClient | None = None) -> None:
        self.tracking = tracking or TrackingClient()

    @property
    def _registry(self) -> RegistryStore:
        return self.tracking.store.registry

    # -- models and versions ------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        require_approval: bool = False,
        actor: str | None = None,
    ) -> RegisteredModel:
        """Create an empty registered model (``register_model`` creates one on demand)."""
        return self._registry.create_model(
            check_model_name(name),
            description=description,
            tags=check_mapping(tags, "Tag"),
            require_approval=bool(require_approval),
            actor=actor or default_actor(),
        )

    def register_model(
        self,
        uri: str,
        name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        require_approval: bool | None = None,
        actor: str | None = None,
        holdout: pd.DataFrame | None = None,
        target: str | None = None,
        y: Any = None,
        explain_options: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register the packaged model at ``runs:/<run_id>/<path>`` as the next version of ``name``.

        Raises InvalidUriError for another URI form, RunNotFoundError, and
        ArtifactNotFoundError when the run has no packaged model at that path.

        With ``holdout`` (a DataFrame of the model's input columns, with the labels in its column
        ``target`` or given as ``y``) the new version is explained on it, as
        ``loopml.explain_model`` does: permutation importance and, with shap installed, SHAP
        values, stored as the version's evidence ``"explanations"`` and returned on the version.
        ``explain_options`` go to ``loopml.explain.global_explanation`` (``scoring``,
        ``n_repeats``, ``max_rows``, ``method``, ``shap_values``, ``seed``). The holdout is
        checked first: one that does not fit the model raises InvalidValueError and registers
        nothing. A model that cannot be explained still gets its version; the evidence then
        holds a note of what failed and a warning is logged.
        """
        check_model_name(name)
        parsed = parse_runs_uri(uri)
        if not parsed.path:
            raise ArtifactNotFoundError(f"{uri!r} names a run, not a model inside it: use runs:/<run_id>/<model path>.")
        self.tracking.get_run(parsed.run_id)
        manifest_path = f"{parsed.path}/{MANIFEST}"
        try:
            self.tracking.store.tracking.get_artifact_entry(parsed.run_id, manifest_path)
        except ArtifactNotFoundError as exc:
            found = sorted(
                e.path[: -len(MANIFEST) - 1]
                for e in self.tracking.store.tracking.list_artifacts(parsed.run_id)
                if e.path.endswith("/" + MANIFEST)
            )
            hint = f" Models logged in that run: {', '.join(found)}." if found else " That run has logged no model."
            raise ArtifactNotFoundError(f"Run {parsed.run_id} has no packaged model at {parsed.path!r}.{hint}") from exc
        source = f"runs:/{parsed.run_id}/{parsed.path}"
        checked = None
        if holdout is not None:
            # explain sits above the registry; imported here only when asked for (see pyproject's import contracts)
            from loopml.explain.importance import check_holdout

            checked = check_holdout(self, source, holdout, target=target, y=y, options=explain_options)
        elif target is not None or y is not None or explain_options is not None:
            raise InvalidValueError("target=, y= and explain_options= describe a holdout: pass holdout= too.")
        who = actor or default_actor()
        if require_approval is not None:
            try:
                self._registry.create_model(
                    name, description=None, tags={}, require_approval=require_approval, actor=who
                )
            except ModelAlreadyExistsError:
                existing = self._registry.get_model(name)
                if existing.require_approval != bool(require_approval):
                    raise ConflictError(
                        f"Model {name!r} already exists with require_approval={existing.require_approval}; "
                        "register without require_approval, or use another model name."
                    ) from None
        version = self._registry.create_version(
            name,
            run_id=parsed.run_id,
            source=source,
            description=description,
            tags=check_mapping(tags, "Tag"),
            actor=who,
        )
        if checked is None:
            return version
        from loopml.explain.importance import explain_new_version

        return explain_new_version(self, version, checked, actor=who)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._registry.get_model(name)

    def get_model_version(self, name: str, version_or_alias: int | str) -> ModelVersion:
        """A version by number, by alias (``champion``) or ``latest``."""
        if isinstance(version_or_alias, str) and not version_or_alias.isdigit():
            if version_or_alias == "latest":
                return self._latest(name)
            return self._registry.get_version_by_alias(name, version_or_alias)
        return self._registry.get_version(name, _version_number(version_or_alias))

    def _latest(self, name: str) -> ModelVersion:
        versions = self._registry.list_versions(name)
        if not versions:
            from loopml.errors import ModelVersionNotFoundError

            raise ModelVersionNotFoundError(f"Model {name!r} has no versions yet.")
        return versions[0]

    def resolve(self, uri: str | ModelUri) -> ModelVersion:
        """The version a ``models:/`` URI names."""
        parsed = parse_models_uri(uri) if isinstance(uri, str) else uri
        if parsed.version is not None:
            return self._registry.get_version(parsed.name, parsed.version)
        return self.get_model_version(parsed.name, parsed.alias or "latest")

    def search_model_versions(
        self, name: str, filter: str | None = None, *, stage: Stage | str | None = None
    ) -> list[ModelVersion]:
        """Versions newest first; ``filter`` on ``tags.<key>`` and ``run_id``."""
        from loopml.tracking.search import parse_filter

        return self._registry.list_versions(
            name, stage=None if stage is None else _stage(stage), filter=parse_filter(filter)
        )

    list_model_versions = deprecated_alias(search_model_versions, "list_model_versions", "RegistryClient")

    def search_models(self, filter: str | None = None, max_results: int = 1000) -> list[RegisteredModel]:
        """Registered models by name; ``filter`` on ``name`` and ``tags.<key>``."""
        from loopml.tracking.search import parse_filter

        return self._registry.search_models(parse_filter(filter), max_results)

    def delete_model_version(
        self, name: str, version: int, *, reason: str | None = None, actor: str | None = None
    ) -> None:
        self._registry.delete_version(name, _version_number(version), actor=actor or default_actor(), reason=reason)

    def set_evidence(
        self, name: str, version: int, evidence: Mapping[str, Any], *, actor: str | None = None
    ) -> ModelVersion:
        """Store the validation evidence (metrics, test results) of a version as JSON."""
        return self._registry.set_evidence(name, _version_number(version), evidence, actor=actor or default_actor())

    # -- aliases ----------------------------------------------------------------------------
    def set_alias(
        self, name: str, alias: str, version: int, *, reason: str | None = None, actor: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at a version of ``name`` (moving it if it points elsewhere)."""
        return self._registry.set_alias(
            name, check_alias(alias), _version_number(version), actor=actor or default_actor(), reason=reason
        )

    def delete_alias(self, name: str, alias: str, *, reason: str | None = None, actor: str | None = None) -> None:
        self._registry.delete_alias(name, alias, actor=actor or default_actor(), reason=reason)

    # -- lifecycle and approvals -----------------------------------------------------------------
    def transition(
        self,
        name: str,
        version: int,
        to: Stage | str,
        *,
        reason: str | None = None,
        actor: str | None = None,
        archive_existing: bool = True,
    ) -> ModelVersion:
        """Move a version to another stage.

        When the model requires approval for production, an APPROVED request
        for this version must exist; it is consumed. Otherwise raises
        ApprovalRequiredError and changes nothing.
        """
        stage = _stage(to)
        number = _version_number(version)
        request_id = None
        if stage is Stage.PRODUCTION and self._registry.get_model(name).require_approval:
            approved = self._registry.list_requests(name, version=number, status=RequestStatus.APPROVED)
            approved = [r for r in approved if r.to_stage is Stage.PRODUCTION]
            if not approved:
                raise ApprovalRequiredError(
                    f"Model {name!r} requires approval for production: call request_transition({name!r}, {number}, "
                    "'production') and have another person approve it."
                )
            request_id = approved[0].request_id
        return self._registry.transition(
            name,
            number,
            stage,
            actor=actor or default_actor(),
            reason=reason,
            archive_existing=archive_existing,
            request_id=request_id,
        )

    def request_transition(
        self, name: str, version: int, to: Stage | str, *, comment: str | None = None, actor: str | None = None
    ) -> TransitionRequest:
        return self._registry.create_request(
            name, _version_number(version), _stage(to), actor=actor or default_actor(), comment=comment
        )

    def approve(self, request_id: int, *, comment: str | None = None, actor: str | None = None) -> TransitionRequest:
        return self._registry.decide_request(
            _request_id(request_id), approve=True, actor=actor or default_actor(), comment=comment
        )

    def reject(self, request_id: int, *, comment: str | None = None, actor: str | None = None) -> TransitionRequest:
        return self._registry.decide_request(
            _request_id(request_id), approve=False, actor=actor or default_actor(), comment=comment
        )

    def list_transition_requests(
        self, name: str, *, version: int | None = None, status: RequestStatus | str | None = None
    ) -> list[TransitionRequest]:
        return self._registry.list_requests(
            name,
            version=None if version is None else _version_number(version),
            status=None if status is None else _request_status(status),
        )

    # -- loading ----------------------------------------------------------------------------------
    def load_model(self, uri: str, *, trusted: list[str] | None = None, unsafe_pickle: bool = False) -> Any:
        """Load ``runs:/<id>/<path>``, ``models:/<name>/<version>`` or ``models:/<name>@<alias>``."""
        from loopml.models.package import load_model_from_run

        pin = None
        if isinstance(uri, str) and uri.startswith("models:/"):
            version = self.resolve(uri)
            if version.manifest_digest is None:
                raise ModelIntegrityError(
                    f"{version.uri} has no pinned manifest (registered before pinning, and its manifest is gone "
                    "from the run); register the model again."
                )
            run_id, path, pin = version.run_id, version.artifact_path, version.manifest_digest
        else:
            parsed = parse_runs_uri(uri)
            run_id, path = parsed.run_id, parsed.path or "model"
        return load_model_from_run(
            self.tracking, run_id, path, trusted=trusted, unsafe_pickle=unsafe_pickle, manifest_digest=pin
        )


def _request_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValueError(f"Request id must be an integer, got {value!r}.")
    return value


def _request_status(value: RequestStatus | str) -> RequestStatus:
    try:
        return RequestStatus(value)
    except ValueError as exc:
        known = ", ".join(s.value for s in RequestStatus)
        raise InvalidValueError(f"Unknown request status {value!r}; statuses are {known}.") from exc
