"""Types shared by every schema: JSON-safe floats, 64-bit integers, the error body.

JSON has no NaN or infinity, yet metric values may be either, so typed float
fields travel as a number or as one of the strings ``"NaN"``, ``"Infinity"``
and ``"-Infinity"`` (what JavaScript's ``Number()`` parses). Free-form JSON
(evidence, audit before/after) keeps non-finite floats as the ``NaN`` and
``Infinity`` literals Python's json module reads and writes.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PlainSerializer

NON_FINITE = ("NaN", "Infinity", "-Infinity")


def float_to_json(value: float) -> float | str:
    """A float as JSON allows it: non-finite values become strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


#: A float that may be NaN or +-inf, sent as a number or "NaN"/"Infinity"/"-Infinity".
Float = Annotated[
    float,
    PlainSerializer(float_to_json, return_type=Any, when_used="json"),
    Field(json_schema_extra={"description": 'A number, or "NaN", "Infinity", "-Infinity".'}),
]

#: Free-form JSON (evidence, audit before/after). Typed, not ``Any``: the model's
#: ``ser_json_inf_nan`` applies only to typed floats, so NaN survives as a literal.
JsonObject = dict[str, JsonValue]

#: Integers the metadata database stores (BIGINT): ids, steps, times in ms.
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class Schema(BaseModel):
    """Base of every request and response body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants", from_attributes=True)


class ErrorDetail(BaseModel):
    """``type`` is the loopml.errors class name; error-specific fields (position, problems, …) may follow."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"type": ..., "message": ...}}``."""

    error: ErrorDetail
