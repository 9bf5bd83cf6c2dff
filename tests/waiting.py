"""Waiting for something a background thread or process does, without asserting on elapsed time."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 15) -> None:
    """Poll ``check`` until it holds; fail the test naming ``what`` if it has not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)
