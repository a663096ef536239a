"""Content digests, to show that a file or a folder was (or was not) changed."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path (so a mismatch names the file)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's file paths and bytes."""
    path = Path(path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for name, hexdigest in file_digests(path).items():
        h.update(f"{name}\0{hexdigest}\n".encode())
    return h.hexdigest()
