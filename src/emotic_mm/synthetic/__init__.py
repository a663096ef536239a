"""A seeded, offline stand-in for the EMOTIC release, written in the release's own *raw* layout.

It produces ``Annotations/Annotations.mat`` with the real nesting, JPEG/PNG files under
``emotic/<folder>/`` and a ``descriptions.jsonl``, which ``prepare`` then converts with the very same
code path as the real release (``text=file``). It writes with :mod:`emotic_mm.data`'s release writer;
:mod:`emotic_mm.data` never imports it (the ``prepare`` stage calls both).

Why it is a fair stand-in for learning and attacking:

* the pictures have the statistics of photographs: backdrops and materials are crops of real photos
  shipped with scikit-image and 1/f textures, people have a head with a real (LFW) face texture, hair,
  clothes, arms and legs in varied poses, sizes and overlaps, among clutter, under uneven light, with
  blur, noise and JPEG compression (:mod:`.scene`, :mod:`.people`, :mod:`.textures`);
* pictures are framed as photographers frame people (:data:`.people.SHOT_FRAMING`): close-ups whose
  faces are large enough to read an expression, medium shots, and wide shots whose faces are not;
* label statistics are EMOTIC-like (:mod:`.labels`): 1-4 categories per person with a skewed
  frequency, VAD around per-category prototypes, 1-3 persons per image, several source folders,
  varied image sizes, boxes that sometimes leave the image, and a few of the release's imperfections
  (a missing file, an undecodable file, NaN VAD, persons without annotators);
* the signal is split across modalities, with redundant, noisy cues: a category can show as the place
  (:mod:`.places`: a party, a beach, a hospital ward, a street at night, ...), an object in the scene
  (:data:`SCENE_CUES`), a facial expression or a posture of the person (:data:`BODY_CUES`) and a
  paraphrase in the description (:data:`TEXT_CUES`); every cue is missed or falsely present with a
  configurable probability;
* descriptions say what is visible and specific to the person (clothes and their colour, hair, a held
  object, the setting), so picture and text share instance-level content, and never contain the
  category names (a test checks this).
"""

from emotic_mm.synthetic.generate import FOLDERS, SyntheticSpec, draw_picture, generate_image, generate_raw
from emotic_mm.synthetic.labels import (
    BODY_CUES,
    CUE_SCALE,
    FACE_CUES,
    FREQUENCY,
    POSTURE_CUES,
    SCENE_CUES,
    VAD_PROTOTYPE,
)
from emotic_mm.synthetic.text import DISTRACTORS, TEXT_CUES

__all__ = [
    "BODY_CUES",
    "CUE_SCALE",
    "DISTRACTORS",
    "FACE_CUES",
    "FOLDERS",
    "FREQUENCY",
    "POSTURE_CUES",
    "SCENE_CUES",
    "TEXT_CUES",
    "VAD_PROTOTYPE",
    "SyntheticSpec",
    "draw_picture",
    "generate_image",
    "generate_raw",
]
