"""model=clip: tiny random CLIP and SigLIP folders (built from configs, saved with a real vocabulary)
through zero-shot eval, probe and partial training, checkpoints, attack, predict, collision and DDP.
Their quality means nothing; the tests check the plumbing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from emotic_mm.errors import ConfigError
from support import TINY_TRAIN, compose_cfg, run_cli
from support.ddp import assert_two_ranks_match_one

# TINY_TRAIN without the ResNet input sizes (the CLIP towers look at their processor's 32 px)
CLIP_TRAIN = [o for o in TINY_TRAIN if not o.startswith("model.")]


@pytest.fixture(scope="module")
def towers(clip_towers) -> dict[str, Path]:
    return clip_towers


@pytest.fixture(scope="module")
def store(tiny, tmp_path_factory) -> Path:
    """A private copy of the tiny store: re-tokenising writes its cache into the store folder."""
    copy = tmp_path_factory.mktemp("clip_store") / "store"
    shutil.copytree(tiny.store, copy)
    return copy


def _model(path: Path, finetune: str = "probe", modalities=("context", "body", "text")):
    from emotic_mm.models.clip import build

    return build(list(modalities), {"name": str(path), "finetune": finetune, "trainable_blocks": 1})


def _batch(n: int = 3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.zeros(n, 64, dtype=torch.long)
    ids[:, :5] = torch.tensor([101, 1037, 2158, 5870, 102])
    ids[1, 3] = 3899
    return {
        "context": torch.randint(0, 256, (n, 3, 224, 224), generator=gen, dtype=torch.uint8),
        "body": torch.randint(0, 256, (n, 3, 128, 128), generator=gen, dtype=torch.uint8),
        "input_ids": ids,
        "attention_mask": (ids != 0).long(),
    }


# --------------------------------------------------------------------------- the model
@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_outputs_follow_the_contract_and_start_zero_shot(towers, kind):
    model = _model(towers[kind]).eval()
    out = model(_batch())
    assert out["logits"].shape == (3, 26) and out["vad"].shape == (3, 3)
    assert out["image_embedding"].shape == out["text_embedding"].shape == out["fused_embedding"].shape
    # at initialisation the scores rank the categories exactly as the zero-shot similarities do
    assert torch.equal(out["logits"].argsort(1), (out["zero_shot"] * 2.0).argsort(1))
    assert model.image_encoders["context"].input_size == 32
    probe = {n for n, p in model.named_parameters() if p.requires_grad}
    assert probe and not any(n.startswith("clip.") for n in probe)


def test_clip_pools_the_configured_eos_token_not_the_largest_id(towers):
    model = _model(towers["clip"]).eval()
    assert model.clip.config.text_config.eos_token_id == 102
    batch = _batch()
    ids, mask = batch["input_ids"][:1].clone(), batch["attention_mask"][:1]
    ids[0, 2] = 30000  # a token id larger than [SEP]=102: argmax pooling would pick it
    with torch.no_grad():
        hidden = model.clip.text_model(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = model.clip.text_projection(hidden[0, 4])  # the position of [SEP]
        got = model._encode_text(ids, mask)[0]
    assert torch.allclose(got, expected, atol=1e-5)


def test_frozen_towers_memoise_and_gradients_reach_the_pixels(towers):
    model = _model(towers["clip"]).eval()
    batch = _batch()
    model(batch)
    seen = len(model.image_memo)
    model(batch)
    assert len(model.image_memo) == seen == 6  # two views of three persons, encoded once
    pixels = batch["context"].float().requires_grad_(True)
    model.image_representation({"context": pixels, "body": batch["body"].float()}).sum().backward()
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0


def test_partial_finetuning_trains_the_last_blocks_only(towers):
    model = _model(towers["siglip"], "partial")
    trainable = {n for n, p in model.clip.named_parameters() if p.requires_grad}
    assert any(".layers.1." in n for n in trainable) and not any(".layers.0." in n for n in trainable)


@pytest.mark.parametrize("modalities", [("context",), ("text",), ("body", "text")])
def test_modality_subsets(towers, modalities):
    out = _model(towers["clip"], modalities=modalities).eval()(_batch())
    assert out["logits"].shape == (3, 26)
    assert ("image_embedding" in out) == any(m in modalities for m in ("context", "body"))


def test_bad_settings_are_one_line(towers):
    with pytest.raises(ConfigError, match="model.clip.finetune='lora'"):
        _model(towers["clip"], "lora")
    with pytest.raises(ConfigError, match="model.clip.name='/nowhere'"):
        from emotic_mm.models.clip import build

        build(["context"], {"name": "/nowhere"})


def test_only_pixel_filters_go_inside_clip(towers):
    """The vision tower reads normalised 3-channel pictures: a pixel filter attaches, an input defense
    whose view has other channels (ablation) is one line."""
    from emotic_mm.defenses.ablation import RandomAblation
    from emotic_mm.defenses.smoothing import MedianFilter

    model = _model(towers["clip"])
    median = MedianFilter(3)
    model.attach_defense(median)
    assert model.input_defense is median
    with pytest.raises(
        ConfigError, match=r"^defense=ablation is not available for model=clip .*6 channels"
    ) as err:
        model.attach_defense(RandomAblation(45))
    assert "\n" not in str(err.value) and model.input_defense is median


# --------------------------------------------------------------------------- tokens
def test_descriptions_are_retokenised_once_and_cached(towers, store):
    from emotic_mm.data.access import store_for_model

    cfg = compose_cfg(
        "train", [f"data.prepared_dir={store}", "model=clip", f"model.clip.name={towers['clip']}"]
    )
    opened = store_for_model(cfg, cfg)
    cache = opened.token_dir
    assert cache is not None and cache.parent == store / "tokens" and (cache / "tokens.json").is_file()
    ids = np.load(cache / "train_token_ids_arr.npy")
    assert ids.shape[1] == 64 and opened["train"].token_ids.shape == ids.shape
    stamp = (cache / "train_token_ids_arr.npy").stat().st_mtime_ns
    store_for_model(cfg, cfg)
    assert (cache / "train_token_ids_arr.npy").stat().st_mtime_ns == stamp  # not tokenised again


def test_a_store_of_another_tokenizer_is_refused_for_baseline(tiny, towers, store):
    from emotic_mm.data.access import store_for_model

    cfg = compose_cfg(
        "train", [f"data.prepared_dir={store}", "model=baseline", f"model.text_encoder.name={towers['clip']}"]
    )
    with pytest.raises(
        ConfigError, match="tokenised with 'shipped:all-MiniLM-L6-v2' but model.text_encoder.name"
    ):
        store_for_model(cfg, cfg)


# --------------------------------------------------------------------------- the stages, end to end
@pytest.mark.slow  # CLI eval x2
def test_zero_shot_eval_needs_no_checkpoint(towers, store, tmp_path):
    proc = run_cli(
        [
            "eval",
            "model=clip",
            f"model.clip.name={towers['clip']}",
            "checkpoint=null",
            f"data.prepared_dir={store}",
            "split=test",
            f"hydra.run.dir={tmp_path / 'zs'}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "zs" / "metrics.json").read_text())
    assert metrics["zero_shot"] is True and metrics["checkpoint"] is None and 0 <= metrics["map"] <= 1
    proc = run_cli(
        [
            "eval",
            "model=baseline",
            "checkpoint=null",
            f"data.prepared_dir={store}",
            f"hydra.run.dir={tmp_path / 'no'}",
        ]
    )
    assert proc.returncode == 2 and "needs training before it can score" in proc.stderr


@pytest.fixture(scope="module")
def probe_checkpoint(towers, store, tmp_path_factory) -> Path:
    from emotic_mm.training.run import train

    run = tmp_path_factory.mktemp("clip_probe")
    train(
        compose_cfg(
            "train",
            [
                f"data.prepared_dir={store}",
                "model=clip",
                f"model.clip.name={towers['siglip']}",
                *CLIP_TRAIN,
                "trainer.epochs=1",
                "trainer.batch_size=8",
            ],
        ),
        run_dir=run,
    )
    return run / "best"


def test_probe_checkpoint_stores_only_what_learns(probe_checkpoint):
    from emotic_mm.models.loading import load_model

    keys = load_file(str(probe_checkpoint / "model.safetensors"))
    assert "category_offsets" in keys and not any(k.startswith("clip.") for k in keys)
    model, cfg, _ = load_model(probe_checkpoint)
    assert cfg.model.name == "clip" and model.finetune == "probe"


@pytest.mark.slow  # CLI round trip train/eval/attack/predict
def test_partial_finetune_eval_attack_and_predict(towers, store, tmp_path):
    run = tmp_path / "partial"
    proc = run_cli(
        [
            "train",
            f"data.prepared_dir={store}",
            "model=clip",
            f"model.clip.name={towers['clip']}",
            "model.clip.finetune=partial",
            "model.clip.trainable_blocks=1",
            *CLIP_TRAIN,
            "trainer.epochs=1",
            "trainer.batch_size=8",
            f"hydra.run.dir={run}",
        ],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(k.startswith("clip.") for k in load_file(str(run / "best" / "model.safetensors")))
    proc = run_cli(
        [
            "eval",
            f"checkpoint={run / 'best'}",
            f"data.prepared_dir={store}",
            f"hydra.run.dir={tmp_path / 'ev'}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_cli(
        [
            "attack",
            "attack=pixel",
            f"checkpoint={run / 'best'}",
            f"data.prepared_dir={store}",
            "attack.persons=4",
            "attack.budget=20",
            "attack.population=10",
            "attack.resolution=model",
            f"hydra.run.dir={tmp_path / 'atk'}",
        ],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "atk" / "summary.json").read_text())
    assert summary["model"] == "clip" and summary["persons"] == 4
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(np.full((60, 40, 3), 128, dtype=np.uint8)).save(photo)
    proc = run_cli(
        [
            "predict",
            f"checkpoint={run / 'best'}",
            f"input={photo}",
            "text=a man smiles at a friend",
            f"hydra.run.dir={tmp_path / 'pr'}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    prediction = json.loads((tmp_path / "pr" / "predictions.json").read_text())
    assert prediction["preprocessing"]["tokenizer"] == str(towers["clip"])


def test_feature_collision_runs_on_clip(probe_checkpoint, store):
    from emotic_mm.attacks.collision import CollisionSettings, craft, image_features
    from emotic_mm.models.loading import load_model

    model = load_model(probe_checkpoint)[0].eval()
    batch = _batch(2)
    views = {"context": batch["context"], "body": batch["body"]}
    target = image_features(model, {k: v.flip(0) for k, v in views.items()})
    result = craft(model, views, target, CollisionSettings(steps=3, epsilon=8))
    assert result.final_distance.shape == (2,) and float(result.max_change.max()) <= 8


# ---------------------------------------------------------------------- the whole-batch losses under torchrun
@pytest.mark.parametrize("variant", ["joint", "clip"])
@pytest.mark.slow  # torchrun x2
def test_ddp_two_processes_train_the_one_process_objective(variant, towers, train_store, tmp_path):
    """Default loss (dynamic weights + InfoNCE): torchrun ×2 (gloo) equals one process with the global
    batch. Frozen ResNets keep BatchNorm out of it (per-rank batch statistics differ by design)."""
    over = [
        f"data.prepared_dir={train_store}",
        f"model={variant}",
        "trainer.epochs=2",
        *(TINY_TRAIN if variant == "joint" else CLIP_TRAIN),
        "trainer/scheduler=none",
        "trainer.early_stopping_patience=0",
        "trainer.augment.flip=false",
        "trainer.augment.brightness=0",
        "trainer.augment.contrast=0",
        "loss.contrastive_weight=0.5",
    ]
    over += (
        ["model.dropout=0", "model.image_encoder.freeze=true"]
        if variant == "joint"
        else [f"model.clip.name={towers['clip']}", "model.clip.finetune=full"]
    )
    assert_two_ranks_match_one(over, tmp_path)
