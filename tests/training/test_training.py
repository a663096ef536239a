"""Train/eval: losses against hand-computed values, metrics against sklearn, and a tiny end-to-end run.

The tiny store is a small synthetic release; models use a torchvision ResNet-18 at 32 px and the shipped
MiniLM (frozen, memoised), so a whole train → checkpoint → eval → resume cycle takes seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from emotic_mm.errors import ConfigError
from emotic_mm.training.losses import DynamicWeightedLoss, SymmetricInfoNCE, VADLoss
from emotic_mm.training.metrics import (
    dominant_accuracy,
    equal_error_thresholds,
    per_category_ap,
    retrieval_recall,
    top1_hit_rate,
    voc_ap,
)
from support import TINY_TRAIN, compose_cfg, run_cli
from support.ddp import assert_two_ranks_match_one


# --------------------------------------------------------------------------- losses
def test_dynamic_weighted_loss_matches_hand_computation():
    logits = torch.tensor([[0.5, 0.0, 2.0], [1.0, -1.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    # positives per category in the batch: 2, 0, 1 → weights 1/ln(3.2), 1e-4, 1/ln(2.2)
    w = [1 / math.log(3.2), 1e-4, 1 / math.log(2.2)]
    sq = [[0.25, 0.0, 1.0], [0.0, 1.0, 0.0]]
    expected = sum(sq[i][c] * w[c] for i in range(2) for c in range(3)) / 2
    assert DynamicWeightedLoss()(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_vad_and_infonce_losses():
    pred, true = torch.tensor([[5.0, 5.0, 5.0]]), torch.tensor([[5.5, 8.0, 5.0]])
    # smooth-L1 (beta 1): 0.5*0.5^2 = 0.125, |3|-0.5 = 2.5, 0 → mean 2.625/3
    assert VADLoss()(pred, true).item() == pytest.approx(2.625 / 3)
    img = torch.eye(2)
    scale = torch.tensor(2.0)
    # each row: cross-entropy of logits [2, 0] at the diagonal, both directions identical
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert SymmetricInfoNCE()(img, img, scale).item() == pytest.approx(expected, rel=1e-5)


def test_infonce_text_anchor_stops_the_text_gradient_only():
    image = torch.randn(4, 8, requires_grad=True)
    text = torch.randn(4, 8, requires_grad=True)
    for anchor, image_moves, text_moves in (
        (None, True, True),
        ("text", True, False),
        ("image", False, True),
    ):
        image.grad, text.grad = None, None
        loss = SymmetricInfoNCE(anchor)(image, text, torch.tensor(3.0))
        assert loss.item() == pytest.approx(SymmetricInfoNCE()(image, text, torch.tensor(3.0)).item())
        loss.backward()
        assert (image.grad is not None and image.grad.abs().sum() > 0) == image_moves
        assert (text.grad is not None and text.grad.abs().sum() > 0) == text_moves
    with pytest.raises(ConfigError, match="loss.contrastive_anchor='both'"):
        SymmetricInfoNCE("both")


def test_a_module_with_an_lr_scale_gets_its_own_learning_rate():
    """A fine-tuned pretrained encoder (``lr_scale``) trains at lr × scale, the rest at lr; the cosine
    schedule anneals both groups; without any scaled module there is one group."""
    from omegaconf import OmegaConf

    from emotic_mm.training.schedules import cosine
    from emotic_mm.training.trainer import build_optimizer

    encoder, head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)
    encoder.lr_scale = 0.05
    frozen = torch.nn.Linear(4, 4).requires_grad_(False)
    model = torch.nn.Sequential(encoder, frozen, head)
    cfg = OmegaConf.create({"optimizer": {"_target_": "torch.optim.AdamW", "lr": 1e-3, "weight_decay": 0.0}})
    optimizer = build_optimizer(model, cfg)
    rates = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert [rates[id(p)] for p in encoder.parameters()] == [pytest.approx(5e-5)] * 2
    assert [rates[id(p)] for p in head.parameters()] == [1e-3] * 2
    assert not any(id(p) in rates for p in frozen.parameters())
    schedule = cosine(optimizer, steps_per_epoch=2, epochs=1)
    optimizer.step(), schedule.step()
    assert [g["lr"] for g in optimizer.param_groups] == [pytest.approx(5e-4), pytest.approx(2.5e-5)]
    encoder.lr_scale = 1.0
    assert len(build_optimizer(model, cfg).param_groups) == 1
    # nested: an inner module's own scale wins over its parent's, and no parameter is in two groups
    outer = torch.nn.Sequential(torch.nn.Linear(4, 4), encoder)
    outer.lr_scale, encoder.lr_scale = 0.1, 0.01
    optimizer = build_optimizer(torch.nn.Sequential(outer, head), cfg)
    assert sorted(g["lr"] for g in optimizer.param_groups) == [pytest.approx(1e-5), pytest.approx(1e-4), 1e-3]
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 6


# --------------------------------------------------------------------------- metrics
def test_map_equals_sklearn_macro():
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 26)) < 0.2).astype(np.int64)
    labels[0] = 1  # every category has a positive
    scores = rng.normal(size=(200, 26)) + labels * 0.8
    ours = np.nanmean(per_category_ap(torch.tensor(scores), torch.tensor(labels)))
    theirs = average_precision_score(labels, scores, average="macro")
    assert abs(ours - theirs) < 1e-6


def test_voc_ap_hand_example():
    # ranked: pos, neg, pos → precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 → interpolated 1*0.5 + 2/3*0.5
    assert voc_ap(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1])) == pytest.approx(0.5 + 1 / 3)


def test_dominant_accuracy_counts_ties_and_hit_rate():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.1, 0.9]])
    votes = torch.tensor([[3.0, 1.0, 0.0], [2.0, 2.0, 0.0], [3.0, 0.0, 1.0]])
    assert dominant_accuracy(scores, votes) == pytest.approx(2 / 3)  # the tie in row 2 counts
    assert top1_hit_rate(scores, (votes > 0).float()) == pytest.approx(1.0)


def test_thresholds_and_retrieval():
    scores = np.array([[0.9], [0.8], [0.3], [0.2]])
    labels = np.array([[1], [0], [1], [0]])
    t = equal_error_thresholds(scores, labels)
    assert t[0] in (0.8, 0.3)  # where precision and recall are closest
    emb = torch.nn.functional.normalize(torch.randn(20, 8), dim=-1)
    r = retrieval_recall(emb, emb)
    assert r["i2t_r@1"] == 1.0 and r["t2i_r@1"] == 1.0


# --------------------------------------------------------------------------- tiny end-to-end
TINY = [*TINY_TRAIN, "trainer.epochs=2"]


def _cfg(name: str, store: Path, overrides: list[str]):
    """The ``name`` stage's config on ``store``."""
    return compose_cfg(name, [f"data.prepared_dir={store}", *overrides])


@pytest.mark.parametrize("variant", ["baseline", "joint"])
@pytest.mark.slow  # real trainings + resume
def test_train_checkpoint_eval_resume(train_store, tmp_path, variant):
    from emotic_mm.stages.evaluate import evaluate
    from emotic_mm.training.run import train

    run = tmp_path / "run"
    cfg = _cfg("train", train_store, [f"model={variant}", *TINY])
    summary = train(cfg, run_dir=run)
    assert (run / "best" / "model.safetensors").is_file() and (run / "last" / "training_state.json").is_file()
    assert summary["epochs_run"] == 2 and 0.0 <= summary["best_val"]["map"] <= 1.0
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 3
    from emotic_mm.checkpoint import trained_view_sizes
    from emotic_mm.data.store import view_sizes

    assert trained_view_sizes(run / "best") == view_sizes(train_store) == {"context": 224, "body": 128}

    ecfg = _cfg("eval", train_store, [f"checkpoint={run / 'best'}", "split=test", "workers=0"])
    metrics = evaluate(ecfg, run_dir=tmp_path / "eval")
    for f in ("metrics.json", "per_category.csv", "predictions.npz", "pr_curves.png"):
        assert (tmp_path / "eval" / f).is_file()
    assert set(metrics) >= {"map", "map_voc", "dominant_acc", "top1_hit", "f1", "vad_mae"}
    if variant == "joint":
        assert "retrieval" in metrics and "zero_shot_map" in metrics

    # resume from `last` for one more epoch: continues at epoch 3
    cfg3 = _cfg("train", train_store, [f"model={variant}", *TINY, "trainer.epochs=3", "trainer.resume=true"])
    resumed = train(cfg3, run_dir=run)
    assert resumed["epochs_run"] == 1
    assert json.loads((run / "last" / "meta.json").read_text())["epoch"] == 2


@pytest.mark.slow  # real trainings
def test_resume_is_exact(train_store, tmp_path):
    """2 epochs + resume for the 3rd gives the same weights as 3 epochs straight."""
    from safetensors.torch import load_file

    from emotic_mm.training.run import train

    base = ["model=baseline", "model.modalities=[body,text]", *TINY]
    train(
        _cfg("train", train_store, [*base, "trainer.epochs=2", "trainer/scheduler=none"]),
        run_dir=tmp_path / "x",
    )
    # same schedule length matters for cosine: use a constant schedule on both sides
    train(
        _cfg("train", train_store, [*base, "trainer.epochs=3", "trainer/scheduler=none"]),
        run_dir=tmp_path / "s2",
    )
    train(
        _cfg(
            "train", train_store, [*base, "trainer.epochs=3", "trainer/scheduler=none", "trainer.resume=true"]
        ),
        run_dir=tmp_path / "x",
    )
    a = load_file(str(tmp_path / "s2" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "x" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.slow  # real trainings (2)
def test_same_seed_same_metrics(train_store, tmp_path):
    from emotic_mm.training.run import train

    over = ["model=baseline", "model.modalities=[context]", *TINY, "trainer.epochs=1"]
    a = train(_cfg("train", train_store, over), run_dir=tmp_path / "a")["best_val"]
    b = train(_cfg("train", train_store, over), run_dir=tmp_path / "b")["best_val"]
    assert a == b


@pytest.mark.parametrize("modalities", [["context"], ["text"], ["context", "body"]])
def test_modality_subsets_build_only_their_encoders(train_store, modalities):
    from emotic_mm.data.loader import EmoticDataset, collate_batch
    from emotic_mm.data.store import Store
    from emotic_mm.models.factory import build_model

    cfg = _cfg("train", train_store, ["model=baseline", f"model.modalities=[{','.join(modalities)}]", *TINY])
    model = build_model(cfg.model)
    assert sorted(model.image_encoders.keys()) == sorted(m for m in modalities if m != "text")
    assert (model.text_encoder is not None) == ("text" in modalities)
    ds = EmoticDataset(Store(train_store)["val"], modalities)
    batch = collate_batch(ds.__getitems__([0, 1, 2]))
    assert ("context" in batch) == ("context" in modalities) and ("input_ids" in batch) == (
        "text" in modalities
    )
    model.eval()
    out = model(batch)
    assert out["logits"].shape == (3, 26) and out["vad"].shape == (3, 3)


def test_wrong_checkpoint_for_model_is_a_clear_error(train_store, tiny_text_only):
    from emotic_mm.checkpoint import load_weights
    from emotic_mm.models.factory import build_model

    other = build_model(_cfg("train", train_store, ["model=joint", *TINY]).model)
    with pytest.raises(ConfigError, match="does not fit model joint"):
        load_weights(other, tiny_text_only)


@pytest.mark.slow  # CLI eval
def test_eval_cli_missing_checkpoint_one_line(train_store, tmp_path):
    proc = run_cli(
        [
            "eval",
            f"checkpoint={tmp_path / 'nope'}",
            f"data.prepared_dir={train_store}",
            f"hydra.run.dir={tmp_path / 'e'}",
        ],
        timeout=300,
    )
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "not a checkpoint folder" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.slow  # torchrun x2
def test_ddp_gloo_two_processes_match_one(train_store, tmp_path):
    """torchrun ×2 on CPU (gloo) reaches the same val metrics as one process with the same global batch."""
    over = [
        f"data.prepared_dir={train_store}",
        "model=baseline",
        "model.modalities=[text]",
        "model.dropout=0",
        "loss.discrete=bce",
        "trainer.epochs=2",
        *TINY_TRAIN,
        "trainer/scheduler=none",
        "trainer.early_stopping_patience=0",
    ]
    assert_two_ranks_match_one(over, tmp_path)
