"""Dynamic batching: the fast-path requests for one model that are ready in the same event-loop turn share one call.

A scikit-learn ``predict`` costs a fixed few hundred microseconds of input
validation before it does any work, whatever the number of rows; under
concurrent load that fixed cost, paid once per request, is most of the
CPU. Requests queue their numpy arrays here; the first one of a turn
schedules a flush with ``call_soon``, which runs after every request that
was already ready has queued its own, so nobody waits for a timer and a
lone request only pays two loop iterations. The flush stacks the arrays,
predicts once and hands each request its slice.

It is used only for models whose predictions were shown, at load time, to
be the same row by row as stacked (``Predictor`` checks that). If the
stacked call fails, every request is predicted on its own, so one bad
request gets its own error and the others their answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

#: Rows one stacked call may hold; a turn with more flushes early.
MAX_ROWS = 2_048


class Batcher:
    """Coalesces ``submit(array)`` calls made in one event-loop turn into one ``predict`` call."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], *, max_rows: int = MAX_ROWS) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self._rows = 0
        self._scheduled = False
        self.calls = 0
        self.batched_requests = 0

    def submit(self, array: np.ndarray) -> asyncio.Future[np.ndarray]:
        """The predictions for ``array``, once the batch it joined has run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((array, future))
        self._rows += len(array)
        if self._rows >= self._max_rows:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending, self._rows = self._pending, [], 0
        if not batch:
            return
        self.calls += 1
        if len(batch) == 1:
            array, future = batch[0]
            _settle(future, self._predict, array)
            return
        self.batched_requests += len(batch)
        try:
            stacked = self._predict(np.concatenate([array for array, _ in batch]))
        except Exception:
            stacked = None
        if stacked is None or stacked.ndim == 0 or len(stacked) != sum(len(array) for array, _ in batch):
            for array, future in batch:  # one at a time: a bad request gets its own error
                _settle(future, self._predict, array)
            return
        start = 0
        for array, future in batch:
            end = start + len(array)
            if not future.done():
                future.set_result(stacked[start:end])
            start = end


def _settle(future: asyncio.Future[np.ndarray], predict: Callable[[np.ndarray], np.ndarray], array: np.ndarray) -> None:
    if future.done():
        return
    try:
        future.set_result(predict(array))
    except Exception as exc:  # handed to the waiting request, which answers with it
        future.set_exception(exc)
