"""Latent emotions of the synthetic persons, their annotations and VAD, and which cue shows each one.

The label statistics follow the EMOTIC train split (Engagement very common, Embarrassment rare,
1-4 categories per person, VAD around per-category prototypes). The modality split decides what a
model can learn from where: a category in :data:`SCENE_CUES` shows as an object in the scene (shared
by everybody in the picture), one in :data:`BODY_CUES` as a facial expression or a posture of the
person, one in ``TEXT_CUES`` (see :mod:`.text`) as a paraphrase in the description.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emotic_mm.data.categories import CATEGORIES

# Relative label frequencies, ordered roughly as in the EMOTIC train split.
FREQUENCY: dict[str, float] = {
    "Engagement": 50,
    "Happiness": 25,
    "Anticipation": 22,
    "Confidence": 14,
    "Pleasure": 12,
    "Excitement": 12,
    "Peace": 12,
    "Affection": 7,
    "Disconnection": 6,
    "Esteem": 5,
    "Doubt/Confusion": 5,
    "Sympathy": 4,
    "Yearning": 3,
    "Fatigue": 3,
    "Surprise": 3,
    "Sadness": 3,
    "Disquietment": 3,
    "Annoyance": 2,
    "Pain": 1.5,
    "Suffering": 1.5,
    "Disapproval": 1.5,
    "Sensitivity": 1.5,
    "Anger": 1.2,
    "Fear": 1.2,
    "Aversion": 1.2,
    "Embarrassment": 0.6,
}

# (valence, arousal, dominance) prototypes on the 1-10 scale.
VAD_PROTOTYPE: dict[str, tuple[float, float, float]] = {
    "Affection": (7, 5, 6),
    "Anger": (2, 8, 7),
    "Annoyance": (3, 6, 5),
    "Anticipation": (6, 6, 6),
    "Aversion": (3, 5, 5),
    "Confidence": (7, 6, 8),
    "Disapproval": (3, 5, 6),
    "Disconnection": (4, 3, 5),
    "Disquietment": (3, 6, 4),
    "Doubt/Confusion": (4, 5, 4),
    "Embarrassment": (3, 6, 3),
    "Engagement": (6, 6, 6),
    "Esteem": (7, 5, 6),
    "Excitement": (8, 8, 7),
    "Fatigue": (4, 2, 4),
    "Fear": (2, 8, 2),
    "Happiness": (8, 6, 7),
    "Pain": (2, 6, 3),
    "Peace": (7, 2, 6),
    "Pleasure": (8, 5, 7),
    "Sadness": (2, 3, 3),
    "Sensitivity": (5, 4, 4),
    "Suffering": (2, 5, 3),
    "Surprise": (6, 8, 5),
    "Sympathy": (6, 4, 5),
    "Yearning": (5, 5, 4),
}

# Scene cues: a small textured object somewhere among the clutter (image-level categories).
SCENE_CUES: dict[str, str] = {
    "Peace": "plant",  # a potted plant
    "Excitement": "balloons",  # a bunch of balloons on strings
    "Fear": "shadow",  # a looming shadow of a figure on the backdrop
    "Suffering": "wheelchair",
    "Pleasure": "cake",
    "Affection": "heart",  # a heart-shaped cushion or sign
    "Disconnection": "laptop",  # an open laptop with a lit screen
    "Engagement": "board",  # a checkered game board with pieces
}
# Body cues: a facial expression (a few pixels at the model's resolution) or a posture of the person.
BODY_CUES: dict[str, str] = {
    "Happiness": "smile",  # mouth corners up
    "Surprise": "gasp",  # open round mouth, raised brows, wide eyes
    "Anger": "scowl",  # brows down and in, pressed lips
    "Sadness": "tears",  # tears under the eyes, mouth corners down, brows up in the middle
    "Fatigue": "slump",  # head sunk, shoulders dropped, arms hanging
    "Pain": "hand_on_head",  # one hand holding the head, the other the stomach
    "Confidence": "arms_raised",  # both arms up in a V
    "Aversion": "arms_crossed",
    "Embarrassment": "hands_on_face",
}
FACE_CUES = ("smile", "gasp", "scowl", "tears")
POSTURE_CUES = ("slump", "hand_on_head", "arms_raised", "arms_crossed", "hands_on_face")

NAMES = list(CATEGORIES)
_WEIGHTS = np.array([FREQUENCY[c] for c in NAMES], dtype=np.float64)
_P = _WEIGHTS / _WEIGHTS.sum()


def sample_categories(rng: np.random.Generator) -> list[str]:
    k = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1]))
    idx = rng.choice(len(NAMES), size=k, replace=False, p=_P)
    return [NAMES[i] for i in sorted(idx)]


def image_labels(rng: np.random.Generator, n_persons: int, share: float) -> list[list[str]]:
    """Latent categories per person; scene categories are shared within an image with prob ``share``."""
    first = sample_categories(rng)
    labels = [first]
    scene_of_first = [c for c in first if c in SCENE_CUES]
    for _ in range(n_persons - 1):
        own = sample_categories(rng)
        if rng.random() < share:
            own = [c for c in own if c not in SCENE_CUES] + scene_of_first
            if not own:
                own = sample_categories(rng)
        labels.append(sorted(set(own), key=NAMES.index)[:4])
    return labels


def annotate(rng: np.random.Generator, truth: Sequence[str], n_annotators: int) -> list[list[str]]:
    """Each annotator keeps a true category with prob 0.85 and adds a random one with prob 0.1 (at most 4)."""
    out = []
    for _ in range(n_annotators):
        picked = [c for c in truth if rng.random() < 0.85]
        if rng.random() < 0.1:
            extra = NAMES[int(rng.choice(len(NAMES), p=_P))]
            if len(picked) < 4:  # keep 1-4 categories per annotator; draw anyway so seeds keep their stream
                picked.append(extra)
        if not picked:
            picked = [truth[int(rng.integers(len(truth)))]]
        out.append(sorted(set(picked), key=NAMES.index))
    return out


def vad(rng: np.random.Generator, truth: Sequence[str]) -> list[float]:
    proto = np.mean([VAD_PROTOTYPE[c] for c in truth], axis=0)
    return [float(v) for v in np.clip(np.rint(proto + rng.normal(0, 0.8, 3)), 1, 10)]


def shown(
    rng: np.random.Generator, cues: dict[str, str], present: Sequence[str], hit: float, false: float
) -> list[str]:
    """The cues drawn: each category's cue with prob ``hit`` if present, ``false`` if absent (noisy cues)."""
    return [cue for cat, cue in cues.items() if rng.random() < (hit if cat in present else false)]


# How many pixels each kind of cue changes in the view the default image encoder works on (body 128 x
# 128, context 160 x 160; stored at prepare's 128 / 224), and the framing it is measured in: a facial
# expression in a close-up (a mouth, brows, tears: readable, as a face in a close-up photograph is), a
# posture in a wide shot (limbs move), a scene object in the context view (an object at its real size
# next to the people, among clutter of the same sizes). Checked by tests/synthetic/test_synthetic.py (median
# over people and scenes drawn with and without the cue).
CUE_SCALE: dict[str, tuple[str, str, int, int]] = {
    **{cue: ("body", "close", 150, 800) for cue in FACE_CUES},
    **{cue: ("body", "wide", 1000, 6000) for cue in POSTURE_CUES},
    **{cue: ("context", "", 60, 800) for cue in SCENE_CUES.values() if cue != "shadow"},
    "shadow": (
        "context",
        "",
        1000,
        4000,
    ),  # a person-sized shadow darkens a wall; it paints no colour of its own
}
