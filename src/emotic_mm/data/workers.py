"""Worker processes for the data stages (decoding the release, drawing the synthetic world): spawned, and
bound to their parent, so a killed ``prepare`` leaves no process behind."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when ``parent`` dies, even by kill -9 (no cleanup runs
    there), so a killed ``prepare`` leaves no decode workers — and, once they are gone, no
    multiprocessing resource tracker either (it exits when the last process holding its pipe does).

    Linux: the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``). Elsewhere, and
    as a second guard, a daemon thread polls the parent pid once a second.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def spawn_pool(workers: int) -> ProcessPoolExecutor | None:
    """``workers`` processes (``None`` for 0: work in this process), started with ``spawn`` so they never
    inherit torch's threads from the parent, and bound to die with it (:func:`die_with_parent`)."""
    if workers <= 0:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))
