"""Readable default run names such as ``bold-heron-417``."""

from __future__ import annotations

import secrets

_ADJECTIVES = (
    "able", "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager",
    "fair", "fast", "gentle", "glad", "grand", "keen", "kind", "lively", "lucid", "merry",
    "noble", "polished", "proud", "quick", "quiet", "rapid", "sharp", "shiny", "silent", "steady",
    "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "young", "zesty", "zen",
)
_NOUNS = (
    "badger", "bison", "crane", "dolphin", "eagle", "falcon", "fox", "gecko", "heron", "ibis",
    "jaguar", "koala", "lemur", "lynx", "marten", "newt", "otter", "owl", "panda", "puffin",
    "quail", "raven", "robin", "salmon", "seal", "shrike", "sparrow", "stork", "swan", "tapir",
    "tern", "tiger", "trout", "viper", "walrus", "wolf", "wren", "yak", "zebra", "orca",
)


def random_run_name() -> str:
    """An adjective, an animal and a number; easy to say, unlikely to repeat."""
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000)}"
