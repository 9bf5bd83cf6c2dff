"""Validation gates: data checks and contracts, metric thresholds, and challenger vs champion.

``expect(frame, [checks...])`` and ``DataContract.validate(frame)`` report every
violation of a dataset at once; ``check_metrics`` and ``compare_models`` return
a :class:`GateResult` whose ``to_evidence()`` is stored on a model version.
See ``docs/validation.md``. Names are imported on first use, so
``import loopml.validation`` loads neither pandas nor scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "BootstrapResult": "loopml.validation.gates",
    "Check": "loopml.validation.checks",
    "CheckResult": "loopml.validation.checks",
    "ColumnContract": "loopml.validation.contracts",
    "DataContract": "loopml.validation.contracts",
    "GateCheck": "loopml.validation.gates",
    "GateResult": "loopml.validation.gates",
    "McNemarResult": "loopml.validation.gates",
    "ValidationReport": "loopml.validation.checks",
    "check_metrics": "loopml.validation.gates",
    "compare_models": "loopml.validation.gates",
    "expect": "loopml.validation.checks",
    "mcnemar": "loopml.validation.gates",
    "paired_bootstrap": "loopml.validation.gates",
}

__all__ = [
    "BootstrapResult",
    "Check",
    "CheckResult",
    "ColumnContract",
    "DataContract",
    "GateCheck",
    "GateResult",
    "McNemarResult",
    "ValidationReport",
    "check_metrics",
    "compare_models",
    "expect",
    "mcnemar",
    "paired_bootstrap",
]

if TYPE_CHECKING:
    from loopml.validation.checks import Check, CheckResult, ValidationReport, expect
    from loopml.validation.contracts import ColumnContract, DataContract
    from loopml.validation.gates import (
        BootstrapResult,
        GateCheck,
        GateResult,
        McNemarResult,
        check_metrics,
        compare_models,
        mcnemar,
        paired_bootstrap,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.validation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
