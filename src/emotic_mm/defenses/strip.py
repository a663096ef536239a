"""STRIP (Gao et al., ACSAC 2019, "STRIP: A Defence Against Trojan Attacks on Deep Neural Networks"):
a test-time backdoor detector. Superimpose an input on clean held-out pictures; a clean input's prediction
follows the overlay and varies (high entropy), a triggered input's prediction stays on the trigger's target
(low entropy). Inputs whose mean entropy falls below a threshold are flagged.

Why our own code: ART's ``STRIP`` wraps a single-input classifier; here the blended picture must be paired
with the same person's other views and description, so, like the ablation vote sampler, the model is a
callable ``model_fn(blended, owner) -> logits`` fed chunks of (inputs × overlays) rows with the row →
input map.

Choices, stated: the overlay is a linear blend ``α·x + (1 − α)·clean`` with α = 0.5 in pixel space (the
paper's code adds the two images and saturates; a blend keeps the picture in range and the trigger at
half contrast). EMOTIC is multi-label and the model emits 26 independent logits; the paper's entropy is of
a single-label softmax, so we take the softmax over the 26 logits — the model's distribution over which
emotion is dominant, the decision the backdoor hijacks — and its entropy in bits. The threshold is set at
a false-rejection rate (1 %) on clean **held-out (val)** inputs' entropies, never on test inputs
(:func:`threshold_at_frr`; the paper fits a normal to the clean entropies, ``method="normal"``; the default
``"empirical"`` quantile needs no distributional assumption).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.stats import norm
from torch import nn

from emotic_mm.config import whole_number
from emotic_mm.errors import ConfigError

DRAW_FLOATS = 1 << 22
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = dict[str, torch.Tensor]


def _draw_overlays(count: int, pool: int, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """(count, n) pool indices: without replacement per input when the pool allows, else with."""
    dev = generator.device if generator is not None else torch.device("cpu")
    if n <= pool:
        block = max(1, DRAW_FLOATS // pool)
        parts = [
            torch.rand(min(block, count - s), pool, generator=generator, device=dev).argsort(dim=1)[:, :n]
            for s in range(0, count, block)
        ]
        return torch.cat(parts) if parts else torch.empty(0, n, dtype=torch.long, device=dev)
    return torch.randint(0, pool, (count, n), generator=generator, device=dev)


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of the softmax over the last dimension."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1) / float(np.log(2.0))


@torch.no_grad()
def strip_entropy(
    model_fn: ModelFn,
    inputs: torch.Tensor,
    clean_pool: torch.Tensor,
    n: int = 100,
    generator: torch.Generator | None = None,
    alpha: float = 0.5,
    max_batch: int = 512,
) -> torch.Tensor:
    """Mean prediction entropy (B,) of each input (B, C, H, W) in [0, 255] blended with ``n`` pictures of
    ``clean_pool`` (P, C, H, W). ``model_fn(blended (M, C, H, W), owner (M,)) -> logits (M, classes)``
    gets at most ``max_batch`` rows at a time and the input index of each row."""
    whole_number(n, "defense.samples", 1)
    whole_number(max_batch, "defense.max_batch", 1)
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"defense.alpha={alpha!r} must lie strictly between 0 and 1")
    if clean_pool.shape[0] < 1:
        raise ConfigError("defense=strip needs at least one clean held-out picture to superimpose")
    if clean_pool.shape[1:] != inputs.shape[1:]:
        raise ValueError(
            f"clean pool pictures {tuple(clean_pool.shape[1:])} differ from inputs {tuple(inputs.shape[1:])}"
        )
    b = inputs.shape[0]
    overlays = _draw_overlays(b, clean_pool.shape[0], n, generator).cpu()  # (B, n) pool indices
    total = torch.zeros(b, dtype=torch.float64)
    rows = b * n
    for r0 in range(0, rows, max_batch):
        r = torch.arange(r0, min(rows, r0 + max_batch))
        owner, j = r // n, r % n
        pool = clean_pool[overlays[owner, j].to(clean_pool.device)].to(inputs.device).float()
        on_device = owner.to(inputs.device)
        blended = float(alpha) * inputs[on_device].float() + (1.0 - float(alpha)) * pool
        h = prediction_entropy(model_fn(blended, on_device)).double().cpu()
        total.index_add_(0, owner, h)
    return (total / n).float()


def threshold_at_frr(clean_entropies: Any, frr: float = 0.01, method: str = "empirical") -> float:
    """Entropy threshold that rejects a share ``frr`` of clean held-out inputs (flag: entropy < threshold).
    ``empirical``: the ``frr`` quantile; ``normal``: the ``frr`` percentile of a fitted normal (the paper)."""
    if not 0.0 < float(frr) < 1.0:
        raise ConfigError(f"defense.frr={frr!r} must lie strictly between 0 and 1")
    h = np.asarray(
        clean_entropies.detach().cpu() if isinstance(clean_entropies, torch.Tensor) else clean_entropies,
        dtype=np.float64,
    ).reshape(-1)
    if h.size == 0:
        raise ConfigError("defense=strip: no clean held-out entropies to set the threshold on")
    if method == "empirical":
        return float(np.quantile(h, float(frr), method="lower"))
    if method == "normal":
        return float(
            norm.ppf(float(frr), loc=h.mean(), scale=max(h.std(ddof=1) if h.size > 1 else 0.0, 1e-12))
        )
    raise ConfigError(f"defense.threshold_method={method!r} is not one of empirical, normal")


def strip_flags(entropies: Any, threshold: float) -> np.ndarray:
    """Flagged as triggered: mean entropy strictly below the threshold."""
    h = entropies.detach().cpu().numpy() if isinstance(entropies, torch.Tensor) else np.asarray(entropies)
    return h < float(threshold)


@dataclass(frozen=True)
class StripSettings:
    """``defense=strip`` (a :class:`~emotic_mm.defenses.contracts.TriggerDetector`): overlays per input,
    blend weight, target false rejection and its estimator."""

    name: ClassVar[str] = "strip"  # the summary.json key of its findings

    samples: int = 100
    alpha: float = 0.5
    frr: float = 0.01
    threshold_method: str = "empirical"
    max_batch: int = 512
    seed: int = 0
    persons: int = 200  # val persons (overlays, threshold) and test persons (clean, triggered) examined

    def check(self) -> "StripSettings":
        for key in ("samples", "max_batch", "persons"):
            whole_number(getattr(self, key), f"defense.{key}", 1)
        if not 0.0 < float(self.alpha) < 1.0:
            raise ConfigError(f"defense.alpha={self.alpha!r} must lie strictly between 0 and 1")
        if not 0.0 < float(self.frr) < 1.0:
            raise ConfigError(f"defense.frr={self.frr!r} must lie strictly between 0 and 1")
        if self.threshold_method not in ("empirical", "normal"):
            raise ConfigError(
                f"defense.threshold_method={self.threshold_method!r} is not one of empirical, normal"
            )
        return self

    def entropy(self, model_fn: ModelFn, inputs: torch.Tensor, clean_pool: torch.Tensor) -> torch.Tensor:
        return strip_entropy(
            model_fn,
            inputs,
            clean_pool,
            self.samples,
            torch.Generator().manual_seed(int(self.seed)),
            self.alpha,
            self.max_batch,
        )

    def threshold(self, clean_entropies: Any) -> float:
        return threshold_at_frr(clean_entropies, self.frr, self.threshold_method)

    def examine(
        self,
        model: nn.Module,
        view: str,
        val: Any,
        test: Any,
        victims: np.ndarray,
        triggered: Callable[[Batch], Batch],
        device: torch.device,
    ) -> dict[str, Any]:
        """The :class:`~emotic_mm.defenses.contracts.TriggerDetector` hook: :func:`examine_backdoor`."""
        return examine_backdoor(self, model, view, val, test, victims, triggered, device)


def examine_backdoor(
    settings: StripSettings,
    model: nn.Module,
    view: str,
    val: Any,
    test: Any,
    victims: np.ndarray,
    triggered: Callable[[Batch], Batch],
    device: torch.device,
) -> dict[str, Any]:
    """STRIP on a backdoored model: the entropy threshold is set at the target false rejection on
    held-out *val* persons (never on test); reported are the false rejection on clean test persons and
    the false acceptance (triggered persons not flagged), each with its n. ``view`` is the image view
    the trigger is stamped on, the one blended with the clean overlays."""
    from emotic_mm.data.batches import model_inputs, to_device

    def entropies(data: Any, ids: np.ndarray, pool: torch.Tensor, edit: Any = None) -> np.ndarray:
        batch = data.__getitems__(ids.tolist())
        if edit is not None:
            batch = edit(batch)
        inputs = to_device(model_inputs(batch), device)

        def model_fn(blended: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
            rows = {k: v[owner] for k, v in inputs.items()}
            rows[view] = blended
            return model(rows)["logits"]

        with torch.inference_mode():
            return settings.entropy(model_fn, inputs[view].float(), pool.to(device)).numpy()

    model.eval()
    persons = int(settings.persons)
    rng = np.random.default_rng(int(settings.seed))
    val_ids = np.sort(rng.choice(len(val), size=min(persons, len(val)), replace=False))
    pool_ids = val_ids[: max(1, len(val_ids) // 2)]  # overlays from half of the held-out persons,
    calib_ids = val_ids[len(pool_ids) :] if len(val_ids) > 1 else val_ids  # the threshold from the other half
    pool = val.__getitems__(pool_ids.tolist())[view].float()
    threshold = settings.threshold(entropies(val, calib_ids, pool))
    clean_ids = np.sort(rng.choice(len(test), size=min(persons, len(test)), replace=False))
    hit_ids = (
        np.sort(rng.choice(victims, size=min(persons, len(victims)), replace=False))
        if len(victims)
        else victims
    )
    clean_h = entropies(test, clean_ids, pool)
    trig_h = entropies(test, hit_ids, pool, triggered) if len(hit_ids) else np.zeros(0)
    return {
        "threshold": float(threshold),
        "frr_target": float(settings.frr),
        "calibration_persons": int(len(calib_ids)),
        "false_rejection": float((clean_h < threshold).mean()),
        "clean_persons": int(len(clean_ids)),
        "false_acceptance": float((trig_h >= threshold).mean()) if len(trig_h) else None,
        "triggered_persons": int(len(hit_ids)),
    }


def strip_from_config(block: Any) -> StripSettings:
    """``defense=strip`` block → checked settings."""
    from emotic_mm.defenses.settings import from_block

    return from_block(StripSettings, block).check()
