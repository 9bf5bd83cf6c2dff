"""A per-model budget of explanation time, so that opt-in explanations cannot slow the prediction path.

An explanation costs far more than a prediction (a kernel explainer calls the
model hundreds of times). :class:`ExplanationBudget` is a token bucket of
explanation-seconds: it refills at ``seconds_per_second`` up to ``burst_s``;
an explanation may start while the bucket is above zero and fewer than
``max_concurrent`` explanations of the model are running, and what it took
is charged when it ends. A request over the budget is refused at once with
:class:`~loopml.errors.TooManyRequestsError` (HTTP 429, ``Retry-After``):
it never queues behind other explanations.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from loopml.errors import InvalidValueError, TooManyRequestsError

#: Defaults: a quarter of one core on explanations, bursts of up to two seconds, two at a time.
DEFAULT_RATE = 0.25
DEFAULT_BURST_S = 2.0
DEFAULT_CONCURRENT = 2


class ExplanationBudget:
    """A token bucket of explanation-seconds plus a cap on concurrent explanations, for one model."""

    def __init__(
        self,
        *,
        seconds_per_second: float = DEFAULT_RATE,
        burst_s: float = DEFAULT_BURST_S,
        max_concurrent: int = DEFAULT_CONCURRENT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not seconds_per_second > 0 or not burst_s > 0:
            raise InvalidValueError("An explanation budget needs seconds_per_second > 0 and burst_s > 0.")
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise InvalidValueError(f"max_concurrent must be a whole number from 1, got {max_concurrent!r}.")
        self.rate = float(seconds_per_second)
        self.burst = float(burst_s)
        self.max_concurrent = max_concurrent
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._running = 0
        self._lock = threading.Lock()

    @property
    def tokens(self) -> float:
        """Explanation-seconds available now (negative after an explanation that overran)."""
        with self._lock:
            self._refill()
            return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, what: str) -> None:
        """Reserve a slot for one explanation, or raise TooManyRequestsError saying when to retry."""
        with self._lock:
            self._refill()
            if self._running >= self.max_concurrent:
                raise TooManyRequestsError(
                    f"{what}: {self._running} explanations are running (at most {self.max_concurrent}); "
                    "retry in a moment, or ask for the prediction without explain=true.",
                    retry_after=1,
                )
            if self._tokens <= 0:
                wait = math.ceil(-self._tokens / self.rate + 1e-9) or 1
                raise TooManyRequestsError(
                    f"{what}: the explanation budget ({self.rate:g} s of explaining per second) is spent; retry in "
                    f"{wait} s, or ask for the prediction without explain=true.",
                    retry_after=wait,
                )
            self._running += 1

    def release(self, seconds: float) -> None:
        """End an explanation that took ``seconds``: charge them to the bucket."""
        with self._lock:
            self._refill()
            self._running = max(0, self._running - 1)
            self._tokens -= max(0.0, seconds)

    @contextmanager
    def spend(self, what: str) -> Iterator[None]:
        """``with budget.spend("model x"):`` acquire, run, and charge the time it took."""
        self.acquire(what)
        start = self._clock()
        try:
            yield
        finally:
            self.release(self._clock() - start)
