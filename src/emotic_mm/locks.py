"""One process at a time per output folder: a prepared store, a report, a cached clean model.

Without it, two ``prepare`` runs into one ``data.prepared_dir`` would race: the second would remove the
first's half-built folder as stale. Each writer holds a lock file beside its output folder
(``.<name>.lock``, an OS lock released when the process ends, however it ends; the file is removed on
release, with ``.<name>.lock.json`` naming the holder meanwhile). A second writer waits
for it, after one line naming the holder (pid, host, command), then proceeds — and finds the work done
where it checks for that (the clean-model cache), so concurrent sweeps train each clean model once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emotic_mm.errors import ConfigError

log = logging.getLogger(__name__)


def lock_paths(folder: Path) -> tuple[Path, Path]:
    """The lock file of an output folder and the note naming its holder (both hidden siblings)."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock", folder.parent / f".{folder.name}.lock.json"


def holder(note: Path) -> str:
    """Who holds a lock, in words, from the note its holder wrote (``an unknown process`` without one)."""
    try:
        info = json.loads(note.read_text())
        return (
            f"pid {info['pid']} on {info['host']} since {info['started']} "
            f"({' '.join(str(a) for a in info.get('argv', []))[:200]})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process"


@contextmanager
def output_lock(folder: Path, key: str) -> Iterator[None]:
    """Hold ``folder``'s lock for the block; when another process holds it, say who (one warning line
    naming ``key``, the folder and the holder) and wait until it is released."""
    from filelock import FileLock, Timeout

    from emotic_mm.fsutil import write_json_atomic

    lock_file, note = lock_paths(folder)
    made = _missing_folders(lock_file.parent)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_file), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning("%s=%s is being written by %s; waiting for it to finish", key, folder, holder(note))
            lock.acquire()
    except OSError as exc:
        raise ConfigError(
            f"{key}={folder}: cannot create the lock {lock_file} ({exc.strerror or exc})"
        ) from None
    try:
        write_json_atomic(
            note,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "argv": sys.argv,
            },
        )
        yield
    finally:  # unlinked while still held: a waiter that opened this file sees it gone and takes a new one
        note.unlink(missing_ok=True)
        lock_file.unlink(missing_ok=True)
        lock.release()
        for made_folder in made:  # a failed run leaves no folder behind that only the lock needed
            try:
                made_folder.rmdir()
            except OSError:  # not empty: the run wrote there
                break


def _missing_folders(folder: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` would create for ``folder``, deepest first."""
    missing = []
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
