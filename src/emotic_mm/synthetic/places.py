"""Places: a party, a beach, a hospital ward, a street at night, an office, a living room, a sports field.

Kosti et al.'s point about EMOTIC is that the *place* informs the emotion. A place here is a backdrop
laid out as that kind of place (sky, sea and sand; pale walls and a bed; dark façades with lit
windows) built from the same real photographs and 1/f textures as every other backdrop, plus the
objects typical of it (a garland and confetti, a parasol, a drip stand, street lamps, a desk with a
monitor, a sofa, a goal). Every colour is jittered per picture and the camera adds its light and
noise, so a place is told by its layout and its objects rather than by one colour: a night street is
dark, as night photographs are, but so are many others.

Which place a picture shows is drawn from its persons' categories (:func:`choose_place`, rates in
:class:`~emotic_mm.synthetic.generate.SyntheticSpec`): a category's place with prob
``place_hit`` when present, a random place with prob ``place_false`` otherwise, and a generic
backdrop (:func:`~emotic_mm.synthetic.scene.backdrop`) in the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from emotic_mm.synthetic import textures
from emotic_mm.synthetic.canvas import Layer, paint
from emotic_mm.synthetic.scene import Spot, _object, draw_object

# The place a category shows as (image-level, shared by everybody in the picture).
PLACE_CUES: dict[str, str] = {
    "Pleasure": "party",
    "Happiness": "party",
    "Peace": "beach",
    "Suffering": "hospital",
    "Pain": "hospital",
    "Fear": "night street",
    "Disconnection": "office",
    "Affection": "living room",
    "Excitement": "sports field",
}
# What a description calls each place.
PLACE_NAMES: dict[str, str] = {
    "party": "a party",
    "beach": "a beach",
    "hospital": "a hospital ward",
    "night street": "a street at night",
    "office": "an office",
    "living room": "a living room",
    "sports field": "a sports field",
}

PREPOSITION: dict[str, str] = {"party": "at", "beach": "on", "sports field": "on"}


def choose_place(rng: np.random.Generator, present: Sequence[str], hit: float, false: float) -> str | None:
    """The picture's place: one of the present categories' places (each kept with prob ``hit``), else a
    random place with prob ``false``, else None (a generic backdrop)."""
    kept = sorted({PLACE_CUES[c] for c in present if c in PLACE_CUES and rng.random() < hit})
    if kept:
        return kept[int(rng.integers(len(kept)))]
    if rng.random() < false:
        return list(PLACE_NAMES)[int(rng.integers(len(PLACE_NAMES)))]
    return None


def _jitter(rng: np.random.Generator, colour: Sequence[float], spread: float = 0.18) -> np.ndarray:
    return np.clip(
        np.asarray(colour, np.float32) * rng.uniform(1 - spread, 1 + spread, 3).astype(np.float32), 0, 1
    )


def _bands(
    rng: np.random.Generator, w: int, h: int, layers: Sequence[tuple[float, str, Sequence[float]]]
) -> np.ndarray:
    """Horizontal bands top to bottom: ``(share of the height, surface kind, colour)`` each, jittered."""
    shares = np.array([s for s, _, _ in layers], np.float64)
    shares *= rng.uniform(0.8, 1.2, len(shares))
    edges = np.round(np.cumsum(shares / shares.sum()) * h).astype(int)
    out, start = [], 0
    for (_, kind, colour), end in zip(layers, edges):
        rows = max(int(end) - start, 0)
        if rows:
            out.append(textures.surface(rng, kind, w, rows, _jitter(rng, colour)))
        start = int(end)
    return np.ascontiguousarray(np.clip(np.concatenate(out, axis=0), 0, 1))


def _scatter(
    rng: np.random.Generator,
    pixels: np.ndarray,
    kinds: Sequence[str],
    count: tuple[int, int],
    height: tuple[float, float],
    band: tuple[float, float],
) -> None:
    """Draw ``count`` objects picked from ``kinds`` at heights ``height`` (shares of the picture's height)
    with their centres in the vertical ``band``."""
    h, w = pixels.shape[:2]
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        kind = kinds[int(rng.integers(len(kinds)))]
        size = float(rng.uniform(*height) * h)
        draw_object(pixels, kind, rng.uniform(0.05, 0.95) * w, rng.uniform(*band) * h, size, rng)


def _party(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    wall = ("noise", "wood", "brick.png")[int(rng.integers(3))]
    pixels = _bands(rng, w, h, [(0.7, wall, rng.uniform(0.35, 0.85, 3)), (0.3, "wood", (0.5, 0.35, 0.22))])
    for _ in range(int(rng.integers(1, 3))):
        draw_object(pixels, "garland", w / 2, rng.uniform(0.05, 0.3) * h, w, rng)
    _scatter(rng, pixels, ("confetti",), (1, 3), (0.3, 0.6), (0.2, 0.8))
    _scatter(rng, pixels, ("cake", "bottle", "balloons"), (0, 2), (0.1, 0.25), (0.55, 0.85))
    return pixels


def _beach(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    sky = (0.45, "moon.png", (0.55, 0.68, 0.86))
    sea = (0.15, "noise", (0.2, 0.42, 0.55))
    sand = (0.4, "gravel.png" if rng.random() < 0.5 else "noise", (0.82, 0.74, 0.56))
    pixels = _bands(rng, w, h, [sky, sea, sand])
    waves = Layer(0, 0, w, h, 2)  # foam lines on the sea
    for _ in range(int(rng.integers(3, 7))):
        y = rng.uniform(0.42, 0.62) * h
        waves.line(
            [
                (x, y + 0.006 * h * math.sin(x / max(w, 1) * rng.uniform(8, 20)))
                for x in np.linspace(0, w, 12)
            ],
            max(0.8, 0.005 * h),
        )
    paint(pixels, waves, np.full((h, w, 3), 0.9, np.float32), 0.6)
    _scatter(rng, pixels, ("parasol",), (1, 2), (0.35, 0.6), (0.5, 0.75))
    _scatter(rng, pixels, ("ball", "box"), (0, 2), (0.08, 0.15), (0.75, 0.95))
    return pixels


def _hospital(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    pale = rng.choice([(0.82, 0.88, 0.84), (0.84, 0.86, 0.9), (0.9, 0.9, 0.88)])
    pixels = _bands(rng, w, h, [(0.65, "noise", pale), (0.35, "noise", (0.72, 0.74, 0.72))])
    _scatter(rng, pixels, ("bed",), (1, 2), (0.25, 0.4), (0.6, 0.8))
    _scatter(rng, pixels, ("drip_stand",), (1, 2), (0.45, 0.7), (0.45, 0.6))
    _scatter(rng, pixels, ("frame", "clock", "wheelchair"), (0, 2), (0.1, 0.25), (0.25, 0.6))
    return pixels


def _night_street(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    pixels = _bands(
        rng,
        w,
        h,
        [
            (0.25, "noise", (0.05, 0.06, 0.12)),
            (0.45, "brick.png", (0.18, 0.16, 0.17)),
            (0.3, "gravel.png", (0.16, 0.16, 0.17)),
        ],
    )
    lit = Layer(0, 0, w, h, 2)
    for _ in range(int(rng.integers(6, 18))):
        x, y = rng.uniform(0, w), rng.uniform(0.25, 0.6) * h
        a, b = rng.uniform(0.015, 0.04) * h, rng.uniform(0.02, 0.05) * h
        lit.polygon([(x - a, y - b), (x + a, y - b), (x + a, y + b), (x - a, y + b)])
    paint(pixels, lit, textures.surface(rng, "noise", w, h, _jitter(rng, (0.95, 0.8, 0.45), 0.2)), 0.85)
    _scatter(rng, pixels, ("street_lamp",), (1, 3), (0.5, 0.8), (0.4, 0.6))
    return pixels


def _office(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    pixels = _bands(rng, w, h, [(0.6, "noise", rng.uniform(0.55, 0.9, 3)), (0.4, "noise", (0.35, 0.35, 0.4))])
    _scatter(rng, pixels, ("desk",), (1, 2), (0.25, 0.35), (0.6, 0.8))
    _scatter(rng, pixels, ("monitor",), (1, 3), (0.1, 0.18), (0.45, 0.6))
    _scatter(rng, pixels, ("books", "clock", "frame", "lamp"), (1, 3), (0.1, 0.2), (0.2, 0.45))
    return pixels


def _living_room(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    if rng.random() < 0.4:
        pixels = np.ascontiguousarray(
            textures.colour_shift(rng, textures.crop(rng, "chelsea.png", w, h, 0.6, 1.0), 0.2)
        )
    else:
        wall = ("noise", "wood", "brick.png")[int(rng.integers(3))]
        pixels = _bands(
            rng, w, h, [(0.65, wall, rng.uniform(0.4, 0.85, 3)), (0.35, "wood", (0.5, 0.35, 0.22))]
        )
    _scatter(rng, pixels, ("sofa",), (1, 1), (0.25, 0.35), (0.6, 0.8))
    _scatter(rng, pixels, ("lamp", "frame", "vase", "clock"), (1, 3), (0.12, 0.3), (0.25, 0.6))
    return pixels


def _sports_field(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    crowd = ("noise", rng.uniform(0.3, 0.6, 3))
    pixels = _bands(
        rng,
        w,
        h,
        [(0.2, "moon.png", (0.55, 0.66, 0.82)), (0.2, *crowd), (0.6, "grass.png", (0.28, 0.5, 0.2))],
    )
    heads = Layer(0, 0, w, h, 2)  # the crowd in the stands: rows of small heads
    for _ in range(int(0.002 * w * h)):
        heads.ellipse(rng.uniform(0, w), rng.uniform(0.2, 0.4) * h, 0.006 * h, 0.008 * h)
    paint(pixels, heads, textures.surface(rng, "noise", w, h, _jitter(rng, (0.6, 0.45, 0.35), 0.4)), 0.9)
    lines = Layer(0, 0, w, h, 2)
    y = rng.uniform(0.6, 0.85) * h
    lines.line([(0, y), (w, y + rng.uniform(-0.05, 0.05) * h)], max(1.0, 0.008 * h))
    lines.line([(rng.uniform(0.2, 0.8) * w, 0.42 * h), (rng.uniform(0, w), h)], max(1.0, 0.008 * h))
    paint(pixels, lines, np.full((h, w, 3), 0.92, np.float32), 0.8)
    _scatter(rng, pixels, ("goal",), (0, 1), (0.3, 0.45), (0.4, 0.55))
    _scatter(rng, pixels, ("ball",), (1, 2), (0.05, 0.12), (0.7, 0.95))
    return pixels


PLACES: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "party": _party,
    "beach": _beach,
    "hospital": _hospital,
    "night street": _night_street,
    "office": _office,
    "living room": _living_room,
    "sports field": _sports_field,
}


def draw_place(rng: np.random.Generator, place: str, w: int, h: int) -> tuple[np.ndarray, dict[str, str]]:
    """The empty place (float32 H x W x 3) and what a description says about it."""
    pixels = PLACES[place](rng, w, h)
    name = PLACE_NAMES[place]
    return textures.colour_shift(rng, pixels, 0.15), {
        "place": name,
        "at": f"{PREPOSITION.get(place, 'in')} {name}",
    }


# --------------------------------------------------------------------------- the places' objects
@_object
def _garland(o: Spot) -> None:  # a string of triangular flags across the picture (size = its span)
    image, cx, cy, s, rng = o.image, o.cx, o.cy, o.s, o.rng
    h = image.shape[0]
    sag, flag = rng.uniform(0.03, 0.12) * h, rng.uniform(0.03, 0.06) * h
    n = int(rng.integers(8, 16))
    xs = np.linspace(cx - s / 2, cx + s / 2, n + 1)
    ys = [cy + sag * (1 - (2 * (x - cx) / s) ** 2) for x in xs]
    cord = Layer(0, 0, image.shape[1], h, 2)
    cord.line(list(zip(xs.tolist(), ys)), max(0.7, 0.004 * h))
    paint(image, cord, np.full((h, image.shape[1], 3), 0.85, np.float32), 0.7)
    weave = textures.surface(rng, "fabric", image.shape[1], h, np.ones(3, np.float32))  # one cloth, 3-4 dyes
    dyes = rng.uniform(0.2, 0.95, (int(rng.integers(3, 5)), 3)).astype(np.float32)
    for d, dye in enumerate(dyes):
        l = Layer(0, 0, image.shape[1], h, 2)
        for i in range(d, n, len(dyes)):
            l.polygon(
                [
                    (xs[i], ys[i]),
                    (xs[i + 1], ys[i + 1]),
                    ((xs[i] + xs[i + 1]) / 2, (ys[i] + ys[i + 1]) / 2 + flag),
                ]
            )
        paint(image, l, weave * dye)


@_object
def _confetti(o: Spot) -> None:  # small coloured flecks over an area of size s
    image, cx, cy, s, rng = o.image, o.cx, o.cy, o.s, o.rng
    for _ in range(3):
        l = o.layer()
        for _ in range(int(rng.integers(10, 25))):
            x, y, r = (
                cx + rng.uniform(-0.8, 0.8) * s,
                cy + rng.uniform(-0.8, 0.8) * s,
                rng.uniform(0.008, 0.02) * s,
            )
            l.ellipse(x, y, r * rng.uniform(0.5, 1.5), r)
        paint(image, l, o.material(rng.uniform(0.3, 1.0, 3).astype(np.float32)), 0.9)


@_object
def _parasol(o: Spot) -> None:
    image, cx, s, rng, top, bottom = o.image, o.cx, o.s, o.rng, o.top, o.bottom
    l = o.layer()
    l.line([(cx, top + 0.1 * s), (cx + 0.05 * s, bottom)], 0.025 * s)
    paint(image, l, o.material(np.array([0.85, 0.85, 0.8], np.float32)))
    l = o.layer()
    l.draw.chord([l._p((cx - 0.5 * s, top)), l._p((cx + 0.5 * s, top + 0.5 * s))], 180, 360, fill=255)
    paint(image, l, o.material(rng.uniform(0.3, 0.95, 3).astype(np.float32)))


@_object
def _bed(o: Spot) -> None:  # a hospital bed: metal frame, white sheets, a pillow
    image, cx, cy, s, rng, bottom = o.image, o.cx, o.cy, o.s, o.rng, o.bottom
    l = o.layer()
    l.line([(cx - 0.8 * s, cy - 0.3 * s), (cx - 0.8 * s, bottom)], 0.04 * s)
    l.line([(cx + 0.8 * s, cy - 0.1 * s), (cx + 0.8 * s, bottom)], 0.04 * s)
    l.line([(cx - 0.8 * s, cy + 0.15 * s), (cx + 0.8 * s, cy + 0.15 * s)], 0.05 * s)
    paint(image, l, o.material(np.array(rng.uniform(0.5, 0.8, 3), np.float32)))
    l = o.layer()
    l.polygon(
        [
            (cx - 0.78 * s, cy - 0.1 * s),
            (cx + 0.78 * s, cy - 0.1 * s),
            (cx + 0.78 * s, cy + 0.12 * s),
            (cx - 0.78 * s, cy + 0.12 * s),
        ]
    )
    paint(image, l, o.material(_jitter(rng, (0.9, 0.92, 0.92), 0.06)))
    l = o.layer()
    l.ellipse(cx - 0.6 * s, cy - 0.13 * s, 0.16 * s, 0.07 * s)
    paint(image, l, o.material(_jitter(rng, (0.95, 0.95, 0.93), 0.05)))


@_object
def _drip_stand(o: Spot) -> None:  # a pole on a wheeled foot with a clear bag and its line
    image, cx, s, rng, top, bottom = o.image, o.cx, o.s, o.rng, o.top, o.bottom
    l = o.layer()
    l.line([(cx, top + 0.05 * s), (cx, bottom)], 0.018 * s)
    l.line([(cx - 0.12 * s, bottom), (cx + 0.12 * s, bottom)], 0.02 * s)
    l.line([(cx - 0.1 * s, top + 0.05 * s), (cx + 0.1 * s, top + 0.05 * s)], 0.012 * s)
    paint(image, l, o.material(np.array([0.7, 0.72, 0.75], np.float32)))
    l = o.layer()
    l.ellipse(cx + 0.08 * s, top + 0.16 * s, 0.05 * s, 0.09 * s)
    paint(image, l, o.material(_jitter(rng, (0.85, 0.9, 0.92), 0.05)), 0.75)
    l = o.layer()
    l.line([(cx + 0.08 * s, top + 0.25 * s), (cx + 0.2 * s, top + 0.6 * s)], 0.006 * s)
    paint(image, l, np.full((o.h, o.w, 3), 0.9, np.float32), 0.6)


@_object
def _street_lamp(o: Spot) -> None:  # a dark post with a bright lamp and its glow
    image, cx, s, rng, top, bottom = o.image, o.cx, o.s, o.rng, o.top, o.bottom
    l = o.layer()
    l.line([(cx, top + 0.08 * s), (cx, bottom)], 0.025 * s)
    l.line([(cx, top + 0.08 * s), (cx + 0.12 * s, top + 0.05 * s)], 0.02 * s)
    paint(image, l, o.material(np.array([0.1, 0.1, 0.12], np.float32)))
    glow = o.layer()
    glow.ellipse(cx + 0.14 * s, top + 0.08 * s, 0.16 * s, 0.16 * s)
    warm = _jitter(rng, (1.0, 0.85, 0.55), 0.1)
    paint(image, glow, np.broadcast_to(warm, (o.h, o.w, 3)).astype(np.float32), 0.35)
    lamp = o.layer()
    lamp.ellipse(cx + 0.14 * s, top + 0.08 * s, 0.035 * s, 0.03 * s)
    paint(image, lamp, np.broadcast_to(np.clip(warm * 1.2, 0, 1), (o.h, o.w, 3)).astype(np.float32))


@_object
def _desk(o: Spot) -> None:
    image, cx, cy, s, bottom = o.image, o.cx, o.cy, o.s, o.bottom
    l = o.layer()
    l.polygon(
        [
            (cx - 0.9 * s, cy - 0.25 * s),
            (cx + 0.9 * s, cy - 0.25 * s),
            (cx + 0.9 * s, cy - 0.15 * s),
            (cx - 0.9 * s, cy - 0.15 * s),
        ]
    )
    l.line([(cx - 0.8 * s, cy - 0.15 * s), (cx - 0.8 * s, bottom)], 0.05 * s)
    l.line([(cx + 0.8 * s, cy - 0.15 * s), (cx + 0.8 * s, bottom)], 0.05 * s)
    l.polygon(
        [
            (cx + 0.35 * s, cy - 0.15 * s),
            (cx + 0.75 * s, cy - 0.15 * s),
            (cx + 0.75 * s, bottom - 0.1 * s),
            (cx + 0.35 * s, bottom - 0.1 * s),
        ]
    )
    paint(image, l, o.material())


@_object
def _monitor(o: Spot) -> None:  # a screen on a foot, lit with a crop of a photo
    image, cx, cy, s, rng, w, h = o.image, o.cx, o.cy, o.s, o.rng, o.w, o.h
    l = o.layer()
    l.polygon(
        [
            (cx - 0.7 * s, cy - 0.45 * s),
            (cx + 0.7 * s, cy - 0.45 * s),
            (cx + 0.7 * s, cy + 0.35 * s),
            (cx - 0.7 * s, cy + 0.35 * s),
        ]
    )
    l.line([(cx, cy + 0.35 * s), (cx, cy + 0.55 * s)], 0.08 * s)
    l.line([(cx - 0.25 * s, cy + 0.55 * s), (cx + 0.25 * s, cy + 0.55 * s)], 0.06 * s)
    paint(image, l, o.material(np.array(rng.uniform(0.05, 0.3, 3), np.float32)))
    l = o.layer()
    l.polygon(
        [
            (cx - 0.62 * s, cy - 0.38 * s),
            (cx + 0.62 * s, cy - 0.38 * s),
            (cx + 0.62 * s, cy + 0.28 * s),
            (cx - 0.62 * s, cy + 0.28 * s),
        ]
    )
    name = textures.COLOUR_PHOTOS[int(rng.integers(len(textures.COLOUR_PHOTOS)))]
    paint(image, l, np.clip(textures.crop(rng, name, w, h, 0.2, 0.8) * 0.7 + 0.3, 0, 1))


@_object
def _sofa(o: Spot) -> None:
    image, cx, cy, s, rng, bottom = o.image, o.cx, o.cy, o.s, o.rng, o.bottom
    cloth = o.material(np.array(rng.uniform(0.15, 0.8, 3), np.float32))
    l = o.layer()
    l.polygon(
        [
            (cx - 1.0 * s, cy - 0.35 * s),
            (cx + 1.0 * s, cy - 0.35 * s),
            (cx + 1.0 * s, bottom - 0.08 * s),
            (cx - 1.0 * s, bottom - 0.08 * s),
        ]
    )
    for side in (-1, 1):
        l.ellipse(cx + side * 1.0 * s, cy - 0.05 * s, 0.14 * s, 0.3 * s)
    paint(image, l, cloth)
    l = o.layer()
    l.polygon(
        [
            (cx - 0.88 * s, cy),
            (cx + 0.88 * s, cy),
            (cx + 0.88 * s, cy + 0.1 * s),
            (cx - 0.88 * s, cy + 0.1 * s),
        ]
    )
    paint(image, l, np.clip(cloth * 1.15, 0, 1))


@_object
def _goal(o: Spot) -> None:  # white posts and a crossbar with a net behind
    image, cx, s, top, bottom = o.image, o.cx, o.s, o.top, o.bottom
    net = o.layer()
    for k in range(9):
        x = cx - 0.9 * s + 1.8 * s * k / 8
        net.line([(x, top), (x + 0.05 * s, bottom)], max(0.5, 0.006 * s))
    for k in range(6):
        y = top + (bottom - top) * k / 5
        net.line([(cx - 0.9 * s, y), (cx + 0.9 * s, y)], max(0.5, 0.006 * s))
    paint(image, net, np.full((o.h, o.w, 3), 0.85, np.float32), 0.5)
    posts = o.layer()
    posts.line(
        [(cx - 0.9 * s, bottom), (cx - 0.9 * s, top), (cx + 0.9 * s, top), (cx + 0.9 * s, bottom)], 0.03 * s
    )
    paint(image, posts, o.material(np.array([0.92, 0.92, 0.9], np.float32)))
