"""Append rows to a preallocated ``.npy`` file through a memory map, with flat peak memory.

``prepare`` does not know how many persons survive decoding until it has decoded them, so each array
is preallocated for the label-filtered upper bound, filled in order, and shrunk at the end by
rewriting the shape in the header (same header length, as the npy format allows) and truncating the
file. Written pages are flushed and dropped from the mapping every ``flush_every`` rows, so resident
memory does not grow with the number of persons.
"""

from __future__ import annotations

import ast
import errno
import mmap
import os
from pathlib import Path

import numpy as np

_MAGIC = b"\x93NUMPY"


class NpyRowWriter:
    """Fill a (capacity, *row_shape) array row by row; ``close()`` shrinks it to the rows written."""

    def __init__(self, path: Path, capacity: int, row_shape: tuple[int, ...], dtype: np.dtype | str,
                 flush_every: int = 64) -> None:
        self.path = Path(path)
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.capacity = int(capacity)
        self.count = 0
        self.flush_every = max(1, int(flush_every))
        header_probe = np.lib.format.open_memmap(
            self.path, mode="w+", dtype=self.dtype, shape=(max(self.capacity, 1), *self.row_shape)
        )
        self._offset = header_probe.offset
        del header_probe
        self._file = open(self.path, "r+b")
        _reserve(self._file, self.path)
        self._mmap = mmap.mmap(self._file.fileno(), 0)
        self._array = np.ndarray(
            (max(self.capacity, 1), *self.row_shape), dtype=self.dtype, buffer=self._mmap, offset=self._offset
        )

    def append(self, row: np.ndarray) -> None:
        if self.count >= self.capacity:
            raise IndexError(f"{self.path}: more rows than the preallocated {self.capacity}")
        self._array[self.count] = row
        self.count += 1
        if self.count % self.flush_every == 0:
            self._drop_pages()

    def _drop_pages(self) -> None:
        self._mmap.flush()
        if hasattr(mmap, "MADV_DONTNEED"):
            self._mmap.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        """Flush, unmap, and shrink the file to the rows actually written."""
        self._mmap.flush()
        del self._array
        self._mmap.close()
        self._file.close()
        _shrink_npy(self.path, self.count, self._offset)


def _reserve(file, path: Path) -> None:
    """Allocate the file's blocks now: a full disk is then an OSError here, naming the file, instead of
    a SIGBUS on some later write into a hole of the sparse file the memory map covers."""
    if not hasattr(os, "posix_fallocate"):
        return
    size = os.fstat(file.fileno()).st_size
    try:
        os.posix_fallocate(file.fileno(), 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):  # file systems without it
            return
        file.close()
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def _shrink_npy(path: Path, rows: int, data_offset: int) -> None:
    with open(path, "r+b") as f:
        if f.read(6) != _MAGIC:
            raise ValueError(f"{path}: not an .npy file")
        major = f.read(1)[0]
        f.read(1)
        length_bytes = 2 if major == 1 else 4
        header_len = int.from_bytes(f.read(length_bytes), "little")
        header_start = f.tell()
        header = ast.literal_eval(f.read(header_len).decode("latin1"))
        shape = (rows, *header["shape"][1:])
        dtype = np.lib.format.descr_to_dtype(header["descr"])
        new = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (header["descr"], shape)
        new = new.ljust(header_len - 1) + "\n"
        if len(new) != header_len:
            raise ValueError(f"{path}: cannot rewrite the header in place")
        f.seek(header_start)
        f.write(new.encode("latin1"))
    os.truncate(path, data_offset + rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)
