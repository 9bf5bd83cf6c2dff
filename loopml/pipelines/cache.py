"""The step cache: keys, and finding earlier outputs with the same key in the tracking store.

A step's cache key is the sha256 of its name, code hash, ``version``, output
names, params (canonical JSON) and the content digests of its inputs. A run
of that step carries the key as the tag ``loopml.cache_key``; a later call
with the same key reuses the outputs of the newest FINISHED run that has it,
found with an ordinary tracking search, so the cache needs no table of its own
and works the same on every backend::

    tags.loopml.cache_key = '<key>' and attributes.status = 'FINISHED'

The outputs of a step run are described in two tags: ``loopml.step.outputs``
(name -> materialiser and content digest) and ``loopml.step.files`` (every
artifact entry they consist of), so a hit costs one search and no artifact read.

That search costs a few milliseconds, as much as a no-op step should cost in
all, so the driver first reads the step records (``loopml/steps.json``) of the
pipeline's few most recent runs: one search and a few artifact reads in all,
after which every step they ran, cached or executed, is found in memory. The
tag search remains the fallback for any other key (a step shared with another
pipeline, an older run).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loopml.entities.tracking import Run, RunStatus
from loopml.errors import ArtifactNotFoundError
from loopml.pipelines.dag import Key, Node, canonical
from loopml.pipelines.materializers import StoredOutput

if TYPE_CHECKING:
    from loopml.tracking.client import TrackingClient

CACHE_KEY_TAG = "loopml.cache_key"
PIPELINE_TAG = "loopml.pipeline"
STEP_TAG = "loopml.step"
NODE_TAG = "loopml.step.node"
STEP_PIPELINE_TAG = "loopml.step.pipeline"
CODE_HASH_TAG = "loopml.step.code_hash"
ATTEMPTS_TAG = "loopml.step.attempts"
OUTPUTS_TAG = "loopml.step.outputs"
FILES_TAG = "loopml.step.files"
LINEAGE_ARTIFACT = "loopml/lineage.json"
PIPELINE_ARTIFACT = "loopml/pipeline.json"
STEPS_ARTIFACT = "loopml/steps.json"
RECENT_RUNS = 3
OUTPUTS_FOLDER = "outputs"
MAX_TAG_CHARS = 8_000
KEY_FORMAT = "loopml.step-cache.v1"


def cache_key(node: Node, digests: Mapping[Key, str]) -> str:
    """The cache key of ``node`` given the content digests of everything it reads."""
    options = node.step.options
    payload = {
        "format": KEY_FORMAT,
        "step": options.name,
        "code": node.step.code_hash,
        "version": options.version,
        "outputs": list(options.outputs),
        "arguments": canonical(dict(node.arguments), digests),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def quote(text: str) -> str:
    """``text`` as a single-quoted filter string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def recent_index(client: TrackingClient, pipeline: str, skip: str) -> dict[str, tuple[str, dict[str, StoredOutput]]]:
    """cache key -> (run id, outputs) of every FINISHED step in the pipeline's recent runs (except ``skip``).

    Failed pipeline runs count too: the steps that finished before the failure are what a re-run reuses.
    """
    page = client.search_runs(
        None, filter=f"tags.{PIPELINE_TAG} = {quote(pipeline)}", max_results=RECENT_RUNS + 1, as_frame=False
    )
    index: dict[str, tuple[str, dict[str, StoredOutput]]] = {}
    for run in reversed([r for r in page if r.run_id != skip]):  # oldest first: newer entries win
        try:
            record = json.loads(client.read_artifact(run.run_id, STEPS_ARTIFACT))
        except (ArtifactNotFoundError, ValueError):
            continue
        for item in record.get("steps", []):
            if item.get("status") != RunStatus.FINISHED.value or not item.get("cache_key"):
                continue
            outputs = {
                name: StoredOutput(
                    o["run_id"], o["path"], o["materializer"], o["digest"], tuple(map(tuple, o["files"]))
                )
                for name, o in item.get("outputs", {}).items()
            }
            index[item["cache_key"]] = (item["run_id"], outputs)
    return index


def find_cached(client: TrackingClient, key: str) -> Run | None:
    """The newest FINISHED run tagged with ``key``, or None.

    Only a step run that stored its outputs ends FINISHED with the key (the
    outputs tags are written before the run ends), so the first match will do.
    """
    page = client.search_runs(
        None,
        filter=f"tags.{CACHE_KEY_TAG} = '{key}' and attributes.status = '{RunStatus.FINISHED.value}'",
        max_results=1,
        as_frame=False,
    )
    for run in page:
        if OUTPUTS_TAG in run.tags:
            return run
    return None


def output_tags(outputs: Mapping[str, StoredOutput], lineage: tuple[str, str, int] | None) -> dict[str, str]:
    """The two tags that describe a step run's outputs (``files`` is left empty when too long for a tag)."""
    described = {name: [out.materializer, out.digest] for name, out in outputs.items()}
    files = [[f"{out.path}/{rel}", digest, size] for out in outputs.values() for rel, digest, size in out.files]
    if lineage is not None:
        files.append(list(lineage))
    files_text = json.dumps(files, separators=(",", ":"))
    return {
        OUTPUTS_TAG: json.dumps(described, separators=(",", ":")),
        FILES_TAG: files_text if len(files_text) <= MAX_TAG_CHARS else "",
    }


def stored_outputs(client: TrackingClient, run: Run) -> tuple[dict[str, StoredOutput], list[tuple[str, str, int]]]:
    """The outputs a step run recorded, and every artifact entry to re-log for a cache hit."""
    described: dict[str, list[str]] = json.loads(run.tags[OUTPUTS_TAG])
    text = run.tags.get(FILES_TAG, "")
    if text:
        files = [(str(p), str(d), int(s)) for p, d, s in json.loads(text)]
    else:  # too many files for a tag: read the artifact index
        files = [(e.path, e.digest, e.size) for e in client.list_artifacts(run.run_id)]
        files = [f for f in files if f[0].startswith(f"{OUTPUTS_FOLDER}/") or f[0] == LINEAGE_ARTIFACT]
    outputs = {}
    for name, (materializer, digest) in described.items():
        folder = f"{OUTPUTS_FOLDER}/{name}/"
        own = tuple((p[len(folder) :], d, s) for p, d, s in files if p.startswith(folder))
        outputs[name] = StoredOutput(run.run_id, folder.rstrip("/"), materializer, digest, own)
    return outputs, files


def lineage_record(node: Node, key: str, inputs: Mapping[str, Any], outputs: Mapping[str, StoredOutput]) -> bytes:
    """The JSON stored as ``loopml/lineage.json``: what went in (digests) and what came out.

    Its content depends only on the step, its inputs and its outputs, so a
    cache hit records the very same blob.
    """
    record = {
        "step": node.step.name,
        "code_hash": node.step.code_hash,
        "cache_key": key,
        "inputs": inputs,
        "params": {name: value for name, value in node.params().items()},
        "outputs": {name: {"materializer": o.materializer, "digest": o.digest} for name, o in outputs.items()},
    }
    return json.dumps(record, indent=2, sort_keys=True, allow_nan=True, default=str).encode("utf-8")
