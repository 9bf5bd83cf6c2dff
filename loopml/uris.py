"""The identifiers users type: ``runs:/<run_id>/<path>`` and ``models:/<name>/<version>|@<alias>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopml.errors import InvalidUriError, InvalidValueError

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class RunArtifactUri:
    """``runs:/<run_id>/<path>``; ``path`` may be "" for the whole run."""

    run_id: str
    path: str

    def __str__(self) -> str:
        return f"runs:/{self.run_id}/{self.path}"


def parse_runs_uri(uri: str) -> RunArtifactUri:
    """Split ``runs:/<run_id>/<path>``; InvalidUriError naming the expected form."""
    if not isinstance(uri, str) or not uri.startswith("runs:/"):
        raise InvalidUriError(f"Not a run artifact URI: {uri!r}. Expected runs:/<run_id>/<path>.")
    run_id, _, path = uri[len("runs:/") :].lstrip("/").partition("/")
    if not _RUN_ID.match(run_id):
        raise InvalidUriError(f"Malformed run id {run_id!r} in {uri!r}: expected 32 hex characters.")
    return RunArtifactUri(run_id=run_id, path=path.strip("/"))


_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")


def check_model_name(name: str) -> str:
    """Registered model names: letters, digits, '_', '.', '-' (no '/' or '@', which URIs use)."""
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise InvalidValueError(
            f"Invalid model name {name!r}: use letters, digits, '_', '.' or '-', starting with a letter or digit."
        )
    return name


@dataclass(frozen=True, slots=True)
class ModelUri:
    """``models:/<name>/<version>``, ``models:/<name>/latest`` or ``models:/<name>@<alias>``.

    Exactly one of ``version`` and ``alias`` is set; ``alias`` "latest" means the newest version.
    """

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"models:/{self.name}/{self.version}" if self.version is not None else f"models:/{self.name}@{self.alias}"


def parse_models_uri(uri: str) -> ModelUri:
    """Parse a ``models:/`` URI; InvalidUriError naming the accepted forms."""
    forms = "models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>"
    if not isinstance(uri, str) or not uri.startswith("models:/"):
        raise InvalidUriError(f"Not a model URI: {uri!r}. Expected {forms}.")
    body = uri[len("models:/") :].strip("/")
    if "@" in body:
        name, _, alias = body.partition("@")
        if not alias or "/" in alias:
            raise InvalidUriError(f"Malformed model URI {uri!r}: expected {forms}.")
        return ModelUri(name=_uri_name(name, uri), alias=alias)
    name, sep, version = body.partition("/")
    if not sep or not version or "/" in version:
        raise InvalidUriError(f"Malformed model URI {uri!r}: expected {forms}.")
    if version == "latest":
        return ModelUri(name=_uri_name(name, uri), alias="latest")
    if not version.isdigit() or int(version) < 1:
        raise InvalidUriError(f"Malformed version {version!r} in {uri!r}: versions are whole numbers from 1.")
    return ModelUri(name=_uri_name(name, uri), version=int(version))


def _uri_name(name: str, uri: str) -> str:
    try:
        return check_model_name(name)
    except InvalidValueError as exc:
        raise InvalidUriError(f"Malformed model URI {uri!r}: {exc}") from exc


_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")


def check_alias(alias: str) -> str:
    """Aliases are identifiers (``champion``, ``challenger``); ``latest`` and numbers are reserved."""
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.lower() == "latest":
        raise InvalidValueError(
            f"Invalid alias {alias!r}: use letters, digits, '_' or '-', starting with a letter; 'latest' is reserved."
        )
    return alias
