"""Every exception loopml raises, in one tree.

Each class carries the HTTP status the server answers with, the exit code the
CLI ends with and a short headline the CLI prints before the message, so the
three shells translate errors the same way without a lookup table::

    LoopMLError
    ├── NotFoundError (LookupError)                 404
    │   ├── ExperimentNotFoundError
    │   ├── RunNotFoundError
    │   ├── MetricNotFoundError
    │   ├── DatasetNotFoundError
    │   ├── ArtifactNotFoundError
    │   ├── ModelNotFoundError
    │   ├── ModelVersionNotFoundError
    │   ├── AliasNotFoundError
    │   └── RequestNotFoundError
    ├── AlreadyExistsError                          409
    │   ├── ExperimentAlreadyExistsError
    │   └── ModelAlreadyExistsError
    ├── InvalidInputError (ValueError)              422
    │   ├── InvalidFilterError
    │   ├── InvalidValueError
    │   ├── ArtifactPathError
    │   ├── UnsupportedSchemeError
    │   ├── NoActiveRunError
    │   ├── InvalidUriError
    │   ├── SchemaError
    │   ├── UnsupportedModelError
    │   └── UntrustedTypeError
    ├── ConflictError                               409
    │   ├── RunNotActiveError
    │   ├── ParamConflictError
    │   ├── MetricsLostError
    │   ├── InvalidTransitionError
    │   ├── ApprovalRequiredError (403)
    │   └── ArtifactImmutableError
    └── StoreError                                  500
        ├── ArtifactIntegrityError
        │   ├── ModelIntegrityError
        │   └── ArtifactDecryptionError
        ├── ArtifactStoreUnavailableError           503
        └── MigrationError
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import ClassVar


class LoopMLError(Exception):
    """Root of every error loopml raises on purpose."""

    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    headline: ClassVar[str] = "loopml error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# -- not found ---------------------------------------------------------------


class NotFoundError(LoopMLError, LookupError):
    """The named object does not exist."""

    http_status = 404
    headline = "Not found"


class ExperimentNotFoundError(NotFoundError):
    headline = "Experiment not found"


class RunNotFoundError(NotFoundError):
    headline = "Run not found"


class MetricNotFoundError(NotFoundError):
    headline = "Metric not found"


class DatasetNotFoundError(NotFoundError):
    headline = "Dataset not found"


class ArtifactNotFoundError(NotFoundError):
    headline = "Artifact not found"


class ModelNotFoundError(NotFoundError):
    headline = "Registered model not found"


class ModelVersionNotFoundError(NotFoundError):
    headline = "Model version not found"


class AliasNotFoundError(NotFoundError):
    headline = "Alias not found"


class RequestNotFoundError(NotFoundError):
    headline = "Transition request not found"


# -- already exists ------------------------------------------------------------


class AlreadyExistsError(LoopMLError):
    """An object with that identity exists already."""

    http_status = 409
    headline = "Already exists"


class ExperimentAlreadyExistsError(AlreadyExistsError):
    headline = "Experiment already exists"


class ModelAlreadyExistsError(AlreadyExistsError):
    headline = "Registered model already exists"


# -- invalid input -------------------------------------------------------------


class InvalidInputError(LoopMLError, ValueError):
    """The caller passed something loopml cannot accept; nothing was changed."""

    http_status = 422
    exit_code = 2
    headline = "Invalid input"


class InvalidFilterError(InvalidInputError):
    """A search filter or order-by clause does not parse.

    ``position`` is the 0-based character offset of the offending token.
    """

    headline = "Invalid filter"

    def __init__(self, message: str, *, text: str = "", position: int = 0, token: str = "") -> None:
        super().__init__(message)
        self.text = text
        self.position = position
        self.token = token


class InvalidValueError(InvalidInputError):
    """A metric, param, tag or argument value has the wrong type or form."""

    headline = "Invalid value"


class ArtifactPathError(InvalidInputError):
    """An artifact path escapes the store (absolute, ``..``) or is malformed."""

    headline = "Invalid artifact path"


class UnsupportedSchemeError(InvalidInputError):
    """A store URL names a scheme loopml has no backend for."""

    headline = "Unsupported store URL"


class NoActiveRunError(InvalidInputError):
    """A fluent call (``loopml.log_metric``) was made outside ``start_run``."""

    headline = "No active run"


class InvalidUriError(InvalidInputError):
    """A ``runs:/`` or ``models:/`` URI of the wrong form."""

    headline = "Invalid URI"


class SchemaError(InvalidInputError):
    """Input does not match a model's signature.

    ``problems`` maps each offending column to what is wrong with it.
    """

    headline = "Input does not match the model signature"

    def __init__(self, message: str, *, problems: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.problems = dict(problems or {})


class UnsupportedModelError(InvalidInputError):
    """No flavor can save or load this kind of model."""

    headline = "Unsupported model"


class UntrustedTypeError(InvalidInputError):
    """A saved model holds types skops does not trust; pass ``trusted=[...]`` to allow them."""

    headline = "Untrusted types in model"

    def __init__(self, message: str, *, untrusted: list[str] | None = None) -> None:
        super().__init__(message)
        self.untrusted = list(untrusted or [])


# -- conflicts -----------------------------------------------------------------


class ConflictError(LoopMLError):
    """The request contradicts the stored state."""

    http_status = 409
    headline = "Conflict"


class RunNotActiveError(ConflictError):
    """A write to a run that has already ended."""

    headline = "Run not active"


class ParamConflictError(ConflictError):
    """A param was logged again with a different value (params are immutable)."""

    headline = "Param already logged"


class MetricsLostError(ConflictError):
    """Buffered metric points could not be written because their run ended or vanished from the store.

    Raised by ``flush()`` and at run end (also for points the background flush
    found undeliverable), once per lost batch; ``n_points`` and ``run_id`` say
    what was lost.
    """

    headline = "Metric points lost"

    def __init__(self, message: str, *, run_id: str = "", n_points: int = 0) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.n_points = n_points


class InvalidTransitionError(ConflictError):
    """A lifecycle transition that the version's state or the stage rules forbid."""

    headline = "Invalid transition"


class ApprovalRequiredError(ConflictError):
    """Moving to this stage needs an approved request first."""

    http_status = 403
    headline = "Approval required"


class ArtifactImmutableError(ConflictError):
    """A finished run's artifact index is append-only: an existing path never changes its bytes."""

    headline = "Artifact is immutable"


# -- store faults ----------------------------------------------------------------


class StoreError(LoopMLError):
    """The backing store failed or holds data that cannot be trusted."""

    http_status = 500
    headline = "Store error"


class ArtifactIntegrityError(StoreError):
    """Stored artifact bytes are missing or do not match their sha256."""

    headline = "Artifact integrity check failed"


class ModelIntegrityError(ArtifactIntegrityError):
    """A packaged model's files do not match the sha256 listed in its manifest."""

    headline = "Model files do not match the manifest"


class ArtifactDecryptionError(ArtifactIntegrityError):
    """An encrypted artifact cannot be opened: no key, the wrong key, or bytes that fail authentication."""

    headline = "Artifact cannot be decrypted"


class ArtifactStoreUnavailableError(StoreError):
    """The artifact store (a folder, an S3 endpoint) cannot be reached or refused the request; retry later."""

    http_status = 503
    headline = "Artifact store unavailable"


class MigrationError(StoreError):
    """The metadata schema could not be brought to the current version."""

    headline = "Schema migration failed"


# -- access ------------------------------------------------------------------


class AuthenticationError(LoopMLError):
    """No valid API token came with a request to a server that requires one."""

    http_status = 401
    exit_code = 3
    headline = "Not authenticated"


class PermissionDeniedError(LoopMLError):
    """The caller's role does not allow this action (said without revealing whether the object exists)."""

    http_status = 403
    exit_code = 3
    headline = "Permission denied"


class TokenNotFoundError(NotFoundError):
    """No active API token has that name."""

    headline = "Token not found"


class TokenAlreadyExistsError(AlreadyExistsError):
    """An active API token already has that name."""

    headline = "Token already exists"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return `` Did you mean 'x'?`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


# -- pipelines and validation ------------------------------------------------------
#
#   LoopMLError
#   ├── PipelineError                                500
#   │   ├── PipelineDefinitionError (InvalidInputError)   422, exit 2
#   │   │   └── NoMaterializerError
#   │   ├── StepFailedError
#   │   └── StepTimeoutError (TimeoutError)
#   └── ValidationFailedError                        422


class PipelineError(LoopMLError):
    """A pipeline could not be built or run."""

    headline = "Pipeline error"


class PipelineDefinitionError(PipelineError, InvalidInputError):
    """A step or pipeline is used in a way that cannot be traced (nothing ran)."""

    http_status = 422
    exit_code = 2
    headline = "Invalid pipeline"


class NoMaterializerError(PipelineDefinitionError):
    """A step output (or constant input) is of a type no registered materialiser can store."""

    headline = "No materialiser for this value"


class StepFailedError(PipelineError):
    """A step raised on every attempt; the pipeline run failed with it.

    ``step`` is the node's name in the pipeline, ``traceback`` the formatted
    traceback of the last attempt, ``run_id`` the step's run (which holds the
    traceback too) and ``error_type`` the class name of what it raised.
    """

    headline = "Step failed"

    def __init__(
        self,
        message: str,
        *,
        step: str,
        traceback: str = "",
        run_id: str | None = None,
        error_type: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.traceback = traceback
        self.run_id = run_id
        self.error_type = error_type
        self.attempts = attempts


class StepTimeoutError(PipelineError, TimeoutError):
    """One attempt of a step ran longer than the step's ``timeout``."""

    headline = "Step timed out"


class ValidationFailedError(LoopMLError):
    """A data check, data contract or model gate failed; ``report`` lists every violation."""

    http_status = 422
    headline = "Validation failed"

    def __init__(self, message: str, *, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class ColumnNotFoundError(NotFoundError):
    """A named column is not in the data (monitoring: drift, quality, performance)."""

    headline = "Column not found"


# -- serving -----------------------------------------------------------------------
#
#   LoopMLError
#   ├── NotFoundError
#   │   ├── DeploymentNotFoundError                404
#   │   └── PredictionNotFoundError                404
#   ├── InvalidInputError
#   │   └── PayloadTooLargeError                   413
#   └── ServiceUnavailableError                    503


class DeploymentNotFoundError(NotFoundError):
    """A model has no deployment (or no earlier one to roll back to), or a server does not serve it."""

    headline = "Deployment not found"


class PredictionNotFoundError(NotFoundError):
    """Feedback named request ids the prediction log does not hold (never answered, or not logged)."""

    headline = "Prediction not found"

    def __init__(self, message: str, *, request_ids: list[str] | None = None) -> None:
        super().__init__(message)
        self.request_ids = list(request_ids or [])


class PayloadTooLargeError(InvalidInputError):
    """A request body is larger than the server accepts."""

    http_status = 413
    headline = "Request body too large"


class ServiceUnavailableError(LoopMLError):
    """The prediction service cannot answer now (a model failed to load, or it is shutting down); retry later."""

    http_status = 503
    headline = "Service unavailable"


# -- monitors and continuous training ------------------------------------------------


class MonitorNotFoundError(NotFoundError):
    """No monitor has that name."""

    headline = "Monitor not found"


class TaskNotFoundError(NotFoundError):
    """No continuous-training task has that id."""

    headline = "Task not found"


class TaskEndedError(ConflictError):
    """A continuous-training task that already ended cannot be updated or ended again."""

    headline = "Task already ended"


class ReproductionError(LoopMLError):
    """A model version cannot be re-run as recorded: no pipeline, no commit, or the commit is not available."""

    http_status = 409
    headline = "Cannot reproduce"


# -- feature store -------------------------------------------------------------------
#
#   LoopMLError
#   └── FeatureStoreError                             422
#       ├── FeatureDefinitionError (InvalidInputError)
#       ├── FeatureSourceError (InvalidInputError)
#       ├── FeatureReferenceError (InvalidInputError)
#       ├── EntityFrameError (InvalidInputError)
#       ├── FeatureViewNotFoundError (NotFoundError)  404
#       ├── FeatureChangeRefusedError (ConflictError)  409
#       └── OnlineStoreError                          503


class FeatureStoreError(LoopMLError):
    """Something about feature definitions, their sources or the online store is wrong."""

    http_status = 422
    exit_code = 2
    headline = "Feature store error"


class FeatureDefinitionError(FeatureStoreError, InvalidInputError):
    """An Entity, FeatureView or FeatureService is malformed (bad name, ttl, dtype, ...)."""

    headline = "Invalid feature definition"


class FeatureSourceError(FeatureStoreError, InvalidInputError):
    """A view's source cannot be read or lacks a declared column, or a column has the wrong type."""

    headline = "Invalid feature source"


class FeatureReferenceError(FeatureStoreError, InvalidInputError):
    """A requested ``view:feature`` or service does not resolve, or two views give the same feature name."""

    headline = "Invalid feature reference"


class EntityFrameError(FeatureStoreError, InvalidInputError):
    """The entity frame lacks a join key or timestamp column, or mixes naive and tz-aware timestamps."""

    headline = "Invalid entity frame"


class FeatureViewNotFoundError(FeatureStoreError, NotFoundError):
    """No feature view (or service) with that name or version has been applied."""

    http_status = 404
    exit_code = 1
    headline = "Feature view not found"


class FeatureChangeRefusedError(FeatureStoreError, ConflictError):
    """A breaking change to a view that a registered model version uses, refused unless forced."""

    http_status = 409
    exit_code = 1
    headline = "Feature change refused"


class OnlineStoreError(FeatureStoreError):
    """The online store cannot be reached or used (named by URL, never with credentials)."""

    http_status = 503
    exit_code = 1
    headline = "Online store error"


# -- warnings ------------------------------------------------------------------------


class SymlinkSkippedWarning(UserWarning):
    """``log_artifact`` skipped symbolic links in a folder instead of uploading what they point to."""


# -- load ------------------------------------------------------------------------------
#
#   LoopMLError
#   └── TooManyRequestsError                         429


class TooManyRequestsError(LoopMLError):
    """The server's bounded expensive work (checking API tokens it has not seen) is busy; retry after a moment."""

    http_status = 429
    headline = "Too many requests"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
