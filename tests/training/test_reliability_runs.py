"""Issue 13, the run side: never train on nothing, one line for every bad training or attack value,
no duplicate metrics rows after a kill, no resume across stores or settings, and reports that refuse
summaries of the wrong shape. (The data side is in test_reliability_data.py.)"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from emotic_mm.errors import ConfigError, DataFormatError
from support import TINY_TRAIN, compose_cfg, run_cli
from support.releases import Img, make_release, person, vperson
from support.stores import convert


def _one_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def _rows(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


# -------------------------------------------------------------- bad trainer values: one line, nothing written
@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("trainer.batch_size=0", "trainer.batch_size=0 must be >= 1"),
        ("trainer.epochs=abc", "trainer.epochs='abc' must be a whole number"),
        ("trainer.epochs=0", "trainer.epochs=0 must be >= 1"),
        ("trainer.epochs=2.5", "trainer.epochs=2.5 must be a whole number"),
        ("trainer.optimizer.lr=-1", "trainer.optimizer.lr=-1 must be > 0"),
    ],
)
@pytest.mark.slow  # CLI train x5
def test_bad_trainer_values_are_one_line(tiny, tmp_path, override, needle):
    proc = run_cli(
        ["train", f"data.prepared_dir={tiny.store}", *TINY_TRAIN, override, f"hydra.run.dir={tmp_path / 'r'}"]
    )
    assert needle in _one_line(proc)
    assert not (tmp_path / "r" / "train_summary.json").exists() and not (tmp_path / "r" / "best").exists()


@pytest.mark.slow  # CLI train
def test_an_unknown_optimizer_target_is_one_line(tiny, tmp_path):
    proc = run_cli(
        [
            "train",
            f"data.prepared_dir={tiny.store}",
            *TINY_TRAIN,
            "trainer.optimizer._target_=torch.optim.Nope",
            f"hydra.run.dir={tmp_path / 'r'}",
        ]
    )
    assert "trainer.optimizer (_target_=torch.optim.Nope)" in _one_line(proc)


# --------------------------------------------------------------------------- never train on nothing
@pytest.fixture(scope="module")
def store_without_train_persons(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("no_train")
    raw = make_release(
        root / "raw",
        {
            "train": [Img("a.jpg", "mscoco/images", "missing", [person([2, 2, 30, 28], ["Peace"])])],
            "val": [
                Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])
            ],
            "test": [
                Img("c.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])
            ],
        },
    )
    convert(raw, root / "store")
    return root / "store"


def test_train_refuses_a_split_without_persons(store_without_train_persons, tmp_path):
    from emotic_mm.training.run import train

    cfg = compose_cfg(
        "train", [f"data.prepared_dir={store_without_train_persons}", *TINY_TRAIN, "trainer.epochs=1"]
    )
    with pytest.raises(ConfigError, match="the train split has no persons"):
        train(cfg, run_dir=tmp_path / "r")
    assert not (tmp_path / "r" / "best").exists()


@pytest.mark.slow  # CLI eval
def test_eval_refuses_a_split_without_persons(store_without_train_persons, tiny, tmp_path):
    proc = run_cli(
        [
            "eval",
            f"checkpoint={tiny.checkpoint}",
            f"data.prepared_dir={store_without_train_persons}",
            "split=train",
            f"hydra.run.dir={tmp_path / 'r'}",
        ]
    )
    line = _one_line(proc)
    assert "the train split has no persons to evaluate" in line, line


@pytest.mark.slow  # real training
def test_the_summary_lists_only_checkpoints_that_exist(train_store, tmp_path):
    from emotic_mm.training.run import train

    cfg = compose_cfg("train", [f"data.prepared_dir={train_store}", *TINY_TRAIN, "trainer.epochs=1"])
    summary = train(cfg, run_dir=tmp_path / "r")
    assert summary["checkpoints"] and all(Path(p).is_dir() for p in summary["checkpoints"].values())


# ----------------------------------------------------------- a kill between an epoch's row and its checkpoint
@pytest.mark.slow  # real training
def test_resume_after_a_kill_between_row_and_checkpoint_has_no_duplicate_row(train_store, tmp_path):
    from emotic_mm.training.run import train

    run = tmp_path / "run"
    base = [f"data.prepared_dir={train_store}", *TINY_TRAIN, "trainer/scheduler=none"]
    train(compose_cfg("train", [*base, "trainer.epochs=2"]), run_dir=run)
    assert _rows(run) == [0, 1]
    # as if killed after epoch 2's row was written but before last/ (epoch 1) was replaced
    with open(run / "metrics.csv", "a", newline="") as f:
        f.write("2" + ",0" * (len(open(run / "metrics.csv").readline().split(",")) - 1) + "\n")
    assert _rows(run) == [0, 1, 2]
    train(compose_cfg("train", [*base, "trainer.epochs=3", "trainer.resume=true"]), run_dir=run)
    assert _rows(run) == [0, 1, 2]


@pytest.mark.slow  # real training
def test_a_fresh_run_in_a_dir_with_old_rows_starts_its_own_metrics(train_store, tmp_path):
    from emotic_mm.training.run import train

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,train_loss\n0,1.0\n")  # a kill during the first checkpoint write
    train(
        compose_cfg("train", [f"data.prepared_dir={train_store}", *TINY_TRAIN, "trainer.epochs=1"]),
        run_dir=run,
    )
    assert _rows(run) == [0]


@pytest.mark.slow  # real trainings
def test_resume_refuses_other_settings_and_other_stores(train_store, tiny, tmp_path):
    from emotic_mm.training.run import train

    run = tmp_path / "run"
    base = [*TINY_TRAIN, "trainer/scheduler=none"]
    train(compose_cfg("train", [f"data.prepared_dir={train_store}", *base, "trainer.epochs=1"]), run_dir=run)
    other = compose_cfg(
        "train",
        [
            f"data.prepared_dir={train_store}",
            *base,
            "trainer.epochs=2",
            "trainer.resume=true",
            "model.embed_dim=64",
        ],
    )
    with pytest.raises(ConfigError, match=r"different model\.embed_dim \(128 then, 64 now\)"):
        train(other, run_dir=run)
    elsewhere = compose_cfg(
        "train", [f"data.prepared_dir={tiny.store}", *base, "trainer.epochs=2", "trainer.resume=true"]
    )
    with pytest.raises(ConfigError, match="trained on another store"):
        train(elsewhere, run_dir=run)
    assert _rows(run) == [0]  # refused before anything was written


# --------------------------------------------------------------------------- bad attack values
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["attack.pixels=2.5"], "attack.pixels=2.5 must be a whole number"),
        (["attack.pixels=abc"], "attack.pixels='abc' must be a whole number"),
        (["attack.target=NotAnEmotion"], "attack.target='NotAnEmotion' is not an EMOTIC category"),
        (["attack.crossover=2"], "attack.crossover=2 must be <= 1"),
    ],
)
@pytest.mark.slow  # CLI attack x4
def test_bad_attack_values_are_refused_before_any_work(tmp_path, args, needle):
    proc = run_cli(["attack", *args, f"checkpoint={tmp_path / 'missing'}", f"hydra.run.dir={tmp_path / 'r'}"])
    assert needle in _one_line(proc)


@pytest.mark.parametrize(
    ("pixels", "needle"),
    [
        ("1e9", "exceeds the 32x32 = 1024 pixels"),
        ("1025", "exceeds the 32x32 = 1024 pixels"),
    ],
)
@pytest.mark.slow  # CLI attack x2
def test_pixel_counts_beyond_the_surface_are_refused_before_allocating(tiny, tmp_path, pixels, needle):
    proc = run_cli(
        [
            "attack",
            f"checkpoint={tiny.checkpoint}",
            f"data.prepared_dir={tiny.store}",
            "attack.resolution=model",
            f"attack.pixels={pixels}",
            "attack.persons=2",
            f"hydra.run.dir={tmp_path / 'r'}",
        ]
    )
    assert needle in _one_line(proc)


def test_candidate_memory_is_bounded_from_the_settings(tiny):
    import torch

    from emotic_mm.attacks.pixel import PixelAttack, PixelAttackSettings
    from emotic_mm.models.loading import load_model

    model = load_model(tiny.checkpoint)[0]
    engine = PixelAttack(model, PixelAttackSettings(pixels=50_000, population=400, budget=400))
    with pytest.raises(ConfigError, match="GiB of candidates"):
        engine.run({"context": torch.zeros(128, 3, 224, 224, dtype=torch.uint8)})


def test_a_backdoor_trigger_that_does_not_fit_is_refused_not_squeezed():
    from emotic_mm.attacks.backdoor import TriggerSpec, trigger_pixels

    with pytest.raises(
        ConfigError, match=r"attack.trigger.position=\[1000, 1000\]: a 2x2-cell trigger does not fit"
    ):
        trigger_pixels(TriggerSpec(pixels=4, position=[1000, 1000], colour=[255, 0, 0]), 224, 64)
    with pytest.raises(ConfigError, match="holds only 484 trigger cells"):
        trigger_pixels(TriggerSpec(pixels=500, pattern="random"), 224, 64)
    assert (
        len(trigger_pixels(TriggerSpec(pixels=4, position=[20, 20], colour=[255, 0, 0]), 224, 64))
        == 4 * 10 * 10
    )


# ---------------------------------------------------------------- reports refuse summaries of the wrong shape
@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("model", 3, "model=3"),
        ("success_rate_all", "high", "success_rate_all='high'"),
        ("seed", "zero", "seed='zero'"),
        ("pixels", {"k": 1}, "pixels={'k': 1}"),
    ],
)
def test_a_summary_with_wrong_types_is_one_line(tmp_path, field, value, needle):
    from emotic_mm.report.collect import load_runs

    summary = {
        "attack": "pixel",
        "model": "baseline",
        "seed": 0,
        "success_rate_all": 0.5,
        "algorithm": "de",
        "pixels": 1,
        "surface": "context",
        "targeted": False,
    }
    summary[field] = value
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(
        DataFormatError, match="wrong type for " + needle.replace("{", r"\{").replace("}", r"\}")
    ):
        load_runs(tmp_path)


# -------------------------------------------------------------------------- defenses an attack cannot measure
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["attack=pixel", "defense=strip"], "attack=pixel with defense=strip"),
        (["attack=poison_backdoor", "defense=ablation"], "attack=poison_backdoor with defense=ablation"),
        (["attack=poison_collision", "defense=spectral"], "attack=poison_collision with defense=spectral"),
    ],
)
@pytest.mark.slow  # CLI attack x3
def test_a_defense_the_attack_cannot_measure_is_refused_before_training(tiny, tmp_path, args, needle):
    proc = run_cli(
        [
            "attack",
            *args,
            f"data.prepared_dir={tiny.store}",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.run.dir={tmp_path / 'r'}",
        ]
    )
    assert needle in _one_line(proc)
    assert not (tmp_path / "data" / "models").exists()  # nothing was trained


def test_only_what_shapes_the_weights_keys_the_clean_model():
    from emotic_mm.recipes.clean_model import cache_key

    def key(*overrides):
        return cache_key(compose_cfg("attack", ["attack=poison_backdoor", *overrides]))

    assert key() == key("defense=strip") == key("defense=spectral")  # detectors act after training
    assert key("defense=ablation") == key("defense=ablation", "defense.samples=10")  # certification settings
    assert key("defense=ablation") != key("defense=ablation", "defense.keep=60") != key()
