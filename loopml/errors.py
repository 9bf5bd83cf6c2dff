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
    │   ├── InvalidTransitionError
    │   └── ApprovalRequiredError (403)
    └── StoreError                                  500
        ├── ArtifactIntegrityError
        │   └── ModelIntegrityError
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


class InvalidTransitionError(ConflictError):
    """A lifecycle transition that the version's state or the stage rules forbid."""

    headline = "Invalid transition"


class ApprovalRequiredError(ConflictError):
    """Moving to this stage needs an approved request first."""

    http_status = 403
    headline = "Approval required"


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


class MigrationError(StoreError):
    """The metadata schema could not be brought to the current version."""

    headline = "Schema migration failed"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return `` Did you mean 'x'?`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
