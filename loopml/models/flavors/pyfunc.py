"""The pyfunc flavor: PythonModel subclasses, stored as an import path plus JSON state.

Nothing is pickled: loading imports the class by its ``module:QualName`` path
(so only code already installed can run), restores the instance's attributes
from JSON and hands ``load_context`` the local paths of the packaged artifacts.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidValueError, UnsupportedModelError
from loopml.models.flavors.base import ArtifactSources, Flavor, pinned

if TYPE_CHECKING:
    import pandas as pd

    from loopml.models.pyfunc import PythonModel

STATE_FILE = "python_model.json"
ARTIFACTS_DIR = "artifacts"
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class PyfuncFlavor(Flavor):
    """Models written as ``loopml.models.PythonModel`` subclasses."""

    name = "pyfunc"

    def save(
        self,
        model: Any,
        folder: Path,
        *,
        unsafe_pickle: bool = False,
        artifacts: ArtifactSources | None = None,
        example: pd.DataFrame | None = None,
    ) -> dict[str, Any]:
        from loopml.models.pyfunc import PythonModel

        if not isinstance(model, PythonModel):
            raise UnsupportedModelError(f"The pyfunc flavor saves PythonModel subclasses, not {type(model).__name__}.")
        if unsafe_pickle:
            raise InvalidValueError(
                "unsafe_pickle=True does not apply to PythonModel: its attributes are stored as JSON "
                "and larger state travels as artifacts={name: path}."
            )
        class_path = _class_path(type(model))
        state = _json_state(model)
        copied = _copy_artifacts(artifacts or {}, folder / ARTIFACTS_DIR)
        (folder / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
        return {"class": class_path, "state_file": STATE_FILE, "artifacts": copied}

    def load(self, folder: Path, config: Mapping[str, Any], *, trusted: Sequence[str] | None) -> PythonModel:
        # ``trusted`` does not apply: the only code that runs is the already installed class.
        cls = _import_class(str(config.get("class", "")))
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        model = cls.__new__(cls)
        model.__dict__.update(state)
        paths: dict[str, Path] = {}
        for name, info in dict(config.get("artifacts") or {}).items():
            path = folder / ARTIFACTS_DIR / name
            if info.get("kind") == "dir":
                path.mkdir(parents=True, exist_ok=True)  # an empty folder has no files to upload
            paths[name] = path
        model.load_context(paths)
        return model

    def requirements(self) -> list[str]:
        # The user's own imports are unknown; pin what the interface itself hands the model.
        return pinned("numpy", "pandas")

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        return model.predict(frame)

    def predict_proba(self, model: Any, frame: pd.DataFrame) -> Any:
        method = getattr(model, "predict_proba", None)
        if not callable(method):
            raise UnsupportedModelError(f"{type(model).__name__} defines no predict_proba method; use predict().")
        return method(frame)


def _class_path(cls: type) -> str:
    """``module:QualName``, checked to import back to the same class."""
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        raise UnsupportedModelError(
            f"PythonModel class {qualname} is defined in {'a function' if '<locals>' in qualname else '__main__'}, "
            "so it cannot be imported when the model is loaded. Move it to a module of an installed package "
            "or one on sys.path."
        )
    path = f"{module}:{qualname}"
    if _import_class(path) is not cls:
        raise UnsupportedModelError(f"Importing {path} does not give back the class being saved; is it shadowed?")
    return path


def _import_class(path: str) -> type[PythonModel]:
    from loopml.models.pyfunc import PythonModel

    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise UnsupportedModelError(
            f"A PythonModel class path must look like 'package.module:ClassName', got {path!r}."
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnsupportedModelError(
            f"Cannot import module {module_name!r} for PythonModel class {path}: {exc}. "
            "Install the package that defines it, or put it on sys.path."
        ) from exc
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise UnsupportedModelError(f"Module {module_name!r} has no class {qualname!r} (needed by {path}).")
    if not (isinstance(target, type) and issubclass(target, PythonModel)):
        raise UnsupportedModelError(f"{path} is not a PythonModel subclass.")
    return target


def _json_state(model: Any) -> dict[str, Any]:
    state = dict(getattr(model, "__dict__", {}))
    bad = []
    for key, value in state.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            bad.append(f"{key} ({type(value).__name__})")
    if bad:
        raise UnsupportedModelError(
            f"{type(model).__name__} attribute(s) {', '.join(bad)} cannot be stored as JSON. "
            "Write them to a file and pass artifacts={'name': path}, then read them in load_context."
        )
    return state


def _copy_artifacts(artifacts: ArtifactSources, target: Path) -> dict[str, dict[str, str]]:
    """Copy each named file or folder to ``target/<name>``; return what the config records."""
    if not isinstance(artifacts, Mapping):
        raise InvalidValueError("artifacts must be a dict of {name: local path}.")
    copied: dict[str, dict[str, str]] = {}
    for name, source in artifacts.items():
        if not isinstance(name, str) or not _ARTIFACT_NAME.match(name):
            raise InvalidValueError(
                f"Artifact name {name!r} must start with a letter, digit or '_' and hold only letters, digits, '_', '-', '.'."
            )
        origin = Path(source)
        destination = target / name
        if origin.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, destination)
            kind = "file"
        elif origin.is_dir():
            shutil.copytree(origin, destination)
            kind = "dir"
        else:
            raise InvalidValueError(f"Artifact {name!r}: no such file or folder {str(origin)!r}.")
        copied[name] = {"path": f"{ARTIFACTS_DIR}/{name}", "kind": kind}
    return copied
