"""The flavor contract: how one kind of model is saved, loaded and asked to predict.

A flavor is the only code that knows a model library. It writes the model into
a folder and returns a small JSON-safe config (stored in the manifest), reads
it back from that folder and config, and runs predictions on a DataFrame that
has already been checked against the signature. Everything else (hashing,
uploading, the manifest, signatures) is written once in ``package.py``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from loopml.errors import InvalidValueError, UnsupportedModelError

if TYPE_CHECKING:
    import pandas as pd

ArtifactSources: TypeAlias = "Mapping[str, str | os.PathLike[str]]"


class Flavor(ABC):
    """Save, load and predict for one kind of model; stateless, so one instance serves all.

    ``save`` must write only inside ``folder`` and return a JSON-safe dict;
    ``load`` must accept exactly what ``save`` wrote. ``trusted`` lists type
    names the caller allows beyond the flavor's safe defaults (used by
    flavors whose format can name arbitrary types, such as skops).
    """

    name: ClassVar[str]

    @abstractmethod
    def save(
        self,
        model: Any,
        folder: Path,
        *,
        unsafe_pickle: bool = False,
        artifacts: ArtifactSources | None = None,
        example: pd.DataFrame | None = None,
    ) -> dict[str, Any]:
        """Write ``model`` into ``folder``; return the config to record in the manifest.

        ``example`` is the logged input example (checked against the signature), for flavors that must
        trace the model on real input to save it (PyTorch's ``torch.export``); the others ignore it.
        """

    @abstractmethod
    def load(self, folder: Path, config: Mapping[str, Any], *, trusted: Sequence[str] | None) -> Any:
        """Rebuild the model saved in ``folder`` with ``config``."""

    @abstractmethod
    def requirements(self) -> list[str]:
        """Exact pins (``name==version``) of the installed libraries the model needs."""

    @abstractmethod
    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        """Predictions of a loaded model for an already checked frame."""

    def predict_proba(self, model: Any, frame: pd.DataFrame) -> Any:
        """Class probabilities; flavors whose models have none keep this refusal."""
        raise UnsupportedModelError(f"{self.name} models do not give class probabilities; use predict().")


def pinned(*distributions: str) -> list[str]:
    """``name==version`` for each installed distribution; uninstalled ones are left out."""
    pins = []
    for distribution in distributions:
        try:
            pins.append(f"{distribution}=={version(distribution)}")
        except PackageNotFoundError:
            continue
    return pins


def refuse_options(flavor: str, *, unsafe_pickle: bool, artifacts: ArtifactSources | None) -> None:
    """Reject save options a flavor cannot honour, rather than silently ignoring them."""
    if unsafe_pickle:
        raise InvalidValueError(f"unsafe_pickle=True does not apply to {flavor} models; leave it False.")
    if artifacts:
        raise InvalidValueError(
            f"artifacts= is only for PythonModel (pyfunc) models, which read them in load_context; "
            f"{flavor} models carry everything they need."
        )


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or say which loopml extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UnsupportedModelError(
            f"This needs the {module.split('.')[0]!r} package: pip install 'loopml[{extra}]'."
        ) from exc
