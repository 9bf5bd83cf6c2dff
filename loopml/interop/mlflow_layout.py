"""Where MLflow's own concepts live inside loopml data (shared by the REST routes and the importer).

* A logged model (MLflow 3) is a folder of its source run's artifacts,
  ``mlflow-models/<model id>/``, plus one run tag
  ``mlflow.loopml.loggedModel.<model id>`` holding its name, status, params
  and tags as JSON.
* Which logged models a run produced (MLflow's run outputs) is the JSON list
  in the run tag ``mlflow.loopml.modelOutputs``.
* An MLflow model folder registered as a loopml version gets a loopml package
  manifest (``loopml-model.json``, flavor ``mlflow``, pickle-marked) listing
  the sha256 of each file, so the version is pinned like any other while
  loopml never loads the folder itself (``load_model`` refuses it).
* A logged model's id is ``m-<run id><8 hex>``, so the run holding it is read
  from the id; an imported logged model gets such an id too, its MLflow id
  kept as ``source_model_id`` in its record.
* Imported objects remember their source: ``mlflow.import.runId`` on runs,
  ``mlflow.import.version`` on model versions.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.registry import MANIFEST_FILE
from loopml.errors import ArtifactNotFoundError
from loopml.store import Store
from loopml.timestamps import now_ms

#: Run tags loopml keeps for MLflow's concepts; the MLflow API hides them from its clients.
INTERNAL_TAG_PREFIX = "mlflow.loopml."
LOGGED_MODEL_TAG_PREFIX = f"{INTERNAL_TAG_PREFIX}loggedModel."
MODEL_OUTPUTS_TAG = f"{INTERNAL_TAG_PREFIX}modelOutputs"
#: The folder of a run's artifacts that holds the files of its MLflow logged models.
LOGGED_MODELS_FOLDER = "mlflow-models"
#: The flavor loopml's manifest names for an MLflow model folder it keeps as opaque files.
MLFLOW_FLAVOR = "mlflow"
#: Tags that record where imported data came from (what makes a second import skip it).
IMPORTED_RUN_TAG = "mlflow.import.runId"
IMPORTED_VERSION_TAG = "mlflow.import.version"
_MODEL_ID = re.compile(r"m-([0-9a-f]{32})[0-9a-f]{8}")
#: loopml's package manifest format this module writes (loopml.models.package reads it).
MANIFEST_FORMAT_VERSION = 1


def new_model_id(run_id: str) -> str:
    """A new logged-model id for a model of ``run_id``: ``m-<run id><8 hex>`` (the run is read back from it)."""
    return f"m-{run_id}{secrets.token_hex(4)}"


def run_of_model(model_id: str) -> str | None:
    """The run id inside a logged-model id made by ``new_model_id``, or None for another id."""
    match = _MODEL_ID.fullmatch(model_id)
    return None if match is None else match.group(1)


def model_folder(model_id: str) -> str:
    """The run-relative artifact folder of a logged model's files."""
    return f"{LOGGED_MODELS_FOLDER}/{model_id}"


def model_record_tag(model_id: str) -> str:
    """The run tag holding a logged model's record."""
    return LOGGED_MODEL_TAG_PREFIX + model_id


def encode_record(record: Mapping[str, object]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def ensure_manifest(store: Store, run_id: str, folder: str, actor: str | None) -> None:
    """Write loopml's package manifest for the MLflow model folder ``folder`` of a run, unless it has one.

    Raises ArtifactNotFoundError when the folder holds no MLflow model (no ``MLmodel`` file).
    """
    entries = store.tracking.list_artifacts(run_id, folder)
    prefix = f"{folder}/"
    files = {e.path[len(prefix) :]: e.digest for e in entries if e.path.startswith(prefix)}
    if MANIFEST_FILE in files:
        return
    if "MLmodel" not in files:
        raise ArtifactNotFoundError(f"Run {run_id} has no MLflow model (an MLmodel file) under {folder!r}.")
    manifest = {
        "format_version": MANIFEST_FORMAT_VERSION,
        "name": folder,
        "run_id": run_id,
        "flavor": MLFLOW_FLAVOR,
        # an MLflow folder may hold pickles: loopml treats the whole folder as untrusted code
        "flavor_config": {"serialization": "pickle", "format": "mlflow-model-folder"},
        "signature": None,
        "signature_source": None,
        "input_example": None,
        "extra_columns": "keep",
        "requirements": [],
        "loopml_version": None,
        "python_version": None,
        "files": dict(sorted(files.items())),
        "created_at": now_ms(),
    }
    data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    digest = store.artifacts.put_bytes(data)
    store.tracking.log_artifact_entries(
        run_id, [ArtifactEntry(f"{folder}/{MANIFEST_FILE}", digest, len(data))], actor=actor
    )
