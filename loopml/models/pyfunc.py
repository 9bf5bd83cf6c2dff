"""PythonModel: the base class for models written as plain Python.

Subclass it to package anything no other flavor covers (rules, a wrapped
library, pre/post-processing around another model). loopml stores the class's
import path and the instance's attributes as JSON, never a pickle; files the
model needs travel as ``artifacts`` and come back as local paths in
:meth:`PythonModel.load_context`. The class must therefore be importable where
the model is loaded (installed, or on ``sys.path``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class PythonModel(ABC):
    """A model written in Python: implement ``predict``, optionally ``load_context``.

    Attributes set in ``__init__`` must be JSON-serialisable (numbers, strings,
    lists, dicts); put anything larger or binary in a file and pass it as an
    artifact.

    Example:
        >>> class Threshold(PythonModel):
        ...     def __init__(self, cutoff: float) -> None:
        ...         self.cutoff = cutoff
        ...
        ...     def predict(self, frame):
        ...         return (frame["score"] > self.cutoff).to_numpy()
        >>> log_model(client, run_id, Threshold(0.5), input_example={"score": [0.2, 0.9]})  # doctest: +SKIP
    """

    def load_context(self, artifacts: dict[str, Path]) -> None:
        """Prepare after loading; ``artifacts`` maps each name given to ``log_model`` to a local path.

        Called once, after the attributes are restored and before the first
        prediction. The default does nothing.
        """
        return None

    @abstractmethod
    def predict(self, frame: pd.DataFrame) -> Any:
        """Predictions for ``frame`` (already checked against the signature, when there is one)."""
