"""Partial failures: a store that is not whole, a full disk, two processes on one output, numbers that
are not numbers. Each is one line (or a wait), and nothing half-written is ever taken as whole."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from support.cli import run_cli
from support.compose import TINY_TRAIN
from emotic_mm.data.store import Store
from emotic_mm.errors import DataFormatError


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# =========================================================================== a store must be whole
@pytest.fixture()
def store_copy(tiny_store, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_store.store, tmp_path / "store"))


def _replace(path: Path, array: np.ndarray) -> None:
    path.unlink()
    np.save(path, array)


def test_an_array_short_of_rows_is_one_line_naming_it(store_copy, tmp_path):
    kept = len(np.load(store_copy / "train_cont_arr.npy"))
    _replace(store_copy / "train_cont_arr.npy", np.full((kept - 5, 3), 5.0, np.float32))
    with pytest.raises(DataFormatError, match=rf"train_cont_arr.npy: shape \({kept - 5}, 3\), expected {kept} rows "
                                              rf"\(manifest.json counts {kept} kept persons in train\)"):
        Store(store_copy)
    proc = run_cli(["train", f"data.prepared_dir={store_copy}", *TINY_TRAIN, "trainer.epochs=1",
                    f"hydra.run.dir={tmp_path / 'r'}"])
    _one_line_error(proc, "train_cont_arr.npy", f"expected {kept} rows")


def test_a_csv_short_of_rows_and_a_truncated_array_are_one_line(store_copy):
    csv = store_copy / "val.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:-1]))
    with pytest.raises(DataFormatError, match=r"val.csv: \d+ rows, expected \d+"):
        Store(store_copy)
    csv.write_text("".join(lines))
    body = store_copy / "test_body_arr.npy"
    body.write_bytes(body.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match=r"test_body_arr.npy: shape .* \(truncated\)"):
        Store(store_copy)


def test_a_view_of_another_size_than_the_manifests_is_one_line(store_copy):
    kept = len(np.load(store_copy / "train_cont_arr.npy"))
    _replace(store_copy / "train_body_arr.npy", np.zeros((kept, 64, 64, 3), np.uint8))
    with pytest.raises(DataFormatError, match=rf"train_body_arr.npy: shape \({kept}, 64, 64, 3\), expected "
                                              rf"\({kept}, 128, 128, 3\) \(manifest.json sizes body view is 128 px\)"):
        Store(store_copy)
