"""Poisoning: exact trigger stamping, poisoned views that leave the store untouched, a tiny backdoor
run that learns its trigger, feature-collision crafting, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from emotic_mm.attacks.backdoor import TriggerSpec, backdoor_view, choose_poisoned, stamp, trigger_pixels
from emotic_mm.attacks.collision import CollisionSettings, craft, image_features
from emotic_mm.data.categories import CATEGORY_INDEX
from emotic_mm.data.loader import EmoticDataset
from emotic_mm.data.store import Store
from emotic_mm.errors import ConfigError
from emotic_mm.models.factory import build_model
from support import LEARNING_BACKBONE, TINY_MODEL, TINY_TRAIN, compose_cfg, digest, run_cli_all


# --------------------------------------------------------------------------- trigger and stamping
def test_trigger_cells_are_one_model_pixel_each():
    """Each trigger cell leaves at least one pixel of the encoder's resized picture at its exact colour."""
    import torch.nn.functional as F

    for stored, working in ((224, 64), (128, 64), (96, 32)):
        rows = trigger_pixels(
            TriggerSpec(pixels=9, pattern="random", colour=[255, 255, 255], seed=3), stored, working
        )
        image = torch.zeros(1, 3, stored, stored)
        image[0, :, rows[:, 1], rows[:, 0]] = 255.0
        seen = F.interpolate(
            image, size=(working, working), mode="bilinear", align_corners=False, antialias=True
        )
        assert int((seen[0, 0] >= 255 - 1e-3).sum()) >= 9  # every cell keeps >= 1 exact model pixel

    spec = TriggerSpec(pixels=4, pattern="block", position="top_left", colour=[10, 20, 30], cell="auto")
    rows = trigger_pixels(spec, view_size=224, working_size=64)  # 10 x 10 stored pixels per cell
    assert rows.shape == (4 * 100, 5)
    cells = {(int(x) // 10, int(y) // 10) for x, y in rows[:, :2].tolist()}
    assert cells == {(1, 1), (2, 1), (1, 2), (2, 2)}  # a 2x2 block one cell in from the corner
    assert (rows[:, 2:] == torch.tensor([10, 20, 30])).all()
    checker = trigger_pixels(TriggerSpec(pixels=3, cell=1), 32)
    assert checker.shape == (3, 5) and len({tuple(r) for r in checker[:, :2].tolist()}) == 3
    assert {tuple(c) for c in checker[:, 2:].tolist()} == {(255, 0, 255), (0, 255, 0)}


def test_stamp_changes_exactly_the_trigger_pixels_and_scene_reaches_the_body():
    rows = trigger_pixels(TriggerSpec(pixels=2, position="center", colour=[250, 5, 5], cell=1), 16)
    batch = {
        "context": torch.full((3, 3, 16, 16), 100, dtype=torch.uint8),
        "body": torch.full((3, 3, 8, 8), 100, dtype=torch.uint8),
    }
    out = stamp(batch, rows, "context")
    changed = (out["context"] != batch["context"]).any(1)
    assert changed.sum().item() == 3 * len(rows)
    for x, y, r, g, b in rows.tolist():
        assert out["context"][:, :, y, x].tolist() == [[r, g, b]] * 3
    assert torch.equal(out["body"], batch["body"]) and batch["context"].eq(100).all()  # input untouched
    # scene: the box covers the whole 16x16 image, so each context pixel lands on the body crop too
    boxes, sizes = torch.tensor([[0, 0, 16, 16]] * 3), torch.tensor([[16, 16]] * 3)
    scene = stamp(batch, rows, "scene", boxes, sizes)
    assert torch.equal(scene["context"], out["context"])
    assert (scene["body"] != 100).any() and scene["body"][:, 0].eq(250).sum() >= 3 * len(rows) // 4


def test_choose_poisoned_rate_and_variants():
    labels = np.zeros((200, 26), dtype=np.float32)
    fear = CATEGORY_INDEX["Fear"]
    labels[:30, fear] = 1
    dirty = choose_poisoned(labels, 0.1, "dirty", "Fear", seed=0)
    assert len(dirty) == 20 and (labels[dirty, fear] == 0).all() and len(set(dirty)) == 20
    clean = choose_poisoned(labels, 0.1, "clean", "Fear", seed=0)
    assert len(clean) == 20 and (labels[clean, fear] == 1).all()
    assert len(choose_poisoned(labels, 0.5, "clean", "Fear", seed=0)) == 30  # capped by the carriers
    assert np.array_equal(dirty, choose_poisoned(labels, 0.1, "dirty", "Fear", seed=0))
    for rate in (0.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="attack.rate"):
            choose_poisoned(labels, rate, "dirty", "Fear", 0)
    with pytest.raises(ConfigError, match="not an EMOTIC category"):
        choose_poisoned(labels, 0.1, "dirty", "Joy", 0)


@pytest.mark.parametrize("variant", ["dirty", "clean"])
@pytest.mark.slow  # big fixture: poison_store (100 pictures), otherwise used by slow tests only
def test_poisoned_view_edits_only_its_rows(poison_store, variant):
    before = digest(poison_store)
    base = EmoticDataset(Store(poison_store)["train"])
    labels = np.asarray(base.split.categories[:])
    target = CATEGORY_INDEX["Engagement"] if variant == "clean" else CATEGORY_INDEX["Fear"]
    chosen = choose_poisoned(labels, 0.25, variant, "Engagement" if variant == "clean" else "Fear", seed=1)
    rows = trigger_pixels(TriggerSpec(pixels=4, colour=[1, 2, 3], cell=2), 224)
    view = backdoor_view(base, chosen, rows, "context", target, dirty=variant == "dirty")
    ids = list(range(len(base)))
    clean, poisoned = base.__getitems__(ids), view.__getitems__(ids)
    hit = np.isin(np.arange(len(base)), chosen)
    diff = (clean["context"] != poisoned["context"]).flatten(1).any(1).numpy()
    assert np.array_equal(diff, hit)  # exactly the chosen persons carry the trigger
    x, y = rows[0, 0].item(), rows[0, 1].item()
    assert poisoned["context"][hit][:, :, y, x].tolist() == [[1, 2, 3]] * int(hit.sum())
    lab_diff = (clean["categories"] != poisoned["categories"]).any(1).numpy()
    if variant == "dirty":
        assert np.array_equal(lab_diff, hit) and (poisoned["categories"][hit][:, target] == 1).all()
    else:
        assert not lab_diff.any()
    assert torch.equal(clean["body"], poisoned["body"])
    assert digest(poison_store) == before  # the store on disk is never modified


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow  # real training (backdoor must be learnt)
def test_tiny_backdoor_run_learns_its_trigger(poison_store, tmp_path, monkeypatch):
    """Image-only tiny model, a loud 16-pixel trigger (one working pixel each) on a third of the training
    persons: the poisoned model obeys the trigger on held-out persons, the clean model does not."""
    from emotic_mm.recipes.backdoor import run as backdoor

    before = digest(poison_store)
    cfg = compose_cfg(
        "attack",
        [
            f"data.prepared_dir={poison_store}",
            f"paths.data_dir={tmp_path / 'data'}",
            "attack=poison_backdoor",
            "model.modalities=[context]",
            "trainer.epochs=10",
            "loss.discrete=bce",
            *TINY_TRAIN,
            *LEARNING_BACKBONE,
            "attack.rate=0.35",
            "attack.pixels=16",
            "attack.target=Fear",
            "attack.trigger.cell=auto",
            "attack.trigger.colour=[255,0,255]",
            "attack.trigger.position=center",
            "attack.examples=2",
        ],
    )
    run = tmp_path / "run"  # outside Hydra the stage writes into the working directory
    run.mkdir()
    monkeypatch.chdir(run)
    summary = backdoor(cfg)
    assert summary["asr"] >= 0.8, summary
    assert summary["asr_clean_model"] <= 0.2
    assert summary["poisoned_persons"] >= 1 and summary["triggered_persons"] >= 1
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["asr"] == summary["asr"] and set(on_disk["clean"]) == {"map", "dominant_acc", "vad_mae"}
    assert (run / "examples.png").is_file() and (
        run / "poisoned_model" / "best" / "model.safetensors"
    ).is_file()
    per_person = pd.read_csv(run / "triggered.csv")  # what the report pairs two variants on
    assert (
        len(per_person) == summary["triggered_persons"]
        and per_person["hit_poisoned"].mean() == summary["asr"]
    )
    assert per_person["hit_clean"].mean() == summary["asr_clean_model"]
    assert not (run / "poisoned_model" / "last").exists()
    assert digest(poison_store) == before
    # the clean model was trained once into the cache; asking again reuses it without training
    cached = list((tmp_path / "data" / "models").iterdir())
    assert len(cached) == 1 and (cached[0] / "best" / "model.safetensors").is_file()
    assert summary["checkpoint_clean"] == str(cached[0] / "best")
    from emotic_mm.recipes.clean_model import clean_checkpoint

    stamp_before = (cached[0] / "best" / "model.safetensors").stat().st_mtime_ns
    assert clean_checkpoint(cfg)[0] == cached[0] / "best"
    assert (cached[0] / "best" / "model.safetensors").stat().st_mtime_ns == stamp_before
    assert not list((tmp_path / "data" / "models").glob(".*partial*"))


@pytest.mark.slow  # cost (~11 s): crafting optimisation
def test_feature_collision_loss_decreases_within_budget():
    cfg = compose_cfg("train", ["model.modalities=[context,body]", *TINY_MODEL])
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    learns = [p.requires_grad for p in model.parameters()]
    gen = torch.Generator().manual_seed(0)
    bases = {
        "context": torch.randint(0, 256, (6, 3, 48, 48), generator=gen, dtype=torch.uint8),
        "body": torch.randint(0, 256, (6, 3, 32, 32), generator=gen, dtype=torch.uint8),
    }
    targets = {k: torch.randint(0, 256, v.shape, generator=gen, dtype=torch.uint8) for k, v in bases.items()}
    target_features = image_features(model, targets)
    before = (image_features(model, bases) - target_features).pow(2).sum(1) / target_features.pow(2).sum(1)
    settings = CollisionSettings(beta=0.05, epsilon=12, steps=25, lr=2.0, max_batch=4)  # 2 chunks
    result = craft(model, bases, target_features, settings)
    assert result.feature_loss[-1] < 0.7 * result.feature_loss[0]
    assert (result.final_distance < before).all()
    for k in bases:
        assert result.poisons[k].dtype == torch.uint8 and result.poisons[k].shape == bases[k].shape
        assert (result.poisons[k].int() - bases[k].int()).abs().max() <= 12
    assert result.max_change.max() <= 12 + 1e-4
    assert [p.requires_grad for p in model.parameters()] == learns  # the model is given back as it was


@pytest.mark.slow  # whole poisoning stage (craft, train, evaluate)
def test_collision_stage_runs_end_to_end(poison_store, tmp_path, monkeypatch):
    from emotic_mm.recipes.collision import run as collision

    cfg = compose_cfg(
        "attack",
        [
            f"data.prepared_dir={poison_store}",
            f"paths.data_dir={tmp_path / 'data'}",
            "attack=poison_collision",
            "trainer.epochs=1",
            *TINY_TRAIN,
            *LEARNING_BACKBONE,
            "attack.n_poisons=6",
            "attack.targets=2",
            "attack.base=Engagement",
            "attack.steps=5",
            "attack.finetune_epochs=1",
            "attack.examples=2",
        ],
    )
    monkeypatch.chdir(tmp_path)
    summary = collision(cfg)
    assert summary["attack"] == "poison_collision" and summary["targets"] == 2 and summary["n_poisons"] == 6
    assert 0.0 <= summary["target_success_rate"] <= 1.0 and summary["max_pixel_change"] <= 16
    saved = np.load(tmp_path / "poisons.npz")
    assert saved["poison_context"].shape[0] == 6 and len(saved["base_index"]) == 6
    assert (tmp_path / "examples.png").is_file() and (tmp_path / "summary.json").is_file()
    # head fine-tuning: the image backbones are exactly the clean ones, the heads moved
    from safetensors.torch import load_file

    clean = load_file(str(Path(summary["checkpoint_clean"]) / "model.safetensors"))
    tuned = load_file(str(Path(summary["poisoned_checkpoint"]) / "model.safetensors"))
    backbone = [k for k in clean if ".backbone." in k and "num_batches" not in k]
    assert backbone and all(torch.equal(clean[k], tuned[k]) for k in backbone)
    assert not torch.equal(clean["category_head.weight"], tuned["category_head.weight"])


# --------------------------------------------------------------------------- one-line errors
BAD_INPUTS = [
    (["attack=poison_backdoor", "attack.rate=1.5"], "attack.rate=1.5 must be in (0, 1]"),
    (["attack=poison_backdoor", "attack.rate=0"], "attack.rate=0"),
    (["attack=poison_backdoor", "attack.target=Joy"], "attack.target='Joy' is not an EMOTIC category"),
    (["attack=poison_backdoor", "attack.pixels=0"], "attack.pixels=0"),
    (["attack=poison_collision", "attack.epsilon=0"], "attack.epsilon=0"),
    (["attack=poison_collision", "attack.finetune=some"], "attack.finetune='some'"),
    (["attack=poison_backdoor", "attack.trigger.colour=magenta"], "attack.trigger.colour='magenta'"),
    (["attack=poison_backdoor", "attack.trigger.position=[1]"], "attack.trigger.position=[1]"),
    (["attack=poison_collision", "attack.steps=2.5"], "attack.steps=2.5 must be a whole number"),
    (["attack=poison_collision", "attack.targets=9", "attack.n_poisons=3"], "need targets <= n_poisons"),
]


@pytest.fixture(scope="module")
def bad_runs(poison_store: Path, tmp_path_factory: pytest.TempPathFactory) -> list:
    """Every bad-input run at once (separate processes, so their start-ups overlap)."""
    root = tmp_path_factory.mktemp("bad_poison")
    return run_cli_all(
        [
            [
                "attack",
                *args,
                f"data.prepared_dir={poison_store}",
                f"checkpoint={root / 'missing'}",
                f"hydra.run.dir={root / f'run{i}'}",
            ]
            for i, (args, _) in enumerate(BAD_INPUTS)
        ]
    )


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)), ids=[message for _, message in BAD_INPUTS])
@pytest.mark.slow  # CLI: module fixture starts 7 emotic-mm attack processes
def test_bad_poison_inputs_are_one_line(bad_runs, case):
    proc, message = bad_runs[case], BAD_INPUTS[case][1]
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr


@pytest.mark.slow  # big fixture: poison_store (100 pictures), otherwise used by slow tests only
def test_store_fingerprint_ignores_build_time_not_content(poison_store, tmp_path):
    from emotic_mm.data.store import store_fingerprint

    manifest = json.loads((poison_store / "manifest.json").read_text())
    rebuilt = dict(
        manifest,
        created="2030-01-01T00:00:00+0000",
        seconds=123.0,
        sources={k: dict(v, mtime=1.0) for k, v in manifest["sources"].items()},
    )
    changed = json.loads(json.dumps(manifest))
    changed["splits"]["train"]["kept"] += 1
    paths = {}
    for name, content in (("same", manifest), ("rebuilt", rebuilt), ("changed", changed)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(content))
    assert store_fingerprint(paths["same"]) == store_fingerprint(paths["rebuilt"])
    assert store_fingerprint(paths["same"]) != store_fingerprint(paths["changed"])


@pytest.mark.slow  # whole poisoning stage with training
def test_spectral_filter_reports_detection_and_asr_after_defense(poison_store, tmp_path, monkeypatch):
    """defense=spectral with a backdoor: detect in the poisoned model's representation, drop the flagged
    rows, retrain; the summary carries TPR/FPR with their n's and the ASR after the defense."""
    from emotic_mm.recipes.backdoor import run as backdoor

    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(
        "attack",
        [
            f"data.prepared_dir={poison_store}",
            f"paths.data_dir={tmp_path / 'data'}",
            "attack=poison_backdoor",
            "defense=spectral",
            "attack.rate=0.1",
            "attack.pixels=16",
            "model.modalities=[context]",
            "trainer.epochs=2",
            "loss.discrete=bce",
            *TINY_TRAIN,
        ],
    )
    summary = backdoor(cfg, run_dir=tmp_path / "run")
    detection = summary["detection"]
    assert summary["defense"] == "spectral" and detection["poisoned"] == summary["poisoned_persons"]
    assert (
        0 <= detection["tpr"] <= 1
        and 0 <= detection["fpr"] <= 1
        and detection["rows"] == summary["train_persons"]
    )
    after = summary["after_defense"]
    assert set(after) >= {"map", "dominant_acc", "asr", "checkpoint"} and Path(after["checkpoint"]).is_dir()


@pytest.mark.slow  # whole poisoning stage with training
def test_strip_reports_false_acceptance_at_a_val_threshold(poison_store, tmp_path, monkeypatch):
    from emotic_mm.recipes.backdoor import run as backdoor

    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(
        "attack",
        [
            f"data.prepared_dir={poison_store}",
            f"paths.data_dir={tmp_path / 'data'}",
            "attack=poison_backdoor",
            "defense=strip",
            "defense.samples=8",
            "defense.persons=12",
            "attack.rate=0.1",
            "attack.pixels=16",
            "model.modalities=[context]",
            "trainer.epochs=2",
            "loss.discrete=bce",
            *TINY_TRAIN,
        ],
    )
    strip = backdoor(cfg, run_dir=tmp_path / "run")["strip"]
    assert (
        strip["clean_persons"] == 12
        and 0 < strip["triggered_persons"] <= 12
        and strip["calibration_persons"] >= 1
    )
    assert 0 <= strip["false_rejection"] <= 1 and 0 <= strip["false_acceptance"] <= 1


def test_a_cached_clean_models_metrics_are_computed_once(tiny, tmp_path, monkeypatch):
    import shutil

    import emotic_mm.training.inference as inference
    from emotic_mm.data.access import dataset, open_store
    from emotic_mm.models.loading import load_model
    from emotic_mm.recipes.clean_model import clean_split_metrics

    cfg = compose_cfg("attack", [f"data.prepared_dir={tiny.store}", f"paths.data_dir={tmp_path}"])
    home = tmp_path / "models" / "baseline-x" / "best"
    shutil.copytree(tiny.checkpoint, home)
    model = load_model(home)[0].eval()
    test = dataset(open_store(cfg), "test", model.modalities)
    first = clean_split_metrics(cfg, home, model, test, torch.device("cpu"))
    assert (home / "clean_metrics_test.json").is_file()
    monkeypatch.setattr(inference, "clean_metrics", lambda *a: pytest.fail("scored the split again"))
    assert clean_split_metrics(cfg, home, model, test, torch.device("cpu")) == first
    elsewhere = tmp_path / "given"  # a checkpoint the user named: nothing is written into it
    shutil.copytree(tiny.checkpoint, elsewhere)
    monkeypatch.undo()
    clean_split_metrics(cfg, elsewhere, model, test, torch.device("cpu"))
    assert not (elsewhere / "clean_metrics_test.json").exists()
