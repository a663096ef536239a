"""Write-then-rename helpers: a folder or file appears complete or not at all."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emotic_mm.errors import ConfigError, OutputError

# what a full, read-only or over-quota file system answers a write: the user's to fix, not a bug
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def write_failure(exc: OSError, where: Path | None = None) -> OutputError | None:
    """One line for a failed write (``None`` when ``exc`` is not a write failure): what could not be
    written and why, e.g. ``<run>/best: cannot write (No space left on device)``."""
    if exc.errno not in WRITE_ERRNOS:
        return None
    target = where if where is not None else (final_name(Path(exc.filename)) if exc.filename else None)
    reason = exc.strerror or errno.errorcode.get(exc.errno)
    return OutputError(f"{target or 'an output'}: cannot write ({reason})")


TEMPORARY = re.compile(r"^\.(?P<name>.+?)\.(?:tmp-[0-9a-f]{8}|partial-[0-9a-z-]+)$")


def final_name(path: Path) -> Path:
    """The path a temporary one (``.<stem>.tmp-<id><suffix>``, ``.<name>.partial-<id>``, or a path
    inside one) will be renamed to: what a message about a failed write should name."""
    parts = []
    for part in Path(path).parts:
        stem, suffix = (part[: -len(Path(part).suffix)], Path(part).suffix) if ".tmp-" in part else (part, "")
        match = TEMPORARY.match(stem)
        parts.append(match["name"] + suffix if match else part)
    return Path(*parts)


def partial_siblings(final: Path) -> list[Path]:
    """Leftovers of interrupted builds of ``final`` (hidden, never mistaken for the real folder)."""
    return sorted(final.parent.glob(f".{final.name}.partial-*")) if final.parent.exists() else []


def builder_alive(partial: Path) -> bool:
    """The process whose pid a partial folder's name carries (``.<name>.partial-<pid>-<id>``) still runs:
    its folder is work in progress, not a leftover."""
    pid = partial.name.rpartition(".partial-")[2].split("-")[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``final`` in one rename.

    Partial folders of interrupted runs are removed first, so a re-run starts clean; one whose builder
    (the pid in its name) still runs is left alone. On an exception the temporary folder is removed and
    ``final`` (if it existed) is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in partial_siblings(final):
        if not builder_alive(stale):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:  # a file (or link) that the caller agreed to replace: no hidden .old-* left behind
            old.unlink(missing_ok=True)


def describe_path(path: Path) -> str:
    """What is at ``path``, in a few words, for a message that refuses to replace it."""
    path = Path(path)
    if path.is_symlink():
        return f"a link to {os.readlink(path)}"
    if path.is_file():
        return f"a file ({path.stat().st_size} bytes)"
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir())
        shown = ", ".join(names[:3]) + (f", ... ({len(names)} entries)" if len(names) > 3 else "")
        return f"a folder holding {shown}" if names else "an empty folder"
    return "something that is neither a file nor a folder"


def is_within(inner: Path, outer: Path) -> bool:
    """``inner`` is ``outer`` or lies inside it (both resolved: links and ``..`` do not hide it)."""
    inner, outer = Path(inner).resolve(), Path(outer).resolve()
    return inner == outer or outer in inner.parents


def check_replaceable(
    path: Path,
    *,
    key: str,
    ours: Callable[[Path], bool],
    what_ours: str,
    protect: Iterable[Path] = (),
    overwrite: Any = False,
) -> None:
    """The one rule for every path a user names as an output: never lose their data.

    ``path`` may be replaced when nothing is there, when it is an empty folder, or when ``ours(path)``
    says an earlier run of ours wrote it (``what_ours`` says how that is recognised, for the message).
    Anything else needs ``overwrite=true``. Even then, ``path`` may never be one of ``protect`` (the
    inputs of the run: the raw release, a descriptions file, the runs being reported, the run dir) nor
    a folder holding one of them. Raises :class:`ConfigError` naming ``key``, the path and what is there
    (or that ``overwrite`` is not a boolean: it comes straight from a config).
    """
    if not isinstance(overwrite, bool):
        raise ConfigError(f"overwrite={overwrite!r} must be true or false")
    path = Path(path)
    for guarded in protect:
        if is_within(guarded, path):
            same = "is" if Path(guarded).resolve() == path.resolve() else "holds"
            raise ConfigError(
                f"{key}={path} {same} {guarded}, which this run reads or runs in; it is never replaced "
                f"(not even with overwrite=true) — choose another folder"
            )
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return
    if ours(path) or overwrite:
        return
    raise ConfigError(
        f"{key}={path} is {describe_path(path)}, not {what_ours}; pass overwrite=true to "
        f"replace it, or choose another path"
    )


def is_main_process() -> bool:
    """Rank 0 under torchrun (read from the environment torchrun sets), or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path (same suffix, so savez/savefig pick the right format); on success
    it replaces ``path`` in one rename, on an exception it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
