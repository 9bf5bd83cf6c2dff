"""Where a model came from, and where a dataset went.

``lineage("models:/churn@champion")`` walks model version -> run -> datasets
(name, sha256, context), code (commit, branch, dirty diff), environment and
parent runs; ``lineage(dataset="churn-train@3fa2")`` walks the other way, to
every run that used the data and every version registered from those runs.
The result is a small tree of nodes that prints as a Rich tree in the CLI and
serialises to JSON for the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from loopml.entities.registry import ModelVersion
from loopml.entities.tracking import Run
from loopml.errors import InvalidValueError
from loopml.registry.client import RegistryClient

_MAX_PARENT_DEPTH = 50


@dataclass(frozen=True, slots=True)
class LineageNode:
    """One thing in the graph: ``kind`` is model_version, run, dataset, feature_view, code, environment or experiment."""

    kind: str
    id: str
    label: str
    attributes: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    children: tuple[LineageNode, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "attributes": dict(self.attributes),
            "children": [child.to_dict() for child in self.children],
        }

    def find(self, kind: str) -> list[LineageNode]:
        """Every node of ``kind`` in this subtree, depth first."""
        found = [self] if self.kind == kind else []
        for child in self.children:
            found.extend(child.find(kind))
        return found


def lineage(client: RegistryClient, uri: str | None = None, *, dataset: str | None = None) -> LineageNode:
    """The lineage tree of a model version or run (``uri``), or the uses of a ``dataset``."""
    if (uri is None) == (dataset is None):
        raise InvalidValueError("Pass either a URI (models:/… or runs:/…) or dataset='name@sha256-prefix'.")
    if dataset is not None:
        return _dataset_uses(client, dataset)
    if str(uri).startswith("models:/"):
        return _version_node(client, client.resolve(str(uri)))
    from loopml.uris import parse_runs_uri

    return _run_node(client, client.tracking.get_run(parse_runs_uri(str(uri)).run_id))


def _version_node(client: RegistryClient, version: ModelVersion) -> LineageNode:
    run = client.tracking.get_run(version.run_id)
    return LineageNode(
        kind="model_version",
        id=version.uri,
        label=f"{version.name} v{version.version}" + (f" @{', @'.join(version.aliases)}" if version.aliases else ""),
        attributes={
            "stage": version.stage.value,
            "source": version.source,
            "created_by": version.created_by,
            "created_at": version.created_at,
            "evidence": dict(version.evidence),
        },
        children=(_run_node(client, run),),
    )


def _run_node(client: RegistryClient, run: Run) -> LineageNode:
    tags = run.tags
    children: list[LineageNode] = []
    for item in run.inputs:
        data = client.tracking.get_dataset(item.digest)
        children.append(
            LineageNode(
                kind="dataset",
                id=item.digest,
                label=f"{item.name}@{item.digest[:12]} ({item.context})",
                attributes={"name": item.name, "sha256": item.digest, "context": item.context, "rows": data.n_rows,
                            "columns": len(data.schema)},
            )
        )
    children.extend(_feature_view_nodes(client, tags))
    if "loopml.git.commit" in tags:
        dirty = tags.get("loopml.git.dirty") == "true"
        children.append(
            LineageNode(
                kind="code",
                id=tags["loopml.git.commit"],
                label=f"commit {tags['loopml.git.commit'][:12]}" + (" (dirty)" if dirty else ""),
                attributes={
                    "commit": tags["loopml.git.commit"],
                    "branch": tags.get("loopml.git.branch"),
                    "dirty": dirty,
                    "remote": tags.get("loopml.git.remote"),
                    "diff": f"runs:/{run.run_id}/loopml/code/diff.patch" if dirty else None,
                    "command": tags.get("loopml.source.command"),
                },
            )
        )
    if "loopml.env.python" in tags:
        children.append(
            LineageNode(
                kind="environment",
                id=f"{run.run_id}/environment",
                label=f"{tags['loopml.env.python']} on {tags.get('loopml.env.host', '?')}",
                attributes={
                    "python": tags["loopml.env.python"],
                    "platform": tags.get("loopml.env.platform"),
                    "host": tags.get("loopml.env.host"),
                    "requirements": f"runs:/{run.run_id}/loopml/environment/requirements.txt",
                },
            )
        )
    parent_id, depth = run.info.parent_run_id, 0
    parents: list[Run] = []
    while parent_id and depth < _MAX_PARENT_DEPTH:
        parent = client.tracking.get_run(parent_id)
        parents.append(parent)
        parent_id, depth = parent.info.parent_run_id, depth + 1
    for parent in parents:
        children.append(
            LineageNode(
                kind="parent_run",
                id=parent.run_id,
                label=f"parent run {parent.info.name} ({parent.run_id[:8]})",
                attributes={"run_id": parent.run_id, "name": parent.info.name, "status": parent.info.status.value},
            )
        )
    experiment = client.tracking.get_experiment(run.info.experiment_id)
    return LineageNode(
        kind="run",
        id=run.run_id,
        label=f"run {run.info.name} ({run.run_id[:8]}) in {experiment.name}",
        attributes={
            "run_id": run.run_id,
            "name": run.info.name,
            "experiment": experiment.name,
            "status": run.info.status.value,
            "user": run.info.user,
            "start_time": run.info.start_time,
            "end_time": run.info.end_time,
            "params": dict(run.params),
            "metrics": dict(run.metrics),
        },
        children=tuple(children),
    )


def _feature_view_nodes(client: RegistryClient, tags: Mapping[str, str]) -> list[LineageNode]:
    """The feature view versions the run's training data came from (tags ``loopml.feature_view.<view>``)."""
    from loopml.errors import NotFoundError

    nodes = []
    prefix = "loopml.feature_view."
    for key in sorted(k for k in tags if k.startswith(prefix)):
        view = key[len(prefix) :]
        for version in (int(v) for v in str(tags[key]).split(",") if v.isdigit()):
            try:
                record = client.tracking.store.features.get_feature_view(view, version)
            except NotFoundError:
                attributes: dict[str, Any] = {"name": view, "version": version, "missing": True}
            else:
                attributes = {"name": view, "version": version, "fingerprint": record.fingerprint,
                              "definition": dict(record.spec), "created_by": record.created_by}
            nodes.append(LineageNode(kind="feature_view", id=f"{view}/{version}", label=f"feature view {view} v{version}",
                                     attributes=attributes))
    return nodes


def _dataset_uses(client: RegistryClient, ref: str) -> LineageNode:
    data = client.tracking.get_dataset(ref)
    uses = client.tracking.store.tracking.list_dataset_runs(data.digest)
    versions_by_run: dict[str, list[ModelVersion]] = {}
    for version in client.tracking.store.registry.versions_of_runs(sorted({run_id for run_id, _, _ in uses})):
        versions_by_run.setdefault(version.run_id, []).append(version)
    children = []
    for run_id, name, context in uses:
        run = client.tracking.get_run(run_id)
        children.append(
            LineageNode(
                kind="run",
                id=run_id,
                label=f"run {run.info.name} ({run_id[:8]}) used it as {context!r}",
                attributes={"run_id": run_id, "name": run.info.name, "context": context, "logged_as": name},
                children=tuple(
                    LineageNode(
                        kind="model_version",
                        id=v.uri,
                        label=f"{v.name} v{v.version}" + (f" @{', @'.join(v.aliases)}" if v.aliases else ""),
                        attributes={"stage": v.stage.value},
                    )
                    for v in versions_by_run.get(run_id, [])
                ),
            )
        )
    return LineageNode(
        kind="dataset",
        id=data.digest,
        label=f"{data.ref} ({data.n_rows} rows)",
        attributes={"name": data.name, "sha256": data.digest, "rows": data.n_rows, "schema": dict(data.schema)},
        children=tuple(children),
    )
