"""Validation gates: data checks and contracts, metric thresholds, and challenger vs champion.

``validate_data(frame, [checks...])`` and ``DataContract.validate(frame)`` report every
violation of a dataset at once; ``validate_model`` and ``compare_models`` return
a :class:`GateResult` whose ``to_evidence()`` is stored on a model version.
See ``docs/validation.md``. Names are imported on first use, so
``import loopml.validation`` loads neither pandas nor scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BootstrapResult": "loopml.validation.gates",
    "Check": "loopml.validation.checks",
    "DataCheckResult": "loopml.validation.checks",
    "ColumnContract": "loopml.validation.contracts",
    "DataContract": "loopml.validation.contracts",
    "GateCheck": "loopml.validation.gates",
    "GateResult": "loopml.validation.gates",
    "McNemarResult": "loopml.validation.gates",
    "ValidationReport": "loopml.validation.checks",
    "validate_model": "loopml.validation.gates",
    "compare_models": "loopml.validation.gates",
    "validate_data": "loopml.validation.checks",
    "mcnemar": "loopml.validation.gates",
    "paired_bootstrap": "loopml.validation.gates",
}

__all__ = [
    "BootstrapResult",
    "Check",
    "ColumnContract",
    "DataCheckResult",
    "DataContract",
    "GateCheck",
    "GateResult",
    "McNemarResult",
    "ValidationReport",
    "compare_models",
    "mcnemar",
    "paired_bootstrap",
    "validate_data",
    "validate_model",
]

if TYPE_CHECKING:
    from loopml.validation.checks import Check, DataCheckResult, ValidationReport, validate_data
    from loopml.validation.contracts import ColumnContract, DataContract
    from loopml.validation.gates import (
        BootstrapResult,
        GateCheck,
        GateResult,
        McNemarResult,
        compare_models,
        mcnemar,
        paired_bootstrap,
        validate_model,
    )


_DEPRECATED: dict[str, str] = {
    "CheckResult": "DataCheckResult",
    "check_metrics": "validate_model",
    "expect": "validate_data",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__, _DEPRECATED)
