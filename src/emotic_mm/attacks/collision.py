"""Clean-label feature-collision poisons (Poison Frogs, Shafahi et al. 2018), all crafted as one batch.

Each poison starts from a *base* training person (whose labels carry the base class) and is nudged so
that the model's image representation of it collides with a *target* test person's, while its pixels
stay close to the base: minimise ``‖f(x) − f(t)‖² / ‖f(t)‖² + β · mean((x − b)/255)²`` over the base's
context and body views, projected after every step onto ``|x − b| ≤ ε`` (pixel units) and [0, 255].
Trained on with their clean labels, the poisons drag the target across the decision boundary.

``f`` is :meth:`image_representation` of the model — the image streams' embeddings (baseline) or the
image vector of the shared space (joint) — so it depends on the pictures for both variants.

Why batched and our own: ART's ``FeatureCollisionAttack`` crafts one poison at a time through a
single-input classifier wrapper; here every poison of a run (all targets together) is one tensor, so
each optimisation step is one forward/backward pass of the multi-input model. Adam takes the feature
step, which keeps the step size meaningful in both variants' feature scales.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from emotic_mm.config import real_number, whole_number
from emotic_mm.data.categories import CATEGORIES, CATEGORY_INDEX
from emotic_mm.data.poisoned import replace_rows
from emotic_mm.errors import ConfigError

IMAGE_VIEWS = ("context", "body")
FINETUNE = ("head", "all", "retrain")


@dataclass
class CollisionSettings:
    beta: float = 0.1  # weight of the pixel-distance term
    epsilon: float = 16.0  # L∞ bound around the base, in pixel units (0-255)
    steps: int = 100
    lr: float = 2.0  # Adam step, pixel units
    max_batch: int = 64  # poisons per forward/backward pass

    @classmethod
    def from_config(cls, a: Any) -> "CollisionSettings":
        s = cls(
            beta=real_number(a.beta, "attack.beta", 0.0),
            epsilon=real_number(a.epsilon, "attack.epsilon"),
            steps=whole_number(a.steps, "attack.steps", 1),
            lr=real_number(a.lr, "attack.lr", 0.0, exclusive_minimum=True),
            max_batch=whole_number(a.max_batch, "attack.max_batch", 1),
        )
        s.check()
        return s

    def check(self) -> None:
        if self.epsilon <= 0 or self.epsilon > 255:
            raise ConfigError(f"attack.epsilon={self.epsilon} must be in (0, 255]")
        if self.steps < 1:
            raise ConfigError(f"attack.steps={self.steps} must be >= 1")
        if self.beta < 0:
            raise ConfigError(f"attack.beta={self.beta} must be >= 0")


@dataclass
class CollisionResult:
    poisons: dict[str, torch.Tensor]  # view → (P, 3, H, W) uint8
    feature_loss: torch.Tensor  # (steps,) mean normalised feature distance per step
    final_distance: torch.Tensor  # (P,) normalised feature distance of each poison to its target
    max_change: torch.Tensor  # (P,) largest |x - b| over all views (pixel units)


def image_features(model: nn.Module, views: dict[str, torch.Tensor], max_batch: int = 256) -> torch.Tensor:
    """``image_representation`` of the model for uint8/float views, without gradients, chunked."""
    n = next(iter(views.values())).shape[0]
    with torch.inference_mode():
        return torch.cat(
            [
                model.image_representation({k: v[i : i + max_batch].float() for k, v in views.items()})
                for i in range(0, n, max_batch)
            ]
        )


def craft(
    model: nn.Module,
    bases: dict[str, torch.Tensor],
    target_features: torch.Tensor,
    settings: CollisionSettings,
) -> CollisionResult:
    """Craft one poison per base (``bases``: view → (P, 3, H, W) uint8) towards ``target_features``
    (P, D) — the representation of each poison's target person."""
    settings.check()
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)  # gradients flow to the pixels only
    try:
        base = {k: v.float() for k, v in bases.items() if k in IMAGE_VIEWS}
        poisons, losses = {k: v.clone() for k, v in base.items()}, []
        n = target_features.shape[0]
        for start in range(0, n, settings.max_batch):
            chunk = slice(start, start + settings.max_batch)
            result = _craft_chunk(
                model, {k: v[chunk] for k, v in base.items()}, target_features[chunk], settings
            )
            for k in poisons:
                poisons[k][chunk] = result[0][k]
            losses.append(result[1] * (min(n, start + settings.max_batch) - start))
        final = feature_distance(image_features(model, poisons, settings.max_batch), target_features)
        change = torch.stack([(poisons[k] - base[k]).abs().flatten(1).amax(1) for k in poisons]).amax(0)
        return CollisionResult(
            {k: v.round().clamp(0, 255).to(torch.uint8) for k, v in poisons.items()},
            torch.stack(losses).sum(0) / n,
            final,
            change,
        )
    finally:
        for p in params:
            p.requires_grad_(True)
        model.train(was_training)


def feature_distance(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (features - target).pow(2).sum(1) / target.pow(2).sum(1).clamp_min(1e-12)


def _craft_chunk(
    model: nn.Module, base: dict[str, torch.Tensor], target: torch.Tensor, s: CollisionSettings
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    x = {k: v.clone().requires_grad_(True) for k, v in base.items()}
    optimizer = torch.optim.Adam(list(x.values()), lr=s.lr)
    history = []
    for _ in range(s.steps):
        optimizer.zero_grad(set_to_none=True)
        feature = feature_distance(model.image_representation(x), target)
        closeness = sum(((x[k] - base[k]) / 255.0).pow(2).flatten(1).mean(1) for k in x)
        (feature + s.beta * closeness).sum().backward()
        optimizer.step()
        with torch.no_grad():
            for k in x:  # projection: within ε of the base, valid pixels
                x[k].copy_(
                    torch.maximum(torch.minimum(x[k], base[k] + s.epsilon), base[k] - s.epsilon).clamp_(
                        0, 255
                    )
                )
        history.append(feature.detach().mean())
    return {k: v.detach() for k, v in x.items()}, torch.stack(history)


@dataclass
class CollisionPlan:
    """Who is poisoned and aimed at: the ``attack=poison_collision`` block's choices, validated."""

    base: str  # the class the targets should be pushed into
    n_poisons: int
    targets: int
    finetune: str  # head | all | retrain

    @classmethod
    def from_config(cls, a: Any) -> "CollisionPlan":
        plan = cls(
            base=str(a.base),
            n_poisons=whole_number(a.n_poisons, "attack.n_poisons", 1),
            targets=whole_number(a.targets, "attack.targets", 1),
            finetune=str(a.finetune),
        )
        if plan.finetune not in FINETUNE:
            raise ConfigError(f"attack.finetune={plan.finetune!r} is not one of {', '.join(FINETUNE)}")
        if plan.base not in CATEGORY_INDEX:
            raise ConfigError(
                f"attack.base={plan.base!r} is not an EMOTIC category (one of {', '.join(CATEGORIES)})"
            )
        if plan.targets > plan.n_poisons:
            raise ConfigError(
                f"attack.n_poisons={plan.n_poisons}, attack.targets={plan.targets}: "
                "need targets <= n_poisons (each target gets at least one poison)"
            )
        return plan

    def choose(
        self,
        test_labels: np.ndarray,
        test_top1: np.ndarray,
        train_labels: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(targets, bases, owner): targets among test persons without the base class that the clean
        model does not already call base (``test_top1``: its top-1 of every test person); bases among
        training persons labelled with it; poison ``i`` aims at target ``owner[i]``."""
        base_class = CATEGORY_INDEX[self.base]
        candidates = np.flatnonzero((test_labels[:, base_class] == 0) & (test_top1 != base_class))
        if len(candidates) < self.targets:
            raise ConfigError(f"attack.targets={self.targets}: only {len(candidates)} test persons qualify")
        targets = np.sort(rng.choice(candidates, size=self.targets, replace=False))
        pool = np.flatnonzero(train_labels[:, base_class] > 0)
        if len(pool) < self.n_poisons:
            raise ConfigError(
                f"attack.n_poisons={self.n_poisons}: only {len(pool)} training persons carry {self.base!r}"
            )
        bases = np.sort(rng.choice(pool, size=self.n_poisons, replace=False))
        return targets, bases, np.arange(self.n_poisons) % self.targets


class PoisonRows:
    """Replace the base rows of a batch by their crafted poisons (labels untouched)."""

    def __init__(self, bases: np.ndarray, poisons: dict[str, torch.Tensor]) -> None:
        self.position = {int(i): p for p, i in enumerate(bases)}
        self.poisons = poisons

    def __call__(self, batch: dict[str, torch.Tensor], hit: torch.Tensor) -> dict[str, torch.Tensor]:
        which = torch.tensor([self.position[int(i)] for i in batch["index"][hit]])
        return replace_rows(batch, hit, {v: p[which] for v, p in self.poisons.items()})
