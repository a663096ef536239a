"""People: head with a real face texture, hair, torso, arms and legs in a pose, clothes with prints.

A person is first *sampled* (:func:`sample_look`: size, place, clothes, hair, skin, neutral pose, a
held object — everything that is not an emotion) and then *drawn* (:func:`draw_person`) with the cues
it shows. Drawing is deterministic given the look, so a cue's footprint is the difference between the
same person drawn with and without it (``tests/synthetic/test_synthetic.py`` measures it at the model's input
size). Scales follow photographs: a head is ~13 % of the person's height, so in a wide shot a mouth or
a brow covers a few pixels of the body view, while a close-up's face fills a good part of it; a
posture moves whole limbs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from emotic_mm.synthetic import textures
from emotic_mm.synthetic.canvas import Layer, Point, paint, region

# Named colours (names go into the descriptions; the pixels get texture and shading on top).
CLOTH_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.62, 0.12, 0.12),
    "blue": (0.16, 0.28, 0.62),
    "green": (0.18, 0.45, 0.22),
    "yellow": (0.85, 0.72, 0.2),
    "black": (0.09, 0.09, 0.1),
    "white": (0.88, 0.88, 0.86),
    "grey": (0.5, 0.5, 0.52),
    "brown": (0.42, 0.28, 0.16),
    "purple": (0.4, 0.2, 0.5),
    "orange": (0.88, 0.45, 0.12),
    "pink": (0.88, 0.55, 0.65),
    "navy": (0.1, 0.13, 0.32),
}
TROUSER_COLOURS: dict[str, tuple[float, float, float]] = {
    "blue": (0.2, 0.27, 0.45),
    "black": (0.1, 0.1, 0.11),
    "grey": (0.42, 0.42, 0.44),
    "brown": (0.38, 0.27, 0.18),
    "beige": (0.72, 0.64, 0.5),
    "white": (0.85, 0.85, 0.83),
}
HAIR_COLOURS: dict[str, tuple[float, float, float]] = {
    "black": (0.08, 0.06, 0.05),
    "dark brown": (0.22, 0.14, 0.09),
    "brown": (0.4, 0.26, 0.15),
    "blond": (0.78, 0.65, 0.4),
    "grey": (0.6, 0.6, 0.6),
    "red": (0.55, 0.22, 0.1),
}
GARMENTS = ("shirt", "jacket", "sweater", "coat", "t-shirt")
PATTERNS = ("plain", "striped", "checked", "printed")
HELD_OBJECTS = ("cup", "book", "bag", "umbrella", "bottle", "newspaper")
NEUTRAL_ARMS = ("down", "down", "down", "hold", "hold", "wave", "pocket", "phone")


@dataclass
class Look:
    """Everything about a person except the emotion cues (units: pixels of the image)."""

    cx: float
    feet: float
    height: float
    age: str
    gender: str
    skin: tuple[float, float, float]
    shot: str  # close, medium or wide (see SHOT_FRAMING)
    face: int  # which LFW face gives the skin its texture
    facing: float  # -1..1: where the face points (features shift sideways)
    away: bool  # seen from behind: no face
    hair: str  # colour name, or "" (bald)
    hair_long: bool
    garment: str
    cloth: str
    pattern: str
    trousers: str
    dress: bool
    short_sleeves: bool
    arms: str  # neutral arm pose (see NEUTRAL_ARMS)
    held: str | None
    stance: float  # half distance between the feet / height
    lean: float  # sideways lean of the upper body / height
    mouth: float  # neutral mouth curvature (slight smiles and pouts happen anyway)
    jitter: tuple[float, ...]  # small angle jitters for the limbs
    seed: int  # textures


# How a photographer framed the person: (height of the whole person, top of the head), both as shares
# of the picture's height. A close-up shows the head and shoulders (the face large enough to read an
# expression), a medium shot the upper body, a wide shot the whole person, small, among the scene.
SHOT_FRAMING: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "close": ((3.0, 4.2), (-0.02, 0.1)),
    "medium": ((1.3, 2.0), (0.02, 0.18)),
    "wide": ((0.3, 0.9), (0.05, 0.6)),
}


def sample_look(
    rng: np.random.Generator, w: int, h: int, cx: float, gender: str, age: str, shot: str = "wide"
) -> Look:
    """A random person standing around ``cx`` in a ``w`` x ``h`` picture, framed as ``shot``
    (:data:`SHOT_FRAMING`); children are smaller in wide shots only (a close-up fills the frame)."""
    (low_h, high_h), (low_top, high_top) = SHOT_FRAMING[shot]
    scale = {"Adult": 1.0, "Teenager": 0.9, "Kid": 0.65}.get(age, 1.0) if shot == "wide" else 1.0
    height = rng.uniform(low_h, high_h) * h * scale
    top = rng.uniform(low_top, high_top) * h
    feet = min(top + height, 1.12 * h) if shot == "wide" else top + height
    tone = rng.uniform(0, 1)
    light, dark = np.array([0.93, 0.76, 0.64]), np.array([0.42, 0.27, 0.18])
    r, g, b = (float(v) for v in light * (1 - tone) + dark * tone)
    hair = list(HAIR_COLOURS)[int(rng.integers(len(HAIR_COLOURS)))]
    if age == "Adult" and gender == "Male" and rng.random() < 0.12:
        hair = ""
    hair_long = bool(rng.random() < (0.65 if gender == "Female" else 0.12)) and hair != ""
    arms = NEUTRAL_ARMS[int(rng.integers(len(NEUTRAL_ARMS)))]
    held = HELD_OBJECTS[int(rng.integers(len(HELD_OBJECTS)))] if arms == "hold" else None
    if held is None and rng.random() < 0.08:
        held = "bag"  # a bag on the shoulder strap / hanging from a lowered hand
    return Look(
        cx=cx,
        feet=feet,
        height=height,
        age=age,
        gender=gender,
        skin=(r, g, b),
        shot=shot,
        face=int(rng.integers(100)),
        facing=float(rng.uniform(-1, 1)),
        away=bool(rng.random() < 0.04),
        hair=hair,
        hair_long=hair_long,
        garment=GARMENTS[int(rng.integers(len(GARMENTS)))],
        cloth=list(CLOTH_COLOURS)[int(rng.integers(len(CLOTH_COLOURS)))],
        pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
        trousers=list(TROUSER_COLOURS)[int(rng.integers(len(TROUSER_COLOURS)))],
        dress=bool(gender == "Female" and rng.random() < 0.25),
        short_sleeves=bool(rng.random() < 0.3),
        arms=arms,
        held=held,
        stance=float(rng.uniform(0.03, 0.1)),
        lean=float(rng.normal(0, 0.025)),
        mouth=float(rng.uniform(-0.04, 0.05)),
        jitter=tuple(float(v) for v in rng.uniform(-1, 1, 8)),
        seed=int(rng.integers(2**31)),
    )


# --------------------------------------------------------------------------- geometry
@dataclass
class Skeleton:
    head: Point
    rx: float  # head half-width
    ry: float  # head half-height
    neck: Point
    shoulders: tuple[Point, Point]
    hips: tuple[Point, Point]
    elbows: tuple[Point, Point]
    wrists: tuple[Point, Point]
    knees: tuple[Point, Point]
    ankles: tuple[Point, Point]
    waist_y: float
    face_down: float  # features shifted down (head bowed), in units of ry


def _limb(start: Point, angle_deg: float, length: float, side: int) -> Point:
    """From ``start``, at ``angle`` from straight down (positive = away from the body's midline)."""
    a = math.radians(angle_deg)
    return (start[0] + side * length * math.sin(a), start[1] + length * math.cos(a))


def skeleton(look: Look, cues: Sequence[str]) -> Skeleton:
    """Joint positions for the look's neutral pose, changed by the posture cues shown."""
    H, cx, j = look.height, look.cx, look.jitter
    top = look.feet - H
    kid = look.age == "Kid"
    ry = (0.078 if kid else 0.066) * H
    rx = 0.8 * ry
    slump = "slump" in cues
    lean = look.lean * H

    def sway(y: float) -> float:  # the upper body leans sideways about the hips
        return lean * max(0.0, (top + 0.52 * H - y) / (0.52 * H))

    head_y = top + ry + (0.06 * H if slump else 0.0)
    shoulder_y = top + 0.2 * H + (0.035 * H if slump else 0.0)
    sw = (0.1 if look.gender == "Female" else 0.112) * H * (0.86 if slump else 1.0)
    hip_y, hw = top + 0.52 * H, 0.085 * H
    head = (cx + sway(head_y) + (0.01 * H * look.facing if slump else 0.0), head_y)
    shoulders = ((cx - sw + sway(shoulder_y), shoulder_y), (cx + sw + sway(shoulder_y), shoulder_y))
    hips = ((cx - hw, hip_y), (cx + hw, hip_y))
    upper, fore = 0.175 * H, 0.165 * H

    elbows: list[Point] = []
    wrists: list[Point] = []
    arm_cues = [c for c in cues if c in ("arms_raised", "arms_crossed", "hands_on_face", "hand_on_head")]
    pose = arm_cues[0] if arm_cues else ("limp" if slump else look.arms)
    for i, side in enumerate((-1, 1)):
        s = shoulders[i]
        jit = j[2 * i] * 6
        if pose == "arms_raised":
            a1 = 145 + jit
            e = _limb(s, a1, upper, side)
            w = _limb(e, a1 + 12 + j[2 * i + 1] * 6, fore, side)
        elif pose == "arms_crossed":
            e = _limb(s, 12 + jit * 0.5, upper * 0.95, side)
            w = (cx - side * 0.07 * H, e[1] - 0.03 * H)
        elif pose == "hands_on_face":
            e = (cx + side * 0.13 * H, shoulder_y + 0.13 * H)
            w = (head[0] + side * 0.42 * rx, head[1] + 0.25 * ry)
        elif pose == "hand_on_head":
            if side == (1 if look.facing >= 0 else -1):
                e = (s[0] + side * 0.14 * H, shoulder_y - 0.04 * H)
                w = (head[0] + side * 0.55 * rx, head[1] - 0.75 * ry)
            else:
                e = _limb(s, 20 + jit, upper, side)
                w = (cx - side * 0.01 * H, top + 0.42 * H)
        elif pose == "limp":
            e = _limb(s, 3 + abs(jit) * 0.3, upper, side)
            w = _limb(e, 2 + abs(jit) * 0.3, fore, side)
        else:
            e = _limb(s, 12 + jit, upper, side)
            w = _limb(e, 16 + jit + j[2 * i + 1] * 8, fore, side)
            hand_side = 1 if look.facing >= 0 else -1
            if side == hand_side and pose == "hold":
                w = (e[0] - side * 0.09 * H, e[1] + 0.03 * H)  # forearm towards the camera, hand at the waist
            elif side == hand_side and pose == "wave":
                e = _limb(s, 95 + jit, upper, side)
                w = (e[0] + side * 0.02 * H, e[1] - fore)
            elif side == hand_side and pose == "phone":
                e = _limb(s, 25 + jit, upper * 0.9, side)
                w = (head[0] + side * 0.95 * rx, head[1] + 0.1 * ry)
            elif side == -hand_side and pose == "pocket":
                w = _limb(e, 5, fore * 0.55, side)
        elbows.append(e)
        wrists.append(w)
    stance = look.stance * H
    knee_y, ankle_y = top + 0.75 * H, look.feet - 0.025 * H
    knees = ((cx - hw * 0.8 - stance * 0.4, knee_y), (cx + hw * 0.8 + stance * 0.4, knee_y))
    ankles = ((cx - stance - 0.04 * H * j[6], ankle_y), (cx + stance + 0.04 * H * j[7], ankle_y))
    return Skeleton(
        head=head,
        rx=rx,
        ry=ry,
        neck=(cx + sway(shoulder_y), shoulder_y - 0.03 * H),
        shoulders=shoulders,
        hips=hips,
        elbows=(elbows[0], elbows[1]),
        wrists=(wrists[0], wrists[1]),
        knees=knees,
        ankles=ankles,
        waist_y=top + 0.4 * H,
        face_down=0.18 if slump else (0.1 if "tears" in cues else 0.0),
    )  # a bowed head


# --------------------------------------------------------------------------- textures of a person
def _cloth_texture(rng: np.random.Generator, look: Look, w: int, h: int) -> np.ndarray:
    colour = np.array(CLOTH_COLOURS[look.cloth], dtype=np.float32)
    base = textures.surface(rng, "fabric", w, h, colour)
    if look.pattern == "striped":
        period = rng.uniform(0.025, 0.05) * look.height
        y = np.arange(h, dtype=np.float32)[:, None] + np.zeros((1, w), np.float32)
        stripes = (np.sin(y * 2 * np.pi / period) > 0.3).astype(np.float32)[:, :, None]
        other = np.clip(colour * 0.45 + rng.uniform(0.35, 0.6), 0, 1)
        base = base * (1 - 0.7 * stripes) + 0.7 * stripes * other * (base / (colour + 1e-3)).clip(0.6, 1.4)
    elif look.pattern == "checked":
        period = rng.uniform(0.04, 0.07) * look.height
        y = np.arange(h, dtype=np.float32)[:, None]
        x = np.arange(w, dtype=np.float32)[None, :]
        grid = ((np.sin(y * 2 * np.pi / period) > 0) ^ (np.sin(x * 2 * np.pi / period) > 0)).astype(
            np.float32
        )
        base = base * (1 - 0.35 * grid[:, :, None])
    elif look.pattern == "printed":
        name = textures.COLOUR_PHOTOS[int(rng.integers(len(textures.COLOUR_PHOTOS)))]
        grey = textures.luminance(textures.crop(rng, name, w, h, 0.15, 0.5))
        base = base * (0.65 + 0.7 * (grey[:, :, None] - grey.mean()) + 0.35)
    return np.clip(base, 0, 1)


def _skin_texture(rng: np.random.Generator, look: Look, w: int, h: int) -> np.ndarray:
    return textures.tint(textures.pink_noise(rng, w, h, base=16), np.array(look.skin, np.float32), 0.08)


def _face_texture(look: Look, w: int, h: int) -> np.ndarray:
    """The skin of the head carries a real (LFW) face at low contrast: natural shading, not a drawing."""
    face = textures.lfw_faces()[look.face]
    face = np.asarray(Image.fromarray(face, "F").resize((max(w, 1), max(h, 1)), Image.BILINEAR), np.float32)
    rel = (face - face.mean()) * 0.55
    if look.facing < 0:
        rel = rel[:, ::-1]
    return np.clip(np.array(look.skin, np.float32)[None, None, :] * (1 + rel[:, :, None]), 0, 1)


# --------------------------------------------------------------------------- drawing
def _bounds(look: Look) -> tuple[float, float, float, float]:
    H = look.height
    return (look.cx - 0.62 * H, look.feet - 1.25 * H, look.cx + 0.62 * H, look.feet + 0.02 * H)


def draw_person(
    image: np.ndarray, look: Look, cues: Sequence[str] = ()
) -> tuple[float, float, float, float] | None:
    """Paint the person into ``image`` (float32 H x W x 3, in place) showing ``cues``; returns the tight
    box ``(x1, y1, x2, y2)`` around what was painted, or None if the person is entirely off the picture."""
    box = region(image, *_bounds(look))
    if box is None:
        return None
    x0, y0, w, h = box
    s = 3 if look.height < 220 else 2
    rng = np.random.default_rng(look.seed)  # textures depend on the look only, never on the cues
    cloth = _cloth_texture(rng, look, w, h)
    trousers = textures.surface(rng, "fabric", w, h, np.array(TROUSER_COLOURS[look.trousers], np.float32))
    skin = _skin_texture(rng, look, w, h)
    hair_tex = (
        textures.tint(
            textures.pink_noise(rng, w, h, beta=1.2) + 0.8 * rng.standard_normal((h, w), dtype=np.float32),
            np.array(HAIR_COLOURS[look.hair], np.float32),
            0.35,
        )
        if look.hair
        else None
    )
    held_rng = np.random.default_rng(look.seed + 1)
    sk = skeleton(look, cues)
    H = look.height
    covered = [math.inf, math.inf, -math.inf, -math.inf]  # the box of everything painted

    def layer() -> Layer:
        return Layer(x0, y0, w, h, s)

    def put(l: Layer, tex: np.ndarray) -> None:
        touched = paint(image, l, tex)
        if touched is not None:
            covered[:2] = [min(covered[0], touched[0]), min(covered[1], touched[1])]
            covered[2:] = [max(covered[2], touched[2]), max(covered[3], touched[3])]

    # long hair behind the head and shoulders
    hx, hy = sk.head
    if look.hair and look.hair_long:
        l = layer()
        l.polygon(
            [
                (hx - 1.1 * sk.rx, hy - 0.3 * sk.ry),
                (hx + 1.1 * sk.rx, hy - 0.3 * sk.ry),
                (hx + 1.3 * sk.rx, hy + 2.3 * sk.ry),
                (hx - 1.3 * sk.rx, hy + 2.3 * sk.ry),
            ]
        )
        put(l, hair_tex)
    # legs (or a dress), shoes
    l = layer()
    for i in range(2):
        l.line([sk.hips[i], sk.knees[i], sk.ankles[i]], 0.075 * H)
    put(l, skin if look.dress else trousers)
    l = layer()
    for i, side in enumerate((-1, 1)):
        ax, ay = sk.ankles[i]
        l.ellipse(ax + side * 0.015 * H, ay + 0.008 * H, 0.045 * H, 0.022 * H)
    put(
        l,
        textures.tint(textures.pink_noise(rng, w, h, base=12), np.array([0.12, 0.1, 0.09], np.float32), 0.3),
    )
    # torso
    (lsx, lsy), (rsx, rsy) = sk.shoulders
    waist = 0.08 * H
    mid = (lsx + rsx) / 2
    bottom = sk.knees[0][1] if look.dress else sk.hips[0][1] + 0.03 * H
    flare = 0.05 * H if look.dress else 0.0
    l = layer()
    l.polygon(
        [
            (lsx, lsy + 0.02 * H),
            (mid - 0.04 * H, lsy - 0.025 * H),
            (mid + 0.04 * H, rsy - 0.025 * H),
            (rsx, rsy + 0.02 * H),
            (mid + waist, sk.waist_y),
            (sk.hips[1][0] + 0.01 * H + flare, bottom),
            (sk.hips[0][0] - 0.01 * H - flare, bottom),
            (mid - waist, sk.waist_y),
        ]
    )
    l.ellipse(lsx + 0.01 * H, lsy + 0.025 * H, 0.04 * H, 0.04 * H)
    l.ellipse(rsx - 0.01 * H, rsy + 0.025 * H, 0.04 * H, 0.04 * H)
    put(l, cloth)
    # neck and head
    l = layer()
    l.polygon(
        [
            (hx - 0.45 * sk.rx, hy + 0.6 * sk.ry),
            (hx + 0.45 * sk.rx, hy + 0.6 * sk.ry),
            (sk.neck[0] + 0.5 * sk.rx, sk.neck[1] + 0.03 * H),
            (sk.neck[0] - 0.5 * sk.rx, sk.neck[1] + 0.03 * H),
        ]
    )
    put(l, skin)
    l = layer()
    l.ellipse(hx, hy, sk.rx, sk.ry)
    head_region = region(image, hx - sk.rx, hy - sk.ry, hx + sk.rx, hy + sk.ry)
    face_tex = skin.copy()
    if head_region is not None and not look.away:
        a, b, fw, fh = head_region
        face_tex[b - y0 : b - y0 + fh, a - x0 : a - x0 + fw] = _face_texture(look, fw, fh)
    put(l, hair_tex if (look.away and look.hair) else face_tex)
    if look.hair and not look.away:  # hair over the top of the head (the fringe stops above the brows)
        l = layer()
        l.draw.chord(
            [l._p((hx - 1.08 * sk.rx, hy - 1.14 * sk.ry)), l._p((hx + 1.08 * sk.rx, hy + 0.2 * sk.ry))],
            180,
            360,
            fill=255,
        )
        put(l, hair_tex)
    if not look.away:
        draw_face(image, look, sk, cues)
    # arms (sleeves, hands) go over the torso; the held object goes in the hand
    sleeve, hand_r = 0.055 * H, 0.032 * H
    for i in range(2):
        l = layer()
        if look.short_sleeves:
            l.line([sk.shoulders[i], sk.elbows[i]], sleeve)
            put(l, cloth)
            l = layer()
            l.line([sk.elbows[i], sk.wrists[i]], sleeve * 0.8)
            l.ellipse(*sk.wrists[i], hand_r, hand_r * 1.1)
            put(l, skin)
        else:
            l.line([sk.shoulders[i], sk.elbows[i], sk.wrists[i]], sleeve)
            put(l, cloth)
            l = layer()
            l.ellipse(*sk.wrists[i], hand_r, hand_r * 1.1)
            put(l, skin)
    if held_visible(look, cues):
        side = 1 if look.facing >= 0 else 0
        _draw_held(image, look, sk.wrists[side], held_rng, layer, put)
    if not math.isfinite(covered[0]):
        return None
    return (float(covered[0]), float(covered[1]), float(covered[2]), float(covered[3]))


def held_visible(look: Look, cues: Sequence[str]) -> bool:
    """Whether the look's held object is drawn: an arm posture cue takes the hands away from it."""
    return look.held is not None and not any(
        c in cues for c in ("arms_raised", "arms_crossed", "hands_on_face", "hand_on_head")
    )


def _draw_held(
    image: np.ndarray,
    look: Look,
    hand: Point,
    rng: np.random.Generator,
    layer: Callable[[], Layer],
    put: Callable[[Layer, np.ndarray], None],
) -> None:
    """A small held object at the hand (named in the description)."""
    H, (x, y) = look.height, hand
    colour = np.array(rng.uniform(0.15, 0.9, 3), np.float32)
    bx = region(image, x - 0.3 * H, y - 0.3 * H, x + 0.3 * H, y + 0.3 * H)
    if bx is None:
        return
    l = layer()
    kind = look.held
    if kind == "cup":
        l.polygon(
            [
                (x - 0.025 * H, y - 0.045 * H),
                (x + 0.025 * H, y - 0.045 * H),
                (x + 0.02 * H, y + 0.01 * H),
                (x - 0.02 * H, y + 0.01 * H),
            ]
        )
    elif kind == "book":
        l.polygon(
            [
                (x - 0.05 * H, y - 0.035 * H),
                (x + 0.04 * H, y - 0.05 * H),
                (x + 0.05 * H, y + 0.03 * H),
                (x - 0.04 * H, y + 0.045 * H),
            ]
        )
    elif kind == "bag":
        l.polygon(
            [
                (x - 0.06 * H, y + 0.03 * H),
                (x + 0.06 * H, y + 0.03 * H),
                (x + 0.075 * H, y + 0.13 * H),
                (x - 0.075 * H, y + 0.13 * H),
            ]
        )
        l.line([(x - 0.03 * H, y + 0.03 * H), (x, y - 0.01 * H), (x + 0.03 * H, y + 0.03 * H)], 0.008 * H)
    elif kind == "umbrella":
        l.line([(x, y - 0.02 * H), (x + 0.02 * H, y + 0.3 * H)], 0.022 * H)
        l.line([(x - 0.02 * H, y - 0.01 * H), (x, y - 0.04 * H)], 0.012 * H)
    elif kind == "bottle":
        l.polygon(
            [
                (x - 0.018 * H, y - 0.03 * H),
                (x + 0.018 * H, y - 0.03 * H),
                (x + 0.018 * H, y + 0.06 * H),
                (x - 0.018 * H, y + 0.06 * H),
            ]
        )
        l.line([(x, y - 0.03 * H), (x, y - 0.07 * H)], 0.012 * H)
    else:  # newspaper
        l.polygon(
            [
                (x - 0.07 * H, y - 0.06 * H),
                (x + 0.05 * H, y - 0.07 * H),
                (x + 0.06 * H, y + 0.06 * H),
                (x - 0.06 * H, y + 0.07 * H),
            ]
        )
        grey = textures.luminance(textures.crop(rng, "page.png", l.w, l.h, 0.1, 0.3))
        put(l, textures.tint(grey, np.array([0.85, 0.84, 0.8], np.float32), 0.8))
        return
    put(l, textures.surface(rng, "noise", l.w, l.h, colour))


# --------------------------------------------------------------------------- the face
def _arc(cx: float, cy: float, half: float, bend: float, n: int = 7) -> list[Point]:
    """A mouth line: ``bend`` > 0 lifts the corners (a smile), < 0 drops them."""
    return [(cx + half * t, cy - bend * t * t) for t in np.linspace(-1, 1, n)]


def draw_face(image: np.ndarray, look: Look, sk: Skeleton, cues: Sequence[str]) -> None:
    """Eyes, brows, mouth and tears, drawn at 6x in a box around the head. The expression cues each
    claim feature slots (mouth, brows, eyes); where two cues want the same slot the first one wins."""
    hx, hy, rx, ry = sk.head[0], sk.head[1], sk.rx, sk.ry
    box = region(image, hx - 1.2 * rx, hy - 1.2 * ry, hx + 1.2 * rx, hy + 1.2 * ry)
    if box is None:
        return
    x0, y0, w, h = box
    fx = hx + look.facing * 0.22 * rx
    fy = hy + sk.face_down * ry
    slots: dict[str, str] = {}
    tears = False
    for cue in cues:
        claims = {
            "smile": {"mouth": "smile", "eyes": "smiling"},
            "gasp": {"mouth": "open", "brows": "raised", "eyes": "wide"},
            "scowl": {"brows": "down", "mouth": "bared", "eyes": "narrow"},
            "tears": {"mouth": "down", "brows": "sad", "eyes": "lowered"},
        }.get(cue, {})
        for slot, value in claims.items():
            slots.setdefault(slot, value)
        tears = tears or cue == "tears"
    if "slump" in cues:
        slots.setdefault("eyes", "closed")
    skin = np.array(look.skin, np.float32)
    dark = np.array([0.1, 0.07, 0.06], np.float32)
    brow_col = np.array(HAIR_COLOURS[look.hair] if look.hair else (0.25, 0.2, 0.15), np.float32) * 0.8
    lips = np.clip(skin * np.array([0.72, 0.45, 0.45], np.float32), 0, 1)

    def layer() -> Layer:
        return Layer(x0, y0, w, h, 6)

    grain = np.random.default_rng(look.seed + 7).standard_normal(
        (h, w), dtype=np.float32
    )  # one skin grain per face

    def solid(colour: np.ndarray, noise: float = 0.06) -> np.ndarray:
        return np.clip(colour[None, None, :] * (1 + noise * grain[:, :, None]), 0, 1)

    # eyes
    eye_y = fy - 0.02 * ry
    eyes = slots.get("eyes", "open")
    for side in (-1, 1):
        ex = fx + side * 0.36 * rx
        if eyes == "wide":
            l = layer()
            l.ellipse(ex, eye_y, 0.19 * rx, 0.15 * ry)
            paint(image, l, solid(np.array([0.92, 0.9, 0.86], np.float32)))
            l = layer()
            l.ellipse(ex, eye_y, 0.09 * rx, 0.09 * ry)
            paint(image, l, solid(dark))
        elif eyes == "closed":
            l = layer()
            l.line([(ex - 0.14 * rx, eye_y + 0.02 * ry), (ex + 0.14 * rx, eye_y + 0.02 * ry)], 0.05 * ry)
            paint(image, l, solid(dark), 0.8)
        elif eyes == "smiling":  # a Duchenne smile: eyes narrowed to arcs over raised cheeks
            l = layer()
            l.line(_arc(ex, eye_y + 0.03 * ry, 0.16 * rx, 0.06 * ry, 5), 0.06 * ry)
            paint(image, l, solid(dark), 0.9)
            l = layer()
            l.ellipse(ex + side * 0.05 * rx, eye_y + 0.28 * ry, 0.2 * rx, 0.1 * ry)
            paint(image, l, solid(np.clip(skin * np.array([1.12, 0.9, 0.88], np.float32), 0, 1)), 0.6)
        elif eyes in ("narrow", "lowered"):  # a glare under lowered lids, or eyes cast down
            l = layer()
            dy = 0.05 * ry if eyes == "lowered" else 0.0
            l.ellipse(ex, eye_y + dy, 0.14 * rx, 0.045 * ry)
            paint(image, l, solid(dark), 0.95)
        else:
            l = layer()
            l.ellipse(ex, eye_y, 0.13 * rx, 0.08 * ry)
            paint(image, l, solid(dark), 0.9)
    # brows: inner and outer end heights
    brows = slots.get("brows", "neutral")
    base = fy - 0.3 * ry
    inner, outer = {
        "neutral": (0.0, -0.02),
        "raised": (-0.16, -0.14),
        "down": (0.16, -0.1),
        "sad": (-0.16, 0.07),
    }[brows]
    l = layer()
    for side in (-1, 1):
        l.line(
            [(fx + side * 0.14 * rx, base + inner * ry), (fx + side * 0.58 * rx, base + outer * ry)],
            0.11 * ry if brows == "down" else 0.08 * ry,
        )
    paint(image, l, solid(brow_col), 0.9)
    # mouth
    mouth = slots.get("mouth", "neutral")
    my = fy + 0.5 * ry
    l = layer()
    if mouth == "open":
        l.ellipse(fx, my + 0.02 * ry, 0.15 * rx, 0.19 * ry)
        paint(image, l, solid(np.array([0.25, 0.08, 0.08], np.float32)))
        l = layer()
        l.ring(fx, my + 0.02 * ry, 0.16 * rx, 0.05 * ry)
        paint(image, l, solid(lips), 0.8)
    elif mouth == "smile":  # a broad open smile: corners up, the upper teeth showing
        upper = _arc(fx, my - 0.02 * ry, 0.46 * rx, 0.2 * ry)
        lower = _arc(fx, my + 0.2 * ry, 0.4 * rx, 0.3 * ry)
        l.polygon(upper + lower[::-1])
        paint(image, l, solid(np.array([0.3, 0.08, 0.08], np.float32)))
        l = layer()
        l.polygon(upper + _arc(fx, my + 0.06 * ry, 0.4 * rx, 0.22 * ry)[::-1])
        paint(image, l, solid(np.array([0.93, 0.91, 0.86], np.float32)), 0.95)  # teeth
        l = layer()
        l.line(upper, 0.05 * ry)
        l.line(lower, 0.06 * ry)
        paint(image, l, solid(lips), 0.9)
    elif mouth == "down":  # corners pulled down, the lower lip pushed up (a sad mouth)
        l.line(_arc(fx, my, 0.36 * rx, -0.2 * ry), 0.1 * ry)
        paint(image, l, solid(lips * 0.75))
    elif mouth == "pressed":
        l.line(_arc(fx, my, 0.26 * rx, -0.02 * ry), 0.06 * ry)
        paint(image, l, solid(lips * 0.55))
    elif mouth == "bared":  # an angry mouth: squared, teeth clenched, corners pulled down
        l.polygon(
            [
                (fx - 0.34 * rx, my + 0.04 * ry),
                (fx - 0.2 * rx, my - 0.08 * ry),
                (fx + 0.2 * rx, my - 0.08 * ry),
                (fx + 0.34 * rx, my + 0.04 * ry),
                (fx + 0.22 * rx, my + 0.16 * ry),
                (fx - 0.22 * rx, my + 0.16 * ry),
            ]
        )
        paint(image, l, solid(np.array([0.25, 0.07, 0.07], np.float32)))
        l = layer()
        l.line([(fx - 0.26 * rx, my + 0.04 * ry), (fx + 0.26 * rx, my + 0.04 * ry)], 0.09 * ry)
        paint(image, l, solid(np.array([0.9, 0.88, 0.82], np.float32)), 0.9)
    else:
        l.line(_arc(fx, my, 0.3 * rx, look.mouth * ry), 0.07 * ry)
        paint(image, l, solid(lips * 0.85))
    if tears:
        l = layer()
        for side in (-1, 1):
            ex = fx + side * 0.36 * rx
            l.line(
                [
                    (ex + side * 0.04 * rx, eye_y + 0.1 * ry),
                    (ex + side * 0.07 * rx, eye_y + 0.3 * ry),
                    (ex + side * 0.05 * rx, eye_y + 0.5 * ry),
                ],
                0.09 * rx,
            )
        paint(image, l, solid(np.array([0.78, 0.86, 0.95], np.float32), 0.03), 0.85)
