"""Freed request bodies stay mapped: a second batch of bodies reuses the first's memory instead of faulting anew."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from loopml.serving import heap

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the heap settings are glibc's"
)

# A fresh interpreter queues batches of 80 KB bodies as the prediction log does, frees each batch, and
# prints the page faults the later batches took.
_BATCHES = """
import resource, sys
from loopml.serving.heap import keep_freed_heap
if sys.argv[1] == "keep":
    assert keep_freed_heap()
def batch():
    return [bytes(bytearray(80_000)) for _ in range(250)]  # 20 MB, as a quarter-second of 100-row requests
held = batch(); del held  # the first batch maps the memory
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    held = batch(); del held
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _BATCHES, mode], capture_output=True, text=True, check=True).stdout
    return int(out)


def test_batches_of_bodies_reuse_freed_memory_once_the_heap_is_kept():
    pages_a_batch = 250 * 80_000 // 4096
    assert _faults("default") > 3 * pages_a_batch  # glibc's default: every batch faults its pages in again
    assert _faults("keep") < pages_a_batch // 10


def test_keeping_the_heap_twice_is_harmless():
    assert heap.keep_freed_heap() and heap.keep_freed_heap()
