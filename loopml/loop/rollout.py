"""Rollout plans: ``"direct"`` or ``"canary:10%->50%->100%"`` (each step a share of traffic for the challenger)."""

from __future__ import annotations

import re

from loopml.errors import InvalidValueError

_STEP = re.compile(r"^(\d+(?:\.\d+)?)%$")


def parse_rollout(text: str) -> tuple[float, ...]:
    """The canary shares in percent, ending at 100; ``()`` for ``direct`` (promote without a canary)."""
    if text == "direct":
        return ()
    kind, _, plan = text.partition(":") if isinstance(text, str) else ("", "", "")
    steps: list[float] = []
    for part in plan.split("->") if kind == "canary" else []:
        match = _STEP.match(part.strip())
        if not match:  # one bad part makes the whole plan bad, wherever it stands
            steps = []
            break
        steps.append(float(match.group(1)))
    if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise InvalidValueError(
            f"Bad rollout {text!r}: use 'direct' or 'canary:P%->…->100%' with growing shares, e.g. 'canary:10%->100%'."
        )
    return tuple(steps)
