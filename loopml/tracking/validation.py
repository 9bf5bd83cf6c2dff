"""Checks on keys and values at the call, so a bad point never waits for a flush to fail."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from loopml.errors import InvalidValueError
from loopml.names import MAX_KEY_LENGTH, check_key  # the one key grammar, shared with the stores

MAX_PARAM_LENGTH = 8_000

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_PARAM_LENGTH",
    "check_key",
    "check_mapping",
    "check_metric_value",
    "check_step",
    "stringify",
]


def check_metric_value(key: str, value: Any) -> float:
    """A real number (NaN and +-inf allowed); strings are refused even if numeric."""
    if isinstance(value, numbers.Real) and not isinstance(value, str):
        try:
            return float(value)
        except OverflowError:  # an int (or Fraction, Decimal) past the float range: 10**400
            raise InvalidValueError(
                f"Metric {key!r} is too large for a 64-bit float; log float('inf') or rescale it."
            ) from None
    raise InvalidValueError(
        f"Metric {key!r} must be a number (int, float, NaN or inf), got {type(value).__name__} {value!r}."
    )


def check_step(key: str, step: Any) -> int:
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        return int(step)
    raise InvalidValueError(f"Step of metric {key!r} must be an integer, got {type(step).__name__} {step!r}.")


def stringify(key: str, value: Any, what: str) -> str:
    """Params and tags are stored as text; None and containers are refused, floats kept exact."""
    if value is None:
        raise InvalidValueError(f"{what} {key!r} has no value (None).")
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = str(value)
    elif isinstance(value, numbers.Real):
        number = float(value)
        text = repr(value) if isinstance(value, float) else str(value)
        if isinstance(value, numbers.Integral):
            text = str(int(value))
        elif not math.isfinite(number):
            text = str(number)
        else:
            text = repr(number)
    else:
        text = str(value)
    if len(text) > MAX_PARAM_LENGTH:
        raise InvalidValueError(f"{what} {key!r} is {len(text)} characters long; the limit is {MAX_PARAM_LENGTH}.")
    return text


def check_mapping(values: Mapping[str, Any] | None, what: str) -> dict[str, str]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidValueError(f"{what}s must be a mapping of key to value, got {type(values).__name__}.")
    return {check_key(k, what): stringify(k, v, what) for k, v in values.items()}
