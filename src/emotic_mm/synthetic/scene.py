"""Scenes: a photographic backdrop, clutter, the scene-cue objects among it, and the camera.

A backdrop is either a crop of a real photograph (a café table, a living room, a garage, a launch
site) or a composed set — a wall or sky over a ground — made of real surface photographs and 1/f
textures. Clutter objects (boxes, lamps, frames, bottles, chairs, balls, clocks) and the scene-cue
objects share one size range and one way of being textured, so a cue object is told from clutter by
its shape, not by a colour. The camera then adds lighting, blur, noise and (when saved) JPEG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from emotic_mm.synthetic import textures
from emotic_mm.synthetic.canvas import Layer, paint, region, shade

# Photographic backdrops and the setting a description names for them.
PHOTO_SETTINGS: dict[str, str] = {
    "coffee.png": "a café",
    "chelsea.png": "a living room",
    "motorcycle_left.png": "a garage",
    "rocket.jpg": "an open field by a rocket",
    "astronaut.png": "a hall with flags",
}
WALLS: dict[str, tuple[str, tuple[float, float, float]]] = {  # name → (surface, base colour)
    "brick wall": ("brick.png", (0.6, 0.33, 0.24)),
    "stone wall": ("gravel.png", (0.6, 0.58, 0.54)),
    "painted wall": ("noise", (0.78, 0.74, 0.66)),
    "hedge": ("grass.png", (0.22, 0.38, 0.16)),
    "cloudy sky": ("moon.png", (0.62, 0.7, 0.82)),
    "wooden wall": ("wood", (0.52, 0.36, 0.22)),
}
GROUNDS: dict[str, tuple[str, tuple[float, float, float]]] = {
    "grass": ("grass.png", (0.3, 0.48, 0.2)),
    "gravel path": ("gravel.png", (0.55, 0.52, 0.47)),
    "wooden floor": ("wood", (0.55, 0.38, 0.22)),
    "pavement": ("noise", (0.5, 0.5, 0.5)),
    "sand": ("noise", (0.8, 0.72, 0.55)),
}
CLUTTER = ("box", "lamp", "frame", "bottle", "chair", "ball", "clock", "vase", "books")


def backdrop(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, dict[str, str]]:
    """The empty scene and what a description can say about it (``{"place": ...}`` or wall + ground)."""
    if rng.random() < 0.45:
        name = list(PHOTO_SETTINGS)[int(rng.integers(len(PHOTO_SETTINGS)))]
        image = textures.colour_shift(rng, textures.crop(rng, name, w, h, 0.6, 1.0), 0.2)
        return np.ascontiguousarray(image), {"place": PHOTO_SETTINGS[name]}
    wall = list(WALLS)[int(rng.integers(len(WALLS)))]
    ground = list(GROUNDS)[int(rng.integers(len(GROUNDS)))]
    horizon = int(rng.uniform(0.45, 0.75) * h)
    kind, colour = WALLS[wall]
    top = textures.surface(
        rng, kind, w, horizon, np.array(colour, np.float32) * rng.uniform(0.8, 1.15, 3).astype(np.float32)
    )
    if wall == "cloudy sky":  # brighter towards the horizon
        top = top * np.linspace(0.85, 1.1, horizon, dtype=np.float32)[:, None, None]
    kind, colour = GROUNDS[ground]
    bottom = textures.surface(
        rng, kind, w, h - horizon, np.array(colour, np.float32) * rng.uniform(0.8, 1.15, 3).astype(np.float32)
    )
    bottom = bottom * np.linspace(0.85, 1.05, h - horizon, dtype=np.float32)[:, None, None]
    image = np.concatenate([top, bottom], axis=0)
    return np.ascontiguousarray(np.clip(image, 0, 1)), {"wall": wall, "ground": ground}


def _object_texture(rng: np.random.Generator, w: int, h: int, colour: np.ndarray | None = None) -> np.ndarray:
    """A material: a tinted real surface, a recoloured photo crop, or 1/f noise (never a flat colour)."""
    colour = np.array(rng.uniform(0.12, 0.9, 3), np.float32) if colour is None else colour
    pick = rng.random()
    if pick < 0.35:
        kind = textures.SURFACES[int(rng.integers(len(textures.SURFACES)))]
        return textures.surface(rng, kind, w, h, colour)
    if pick < 0.6:
        name = textures.COLOUR_PHOTOS[int(rng.integers(len(textures.COLOUR_PHOTOS)))]
        return textures.colour_shift(rng, textures.crop(rng, name, w, h, 0.1, 0.4), 0.35)
    return textures.surface(rng, "noise", w, h, colour)


def _shaded(tex: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light from one side: a ramp across the object."""
    h, w = tex.shape[:2]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (
        np.cos(angle) * np.linspace(-1, 1, w, dtype=np.float32)[None, :]
        + np.sin(angle) * np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    )
    return np.clip(tex * (1 + 0.22 * ramp[:, :, None]), 0, 1)


@dataclass
class Spot:
    """Where an object is drawn: its centre, height ``s``, the painting region, and the random stream."""

    image: np.ndarray
    cx: float
    cy: float
    s: float
    rng: np.random.Generator
    x0: int
    y0: int
    w: int
    h: int
    scale: int

    @property
    def top(self) -> float:
        return self.cy - self.s / 2

    @property
    def bottom(self) -> float:
        return self.cy + self.s / 2

    def layer(self) -> Layer:
        return Layer(self.x0, self.y0, self.w, self.h, self.scale)

    def material(self, colour: np.ndarray | None = None) -> np.ndarray:
        return _shaded(_object_texture(self.rng, self.w, self.h, colour), self.rng)


OBJECTS: dict[str, Callable[[Spot], None]] = {}
# Objects wider than tall (a bed, a sofa, a goal): how much wider their painting region is.
WIDE: dict[str, float] = {"bed": 1.3, "desk": 1.3, "sofa": 1.5, "goal": 1.3}


def _object(fn: Callable[[Spot], None]) -> Callable[[Spot], None]:
    """Register a drawable object under its function's name (without the leading underscore)."""
    OBJECTS[fn.__name__.lstrip("_")] = fn
    return fn


def draw_object(
    image: np.ndarray, kind: str, cx: float, cy: float, size: float, rng: np.random.Generator
) -> bool:
    """Paint one object (a clutter item or a scene cue) of height ``size`` centred at (cx, cy);
    False if it falls outside the picture."""
    if kind not in OBJECTS:
        raise ValueError(f"unknown object {kind!r}; known: {', '.join(OBJECTS)}")
    reach = 0.8 * size
    box = region(
        image, cx - WIDE.get(kind, 1.0) * reach, cy - reach, cx + WIDE.get(kind, 1.0) * reach, cy + reach
    )
    if box is None:
        return False
    OBJECTS[kind](Spot(image, cx, cy, size, rng, *box, scale=4 if size < 40 else 2))
    return True


@_object
def _plant(o: Spot) -> None:
    image, cx, cy, s, rng, bottom, w, h = o.image, o.cx, o.cy, o.s, o.rng, o.bottom, o.w, o.h
    l = o.layer()
    l.polygon(
        [
            (cx - 0.2 * s, cy + 0.1 * s),
            (cx + 0.2 * s, cy + 0.1 * s),
            (cx + 0.14 * s, bottom),
            (cx - 0.14 * s, bottom),
        ]
    )
    paint(image, l, o.material(np.array(rng.uniform([0.45, 0.25, 0.15], [0.75, 0.45, 0.3]), np.float32)))
    l = o.layer()
    for _ in range(int(rng.integers(5, 9))):
        a = rng.uniform(-2.6, -0.5)
        r = rng.uniform(0.15, 0.42) * s
        lx, ly = cx + math.cos(a) * r, cy + 0.05 * s + math.sin(a) * r
        l.ellipse(lx, ly, rng.uniform(0.08, 0.14) * s, rng.uniform(0.05, 0.1) * s)
        l.line([(cx, cy + 0.1 * s), (lx, ly)], 0.025 * s)
    green = np.array(rng.uniform([0.1, 0.3, 0.05], [0.35, 0.6, 0.25]), np.float32)
    paint(image, l, _shaded(textures.surface(rng, "grass.png", w, h, green), rng))


@_object
def _balloons(o: Spot) -> None:
    image, cx, s, rng, top, bottom = o.image, o.cx, o.s, o.rng, o.top, o.bottom
    knot = (cx + rng.uniform(-0.1, 0.1) * s, bottom)
    centres = [
        (cx + rng.uniform(-0.3, 0.3) * s, top + rng.uniform(0.12, 0.4) * s)
        for _ in range(int(rng.integers(3, 6)))
    ]
    l = o.layer()
    for bx, by in centres:
        l.line([(bx, by + 0.12 * s), knot], max(0.6, 0.012 * s))
    paint(image, l, o.material(np.array([0.85, 0.85, 0.82], np.float32)), 0.7)
    for bx, by in centres:
        l = o.layer()
        l.ellipse(bx, by, 0.11 * s, 0.14 * s)
        tex = o.material(np.array(rng.uniform(0.2, 0.95, 3), np.float32))
        paint(image, l, tex)
        hl = o.layer()
        hl.ellipse(bx - 0.04 * s, by - 0.05 * s, 0.03 * s, 0.04 * s)
        paint(image, hl, np.clip(tex * 1.4 + 0.15, 0, 1), 0.7)  # a specular highlight


@_object
def _shadow(o: Spot) -> None:  # a looming shadow of a figure with raised, clawed hands
    image, cx, s, rng, top, bottom = o.image, o.cx, o.s, o.rng, o.top, o.bottom
    l = o.layer()
    l.ellipse(cx, top + 0.15 * s, 0.11 * s, 0.14 * s)
    l.polygon(
        [
            (cx - 0.18 * s, top + 0.28 * s),
            (cx + 0.18 * s, top + 0.28 * s),
            (cx + 0.14 * s, bottom),
            (cx - 0.14 * s, bottom),
        ]
    )
    for side in (-1, 1):
        l.line(
            [
                (cx + side * 0.16 * s, top + 0.32 * s),
                (cx + side * 0.35 * s, top + 0.15 * s),
                (cx + side * 0.42 * s, top - 0.05 * s),
            ],
            0.07 * s,
        )
        for k in range(3):
            l.line(
                [(cx + side * 0.42 * s, top - 0.05 * s), (cx + side * (0.38 + 0.06 * k) * s, top - 0.16 * s)],
                0.025 * s,
            )
    l.mask = l.mask.filter(ImageFilter.GaussianBlur(0.03 * s * o.scale))
    shade(image, l, float(rng.uniform(0.35, 0.6)))


@_object
def _wheelchair(o: Spot) -> None:
    image, cx, cy, s, rng, top, bottom = o.image, o.cx, o.cy, o.s, o.rng, o.top, o.bottom
    metal = o.material(np.array(rng.uniform(0.15, 0.55, 3), np.float32))
    l = o.layer()
    wheel = 0.28 * s
    l.ring(cx - 0.05 * s, bottom - wheel, wheel, 0.05 * s)
    l.ring(cx + 0.32 * s, bottom - 0.08 * s, 0.08 * s, 0.035 * s)
    l.line(
        [
            (cx - 0.3 * s, top + 0.05 * s),
            (cx - 0.25 * s, cy + 0.05 * s),
            (cx + 0.25 * s, cy + 0.05 * s),
            (cx + 0.3 * s, bottom - 0.1 * s),
        ],
        0.045 * s,
    )
    l.line([(cx - 0.05 * s, bottom - wheel), (cx - 0.05 * s, cy + 0.05 * s)], 0.03 * s)
    paint(image, l, metal)
    l = o.layer()
    l.polygon(
        [
            (cx - 0.3 * s, top + 0.08 * s),
            (cx - 0.22 * s, top + 0.08 * s),
            (cx - 0.18 * s, cy),
            (cx - 0.26 * s, cy),
        ]
    )
    l.polygon(
        [
            (cx - 0.25 * s, cy - 0.02 * s),
            (cx + 0.22 * s, cy - 0.02 * s),
            (cx + 0.22 * s, cy + 0.05 * s),
            (cx - 0.25 * s, cy + 0.05 * s),
        ]
    )
    paint(image, l, o.material())


@_object
def _cake(o: Spot) -> None:
    image, cx, cy, s, rng, bottom = o.image, o.cx, o.cy, o.s, o.rng, o.bottom
    plate = o.layer()
    plate.ellipse(cx, bottom - 0.05 * s, 0.42 * s, 0.08 * s)
    paint(image, plate, o.material(np.array([0.85, 0.85, 0.83], np.float32)))
    for half, y_top, y_bot in (
        (0.34, cy - 0.02 * s, bottom - 0.06 * s),
        (0.22, cy - 0.28 * s, cy - 0.02 * s),
    ):
        l = o.layer()
        l.polygon(
            [(cx - half * s, y_top), (cx + half * s, y_top), (cx + half * s, y_bot), (cx - half * s, y_bot)]
        )
        l.ellipse(cx, y_top, half * s, 0.07 * s)
        l.ellipse(cx, y_bot, half * s, 0.07 * s)
        paint(image, l, o.material(np.array(rng.uniform([0.6, 0.4, 0.3], [0.98, 0.9, 0.85]), np.float32)))
    l = o.layer()
    for _ in range(int(rng.integers(2, 5))):
        x = cx + rng.uniform(-0.15, 0.15) * s
        l.line([(x, cy - 0.3 * s), (x, cy - 0.45 * s)], 0.03 * s)
    paint(image, l, o.material())
    l = o.layer()
    l.ellipse(cx, cy - 0.5 * s, 0.025 * s, 0.045 * s)  # the flame
    paint(image, l, np.clip(o.material(np.array([1.0, 0.8, 0.45], np.float32)) * 1.2, 0, 1), 0.8)


@_object
def _heart(o: Spot) -> None:
    image, cx, cy, s, rng = o.image, o.cx, o.cy, o.s, o.rng
    l = o.layer()
    r = 0.2 * s
    l.ellipse(cx - r * 0.95, cy - 0.12 * s, r, r)
    l.ellipse(cx + r * 0.95, cy - 0.12 * s, r, r)
    l.polygon([(cx - 0.39 * s, cy - 0.06 * s), (cx + 0.39 * s, cy - 0.06 * s), (cx, cy + 0.38 * s)])
    hue = np.array(rng.uniform([0.55, 0.05, 0.1], [0.95, 0.6, 0.7]), np.float32)
    paint(image, l, o.material(hue))


@_object
def _laptop(o: Spot) -> None:
    image, cx, s, rng, top, bottom, w, h = o.image, o.cx, o.s, o.rng, o.top, o.bottom, o.w, o.h
    l = o.layer()
    l.polygon(
        [
            (cx - 0.42 * s, bottom - 0.1 * s),
            (cx + 0.42 * s, bottom - 0.1 * s),
            (cx + 0.5 * s, bottom),
            (cx - 0.5 * s, bottom),
        ]
    )
    l.polygon(
        [
            (cx - 0.4 * s, top + 0.25 * s),
            (cx + 0.4 * s, top + 0.25 * s),
            (cx + 0.42 * s, bottom - 0.1 * s),
            (cx - 0.42 * s, bottom - 0.1 * s),
        ]
    )
    paint(image, l, o.material(np.array(rng.uniform(0.1, 0.6, 3), np.float32)))
    l = o.layer()
    l.polygon(
        [
            (cx - 0.35 * s, top + 0.3 * s),
            (cx + 0.35 * s, top + 0.3 * s),
            (cx + 0.36 * s, bottom - 0.15 * s),
            (cx - 0.36 * s, bottom - 0.15 * s),
        ]
    )
    name = textures.COLOUR_PHOTOS[int(rng.integers(len(textures.COLOUR_PHOTOS)))]
    glow = np.clip(textures.crop(rng, name, w, h, 0.2, 0.8) * 0.7 + 0.35, 0, 1)  # a lit screen
    paint(image, l, glow)


@_object
def _board(o: Spot) -> None:
    image, cx, cy, s, rng = o.image, o.cx, o.cy, o.s, o.rng
    n = 8
    corners = [
        (cx - 0.36 * s, cy - 0.12 * s),
        (cx + 0.36 * s, cy - 0.12 * s),
        (cx + 0.5 * s, cy + 0.28 * s),
        (cx - 0.5 * s, cy + 0.28 * s),
    ]
    paint_board = o.layer()
    paint_board.polygon(corners)
    light = o.material(np.array(rng.uniform([0.6, 0.5, 0.35], [0.95, 0.85, 0.7]), np.float32))
    paint(image, paint_board, light)
    l = o.layer()

    def at(u: float, v: float) -> tuple[float, float]:
        left = (
            corners[0][0] + (corners[3][0] - corners[0][0]) * v,
            corners[0][1] + (corners[3][1] - corners[0][1]) * v,
        )
        right = (
            corners[1][0] + (corners[2][0] - corners[1][0]) * v,
            corners[1][1] + (corners[2][1] - corners[1][1]) * v,
        )
        return (left[0] + (right[0] - left[0]) * u, left[1] + (right[1] - left[1]) * u)

    for i in range(n):
        for j in range(n):
            if (i + j) % 2:
                l.polygon(
                    [
                        at(i / n, j / n),
                        at((i + 1) / n, j / n),
                        at((i + 1) / n, (j + 1) / n),
                        at(i / n, (j + 1) / n),
                    ]
                )
    paint(image, l, np.clip(light * rng.uniform(0.3, 0.5), 0, 1))
    l = o.layer()
    for _ in range(int(rng.integers(3, 7))):
        px, py = at(rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9))
        l.ellipse(px, py - 0.05 * s, 0.03 * s, 0.06 * s)
    paint(image, l, o.material())


@_object
def _box(o: Spot) -> None:
    image, cx, cy, s, bottom = o.image, o.cx, o.cy, o.s, o.bottom
    l = o.layer()
    l.polygon(
        [
            (cx - 0.35 * s, cy - 0.2 * s),
            (cx + 0.35 * s, cy - 0.2 * s),
            (cx + 0.35 * s, bottom),
            (cx - 0.35 * s, bottom),
        ]
    )
    paint(image, l, o.material())


@_object
def _lamp(o: Spot) -> None:
    image, cx, s, top, bottom = o.image, o.cx, o.s, o.top, o.bottom
    l = o.layer()
    l.line([(cx, top + 0.3 * s), (cx, bottom)], 0.035 * s)
    l.ellipse(cx, bottom, 0.16 * s, 0.04 * s)
    paint(image, l, o.material())
    l = o.layer()
    l.polygon(
        [
            (cx - 0.12 * s, top),
            (cx + 0.12 * s, top),
            (cx + 0.22 * s, top + 0.3 * s),
            (cx - 0.22 * s, top + 0.3 * s),
        ]
    )
    paint(image, l, o.material())


@_object
def _frame(o: Spot) -> None:
    image, cx, s, rng, top, bottom, w, h = o.image, o.cx, o.s, o.rng, o.top, o.bottom, o.w, o.h
    l = o.layer()
    l.polygon(
        [
            (cx - 0.38 * s, top + 0.1 * s),
            (cx + 0.38 * s, top + 0.1 * s),
            (cx + 0.38 * s, bottom - 0.1 * s),
            (cx - 0.38 * s, bottom - 0.1 * s),
        ]
    )
    paint(image, l, o.material())
    l = o.layer()
    l.polygon(
        [
            (cx - 0.3 * s, top + 0.18 * s),
            (cx + 0.3 * s, top + 0.18 * s),
            (cx + 0.3 * s, bottom - 0.18 * s),
            (cx - 0.3 * s, bottom - 0.18 * s),
        ]
    )
    name = textures.COLOUR_PHOTOS[int(rng.integers(len(textures.COLOUR_PHOTOS)))]
    paint(image, l, textures.crop(rng, name, w, h, 0.2, 0.8))


@_object
def _bottle(o: Spot) -> None:
    image, cx, cy, s, top, bottom = o.image, o.cx, o.cy, o.s, o.top, o.bottom
    l = o.layer()
    l.polygon(
        [
            (cx - 0.1 * s, cy - 0.1 * s),
            (cx + 0.1 * s, cy - 0.1 * s),
            (cx + 0.1 * s, bottom),
            (cx - 0.1 * s, bottom),
        ]
    )
    l.line([(cx, cy - 0.1 * s), (cx, top)], 0.07 * s)
    paint(image, l, o.material())


@_object
def _chair(o: Spot) -> None:
    image, cx, cy, s, top, bottom = o.image, o.cx, o.cy, o.s, o.top, o.bottom
    l = o.layer()
    l.line([(cx - 0.25 * s, top), (cx - 0.25 * s, bottom)], 0.05 * s)
    l.line([(cx - 0.25 * s, cy), (cx + 0.25 * s, cy)], 0.07 * s)
    l.line([(cx + 0.25 * s, cy), (cx + 0.25 * s, bottom)], 0.05 * s)
    l.line([(cx - 0.1 * s, cy), (cx - 0.1 * s, bottom)], 0.04 * s)
    paint(image, l, o.material())


@_object
def _ball(o: Spot) -> None:
    image, cx, s, bottom = o.image, o.cx, o.s, o.bottom
    l = o.layer()
    l.ellipse(cx, bottom - 0.2 * s, 0.2 * s, 0.2 * s)
    paint(image, l, o.material())


@_object
def _clock(o: Spot) -> None:
    image, cx, cy, s, w, h = o.image, o.cx, o.cy, o.s, o.w, o.h
    l = o.layer()
    l.ellipse(cx, cy, 0.25 * s, 0.25 * s)
    paint(image, l, o.material(np.array([0.85, 0.85, 0.8], np.float32)))
    l = o.layer()
    l.line([(cx, cy), (cx, cy - 0.18 * s)], 0.03 * s)
    l.line([(cx, cy), (cx + 0.12 * s, cy + 0.04 * s)], 0.03 * s)
    paint(image, l, np.full((h, w, 3), 0.12, np.float32))


@_object
def _vase(o: Spot) -> None:
    image, cx, cy, s, top = o.image, o.cx, o.cy, o.s, o.top
    l = o.layer()
    l.ellipse(cx, cy + 0.15 * s, 0.18 * s, 0.3 * s)
    l.polygon(
        [
            (cx - 0.07 * s, top + 0.1 * s),
            (cx + 0.07 * s, top + 0.1 * s),
            (cx + 0.1 * s, cy),
            (cx - 0.1 * s, cy),
        ]
    )
    paint(image, l, o.material())


@_object
def _books(o: Spot) -> None:
    image, cx, s, rng, bottom = o.image, o.cx, o.s, o.rng, o.bottom
    y = bottom
    for _ in range(int(rng.integers(2, 5))):
        t = rng.uniform(0.08, 0.15) * s
        half = rng.uniform(0.25, 0.4) * s
        off = rng.uniform(-0.05, 0.05) * s
        l = o.layer()
        l.polygon(
            [(cx - half + off, y - t), (cx + half + off, y - t), (cx + half + off, y), (cx - half + off, y)]
        )
        paint(image, l, o.material())
        y -= t


def place(
    rng: np.random.Generator, w: int, h: int, size: float, boxes: Sequence[Sequence[float]]
) -> tuple[float, float]:
    """A spot for an object of ``size`` that overlaps the persons' boxes as little as a few tries find."""
    best, best_overlap = (w / 2, h / 2), math.inf
    for _ in range(10):
        cx, cy = rng.uniform(0.4 * size, w - 0.4 * size), rng.uniform(0.5 * size, h - 0.5 * size)
        r = 0.45 * size
        overlap = sum(
            max(0.0, min(cx + r, b[2]) - max(cx - r, b[0])) * max(0.0, min(cy + r, b[3]) - max(cy - r, b[1]))
            for b in boxes
        )
        if overlap < best_overlap:
            best, best_overlap = (cx, cy), overlap
        if overlap == 0:
            break
    return best


# Object heights as a fraction of the picture's height, at their real size next to the people (who
# stand 50-95 % of the picture tall): a cake is small, a wheelchair or a floor lamp is not, and a
# figure's shadow is person-sized. Clutter spans the same range, so size alone says nothing.
OBJECT_HEIGHT: dict[str, tuple[float, float]] = {
    "plant": (0.15, 0.35),
    "balloons": (0.2, 0.4),
    "shadow": (0.35, 0.6),
    "wheelchair": (0.25, 0.4),
    "cake": (0.08, 0.15),
    "heart": (0.08, 0.16),
    "laptop": (0.1, 0.18),
    "board": (0.12, 0.22),
    "box": (0.1, 0.25),
    "lamp": (0.2, 0.45),
    "frame": (0.1, 0.22),
    "bottle": (0.06, 0.12),
    "chair": (0.2, 0.35),
    "ball": (0.15, 0.3),
    "clock": (0.1, 0.2),
    "vase": (0.1, 0.2),
    "books": (0.1, 0.2),
}


def object_size(rng: np.random.Generator, kind: str, w: int, h: int) -> float:
    """The height of an object of this kind in a ``w`` x ``h`` picture (see :data:`OBJECT_HEIGHT`)."""
    low, high = OBJECT_HEIGHT[kind]
    return float(min(rng.uniform(low, high) * h, 0.8 * min(w, h)))


def camera(rng: np.random.Generator, image: np.ndarray) -> Image.Image:
    """Uneven light, white balance, exposure, optical blur and sensor noise; returns an 8-bit picture."""
    h, w = image.shape[:2]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (
        math.cos(angle) * np.linspace(-1, 1, w, dtype=np.float32)[None, :]
        + math.sin(angle) * np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    )
    yy, xx = np.ogrid[-1 : 1 : complex(0, h), -1 : 1 : complex(0, w)]
    vignette = 1 - rng.uniform(0, 0.25) * (xx * xx + yy * yy).astype(np.float32)
    light = (1 + rng.uniform(0, 0.3) * ramp) * vignette * rng.uniform(0.75, 1.15)
    gains = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    out = image * light[:, :, None] * gains[None, None, :]
    out = np.clip(out, 0, 1) ** np.float32(rng.uniform(0.85, 1.2))
    out += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(rng.uniform(0.003, 0.02))
    pil = Image.fromarray(np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.6:
        pil = pil.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.1))))
    return pil
