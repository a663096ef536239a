"""A seeded, offline stand-in for the EMOTIC release, written in the release's own *raw* layout.

It produces ``Annotations/Annotations.mat`` with the real nesting, JPEG/PNG files under
``emotic/<folder>/`` and a ``descriptions.jsonl``, which ``prepare`` then converts with the very same
code path as the real release (``text=file``).

Why it is a fair stand-in for learning and attacking:

* label statistics are EMOTIC-like: 1-4 categories per person with a skewed frequency (Engagement very
  common, Embarrassment rare), VAD on 1-10 drawn around per-category prototypes, 1-3 persons per image,
  several source folders, varied image sizes, boxes that sometimes leave the image, and a few of the
  release's imperfections (a missing file, an undecodable file, NaN VAD, persons without annotators);
* the signal is split across modalities (:data:`SCENE_CUES`, :data:`BODY_CUES`, :data:`TEXT_CUES`):
  some categories show only in the picture — as objects in the scene (shared by everybody in the image)
  or as a mark on the person — some only in the description, some in both; every cue is missed or
  falsely present with a configurable probability, so no modality alone is perfect and fusing them
  helps;
* descriptions are natural sentences built from paraphrases and distractors and never contain the
  category names (a test checks this).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from emotic_mm.data.categories import CATEGORIES
from emotic_mm.data.emotic_mat import ImageSpec, PersonSpec, write_annotations

FOLDERS = ("mscoco/images", "framesdb/images", "emodb_small/images", "ade20k/images")

# Relative label frequencies, ordered roughly as in the EMOTIC train split.
FREQUENCY: dict[str, float] = {
    "Engagement": 50, "Happiness": 25, "Anticipation": 22, "Confidence": 14, "Pleasure": 12,
    "Excitement": 12, "Peace": 12, "Affection": 7, "Disconnection": 6, "Esteem": 5,
    "Doubt/Confusion": 5, "Sympathy": 4, "Yearning": 3, "Fatigue": 3, "Surprise": 3, "Sadness": 3,
    "Disquietment": 3, "Annoyance": 2, "Pain": 1.5, "Suffering": 1.5, "Disapproval": 1.5,
    "Sensitivity": 1.5, "Anger": 1.2, "Fear": 1.2, "Aversion": 1.2, "Embarrassment": 0.6,
}

# (valence, arousal, dominance) prototypes on the 1-10 scale.
VAD_PROTOTYPE: dict[str, tuple[float, float, float]] = {
    "Affection": (7, 5, 6), "Anger": (2, 8, 7), "Annoyance": (3, 6, 5), "Anticipation": (6, 6, 6),
    "Aversion": (3, 5, 5), "Confidence": (7, 6, 8), "Disapproval": (3, 5, 6), "Disconnection": (4, 3, 5),
    "Disquietment": (3, 6, 4), "Doubt/Confusion": (4, 5, 4), "Embarrassment": (3, 6, 3),
    "Engagement": (6, 6, 6), "Esteem": (7, 5, 6), "Excitement": (8, 8, 7), "Fatigue": (4, 2, 4),
    "Fear": (2, 8, 2), "Happiness": (8, 6, 7), "Pain": (2, 6, 3), "Peace": (7, 2, 6), "Pleasure": (8, 5, 7),
    "Sadness": (2, 3, 3), "Sensitivity": (5, 4, 4), "Suffering": (2, 5, 3), "Surprise": (6, 8, 5),
    "Sympathy": (6, 4, 5), "Yearning": (5, 5, 4),
}

# Scene cues: an object of a given shape and colour somewhere in the picture (image-level categories).
SCENE_CUES: dict[str, tuple[str, tuple[int, int, int]]] = {
    "Peace": ("circle", (40, 200, 60)),
    "Excitement": ("triangle", (250, 140, 0)),
    "Fear": ("square", (120, 0, 160)),
    "Suffering": ("diamond", (90, 60, 20)),
    "Pleasure": ("circle", (250, 220, 0)),
    "Affection": ("diamond", (240, 80, 160)),
    "Disconnection": ("square", (0, 160, 200)),
    "Engagement": ("triangle", (30, 60, 230)),
}
# Body cues: a mark on the person's torso (person-level categories).
BODY_CUES: dict[str, tuple[str, tuple[int, int, int]]] = {
    "Fatigue": ("circle", (0, 120, 255)),
    "Pain": ("cross", (220, 0, 0)),
    "Confidence": ("square", (255, 215, 0)),
    "Aversion": ("triangle", (0, 200, 120)),
    "Embarrassment": ("circle", (255, 105, 180)),
    "Happiness": ("square", (255, 120, 0)),
    "Sadness": ("triangle", (60, 60, 200)),
    "Anger": ("cross", (160, 0, 80)),
    "Surprise": ("circle", (240, 240, 240)),
}
# Text cues: paraphrases completing "<subject> ..." — never the category name or its word forms.
TEXT_CUES: dict[str, tuple[str, ...]] = {
    "Anticipation": ("is waiting for what comes next", "keeps glancing at the door as if expecting someone",
                     "is counting down the minutes", "leans forward, ready for the start"),
    "Doubt/Confusion": ("frowns at a map that makes no sense", "scratches their head over the instructions",
                        "is not sure which way to go", "stares at the screen without understanding it"),
    "Yearning": ("gazes at the horizon, missing home", "looks at an old photograph for a long time",
                 "wishes they were somewhere else", "stares longingly through the shop window"),
    "Sympathy": ("puts a hand on a friend's shoulder", "listens kindly to someone who lost their job",
                 "offers comfort to a crying child", "nods softly while another person talks about a loss"),
    "Esteem": ("looks up to the speaker with admiration", "applauds the winner respectfully",
               "watches the mentor with deep respect", "bows to the elder"),
    "Disquietment": ("paces nervously around the room", "bites their nails while waiting for news",
                     "cannot sit still", "keeps checking the phone, restless"),
    "Annoyance": ("rolls their eyes at the loud neighbour", "sighs at the long queue",
                  "is irritated by the constant noise", "taps the counter impatiently"),
    "Disapproval": ("shakes their head at the mess", "crosses their arms and frowns at the decision",
                    "points a finger at the broken rule", "gives a stern look to the latecomer"),
    "Sensitivity": ("is moved to tears by the song", "reacts softly to every small remark",
                    "holds the fragile gift very carefully", "is touched by the kind words"),
    "Engagement": ("is focused on the game", "concentrates on the task in front of them",
                   "takes part in the discussion", "is absorbed in the work"),
    "Happiness": ("is smiling broadly", "laughs with friends", "beams with joy",
                  "grins from ear to ear"),
    "Pleasure": ("enjoys a warm meal", "relaxes in the sun with a drink", "savours the dessert",
                 "sinks into a comfortable chair with a sigh of delight"),
    "Sadness": ("has tears in their eyes", "looks down with a heavy heart", "sits alone, crying quietly",
                "mourns at the grave"),
    "Affection": ("hugs a loved one tightly", "holds hands with a partner", "kisses the baby's forehead",
                  "cuddles the puppy"),
    "Anger": ("shouts furiously at the referee", "slams a fist on the table", "is red in the face with rage",
              "clenches their jaw, furious"),
    "Surprise": ("gasps at the unexpected gift", "opens their mouth wide in astonishment",
                 "jumps back, startled", "raises their eyebrows in shock"),
    "Disconnection": ("stares blankly into space", "ignores everyone around them",
                      "is lost in thought, far away", "scrolls the phone, detached from the group"),
}
DISTRACTORS: tuple[str, ...] = (
    "There is a table in the background.", "The photo was taken outdoors.", "It looks like late afternoon.",
    "A car is parked nearby.", "The walls are painted white.", "Some people pass by in the distance.",
    "The floor is made of wood.", "A tree stands behind them.", "The light comes from the left.",
    "There is a bag on the ground.", "The street is wet from the rain.", "A window lets in daylight.",
    "A poster hangs on the wall.", "The room is crowded.", "A bicycle leans against the fence.",
)
DISTRACTOR_ACTIONS: tuple[str, ...] = (
    "is wearing a jacket", "is standing near a window", "holds a cup", "is sitting on a bench",
    "wears glasses", "carries a backpack", "is next to a door", "has short hair",
)
_SUBJECTS = {
    ("Male", "Adult"): ("The man", "He"), ("Female", "Adult"): ("The woman", "She"),
    ("Male", "Teenager"): ("The teenage boy", "He"), ("Female", "Teenager"): ("The teenage girl", "She"),
    ("Male", "Kid"): ("The boy", "He"), ("Female", "Kid"): ("The girl", "She"),
}


@dataclass
class SyntheticSpec:
    """Generator settings (``data.synthetic`` in the config)."""

    seed: int = 0
    images: dict[str, int] = field(default_factory=lambda: {"train": 1400, "val": 300, "test": 600})
    min_side: int = 200
    max_side: int = 440
    cue_hit: float = 0.8  # P(cue shown | category present)
    cue_false: float = 0.03  # P(cue shown | category absent), per cue
    text_hit: float = 0.75  # P(paraphrase mentioned | category present)
    text_false: float = 0.03  # P(paraphrase mentioned | category absent), per category
    scene_share: float = 0.8  # P(another person in the image shares the scene categories)
    box_outside: float = 0.12
    empty_box: float = 0.003
    nan_vad: float = 0.004
    no_annotator: float = 0.004
    grayscale: float = 0.02
    png: float = 0.05
    defects_per_split: int = 1  # one missing and one undecodable file per split (when large enough)

    @classmethod
    def from_config(cls, cfg: Any) -> "SyntheticSpec":
        values = dict(cfg)
        values["images"] = {k: int(v) for k, v in dict(values.get("images", {})).items()}
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# --------------------------------------------------------------------------- labels
_NAMES = list(CATEGORIES)
_WEIGHTS = np.array([FREQUENCY[c] for c in _NAMES], dtype=np.float64)
_SCENE = [c for c in _NAMES if c in SCENE_CUES]


def _sample_categories(rng: np.random.Generator) -> list[str]:
    k = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1]))
    idx = rng.choice(len(_NAMES), size=k, replace=False, p=_WEIGHTS / _WEIGHTS.sum())
    return [_NAMES[i] for i in sorted(idx)]


def _image_labels(rng: np.random.Generator, n_persons: int, share: float) -> list[list[str]]:
    """Latent categories per person; scene categories are shared within an image with prob ``share``."""
    first = _sample_categories(rng)
    labels = [first]
    scene_of_first = [c for c in first if c in SCENE_CUES]
    for _ in range(n_persons - 1):
        own = _sample_categories(rng)
        if rng.random() < share:
            own = [c for c in own if c not in SCENE_CUES] + scene_of_first
            if not own:
                own = _sample_categories(rng)
        labels.append(sorted(set(own), key=_NAMES.index)[:4])
    return labels


def _annotate(rng: np.random.Generator, truth: Sequence[str], n_annotators: int) -> list[list[str]]:
    """Each annotator keeps a true category with prob 0.85 and adds a random one with prob 0.1 (at most 4)."""
    out = []
    for _ in range(n_annotators):
        picked = [c for c in truth if rng.random() < 0.85]
        if rng.random() < 0.1:
            extra = _NAMES[int(rng.choice(len(_NAMES), p=_WEIGHTS / _WEIGHTS.sum()))]
            if len(picked) < 4:  # keep 1-4 categories per annotator; draw anyway so seeds keep their stream
                picked.append(extra)
        if not picked:
            picked = [truth[int(rng.integers(len(truth)))]]
        out.append(sorted(set(picked), key=_NAMES.index))
    return out


def _vad(rng: np.random.Generator, truth: Sequence[str]) -> list[float]:
    proto = np.mean([VAD_PROTOTYPE[c] for c in truth], axis=0)
    return [float(v) for v in np.clip(np.rint(proto + rng.normal(0, 0.8, 3)), 1, 10)]


# --------------------------------------------------------------------------- text
def _description(rng: np.random.Generator, truth: Sequence[str], gender: str, age: str,
                 spec: SyntheticSpec) -> str:
    subject, pronoun = _SUBJECTS.get((gender, age), ("The person", "They"))
    cues = [c for c in TEXT_CUES if (c in truth and rng.random() < spec.text_hit)
            or (c not in truth and rng.random() < spec.text_false)]
    sentences = [f"{pronoun if i else subject} {TEXT_CUES[c][int(rng.integers(len(TEXT_CUES[c])))]}."
                 for i, c in enumerate(rng.permutation(cues).tolist())]
    if not sentences or rng.random() < 0.5:
        action = DISTRACTOR_ACTIONS[int(rng.integers(len(DISTRACTOR_ACTIONS)))]
        sentences.insert(0, f"{subject} {action}.")
        if len(sentences) > 1:  # the first-mentioned subject keeps the noun, later ones the pronoun
            sentences[1] = sentences[1].replace(subject, pronoun, 1)
    for i in rng.choice(len(DISTRACTORS), size=int(rng.integers(1, 3)), replace=False):
        sentences.insert(int(rng.integers(1, len(sentences) + 1)), DISTRACTORS[int(i)])
    return " ".join(sentences)


# --------------------------------------------------------------------------- drawing
def _shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float,
           colour: tuple[int, int, int]) -> None:
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif kind == "diamond":
        draw.polygon([(cx, cy - r), (cx - r, cy), (cx, cy + r), (cx + r, cy)], fill=colour)
    elif kind == "cross":
        w = r / 2.5
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=colour)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=colour)
    else:
        raise ValueError(kind)


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    top, bottom = rng.integers(60, 200, 3), rng.integers(60, 200, 3)
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    pixels = top[None, None, :] * (1 - t) + bottom[None, None, :] * t
    pixels = pixels + rng.normal(0, 8, (h, w, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 7))):  # unsaturated clutter with the cues' shapes
        grey = int(rng.integers(70, 190))
        kind = ("circle", "square", "triangle", "diamond")[int(rng.integers(4))]
        _shape(draw, kind, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.04, 0.1) * min(w, h),
               (grey, grey + int(rng.integers(-10, 10)), grey))
    return image


def _person_box(rng: np.random.Generator, w: int, h: int, slot: int, n: int) -> list[float]:
    bw = rng.uniform(0.22, 0.4) * w
    bh = rng.uniform(0.45, 0.85) * h
    cx = (slot + 0.5) / n * w + rng.normal(0, 0.05 * w)
    cy = rng.uniform(bh / 2, h - bh / 2)
    return [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]


def _draw_person(rng: np.random.Generator, draw: ImageDraw.ImageDraw, box: Sequence[float],
                 body_cues: Sequence[str]) -> None:
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    skin = tuple(int(v) for v in rng.integers([150, 100, 80], [240, 190, 160]))
    cloth = tuple(int(v) for v in rng.integers(30, 150, 3))
    head_r = min(bw, bh) * 0.18
    draw.ellipse((x1 + bw / 2 - head_r, y1, x1 + bw / 2 + head_r, y1 + 2 * head_r), fill=skin)
    torso = (x1 + bw * 0.12, y1 + 2 * head_r, x2 - bw * 0.12, y2)
    draw.rectangle(torso, fill=cloth)
    for i, cat in enumerate(body_cues[:2]):  # at most two marks fit on a torso
        kind, colour = BODY_CUES[cat]
        cx = x1 + bw * (0.5 if len(body_cues) == 1 else 0.33 + 0.34 * i)
        cy = torso[1] + (torso[3] - torso[1]) * 0.35
        _shape(draw, kind, cx, cy, bw * (0.2 if len(body_cues) == 1 else 0.15), colour)


def _place_scene_cue(rng: np.random.Generator, w: int, h: int, r: float,
                     boxes: Sequence[Sequence[float]]) -> tuple[float, float]:
    best, best_overlap = (r, r), math.inf
    for _ in range(12):
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        overlap = sum(max(0.0, min(cx + r, b[2]) - max(cx - r, b[0])) * max(0.0, min(cy + r, b[3]) - max(cy - r, b[1]))
                      for b in boxes)
        if overlap < best_overlap:
            best, best_overlap = (cx, cy), overlap
        if overlap == 0:
            break
    return best


def _render(rng: np.random.Generator, w: int, h: int, boxes: Sequence[Sequence[float]],
            truths: Sequence[Sequence[str]], spec: SyntheticSpec) -> Image.Image:
    image = _background(rng, w, h)
    draw = ImageDraw.Draw(image)
    present = {c for t in truths for c in t}
    for cat, (kind, colour) in SCENE_CUES.items():
        show = rng.random() < (spec.cue_hit if cat in present else spec.cue_false)
        if show:
            r = rng.uniform(0.07, 0.1) * min(w, h)
            cx, cy = _place_scene_cue(rng, w, h, r, boxes)
            _shape(draw, kind, cx, cy, r, colour)
    for box, truth in zip(boxes, truths):
        marks = [c for c in BODY_CUES if (c in truth and rng.random() < spec.cue_hit)
                 or (c not in truth and rng.random() < spec.cue_false)]
        _draw_person(rng, draw, box, marks)
    return image


# --------------------------------------------------------------------------- generator
def _generate_image(spec: SyntheticSpec, split: str, index: int, images_dir: Path
                    ) -> tuple[ImageSpec, list[dict[str, Any]]]:
    rng = np.random.default_rng([spec.seed, ("train", "val", "test").index(split), index])
    w, h = (int(v) for v in rng.integers(spec.min_side, spec.max_side + 1, 2))
    n_persons = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
    truths = _image_labels(rng, n_persons, spec.scene_share)
    boxes = [_person_box(rng, w, h, slot, n_persons) for slot in range(n_persons)]
    image = _render(rng, w, h, boxes, truths, spec)

    folder = FOLDERS[int(rng.integers(len(FOLDERS)))]
    ext = "png" if rng.random() < spec.png else "jpg"
    filename = f"{split}_{index:06d}.{ext}"
    if rng.random() < spec.grayscale:
        image = image.convert("L")
    path = images_dir / folder / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90) if ext == "jpg" else image.save(path)

    persons, descriptions = [], []
    for p, (box, truth) in enumerate(zip(boxes, truths)):
        if rng.random() < spec.box_outside:  # stretch the box past an edge, as in the release
            side = int(rng.integers(4))
            box = list(box)
            box[side] += (-1 if side < 2 else 1) * rng.uniform(0.05, 0.3) * (w if side % 2 == 0 else h)
        if rng.random() < spec.empty_box:
            box = [w + 5.0, h + 5.0, w + 40.0, h + 60.0]
        gender = "Male" if rng.random() < 0.55 else "Female"
        age = str(rng.choice(["Adult", "Teenager", "Kid"], p=[0.8, 0.1, 0.1]))
        n_ann = 1 if split == "train" else int(rng.integers(2, 5))
        if rng.random() < spec.no_annotator:
            n_ann = 0
        annotators = _annotate(rng, truth, n_ann)
        annotator_vads = [_vad(rng, truth) for _ in range(max(n_ann, 1))]
        vad = annotator_vads[0] if split == "train" else [float(np.mean(v)) for v in zip(*annotator_vads)]
        if rng.random() < spec.nan_vad:
            vad = [vad[0], math.nan, vad[2]]
        combined = sorted({c for a in annotators for c in a}, key=_NAMES.index)
        persons.append(PersonSpec(bbox=box, annotators=annotators, annotator_vads=annotator_vads[:n_ann],
                                  combined=combined, vad=vad, gender=gender, age=age))
        descriptions.append({"folder": folder, "filename": filename, "person": p,
                             "text": _description(rng, truth, gender, age, spec)})
    return ImageSpec(filename=filename, folder=folder, width=w, height=h, persons=persons), descriptions


def _inject_defects(specs: list[ImageSpec], images_dir: Path, n: int) -> None:
    """Like the release: a few annotated images are missing and one file is not an image."""
    if len(specs) < 20 or n <= 0:
        return
    for im in specs[-n:]:
        (images_dir / im.folder / im.filename).unlink()
    for im in specs[-2 * n:-n]:
        (images_dir / im.folder / im.filename).write_bytes(b"this is not an image\n")


def generate_raw(spec: SyntheticSpec, raw_dir: Path, progress: Any = None) -> dict[str, int]:
    """Write the raw release layout into ``raw_dir`` (which must be empty); returns persons per split."""
    raw_dir = Path(raw_dir)
    images_dir = raw_dir / "emotic"
    splits: dict[str, list[ImageSpec]] = {}
    counts: dict[str, int] = {}
    with open(raw_dir / "descriptions.jsonl", "w") as described:
        for split in ("train", "val", "test"):
            specs = []
            for i in range(int(spec.images.get(split, 0))):
                im, texts = _generate_image(spec, split, i, images_dir)
                specs.append(im)
                for t in texts:
                    described.write(json.dumps(t) + "\n")
                if progress is not None:
                    progress(1)
            _inject_defects(specs, images_dir, spec.defects_per_split)
            splits[split] = specs
            counts[split] = sum(len(im.persons) for im in specs)
    write_annotations(raw_dir / "Annotations" / "Annotations.mat", splits)
    (raw_dir / "synthetic.json").write_text(json.dumps(spec.as_dict(), indent=2) + "\n")
    return counts
