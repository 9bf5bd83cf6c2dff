"""mkdocs hook: the REST reference page (``rest.md``), generated from the two OpenAPI documents at build time.

Both FastAPI apps are built over a throwaway SQLite store (nothing is served or migrated beyond that
file) and their ``openapi()`` documents are rendered as Markdown: one section per tag, one entry per
path and method with its parameters, request body and responses, then every schema with its fields.
Types that name a schema link to it. Nothing is written to ``docs/``.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "rest.md"
METHODS = ("get", "head", "post", "put", "patch", "delete")

INTRO = """# REST reference

loopml runs two HTTP services, each with its own OpenAPI document. This page is generated from those
documents when the site is built, so it always matches the code.

- [The control plane](#control-plane-loopml-server) (`loopml server`): tracking, registry, audit,
  artifacts, deployments, monitoring and the loop's tasks under `/api/v1`. Clients reach it with
  `LOOPML_TRACKING_URI=http://HOST:PORT`; its document is served at `/api/v1/openapi.json`.
- [The prediction service](#prediction-service-loopml-serve) (`loopml serve`): predictions (loopml's
  own `/v1` and the Open Inference Protocol's `/v2`), feedback, health and metrics; its document is
  served at `/openapi.json`.

With `--auth`, every route but the health checks and the OpenAPI documents needs
`Authorization: Bearer TOKEN` (see [the server guide](server.md)). Errors from the control plane share
one body, `{"error": {"type": ..., "message": ...}}`.
"""


def text(value: str | None) -> str:
    """A description from the document, on one line, safe inside Markdown and a table cell."""
    return html.escape(" ".join((value or "").split()), quote=False).replace("|", "\\|")


class Renderer:
    """Renders one OpenAPI document; ``prefix`` keeps its schema anchors apart from the other document's."""

    def __init__(self, document: dict[str, Any], prefix: str) -> None:
        self.document = document
        self.prefix = prefix
        self.schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def anchor(self, name: str) -> str:
        return f"{self.prefix}-schema-{name}".lower()

    def type_of(self, schema: dict[str, Any]) -> str:
        """A schema as a short type expression, e.g. ``array of [RunOut](#…)`` or ``string or null``."""
        if not schema:
            return "any"
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return f"[{name}](#{self.anchor(name)})"
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return " or ".join(dict.fromkeys(self.type_of(option) for option in schema[key]))
        if "allOf" in schema:
            return " and ".join(self.type_of(part) for part in schema["allOf"])
        if "enum" in schema:
            return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
        if "const" in schema:
            return f"`{schema['const']}`"
        kind = schema.get("type", "any")
        if isinstance(kind, list):
            return " or ".join(kind)
        if kind == "array":
            return f"array of {self.type_of(schema.get('items', {}))}"
        if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            return f"object of {self.type_of(schema['additionalProperties'])}"
        if "format" in schema:
            return f"{kind} ({schema['format']})"
        return str(kind)

    def operation(self, method: str, path: str, op: dict[str, Any]) -> list[str]:
        out = [f"#### `{method.upper()} {path}`\n", f"**{text(op.get('summary'))}**\n"]
        if op.get("description"):
            out.append(html.escape(op["description"].strip(), quote=False) + "\n")
        parameters = op.get("parameters", [])
        if parameters:
            out.append("| Parameter | In | Type | Required | Description |\n| --- | --- | --- | --- | --- |")
            for param in parameters:
                schema = param.get("schema", {})
                description = param.get("description") or schema.get("description")
                required = "yes" if param.get("required") else ""
                out.append(
                    f"| `{param['name']}` | {param['in']} | {self.type_of(schema)} | {required} | {text(description)} |"
                )
            out.append("")
        body = op.get("requestBody")
        if body:
            out.append("| Request body | Type | Description |\n| --- | --- | --- |")
            for media, content in body.get("content", {}).items():
                schema = content.get("schema", {})
                description = body.get("description") or schema.get("description")
                out.append(f"| `{media}` | {self.type_of(schema)} | {text(description)} |")
            out.append("")
        out.append("| Response | Type | Description |\n| --- | --- | --- |")
        for status, response in op.get("responses", {}).items():
            contents = response.get("content") or {"": {}}
            for media, content in contents.items():
                kind = self.type_of(content.get("schema", {})) if media else "no body"
                described = text(response.get("description"))
                out.append(f"| {status} | {kind} | {described}{f' (`{media}`)' if media else ''} |")
        out.append("")
        return out

    def schema(self, name: str, schema: dict[str, Any]) -> list[str]:
        out = [f"#### {name} {{#{self.anchor(name)}}}\n"]
        if schema.get("description"):
            out.append(html.escape(schema["description"].strip(), quote=False) + "\n")
        properties = schema.get("properties", {})
        if properties:
            required = set(schema.get("required", []))
            out.append("| Field | Type | Required | Description |\n| --- | --- | --- | --- |")
            for field, spec in properties.items():
                mark = "yes" if field in required else ""
                out.append(f"| `{field}` | {self.type_of(spec)} | {mark} | {text(spec.get('description'))} |")
            out.append("")
        else:
            out.append(f"Type: {self.type_of({key: value for key, value in schema.items() if key != 'title'})}\n")
        return out

    def render(self, heading: str) -> list[str]:
        info = self.document["info"]
        out = [f"## {heading}\n", f"{text(info.get('summary') or info.get('description'))}\n"]
        by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for path, item in self.document["paths"].items():
            for method in METHODS:
                if method in item:
                    tag = (item[method].get("tags") or ["other"])[0]
                    by_tag.setdefault(tag, []).append((method, path, item[method]))
        for tag, operations in by_tag.items():
            out.append(f"### {tag.capitalize()} {{#{self.prefix}-{tag}}}\n")
            for method, path, op in operations:
                out += self.operation(method, path, op)
        if self.schemas:
            out.append(f"### Schemas {{#{self.prefix}-schemas}}\n")
            for name in sorted(self.schemas, key=str.lower):
                out += self.schema(name, self.schemas[name])
        return out


def documents() -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI documents of the control plane and of the prediction service, with authentication on."""
    from loopml.server.app import create_app
    from loopml.serving.app import create_serving_app
    from loopml.store import open_store

    with tempfile.TemporaryDirectory(prefix="loopml-docs-") as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'docs.db'}", artifacts_url=str(Path(folder) / "artifacts"))
        try:
            return create_app(store, auth=True).openapi(), create_serving_app(store, auth=True).openapi()
        finally:
            store.close()


def render() -> str:
    control, serving = documents()
    out = [INTRO]
    out += Renderer(control, "server").render("Control plane: loopml server")
    out += Renderer(serving, "serve").render("Prediction service: loopml serve")
    return "\n".join(out)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, PAGE, content=render()))
    return files
