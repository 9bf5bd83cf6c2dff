"""Keep freed heap memory mapped in the serving processes, so logged request bodies do not fault it in again.

The prediction log holds each request's body (tens of kilobytes for a 100-row
request) from the answer until its batch is written, a quarter of a second or
so: a few thousand bodies in the serving process, and again in the log-writer
process while it stores them. glibc's ``malloc`` serves those bodies from the
top of its heap, and when a batch is freed the top is larger than its trim
threshold (128 KiB by default), so it hands the pages back to the kernel,
only to fault them in again, zeroed, for the next batch's bodies: measured on
``loopml serve`` (one worker, 100-row batches, c=8, wrk, 2 cores) that was up
to 19 page faults a request, and the log cost 11% of the throughput with the
writer discarding every batch; keeping the freed memory brought that to 3%.

``keep_freed_heap`` raises the trim threshold, so up to ``TRIM_THRESHOLD``
bytes of freed memory stay mapped for the next batch, and sets the mmap
threshold, so bodies up to ``MMAP_THRESHOLD`` come from that heap too (glibc
stops adjusting the threshold itself once either is set). It does nothing
where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

logger = logging.getLogger(__name__)

#: Freed memory at the top of the heap that stays mapped (a batch of bodies, with room to spare).
TRIM_THRESHOLD = 128 * 1024 * 1024
#: Allocations up to this size come from the heap rather than from a mapping of their own: every body
#: ``loopml serve`` accepts by default (8 MiB) and every piece of a batch the writer process receives (4 MiB).
MMAP_THRESHOLD = 16 * 1024 * 1024
_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3


def keep_freed_heap() -> bool:
    """Ask glibc to keep freed memory mapped for reuse (this process, from now on); False where it cannot."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not done:
        logger.warning("malloc refused the serving process's heap settings; the prediction log will cost more")
    return done
