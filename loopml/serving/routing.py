"""Which version answers a request: the deployment's, or its canary's for a share of the traffic.

With a routing key (the ``key`` field of a v1 body, or the ``X-Loopml-Key``
header) the choice is sticky: a stable hash of the key puts it in one of
10,000 buckets, and the lowest ``percent`` of buckets go to the canary, so
a caller stays on one side for as long as the split stands, in every
worker and after restarts, and raising the percent only moves callers from
main to canary. Without a key each request is a fresh random draw.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

BUCKETS = 10_000
MAIN, CANARY, SHADOW = "main", "canary", "shadow"


def bucket(key: str) -> int:
    """The key's bucket in ``[0, BUCKETS)``: blake2b, so the same in every process and Python version."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True, slots=True)
class Route:
    """How requests for one model are answered now.

    ``source`` says where the route came from: ``deployment`` (a deployment
    recorded in the store, ``deployment_id`` set) or ``command line`` (a
    ``--models NAME@ALIAS`` or ``NAME/VERSION`` of ``loopml serve``).
    """

    name: str
    version: int
    target: str
    source: str = "deployment"
    canary_version: int | None = None
    canary_percent: float = 0.0
    shadow_version: int | None = None
    deployment_id: int | None = None

    def choose(self, key: str | None) -> tuple[int, str]:
        """The version that answers, and its role (``main`` or ``canary``)."""
        canary = self.canary_version
        if canary is None or self.canary_percent <= 0:
            return self.version, MAIN
        threshold = self.canary_percent * (BUCKETS / 100)
        point = bucket(key) if key is not None else random.random() * BUCKETS
        return (canary, CANARY) if point < threshold else (self.version, MAIN)

    @property
    def versions(self) -> tuple[int, ...]:
        """Every version this route needs loaded: main, canary, shadow."""
        found = [self.version]
        for extra in (self.canary_version, self.shadow_version):
            if extra is not None and extra not in found:
                found.append(extra)
        return tuple(found)
