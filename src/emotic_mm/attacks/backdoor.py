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
from omegaconf import OmegaConf

from emotic_mm.attacks.surface import check_surface, paint_surface, scene_affine
from emotic_mm.data.categories import CATEGORIES, CATEGORY_INDEX
from emotic_mm.data.loader import EmoticDataset
from emotic_mm.data.poisoned import PoisonedView, replace_rows
from emotic_mm.errors import ConfigError

PATTERNS = ("block", "random")
POSITIONS = ("bottom_right", "bottom_left", "top_right", "top_left", "center")
VARIANTS = ("dirty", "clean")


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

    @classmethod
    def from_config(cls, a: Any, seed: int) -> "TriggerSpec":
        """The trigger of an ``attack=poison_backdoor`` block, validated."""
        t = a.get("trigger", {})

        def plain(value: Any) -> Any:
            return OmegaConf.to_object(value) if OmegaConf.is_list(value) else value

        spec = cls(
            pixels=a.pixels,
            surface=str(a.surface),
            pattern=str(t.get("pattern", "block")),
            position=plain(t.get("position", "bottom_right")),
            colour=plain(t.get("colour", "checker")),
            cell=t.get("cell", "auto"),
            seed=seed,
        )
        spec.check()
        return spec

    def check(self) -> None:
        if not _ints([self.pixels], 1, 1, None):
            raise ConfigError(f"attack.pixels={self.pixels!r} must be a whole number >= 1")
        check_surface(self.surface)
        if self.pattern not in PATTERNS:
            raise ConfigError(f"attack.trigger.pattern={self.pattern!r} is not one of {', '.join(PATTERNS)}")
        if (
            isinstance(self.position, str)
            and self.position not in POSITIONS
            or not isinstance(self.position, str)
            and not _ints(self.position, 2, 0, None)
        ):
            raise ConfigError(
                f"attack.trigger.position={self.position!r} is not one of {', '.join(POSITIONS)} or [x, y]"
            )
        if self.colour not in ("checker", "random") and not _ints(self.colour, 3, 0, 255):
            raise ConfigError(
                f"attack.trigger.colour={self.colour!r} must be checker, random or [r, g, b] in 0-255"
            )
        if self.cell != "auto" and not _ints([self.cell], 1, 1, None):
            raise ConfigError(f"attack.trigger.cell={self.cell!r} must be auto or a whole number >= 1")


def _ints(values: Any, count: int, low: int, high: int | None) -> bool:
    """``values`` is a list of ``count`` integers within [low, high]."""
    if isinstance(values, str) or not hasattr(values, "__len__") or len(values) != count:
        return False
    return all(
        isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)
        for v in values
    )


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
            signal[i, 0, i * cell : (i + 1) * cell] = 1.0
        seen = F.interpolate(
            signal, size=(working_size, 4), mode="bilinear", align_corners=False, antialias=True
        )
        if bool((seen.flatten(1).amax(1) >= 1.0 - 1e-4).all()):
            return cell
    return view_size


def trigger_pixels(spec: TriggerSpec, view_size: int, working_size: int | None = None) -> torch.Tensor:
    """The trigger as (x, y, r, g, b) rows in the stored view's pixel grid, (k · cell², 5) long.

    A trigger that does not fit the view as asked (more cells than the grid has, or a position that
    would push cells off the view) is refused rather than squeezed, so the summary's pixel count holds.
    """
    cell = cell_size(spec, view_size, working_size)
    grid = view_size // cell
    if spec.pixels > grid * grid:
        raise ConfigError(
            f"attack.pixels={spec.pixels}: a {view_size}-px view holds only {grid * grid} trigger "
            f"cells of {cell} px (attack.trigger.cell={spec.cell})"
        )
    gen = np.random.default_rng(spec.seed)
    if spec.pattern == "random":
        flat = gen.choice(grid * grid, size=min(spec.pixels, grid * grid), replace=False)
        cells = np.stack([flat % grid, flat // grid], 1)
    else:
        side = math.ceil(math.sqrt(spec.pixels))
        cells = np.array([(i % side, i // side) for i in range(spec.pixels)])
        cells = (
            cells * 2 if spec.colour == "checker" else cells
        )  # a gap between cells keeps the checker visible
        span = cells.max(0) + 1
        margin = 1
        anchors = {
            "top_left": (margin, margin),
            "top_right": (grid - span[0] - margin, margin),
            "bottom_left": (margin, grid - span[1] - margin),
            "bottom_right": (grid - span[0] - margin, grid - span[1] - margin),
            "center": ((grid - span[0]) // 2, (grid - span[1]) // 2),
        }
        x0, y0 = (
            anchors[spec.position]
            if isinstance(spec.position, str)
            else (int(spec.position[0]), int(spec.position[1]))
        )
        if x0 < 0 or y0 < 0 or x0 + span[0] > grid or y0 + span[1] > grid:
            raise ConfigError(
                f"attack.trigger.position={spec.position!r}: a {span[0]}x{span[1]}-cell trigger does not "
                f"fit the {grid}x{grid}-cell grid of the {view_size}-px view (cells of {cell} px)"
            )
        cells = cells + np.array([x0, y0])
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


def stamp(
    batch: dict[str, torch.Tensor],
    rows: torch.Tensor,
    surface: str,
    boxes: torch.Tensor | None = None,
    sizes: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """A copy of ``batch`` with the trigger ``rows`` painted on every image of the surface (the body crop
    too for ``scene``, through each person's box)."""
    n = next(iter(batch.values())).shape[0]
    affine = scene_affine(batch, boxes, sizes) if surface == "scene" else None
    return paint_surface(batch, rows[None].expand(n, -1, -1), surface, affine)


def choose_poisoned(labels: np.ndarray, rate: float, variant: str, target: str, seed: int) -> np.ndarray:
    """Indices of the training persons that get the trigger: ``rate`` of all persons, drawn among
    those without the target (dirty label) or among those that already carry it (clean label)."""
    check_poisoning(rate, variant, target)
    has_target = labels[:, CATEGORY_INDEX[target]] > 0
    pool = np.flatnonzero(has_target if variant == "clean" else ~has_target)
    count = min(len(pool), max(1, round(rate * len(labels))))
    if count == 0:
        raise ConfigError(
            f"attack.variant={variant}: no training person "
            f"{'carries' if variant == 'clean' else 'lacks'} {target!r}"
        )
    return np.sort(np.random.default_rng(seed).choice(pool, size=count, replace=False))


def check_poisoning(rate: float, variant: str, target: str) -> None:
    """One clear line for a rate outside (0, 1], an unknown variant or an unknown target emotion."""
    if not 0.0 < rate <= 1.0:
        raise ConfigError(f"attack.rate={rate:g} must be in (0, 1]")
    if variant not in VARIANTS:
        raise ConfigError(f"attack.variant={variant!r} is not one of {', '.join(VARIANTS)}")
    if target not in CATEGORY_INDEX:
        raise ConfigError(
            f"attack.target={target!r} is not an EMOTIC category (one of {', '.join(CATEGORIES)})"
        )


def triggered_victims(labels: np.ndarray, target: str) -> np.ndarray:
    """The persons whose attack success counts: those that do not carry the target emotion."""
    return np.flatnonzero(labels[:, CATEGORY_INDEX[target]] == 0)


class TriggerEdit:
    """Stamp the trigger on the poisoned rows of a batch (and add the target label for dirty label).
    A class rather than a closure so DataLoader workers can pickle it under the spawn start method."""

    def __init__(self, split: Any, rows: torch.Tensor, surface: str, target: int, dirty: bool) -> None:
        self.split, self.rows, self.surface, self.target, self.dirty = split, rows, surface, target, dirty

    def __call__(self, batch: dict[str, torch.Tensor], hit: torch.Tensor) -> dict[str, torch.Tensor]:
        from emotic_mm.data.access import person_boxes

        sub = {k: batch[k][hit] for k in ("context", "body", "index") if k in batch}
        boxes = person_boxes(self.split, sub["index"].numpy()) if self.surface == "scene" else (None, None)
        stamped = stamp(sub, self.rows, self.surface, *boxes)
        updates = {k: stamped[k] for k in ("context", "body") if k in stamped}
        if self.dirty:
            labels = batch["categories"][hit].clone()
            labels[:, self.target] = 1.0
            updates["categories"] = labels
        return replace_rows(batch, hit, updates)


def backdoor_view(
    base: EmoticDataset, poisoned: np.ndarray, rows: torch.Tensor, surface: str, target: int, dirty: bool
) -> PoisonedView:
    """The train split as the poisoned model sees it: trigger on the chosen persons (+ target label)."""
    return PoisonedView(base, poisoned, TriggerEdit(base.split, rows, surface, target, dirty))
