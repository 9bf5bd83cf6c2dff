"""Request ids: fresh ones that cannot be guessed, and a window of the ids this process answered lately.

A request id is the key feedback names, so it must name one answered
request. ``RequestIds.assign`` keeps a caller's ``X-Request-ID`` (or v2
``id``) unless this process answered that id already within its window (the
last ``capacity`` ids, any model: feedback names the id alone, so an id
shared by two models would label both), and otherwise gives the request a
fresh id and says which id it replaced. The window is memory only, so the
prediction path never waits on the database; a repeat it cannot see (from
before a restart, or answered by another replica) is caught by the store
when the batch is written (``ServingStore.log_predictions``: the first
answer keeps the id).

Fresh ids are random (26 hex digits, 104 bits from ``os.urandom``), not a
counter: a caller who saw one answer could otherwise send the next ids as
its own first, and have another caller's feedback land on its prediction.
The random bytes are read in blocks, one system call per 2,048 ids.
"""

from __future__ import annotations

import os
from collections import deque

#: Ids remembered (about 12 MB at 100,000); a repeat older than this is resolved by the store instead.
DEFAULT_WINDOW = 100_000
_ID_HEX = 26
_BLOCK_IDS = 2_048


class RequestIds:
    """Assigns the request id of each answer; used from the event loop only (``in`` is safe from any thread)."""

    def __init__(self, capacity: int = DEFAULT_WINDOW) -> None:
        self.capacity = capacity
        self._seen: set[str] = set()
        self._order: deque[str] = deque()
        self._random = ""
        self._at = 0
        self.rewritten = 0

    def fresh(self) -> str:
        """A new random id (26 hex digits)."""
        at = self._at
        if at >= len(self._random):
            self._random, at = os.urandom(_ID_HEX // 2 * _BLOCK_IDS).hex(), 0
        self._at = at + _ID_HEX
        return self._random[at : at + _ID_HEX]

    def assign(self, supplied: str | None) -> tuple[str, str | None]:
        """(the id this request gets, the caller's id it replaced or None), and remember the id."""
        replaced = None
        if supplied is not None:
            if self._claim(supplied):
                return supplied, None
            replaced = supplied
            self.rewritten += 1
        while True:  # a fresh id is new with near certainty; the loop only makes it certain in the window
            rid = self.fresh()
            if self._claim(rid):
                return rid, replaced

    def _claim(self, rid: str) -> bool:
        seen = self._seen
        if rid in seen:
            return False
        seen.add(rid)
        order = self._order
        order.append(rid)
        if len(order) > self.capacity:
            seen.discard(order.popleft())
        return True

    def __contains__(self, rid: object) -> bool:
        """Whether this process answered ``rid`` within its window."""
        return rid in self._seen

    def __len__(self) -> int:
        return len(self._seen)
