"""Share the CPU cores among the course's processes that compute at the same time.

PyTorch gives a process one thread per core, and its OpenMP threads spin while they wait. Two
notebooks training at once on a two-core laptop then run four busy threads on two cores, and each
step takes four to five times as long as alone; a fixed single thread per process avoids that but
costs a lone notebook about a quarter of its speed (``benchmarks/threads.py`` measures both).

So the course shares the cores. While one of its progress bars is open (training, sampling),
a process leaves a marker file in a per-user folder of the temporary directory and refreshes it
every two seconds; at each refresh it counts the busy processes and sets its own threads to
``cores // busy``. Alone, a chapter keeps every core; with two notebooks computing, each gets
half; a marker not refreshed for ten seconds (a process that stopped) no longer counts.
``GENSYNTH_SHARE_CORES=0`` turns this off and leaves PyTorch's thread count alone.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

REFRESH_S = 2.0      # how often a busy process recounts
STALE_S = 10.0       # a marker older than this belongs to a process that stopped

_depth = 0           # open progress bars in this process
_cores = 1           # this process's thread count before it started sharing
_last_refresh = 0.0


def enabled() -> bool:
    return os.environ.get("GENSYNTH_SHARE_CORES", "1").strip() not in ("0", "no", "off", "false")


def busy_folder() -> Path:
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"gensynth_course-busy-{user}"


def _marker() -> Path:
    return busy_folder() / str(os.getpid())


def busy_processes() -> int:
    """How many of the course's processes (this one included, if busy) are computing now."""
    now, count = time.time(), 0
    try:
        markers = list(busy_folder().iterdir())
    except OSError:
        return 1
    for marker in markers:
        try:
            fresh = now - marker.stat().st_mtime < STALE_S
        except OSError:
            continue                                  # removed meanwhile
        if fresh or marker.name == str(os.getpid()):
            count += 1
        else:
            marker.unlink(missing_ok=True)
    return max(count, 1)


def refresh(force: bool = False) -> None:
    """Renew this process's marker and re-divide the cores; cheap to call every step."""
    global _last_refresh
    if _depth == 0 or not enabled():
        return
    now = time.monotonic()
    if not force and now - _last_refresh < REFRESH_S:
        return
    _last_refresh = now
    try:
        _marker().touch()
    except OSError:
        return                                        # no writable temporary folder: keep PyTorch's setting
    threads = max(1, _cores // busy_processes())
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def begin() -> None:
    """This process starts computing (a progress bar opened)."""
    global _depth, _cores
    if not enabled():
        return
    if _depth == 0:
        _cores = torch.get_num_threads()
        try:
            busy_folder().mkdir(exist_ok=True)
        except OSError:
            pass
    _depth += 1
    refresh(force=True)


def end() -> None:
    """This process stops computing (its last open progress bar closed): every core is its own again."""
    global _depth
    if _depth == 0:
        return
    _depth -= 1
    if _depth == 0:
        _marker().unlink(missing_ok=True)
        if torch.get_num_threads() != _cores:
            torch.set_num_threads(_cores)
