"""PyTorch models as a ``torch.export`` program plus ``safetensors`` weights (never pickle).

Saving traces the module with ``torch.export`` on the logged input example
(one float32 matrix whose columns are the signature's inputs in order; the
batch dimension stays dynamic) and writes two files:

* ``program.pt2``: the exported graph, traced from a copy of the module on
  PyTorch's ``meta`` device, so it holds the computation and no weights;
* ``weights.safetensors``: every parameter and buffer, in the safetensors
  format, which holds raw tensors and nothing that can run.

Loading reads the program with ``torch.export.load`` and puts the safetensors
weights into it (``strict``: every name and shape must match, or the package
is refused). Predictions run under ``torch.inference_mode`` on the CPU; an
output of shape ``[n, 1]`` comes back as ``[n]``.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidValueError, UnsupportedModelError
from loopml.models.flavors.base import ArtifactSources, Flavor, pinned, refuse_options, require
from loopml.models.flavors.unreadable import digests, unreadable, verified_bytes

if TYPE_CHECKING:
    import pandas as pd

PROGRAM_FILE = "program.pt2"
WEIGHTS_FILE = "weights.safetensors"


def is_torch_module(model: Any) -> bool:
    """Whether ``model`` is a ``torch.nn.Module`` (judged from its classes, without importing torch)."""
    return any(cls.__module__ == "torch.nn.modules.module" and cls.__name__ == "Module" for cls in type(model).__mro__)


class TorchFlavor(Flavor):
    """``torch.nn.Module`` models taking one float matrix of the signature's columns."""

    name = "torch"

    def save(
        self,
        model: Any,
        folder: Path,
        *,
        unsafe_pickle: bool = False,
        artifacts: ArtifactSources | None = None,
        example: pd.DataFrame | None = None,
    ) -> dict[str, Any]:
        refuse_options(self.name, unsafe_pickle=unsafe_pickle, artifacts=artifacts)
        torch = require("torch", "torch")
        save_file = require("safetensors.torch", "torch").save_file
        if example is None or example.empty:
            raise InvalidValueError(
                "A PyTorch model needs input_example= when it is logged: torch.export traces it on those rows."
            )
        columns = [str(column) for column in example.columns]
        sample = _matrix(torch, example)
        if sample.shape[0] < 2:  # a batch of one would be traced as a fixed size of one
            sample = sample.repeat(2, 1)
        model = model.eval()
        batch = torch.export.Dim("batch", min=1)
        try:
            with torch.no_grad():
                on_meta = copy.deepcopy(model).to("meta")
                program = torch.export.export(on_meta, (sample.to("meta"),), dynamic_shapes=({0: batch},))
        except Exception as exc:  # torch.export's many refusals (data-dependent control flow, ...)
            raise UnsupportedModelError(
                f"torch.export cannot trace this {type(model).__name__} on a float matrix of "
                f"{len(columns)} columns: {str(exc).splitlines()[0]}"
            ) from exc
        torch.export.save(program, str(folder / PROGRAM_FILE))
        weights = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
        save_file(weights, str(folder / WEIGHTS_FILE))
        return {"program": PROGRAM_FILE, "weights": WEIGHTS_FILE, "columns": columns, "module": type(model).__name__,
                "sha256": digests(folder, PROGRAM_FILE, WEIGHTS_FILE)}  # fmt: skip

    def load(self, folder: Path, config: Mapping[str, Any], *, trusted: Sequence[str] | None) -> Any:
        torch = require("torch", "torch")
        load_bytes = require("safetensors.torch", "torch").load
        what = "The PyTorch package cannot be read"
        # the bytes torch parses are the bytes that were saved (a flipped weight would load silently)
        program_bytes = verified_bytes(folder, PROGRAM_FILE, config, what)
        weight_bytes = verified_bytes(folder, WEIGHTS_FILE, config, what)
        try:
            program = torch.export.load(io.BytesIO(program_bytes))
            weights = load_bytes(weight_bytes)
        except Exception as exc:
            raise unreadable(what, exc) from None
        try:
            module = program.module()
            module.load_state_dict(weights, strict=True, assign=True)
        except Exception as exc:  # RuntimeError for a shape or a name that does not fit, others for odd programs
            raise unreadable("The safetensors weights do not fit the exported program", exc) from None
        return TorchModel(module, list(config.get("columns") or []))

    def requirements(self) -> list[str]:
        return pinned("torch", "safetensors")

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        return model.predict(frame)


class TorchModel:
    """A loaded PyTorch program: the module, and the column order its input matrix follows."""

    def __init__(self, module: Any, columns: list[str]) -> None:
        self.module = module
        self.columns = columns

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        torch = require("torch", "torch")
        data = frame[self.columns] if self.columns else frame
        with torch.inference_mode():
            output = self.module(_matrix(torch, data))
        if isinstance(output, tuple | list):
            output = output[0]
        result: np.ndarray = output.detach().cpu().numpy()
        return result.ravel() if result.ndim == 2 and result.shape[1] == 1 else result


def _matrix(torch: Any, frame: pd.DataFrame) -> Any:
    try:
        return torch.from_numpy(np.array(frame.to_numpy(dtype=np.float32), copy=True, order="C"))
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"A PyTorch model's input must be numeric columns: {exc}") from None
