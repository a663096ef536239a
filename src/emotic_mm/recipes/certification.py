"""``emotic-mm eval certify=true``: certified L0 robustness of a randomized-ablation model, per person.

The threat model is the pixels of the context view the model sees (its working resolution); the body
crop and the description stay fixed. The smoothed classifier is the majority vote of the base model
over ablated context views (:func:`~emotic_mm.defenses.ablation.sample_votes`); the body crop is
ablated once per person with a fixed draw (any fixed treatment of an input the attacker cannot touch
leaves the certificate valid) and its features, like the description's, are computed once.

Sample j keeps the same context positions for every person, and each chunk of persons restarts the
seeded streams, so a person's votes depend on its inputs, ``keep``, ``samples`` and ``seed`` only — never
on which persons it was certified with: a certificate is reproducible person by person.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from emotic_mm.config import whole_number
from emotic_mm.data.batches import model_inputs, to_device
from emotic_mm.data.categories import CATEGORIES
from emotic_mm.defenses.ablation import ablate, sample_votes
from emotic_mm.defenses.certify import (
    REPORT_RADII,
    Certificates,
    certified_accuracy,
    certify,
    median_certified_radius,
)
from emotic_mm.defenses.contracts import Certifier
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import atomic_file
from emotic_mm.measures import one_answer
from emotic_mm.progress import print_table, progress_bar

log = logging.getLogger(__name__)


def settings_for(trained_cfg: Any, overrides: Any) -> Certifier:
    """The checkpoint's certifier settings with this run's ``defense.*`` overrides (non-null keys)."""
    from emotic_mm.defenses.registry import defense_of

    kind, block = defense_of(trained_cfg)
    if not kind.acts("certify"):
        raise ConfigError(
            f"certify=true needs a checkpoint trained with a certifiable defense such as defense=ablation "
            f"(this one: defense={kind.name})"
        )
    merged = {
        **{k: v for k, v in block.items() if k != "name"},
        **{k: v for k, v in (overrides or {}).items() if v is not None and k != "name"},
    }
    if merged.get("keep") != block.get("keep"):
        raise ConfigError(
            f"defense.keep={merged.get('keep')}: the certificate is for the keep the model was trained "
            f"with ({block.get('keep')})"
        )
    certifier: Certifier = kind.make(merged)
    return certifier


def fixed_features(
    model: nn.Module, inputs: dict[str, torch.Tensor], keep: int, seed: int, ids: list[int]
) -> dict[str, torch.Tensor]:
    """Features of the inputs the attacker cannot change: the description, and the body crop under one
    fixed ablation seeded by (seed, person), so it never depends on the persons certified alongside."""
    out: dict[str, torch.Tensor] = {}
    if "text" in model.modalities:
        out["features.text"] = model.encode(inputs, only=["text"])["text"]
    if "body" in model.modalities:
        encoder = model.image_encoders["body"]
        view = encoder.working_view(inputs["body"]).cpu()
        ablated = torch.cat(
            [
                ablate(
                    view[i : i + 1], keep, torch.Generator().manual_seed(10_007 + 1_000_003 * int(seed) + p)
                )
                for i, p in enumerate(ids)
            ]
        )
        out["features.body"] = encoder(ablated.to(inputs["body"].device))
    return out


def chosen_persons(total: int, persons: int | None, seed: int) -> np.ndarray:
    """``certify_persons``: a seeded random subset of ``persons`` of the split's ``total`` (sorted), or all
    of them. A person's certificate does not depend on which others are certified with it, so a subset's
    certificates are those the full split would give these persons."""
    if persons is None or whole_number(persons, "certify_persons", 1) >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(int(seed)).choice(total, size=int(persons), replace=False))


@torch.inference_mode()
def certify_persons(
    model: nn.Module,
    data: Any,
    settings: Certifier,
    device: torch.device,
    chunk: int = 64,
    indices: Sequence[int] | None = None,
) -> tuple[Certificates, np.ndarray]:
    """Certificates of the persons ``indices`` of ``data`` (default: all) and whether each prediction is in
    the label set. A progress bar counts ablated views (persons done, views/s, time left)."""
    if "context" not in getattr(model, "modalities", ()):
        raise ConfigError(
            "certify=true certifies the context view; the checkpoint's model has no context stream"
        )
    model.eval()
    chosen = list(range(len(data))) if indices is None else [int(i) for i in indices]
    per_person = settings.selection_samples + settings.samples
    selection, estimation, correct = [], [], []
    d = None
    with progress_bar(
        f"certify {len(chosen)} persons (n0 = {settings.selection_samples}, n = {settings.samples})",
        len(chosen) * per_person,
        "views",
        detail=lambda done: f"{int(done) // per_person}/{len(chosen)} persons' worth",
    ) as advance:
        for start in range(0, len(chosen), chunk):
            ids = chosen[start : start + chunk]
            sel, est, labels, d = _certify_chunk(model, data, ids, settings, device, advance)
            selection.append(sel)
            estimation.append(est)
            correct.append(labels)
    certificates = certify(
        torch.cat(selection).numpy(), torch.cat(estimation).numpy(), d, settings.keep, settings.alpha
    )
    labels = torch.cat(correct).numpy() > 0
    hit = labels[np.arange(len(labels)), certificates.prediction] & ~certificates.abstained
    return certificates, hit


def _certify_chunk(
    model: nn.Module,
    data: Any,
    ids: list[int],
    settings: Certifier,
    device: torch.device,
    advance: Callable[[int], None],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Selection and estimation votes of the persons ``ids``, their labels and the view's pixel count."""
    batch = data.__getitems__(ids)
    inputs = to_device(model_inputs(batch), device)
    view = model.image_encoders["context"].working_view(inputs["context"])
    fixed = fixed_features(model, inputs, settings.keep, settings.seed, ids)

    def classify(ablated: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        return model({"context": ablated, **{k: v[owner] for k, v in fixed.items()}})["logits"].argmax(1)

    sel_gen, est_gen = settings.generators()  # restarted per chunk: votes never depend on the chunk
    selection = sample_votes(
        classify,
        view,
        settings.keep,
        settings.selection_samples,
        settings.max_batch,
        sel_gen,
        advance=advance,
    )
    estimation = sample_votes(
        classify, view, settings.keep, settings.samples, settings.max_batch, est_gen, advance=advance
    )
    return selection, estimation, batch["categories"], view.shape[-1] * view.shape[-2]


@dataclass
class SplitCertificates:
    """A split's certificates: ``certificates.csv``'s table and the figures ``metrics.json`` keeps."""

    table: pd.DataFrame
    figures: dict[str, Any]
    accuracy: dict[Any, float]  # certified dominant accuracy at each radius of REPORT_RADII
    settings: Certifier
    pixels: int  # d: the pixels of the certified view


def certify_split(
    cfg: DictConfig, model: nn.Module, model_cfg: DictConfig, data: Any, device: torch.device, run_dir: Path
) -> SplitCertificates:
    """Certify the persons ``certify_persons`` draws from ``data`` and write ``certificates.csv`` (one row
    per person)."""
    settings = settings_for(model_cfg, OmegaConf.to_container(cfg.get("defense") or {}, resolve=True))
    persons = chosen_persons(len(data), cfg.get("certify_persons"), settings.seed)
    certificates, correct = certify_persons(model, data, settings, device, indices=persons)
    table = pd.DataFrame(certificates.rows())
    table.insert(0, "index", persons)
    table.insert(2, "correct", correct)
    table["prediction"] = [CATEGORIES[int(c)] for c in certificates.prediction]
    with atomic_file(run_dir / "certificates.csv") as tmp:
        table.to_csv(tmp, index=False)
    accuracy = certified_accuracy(certificates.radius, correct, REPORT_RADII)
    figures = {
        "persons": len(table),
        "persons_of_split": len(data),
        "subset": (
            None if len(persons) == len(data) else f"{len(persons)} drawn with defense.seed={settings.seed}"
        ),
        "keep": settings.keep,
        "pixels": certificates.d,
        "samples": settings.samples,
        "selection_samples": settings.selection_samples,
        "alpha": settings.alpha,
        "seed": settings.seed,
        "certified_accuracy": {str(r): float(a) for r, a in accuracy.items()},
        "median_certified_radius": float(median_certified_radius(certificates.radius, correct)),
        "abstained": float(certificates.abstained.mean()),
        "clean_vote_accuracy": float(correct.mean()),
        # a constant vote is certified to any radius, which is no robustness
        "one_answer": one_answer(table["prediction"]),
    }
    if figures["one_answer"]:
        log.warning(
            "the smoothed classifier answers %s: its certificates say nothing about robustness",
            figures["one_answer"],
        )
    return SplitCertificates(table, figures, accuracy, settings, certificates.d)


def print_certified(certified: SplitCertificates) -> None:
    """The certified accuracy at each reported radius."""
    s, table = certified.settings, certified.table
    print_table(
        f"certified few-pixel robustness (randomized ablation, keep {s.keep} of {certified.pixels}, "
        f"n = {s.samples}, alpha = {s.alpha})",
        ["radius r (pixels)", "certified dominant accuracy"],
        [[str(r), f"{a:.3f} of {len(table)}"] for r, a in certified.accuracy.items()],
    )
