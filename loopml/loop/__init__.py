"""Continuous training: policies tie a model's monitor to the pipeline that retrains it, its gates and rollout.

``loopml.policy(...)`` defines one; ``Agent(policies).tick()`` (or ``loopml loop``)
reacts to alerts and schedules. See ``docs/loop.md``.
"""

from __future__ import annotations

from loopml.loop.agent import Agent, Decision
from loopml.loop.gates import beats_champion, business_metric, explained, no_group_worse, thresholds
from loopml.loop.policy import CanaryRules, Candidate, Policy, clear_policies, policy, registered_policies

__all__ = [
    "Agent",
    "CanaryRules",
    "Candidate",
    "Decision",
    "Policy",
    "beats_champion",
    "business_metric",
    "clear_policies",
    "explained",
    "no_group_worse",
    "policy",
    "registered_policies",
    "thresholds",
]
