"""NpyRowWriter: preallocate, fill row by row, shrink to what was written."""

from __future__ import annotations

import numpy as np
import pytest

from emotic_mm.data.npy_writer import NpyRowWriter


@pytest.mark.parametrize("flush_every", [1, 3, 256])
def test_shrinks_to_rows_written(tmp_path, flush_every):
    path = tmp_path / "a.npy"
    rows = np.arange(7 * 5 * 4 * 3, dtype=np.uint8).reshape(7, 5, 4, 3)
    w = NpyRowWriter(path, capacity=1000, row_shape=(5, 4, 3), dtype=np.uint8, flush_every=flush_every)
    for r in rows:
        w.append(r)
    w.close()
    out = np.load(path)
    assert out.shape == (7, 5, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rows)
    header_and_data = path.stat().st_size
    assert header_and_data == np.load(path, mmap_mode="r").offset + rows.nbytes  # the file was truncated


def test_full_capacity_and_float_rows(tmp_path):
    path = tmp_path / "f.npy"
    rows = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    w = NpyRowWriter(path, 4, (3,), "float32")
    for r in rows:
        w.append(r)
    with pytest.raises(IndexError, match="more rows"):
        w.append(rows[0])
    w.close()
    np.testing.assert_array_equal(np.load(path), rows)


def test_scalar_rows(tmp_path):
    path = tmp_path / "s.npy"
    w = NpyRowWriter(path, 12, (), np.int64)
    for v in (5, -3, 7):
        w.append(np.int64(v))
    w.close()
    np.testing.assert_array_equal(np.load(path), [5, -3, 7])


def test_capacity_zero(tmp_path):
    path = tmp_path / "z.npy"
    w = NpyRowWriter(path, 0, (224, 224, 3), np.uint8)
    with pytest.raises(IndexError):
        w.append(np.zeros((224, 224, 3), np.uint8))
    w.close()
    out = np.load(path)
    assert out.shape == (0, 224, 224, 3) and out.dtype == np.uint8


def test_nothing_written_out_of_larger_capacity(tmp_path):
    path = tmp_path / "e.npy"
    NpyRowWriter(path, 50, (2, 2), np.uint8).close()
    assert np.load(path).shape == (0, 2, 2)
