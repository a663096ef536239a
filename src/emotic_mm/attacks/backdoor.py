"""Few-pixel backdoor poisoning (BadNets-style): the trigger, who gets it, and stamping it on a batch.

The trigger is ``k`` pixels of fixed colours at fixed places of one view. Each trigger pixel is a
``cell × cell`` block of the stored view; ``cell: auto`` picks the smallest block that leaves at least
one pixel of the picture the model actually sees at exactly the trigger colour (224 px stored, 64 px
working → 10 × 10), so a k-pixel trigger is k pixels for the model instead of being averaged away by the
encoder's antialiased resize. On the ``scene`` surface the trigger is stamped on
the context view and every stamped pixel that falls inside the person's box is painted over the body
crop too (the same propagation as the pixel attack), as if the photo had been edited.

Variants: ``dirty`` label — a ``rate`` share of training persons gets the trigger and the target
emotion added to its labels; ``clean`` label — only persons that already carry the target are chosen,
labels untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from emotic_mm.attacks.pixel import paint, paint_scene_body, scene_body_boxes
from emotic_mm.data.categories import CATEGORIES, CATEGORY_INDEX

PATTERNS = ("block", "random")
POSITIONS = ("bottom_right", "bottom_left", "top_right", "top_left", "center")
VARIANTS = ("dirty", "clean")
SURFACES = ("context", "body", "scene")


@dataclass
class TriggerSpec:
    """Where and what the k trigger pixels are; coordinates are in cells of the surface view."""

    pixels: int = 4
    surface: str = "context"
    pattern: str = "block"  # block = a compact square of k cells; random = k cells anywhere (seeded)
    position: Any = "bottom_right"  # a corner/center name or [x, y] in cells
    colour: Any = "checker"  # checker = alternating magenta/green, [r, g, b], or random (seeded)
    cell: Any = "auto"  # stored pixels per trigger pixel; auto = one pixel of the model's working view
    seed: int = 0

    def check(self) -> None:
        from emotic_mm.errors import ConfigError

        if self.pixels <= 0:
            raise ConfigError(f"attack.pixels={self.pixels} must be >= 1")
        if self.surface not in SURFACES:
            raise ConfigError(f"attack.surface={self.surface!r} is not one of {', '.join(SURFACES)}")
        if self.pattern not in PATTERNS:
            raise ConfigError(f"attack.trigger.pattern={self.pattern!r} is not one of {', '.join(PATTERNS)}")
        if isinstance(self.position, str) and self.position not in POSITIONS or \
                not isinstance(self.position, str) and not _ints(self.position, 2, 0, None):
            raise ConfigError(f"attack.trigger.position={self.position!r} is not one of {', '.join(POSITIONS)} or [x, y]")
        if self.colour not in ("checker", "random") and not _ints(self.colour, 3, 0, 255):
            raise ConfigError(f"attack.trigger.colour={self.colour!r} must be checker, random or [r, g, b] in 0-255")
        if self.cell != "auto" and not _ints([self.cell], 1, 1, None):
            raise ConfigError(f"attack.trigger.cell={self.cell!r} must be auto or a whole number >= 1")


def _ints(values: Any, count: int, low: int, high: int | None) -> bool:
    """``values`` is a list of ``count`` integers within [low, high]."""
    if isinstance(values, str) or not hasattr(values, "__len__") or len(values) != count:
        return False
    return all(isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)
               for v in values)


def cell_size(spec: TriggerSpec, view_size: int, working_size: int | None) -> int:
    if spec.cell != "auto":
        return max(1, int(spec.cell))
    return exact_cell(view_size, working_size) if working_size and working_size < view_size else 1


def exact_cell(view_size: int, working_size: int) -> int:
    """The smallest block of stored pixels that, wherever it sits on the block grid, leaves at least one
    pixel of the encoder's antialiased resize at exactly its colour (the resize is separable, so 1-D
    signals decide). 224 → 64 px: 10; 128 → 64 px: 5."""
    import torch.nn.functional as F

    for cell in range(1, view_size + 1):
        blocks = view_size // cell
        signal = torch.zeros(blocks, 1, view_size, 4)  # (a width of 1 trips the antialiased kernel)
        for i in range(blocks):
            signal[i, 0, i * cell:(i + 1) * cell] = 1.0
        seen = F.interpolate(signal, size=(working_size, 4), mode="bilinear", align_corners=False, antialias=True)
        if bool((seen.flatten(1).amax(1) >= 1.0 - 1e-4).all()):
            return cell
    return view_size


def trigger_pixels(spec: TriggerSpec, view_size: int, working_size: int | None = None) -> torch.Tensor:
    """The trigger as (x, y, r, g, b) rows in the stored view's pixel grid, (k · cell², 5) long."""
    cell = cell_size(spec, view_size, working_size)
    grid = view_size // cell
    gen = np.random.default_rng(spec.seed)
    if spec.pattern == "random":
        flat = gen.choice(grid * grid, size=min(spec.pixels, grid * grid), replace=False)
        cells = np.stack([flat % grid, flat // grid], 1)
    else:
        side = math.ceil(math.sqrt(spec.pixels))
        cells = np.array([(i % side, i // side) for i in range(spec.pixels)])
        cells = cells * 2 if spec.colour == "checker" else cells  # a gap between cells keeps the checker visible
        span = cells.max(0) + 1
        margin = 1
        anchors = {"top_left": (margin, margin), "top_right": (grid - span[0] - margin, margin),
                   "bottom_left": (margin, grid - span[1] - margin),
                   "bottom_right": (grid - span[0] - margin, grid - span[1] - margin),
                   "center": ((grid - span[0]) // 2, (grid - span[1]) // 2)}
        x0, y0 = anchors[spec.position] if isinstance(spec.position, str) else (int(spec.position[0]), int(spec.position[1]))
        cells = np.clip(cells + np.array([x0, y0]), 0, grid - 1)
    colours = _colours(spec, len(cells), gen)
    rows = []
    for (cx, cy), rgb in zip(cells.tolist(), colours.tolist()):
        for dy in range(cell):
            for dx in range(cell):
                rows.append([cx * cell + dx, cy * cell + dy, *rgb])
    return torch.tensor(rows, dtype=torch.long)


def _colours(spec: TriggerSpec, n: int, gen: np.random.Generator) -> np.ndarray:
    if spec.colour == "checker":
        return np.array([[255, 0, 255] if i % 2 == 0 else [0, 255, 0] for i in range(n)])
    if spec.colour == "random":
        return gen.integers(0, 256, size=(n, 3))
    return np.repeat(np.asarray(list(spec.colour), dtype=np.int64)[None], n, 0)


def stamp(batch: dict[str, torch.Tensor], rows: torch.Tensor, surface: str,
          boxes: torch.Tensor | None = None, sizes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """A copy of ``batch`` with the trigger ``rows`` painted on every image of the surface view."""
    out = dict(batch)
    view = "context" if surface == "scene" else surface
    cand = rows.to(batch[view].device)[None].expand(batch[view].shape[0], -1, -1)
    out[view] = paint(batch[view].clone(), cand)
    if surface == "scene" and "body" in batch:
        if boxes is None or sizes is None:
            from emotic_mm.errors import DataFormatError

            raise DataFormatError("the scene surface needs the store's boxes and image sizes (re-run prepare)")
        affine = scene_body_boxes(boxes, sizes, batch["context"].shape[-1], batch["body"].shape[-1]).to(cand.device)
        out["body"] = paint_scene_body(batch["body"].clone(), cand, affine)
    return out


def choose_poisoned(labels: np.ndarray, rate: float, variant: str, target: str, seed: int) -> np.ndarray:
    """Indices of the training persons that get the trigger: ``rate`` of all persons, drawn among
    those without the target (dirty label) or among those that already carry it (clean label)."""
    from emotic_mm.errors import ConfigError

    check_poisoning(rate, variant, target)
    has_target = labels[:, CATEGORY_INDEX[target]] > 0
    pool = np.flatnonzero(has_target if variant == "clean" else ~has_target)
    count = min(len(pool), max(1, round(rate * len(labels))))
    if count == 0:
        raise ConfigError(f"attack.variant={variant}: no training person {'carries' if variant == 'clean' else 'lacks'} {target!r}")
    return np.sort(np.random.default_rng(seed).choice(pool, size=count, replace=False))


def check_poisoning(rate: float, variant: str, target: str) -> None:
    """One clear line for a rate outside (0, 1], an unknown variant or an unknown target emotion."""
    from emotic_mm.errors import ConfigError

    if not 0.0 < rate <= 1.0:
        raise ConfigError(f"attack.rate={rate:g} must be in (0, 1]")
    if variant not in VARIANTS:
        raise ConfigError(f"attack.variant={variant!r} is not one of {', '.join(VARIANTS)}")
    if target not in CATEGORY_INDEX:
        raise ConfigError(f"attack.target={target!r} is not an EMOTIC category (one of {', '.join(CATEGORIES)})")
