"""Model packages: the flavor's files plus a manifest, stored as run artifacts.

A model logged as ``name`` becomes these artifacts of the run::

    <name>/loopml-model.json     the manifest: flavor, signature, requirements, sha256 of every file
    <name>/model.skops           whatever the flavor wrote (model.onnx, python_model.json, artifacts/...)
    <name>/input_example.json    up to five example rows, as records

Loading checks the package before any model code runs: every file listed in
the manifest must be in the run's artifact index (and nothing else), and
every file's bytes must hash to what the manifest says.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import stat
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.config import os_user
from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.registry import MANIFEST_FILE as MANIFEST
from loopml.errors import (
    AlreadyExistsError,
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ArtifactPathError,
    InvalidValueError,
    ModelIntegrityError,
    SchemaError,
    UnsupportedModelError,
    UntrustedTypeError,
    did_you_mean,
)
from loopml.models.flavors import Flavor, flavor_for, get_flavor
from loopml.models.flavors.base import ArtifactSources
from loopml.models.signature import (
    EXTRA_POLICIES,
    ExtraPolicy,
    Signature,
    coerce_input,
    example_frame,
    infer_signature,
)
from loopml.paths import check_artifact_path, join_inside
from loopml.timestamps import now_ms

if TYPE_CHECKING:
    import pandas as pd

    from loopml.tracking.client import TrackingClient

FORMAT_VERSION = 1
INPUT_EXAMPLE = "input_example.json"
EXAMPLE_ROWS = 5


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What :func:`log_model` stored: where, with which flavor and signature, and the manifest."""

    run_id: str
    name: str
    uri: str
    flavor: str
    signature: Signature | None
    manifest: dict[str, Any]


class LoadedModel:
    """A packaged model loaded from a run, ready to predict.

    ``predict`` takes a DataFrame, a list of records, a dict of columns or a
    single record; when the model has a signature the input is checked and
    cast first (one SchemaError lists every problem).

    Example:
        >>> model = load_model_from_run(client, run_id)          # doctest: +SKIP
        >>> model.predict({"sepal length (cm)": 5.1, ...})       # doctest: +SKIP
    """

    def __init__(
        self,
        raw: Any,
        flavor: Flavor,
        signature: Signature | None,
        metadata: dict[str, Any],
        *,
        path: Path | None = None,
    ) -> None:
        self._raw = raw
        self._flavor = flavor
        self._signature = signature
        self._metadata = metadata
        self._path = path
        self._extra: ExtraPolicy = metadata.get("extra_columns", "error")

    @property
    def raw(self) -> Any:
        """The underlying object: an estimator, an onnxruntime session or the PythonModel."""
        return self._raw

    @property
    def flavor(self) -> str:
        """The flavor's name: "sklearn", "onnx" or "pyfunc"."""
        return self._flavor.name

    @property
    def signature(self) -> Signature | None:
        """The input signature, or None when the model was logged without one."""
        return self._signature

    @property
    def metadata(self) -> dict[str, Any]:
        """The manifest, as stored."""
        return self._metadata

    @property
    def path(self) -> Path | None:
        """The local folder holding the verified files."""
        return self._path

    def predict(self, data: Any, *, extra: ExtraPolicy | None = None) -> Any:
        """Predictions: a numpy array for sklearn and onnx models, whatever ``predict`` returns for pyfunc.

        ``extra`` overrides, for this call, the extra-column policy recorded at logging time.
        """
        return self._flavor.predict(self._raw, self._prepare(data, extra))

    def predict_proba(self, data: Any, *, extra: ExtraPolicy | None = None) -> Any:
        """Class probabilities; UnsupportedModelError when the model gives none."""
        return self._flavor.predict_proba(self._raw, self._prepare(data, extra))

    def explain(self, data: Any, *, background: Any = None) -> Any:
        """SHAP attributions of each row (``loopml.explain.Attributions``), from an explainer built once per model.

        Each row's attributions sum to its output minus the expected value. Linear and kernel explainers
        need ``background`` rows (default: the logged input example); see ``docs/responsible.md``.
        """
        from loopml.explain.local import explain

        return explain(self, data, background=background)

    def _prepare(self, data: Any, extra: ExtraPolicy | None) -> pd.DataFrame:
        frame = coerce_input(data)
        if self._signature is None:
            return frame
        return self._signature.enforce(frame, extra=extra or self._extra)

    def __repr__(self) -> str:
        uri = f"runs:/{self._metadata.get('run_id')}/{self._metadata.get('name')}"
        return f"LoadedModel(flavor={self.flavor!r}, uri={uri!r})"


def log_model(
    client: TrackingClient,
    run_id: str,
    model: Any,
    name: str = "model",
    *,
    signature: Signature | str | None = "infer",
    input_example: Any = None,
    flavor: str | Flavor | None = None,
    unsafe_pickle: bool = False,
    artifacts: ArtifactSources | None = None,
    extra: ExtraPolicy = "error",
) -> ModelInfo:
    """Package ``model`` and store it under ``<name>/`` in the run's artifacts.

    Args:
        client: the tracking client whose store receives the files.
        run_id: a running run.
        model: a scikit-learn estimator, an ONNX model (or its bytes) or a PythonModel.
        name: the artifact folder; also the name to load it by.
        signature: "infer" (from ``input_example``; None when there is no example),
            a Signature, or None for no input checks.
        input_example: a few rows of typical input; the first five are stored.
        flavor: a flavor name or instance; chosen from the model's type when None.
        unsafe_pickle: sklearn only: save with pickle instead of skops. Loading a
            pickle runs whatever it contains, so use it only between parties that trust each other.
        artifacts: pyfunc only: ``{name: local file or folder}`` copied into the package.
        extra: what predictions do with columns the signature does not list:
            "error", "drop" or "keep" (overridable per call).

    Raises:
        UnsupportedModelError: no flavor can save the model.
        SchemaError: a given signature does not match ``input_example``.
        AlreadyExistsError: the run has artifacts under ``name`` already.
    """
    name = check_artifact_path(name)
    if extra not in EXTRA_POLICIES:
        raise InvalidValueError(f"extra must be one of {', '.join(EXTRA_POLICIES)}, got {extra!r}.")
    chosen = _choose_flavor(model, flavor)
    example = None if input_example is None else example_frame(input_example)
    resolved, signature_source = _resolve_signature(signature, example, extra)
    if client.list_artifacts(run_id, name):
        raise AlreadyExistsError(
            f"Run {run_id} already has artifacts under {name!r}; log the model under another name=."
        )
    with tempfile.TemporaryDirectory(prefix="loopml-model-") as tmp:
        folder = Path(tmp)
        flavor_config = chosen.save(model, folder, unsafe_pickle=unsafe_pickle, artifacts=artifacts, example=example)
        if example is not None:
            records = example.head(EXAMPLE_ROWS).to_json(orient="records", date_format="iso")
            (folder / INPUT_EXAMPLE).write_text(records, encoding="utf-8")
        files = _read_folder(folder)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "run_id": run_id,
        "flavor": chosen.name,
        "flavor_config": flavor_config,
        "signature": None if resolved is None else resolved.to_dict(),
        "signature_source": signature_source,
        "input_example": INPUT_EXAMPLE if example is not None else None,
        "extra_columns": extra,
        "requirements": chosen.requirements(),
        "loopml_version": _loopml_version(),
        "python_version": platform.python_version(),
        "files": {relpath: hashlib.sha256(data).hexdigest() for relpath, data in files.items()},
        "created_at": now_ms(),
    }
    payload = {f"{name}/{relpath}": data for relpath, data in files.items()}
    payload[f"{name}/{MANIFEST}"] = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    # One call: the index rows for every file, manifest included, land in one transaction.
    client.log_artifact_bytes(run_id, payload)
    return ModelInfo(
        run_id=run_id,
        name=name,
        uri=f"runs:/{run_id}/{name}",
        flavor=chosen.name,
        signature=resolved,
        manifest=manifest,
    )


def load_model_from_run(
    client: TrackingClient,
    run_id: str,
    name: str = "model",
    *,
    trusted: Sequence[str | type] | None = None,
    unsafe_pickle: bool = False,
    manifest_digest: str | None = None,
) -> LoadedModel:
    """Load the model logged as ``name`` in the run, after verifying every file.

    A registered version passes the ``manifest_digest`` pinned at registration:
    the manifest lists the sha256 of every file, so a package whose manifest
    differs from the pin (files swapped behind the version) is refused before
    any file is read.

    Args:
        client: the tracking client to read from.
        run_id: the run the model was logged in.
        name: the name given to :func:`log_model`.
        trusted: type names (or types) skops may rebuild beyond its defaults,
            e.g. ``["sklearn.tree._tree.Tree"]``; UntrustedTypeError lists the ones needed.

    Raises:
        ArtifactNotFoundError: the run has no model of that name (the message lists those it has).
        ModelIntegrityError: a file is missing, unlisted or differs from the manifest,
            or the manifest is not the one pinned by ``manifest_digest``.
        UntrustedTypeError: the model holds types outside ``trusted``, or was saved
            with pickle and ``unsafe_pickle`` is not set (whoever can write the run's
            artifacts could otherwise make a load run their code).
    """
    name = check_artifact_path(name)
    allowed = _trusted_names(trusted)
    prefix = f"{name}/"
    entries = {e.path[len(prefix) :]: e for e in client.list_artifacts(run_id, name) if e.path.startswith(prefix)}
    if MANIFEST not in entries:
        raise ArtifactNotFoundError(_not_found_message(client, run_id, name))
    if manifest_digest is not None and entries[MANIFEST].digest != manifest_digest:
        raise ModelIntegrityError(
            f"Model {name!r} of run {run_id} is not the package that was registered: its manifest changed "
            f"(pinned sha256 {manifest_digest[:12]}…, now {entries[MANIFEST].digest[:12]}…). Refusing to load it."
        )
    manifest_bytes = _fetch(client, entries.pop(MANIFEST), MANIFEST, name, run_id)
    manifest = _parse_manifest(manifest_bytes, name, run_id)
    _check_index(manifest["files"], entries, name, run_id)
    folder = _materialise(client, manifest["files"], entries, manifest_bytes, name, run_id)
    if manifest["flavor_config"].get("serialization") == "pickle" and not unsafe_pickle:
        raise UntrustedTypeError(
            f"Model {name!r} of run {run_id} was saved with pickle, which runs arbitrary code when loaded. "
            "If you trust everyone who can write to this store, load it with unsafe_pickle=True."
        )
    chosen = get_flavor(manifest["flavor"])
    raw = chosen.load(folder, manifest["flavor_config"], trusted=allowed)
    signature = None if manifest.get("signature") is None else Signature.from_dict(manifest["signature"])
    return LoadedModel(raw, chosen, signature, manifest, path=folder)


# -- logging helpers -----------------------------------------------------------------


def _choose_flavor(model: Any, flavor: str | Flavor | None) -> Flavor:
    if flavor is None:
        return flavor_for(model)
    if isinstance(flavor, Flavor):
        return flavor
    return get_flavor(flavor)


def _resolve_signature(
    signature: Signature | str | None, example: pd.DataFrame | None, extra: ExtraPolicy
) -> tuple[Signature | None, str]:
    """The signature to record and where it came from: "inferred", "given" or "none"."""
    if isinstance(signature, str) and signature == "infer":
        if example is None:
            return None, "none"
        return infer_signature(example), "inferred"
    if signature is None:
        return None, "none"
    if isinstance(signature, Signature):
        if example is not None:
            try:
                signature.enforce(example, extra=extra)
            except SchemaError as exc:
                raise SchemaError(
                    f"The input example does not match the given signature. {exc.message}", problems=exc.problems
                ) from exc
        return signature, "given"
    raise InvalidValueError(f"signature must be 'infer', a Signature or None, got {signature!r}.")


def _read_folder(folder: Path) -> dict[str, bytes]:
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()
    }
    if MANIFEST in files:
        raise UnsupportedModelError(f"The flavor wrote a file named {MANIFEST}, which is reserved for the manifest.")
    return files


def _loopml_version() -> str:
    # The root package re-exports every layer; a static "from loopml import" here would make
    # models depend on all of them. It is already imported (we are inside it), so just look it up.
    version: str = importlib.import_module("loopml").__version__
    return version


# -- loading helpers -----------------------------------------------------------------


def _trusted_names(trusted: Sequence[str | type] | None) -> list[str] | None:
    if trusted is None:
        return None
    if isinstance(trusted, str):
        raise InvalidValueError(f"trusted must be a list of type names, e.g. trusted=[{trusted!r}], not a string.")
    names = []
    for item in trusted:
        if isinstance(item, type):
            names.append(f"{item.__module__}.{item.__qualname__}")
        elif isinstance(item, str):
            names.append(item)
        else:
            raise InvalidValueError(f"trusted holds type names or types, not {type(item).__name__} ({item!r}).")
    return names


def _not_found_message(client: TrackingClient, run_id: str, name: str) -> str:
    suffix = f"/{MANIFEST}"
    models = sorted(e.path[: -len(suffix)] for e in client.list_artifacts(run_id) if e.path.endswith(suffix))
    if not models:
        return f"No model named {name!r} in run {run_id}: the run has no logged models."
    listed = ", ".join(repr(model) for model in models)
    return f"No model named {name!r} in run {run_id}. Models in this run: {listed}.{did_you_mean(name, models)}"


def _parse_manifest(data: bytes, name: str, run_id: str) -> dict[str, Any]:
    where = f"Model {name!r} of run {run_id}"
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise ModelIntegrityError(f"{where}: {MANIFEST} is not valid JSON ({exc}).") from exc
    if not isinstance(manifest, dict):
        raise ModelIntegrityError(f"{where}: {MANIFEST} does not hold a JSON object.")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ModelIntegrityError(f"{where}: {MANIFEST} has no format_version.")
    if version > FORMAT_VERSION:
        raise UnsupportedModelError(
            f"{where} was packaged in format {version} by a newer loopml; this one reads format "
            f"{FORMAT_VERSION}. Upgrade loopml to load it."
        )
    files = manifest.get("files")
    if (
        not isinstance(manifest.get("flavor"), str)
        or not isinstance(manifest.get("flavor_config"), dict)
        or not isinstance(files, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    ):
        raise ModelIntegrityError(f"{where}: {MANIFEST} lacks a valid flavor, flavor_config or files table.")
    for relpath in files:
        # Paths become local file names below; one that climbs out of the folder is refused.
        try:
            check_artifact_path(relpath)
        except ArtifactPathError as exc:
            raise ModelIntegrityError(f"{where}: {MANIFEST} lists an invalid path {relpath!r}.") from exc
        if relpath == MANIFEST:
            raise ModelIntegrityError(f"{where}: {MANIFEST} lists an invalid path {relpath!r}.")
    return manifest


def _check_index(expected: Mapping[str, str], stored: Mapping[str, ArtifactEntry], name: str, run_id: str) -> None:
    """Compare the manifest with the run's artifact index, without reading any blob."""
    missing = sorted(set(expected) - set(stored))
    unlisted = sorted(set(stored) - set(expected))
    changed = sorted(p for p in set(expected) & set(stored) if stored[p].digest != expected[p])
    faults = []
    if missing:
        faults.append("missing from the run's artifacts: " + ", ".join(f"{name}/{p}" for p in missing))
    if unlisted:
        faults.append("not listed in the manifest: " + ", ".join(f"{name}/{p}" for p in unlisted))
    if changed:
        faults.append("content differs from the manifest's sha256: " + ", ".join(f"{name}/{p}" for p in changed))
    if faults:
        raise ModelIntegrityError(
            f"Model {name!r} of run {run_id} does not match its manifest; "
            + "; ".join(faults)
            + ". The package was changed after it was logged; log the model again."
        )


def _fetch(client: TrackingClient, entry: ArtifactEntry, relpath: str, name: str, run_id: str) -> bytes:
    try:
        return client.store.artifacts.get_bytes(entry.digest)
    except ArtifactIntegrityError as exc:
        raise ModelIntegrityError(
            f"Model {name!r} of run {run_id}: the stored bytes of {name}/{relpath} are damaged: {exc}"
        ) from exc


def _materialise(
    client: TrackingClient,
    expected: Mapping[str, str],
    stored: Mapping[str, ArtifactEntry],
    manifest_bytes: bytes,
    name: str,
    run_id: str,
) -> Path:
    """A local folder holding every file, each verified against the manifest's sha256.

    Files already in the cache are reused only when their hash still matches,
    so a cache edited on disk is repaired rather than trusted.
    """
    folder = _model_folder(manifest_bytes)
    for relpath, digest in expected.items():
        target = join_inside(folder, relpath)
        if target.is_file() and _file_sha256(target) == digest:
            continue
        data = _fetch(client, stored[relpath], relpath, name, run_id)
        if hashlib.sha256(data).hexdigest() != digest:
            raise ModelIntegrityError(
                f"Model {name!r} of run {run_id}: {name}/{relpath} does not hash to the sha256 in its manifest."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        partial.write_bytes(data)
        os.replace(partial, target)  # concurrent loaders each write whole files
    return folder


def _model_folder(manifest_bytes: bytes) -> Path:
    """The cache folder for this manifest, or a fresh private folder when no safe cache exists."""
    root = _cache_root()
    if root is None:
        return Path(tempfile.mkdtemp(prefix="loopml-model-"))
    folder = root / hashlib.sha256(manifest_bytes).hexdigest()
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _cache_root() -> Path | None:
    """``<tmp>/loopml-models-<user>``, used only if it is a real folder that only this user can write."""
    user = str(os.getuid()) if hasattr(os, "getuid") else os_user()
    root = Path(tempfile.gettempdir()) / f"loopml-models-{user}"
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    # Another local user could otherwise swap a verified file before it is loaded.
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        return None
    return root



def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
