"""Partial failures: a store that is not whole, a full disk, two processes on one output, numbers that
are not numbers. Each is one line (or a wait), and nothing half-written is ever taken as whole."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emotic_mm.data.store import Store
from emotic_mm.errors import DataFormatError
from support.cli import run_cli
from support.compose import TINY_TRAIN


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


@pytest.mark.slow  # CLI train
def test_an_array_short_of_rows_is_one_line_naming_it(store_copy, tmp_path):
    kept = len(np.load(store_copy / "train_cont_arr.npy"))
    _replace(store_copy / "train_cont_arr.npy", np.full((kept - 5, 3), 5.0, np.float32))
    needle = (
        rf"train_cont_arr.npy: shape \({kept - 5}, 3\), expected {kept} rows "
        rf"\(manifest.json counts {kept} kept persons in train\)"
    )
    with pytest.raises(DataFormatError, match=needle):
        Store(store_copy)
    proc = run_cli(
        [
            "train",
            f"data.prepared_dir={store_copy}",
            *TINY_TRAIN,
            "trainer.epochs=1",
            f"hydra.run.dir={tmp_path / 'r'}",
        ]
    )
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
    needle = rf"train_body_arr.npy: shape \({kept}, 64, 64, 3\), expected \({kept}, 128, 128, 3\) "
    with pytest.raises(DataFormatError, match=needle + r"\(manifest.json sizes body view is 128 px\)"):
        Store(store_copy)


# =========================================================================== a full disk
def _rows(run: Path) -> list[int]:
    import csv

    with open(run / "metrics.csv", newline="") as f:
        return [int(float(r["epoch"])) for r in csv.DictReader(f)]


@pytest.mark.slow  # real training
def test_a_full_disk_while_training_is_one_line_and_leaves_no_row_without_its_checkpoint(
    train_store, tmp_path, monkeypatch
):
    """Epoch 1's checkpoint cannot be written: the run stops with an OutputError naming the folder, its
    row is not in metrics.csv, last/ is epoch 0's; a resume then carries on where it stopped."""
    import json

    from safetensors import SafetensorError

    import emotic_mm.checkpoint as checkpoint
    from emotic_mm.errors import OutputError
    from emotic_mm.training.run import train
    from support.compose import compose_cfg

    real, calls = checkpoint.save_file, []

    def full_after_epoch_0(*args, **kwargs):
        calls.append(1)
        if len(calls) > 4:  # epoch 0 wrote best and last (weights + training state each)
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", full_after_epoch_0)
    run = tmp_path / "run"
    base = [f"data.prepared_dir={train_store}", *TINY_TRAIN, "trainer/scheduler=none"]
    with pytest.raises(OutputError, match=r"run/(best|last): cannot write the checkpoint \(.*No space left"):
        train(compose_cfg("train", [*base, "trainer.epochs=2"]), run_dir=run)
    assert _rows(run) == [0]
    assert json.loads((run / "last" / "meta.json").read_text())["epoch"] == 0
    assert not list(run.glob(".*partial*"))
    monkeypatch.setattr(checkpoint, "save_file", real)
    train(compose_cfg("train", [*base, "trainer.epochs=2", "trainer.resume=true"]), run_dir=run)
    assert _rows(run) == [0, 1]


@pytest.mark.slow  # real training
def test_a_kill_between_checkpoint_and_row_loses_no_row(train_store, tmp_path):
    from emotic_mm.training.run import train
    from support.compose import compose_cfg

    run = tmp_path / "run"
    base = [f"data.prepared_dir={train_store}", *TINY_TRAIN, "trainer/scheduler=none"]
    train(compose_cfg("train", [*base, "trainer.epochs=2"]), run_dir=run)
    lines = (run / "metrics.csv").read_text().splitlines(keepends=True)
    (run / "metrics.csv").write_text("".join(lines[:-1]))  # killed after last/ (epoch 1), before the row
    assert _rows(run) == [0]
    train(compose_cfg("train", [*base, "trainer.epochs=3", "trainer.resume=true"]), run_dir=run)
    assert _rows(run) == [0, 1, 2]


def test_a_write_the_disk_refuses_is_one_line_in_every_stage(tmp_path, capsys, monkeypatch):
    """run_stage, around every stage: ENOSPC (or a read-only or over-quota disk) is one line, exit 2, naming
    the file being written (not its temporary name)."""
    import errno
    import sys

    from emotic_mm.config import run_stage

    def task(cfg):
        raise OSError(
            errno.ENOSPC, "No space left on device", str(tmp_path / "r" / ".report.tmp-0123abcd.json")
        )

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit) as info:
        run_stage("report", task, [f"hydra.run.dir={tmp_path / 'r'}", "runs=x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    where = tmp_path / "r" / "report.json"
    expected = f"emotic-mm report: error: {where}: cannot write (No space left on device)"
    assert err.strip().splitlines() == [expected]


# =========================================================================== two processes, one output
def _small_release(root: Path) -> Path:
    from support.releases import Img, make_release, person, vperson

    return make_release(
        root,
        {
            "train": [Img("a.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"])])],
            "val": [
                Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])
            ],
            "test": [
                Img("c.png", "ade20k/images", "rgb_png", [vperson([0, 0, 40, 30], [["Pain"]], (2, 6, 2))])
            ],
        },
    )


@pytest.mark.slow  # two prepare processes
def test_a_second_prepare_into_the_same_folder_waits_for_the_first(tmp_path):
    """While one prepare holds data.prepared_dir (here: this test, mid-build), a second one names it and
    waits: it neither removes the first's half-built folder as stale nor fails; then it completes."""
    import os
    import time

    from emotic_mm.locks import output_lock
    from support.cli import EMOTIC_MM, REPO, cli_env

    raw, store = _small_release(tmp_path / "raw"), tmp_path / "store"
    building = tmp_path / f".store.partial-{os.getpid()}-inflight"
    err = tmp_path / "second.log"
    with output_lock(store, "data.prepared_dir"):
        building.mkdir()  # the first prepare's folder in progress
        with open(err, "w") as stderr:
            second = subprocess.Popen(
                [
                    EMOTIC_MM,
                    "prepare",
                    "data=emotic",
                    f"data.raw_dir={raw}",
                    f"data.prepared_dir={store}",
                    "data.workers=0",
                    f"hydra.run.dir={tmp_path / 'run'}",
                ],
                cwd=str(REPO),
                stdout=stderr,
                stderr=subprocess.STDOUT,
                env=cli_env(),
            )
        deadline = time.time() + 120
        while "waiting" not in err.read_text() and second.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        waiting = [line for line in err.read_text().splitlines() if "waiting" in line]
        assert second.poll() is None and len(waiting) == 1, err.read_text()
        assert f"data.prepared_dir={store} is being written by pid {os.getpid()}" in waiting[0]
        assert building.is_dir()  # not removed as "stale"
        building.rmdir()  # the first prepare finishes (renames its folder into place)
    assert second.wait(timeout=300) == 0, err.read_text()
    assert json.loads((store / "manifest.json").read_text())["splits"]["train"]["kept"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw", "run", "second.log", "store"]  # no lock left


def test_concurrent_jobs_train_one_clean_model_once(tiny, tmp_path, monkeypatch):
    """Jobs of a sweep asking for the same clean model at once: one trains it, the others wait and reuse."""
    import threading
    import time

    import emotic_mm.recipes.clean_model as clean_model
    from support.compose import compose_cfg

    trained = []

    def slow_train(cfg, home):
        trained.append(home)
        time.sleep(1.0)
        shutil.copytree(tiny.checkpoint, home / "best")

    monkeypatch.setattr(clean_model, "_train_into", slow_train)
    cfg = compose_cfg("attack", [f"data.prepared_dir={tiny.store}", f"paths.data_dir={tmp_path / 'data'}"])
    found, errors = [], []

    def job():
        try:
            found.append(clean_model.clean_checkpoint(cfg)[0])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(trained) == 1 and len(set(found)) == 1 and len(found) == 3


# =========================================================================== numbers that are not numbers
def _pixel_summary(seed: int, persons: int, rate: float) -> dict:
    """An older pixel summary (one k, rates at it, no attack.csv), as an attack on ``persons`` wrote it."""
    return {
        "attack": "pixel",
        "model": "baseline",
        "algorithm": "rs",
        "pixels": 4,
        "surface": "body",
        "targeted": False,
        "target": None,
        "budget": 400,
        "population": 40,
        "split": "test",
        "seed": seed,
        "persons": persons,
        "persons_correct": 0,
        "success_rate_all": rate,
        "success_rate_correct": None,
        "mean_queries_success": None,
        "median_queries_success": None,
        "total_queries": 0,
        "wall_seconds": 1.0,
        "queries_per_s": 0.0,
    }


def test_nan_and_infinity_in_a_summary_leave_that_run_out_and_named(tmp_path, caplog):
    import logging

    from omegaconf import OmegaConf

    from emotic_mm.stages.report import report

    runs = tmp_path / "runs"
    for name, summary in (
        ("good0", _pixel_summary(0, 50, 0.2)),
        ("good1", _pixel_summary(1, 50, 0.3)),
        ("empty", _pixel_summary(2, 0, float("nan"))),
        ("inf", {**_pixel_summary(3, 50, 0.1), "queries_per_s": float("inf")}),
    ):
        (runs / name).mkdir(parents=True)
        (runs / name / "summary.json").write_text(json.dumps(summary))  # writes NaN / Infinity as Python does
    assert "NaN" in (runs / "empty" / "summary.json").read_text()
    with caplog.at_level(logging.WARNING):
        data = report(OmegaConf.create({"runs": str(runs), "out": None}))
    assert data["runs"] == 2 and data["left_out"]["not_finite"] == ["empty", "inf"]
    page = (runs / "report" / "report.md").read_text()
    assert "left out (a figure is NaN or Infinity): `empty`, `inf`" in page
    lines = [r.getMessage() for r in caplog.records if "not a finite number" in r.getMessage()]
    assert len(lines) == 2 and "success_rate_all=nan" in lines[0] and "queries_per_s=inf" in lines[1]
    json.loads((runs / "report" / "report.json").read_text())  # strict JSON readers still read it
