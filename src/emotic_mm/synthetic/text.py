"""Descriptions: what a captioner would say about a person — what they wear, their hair, what they
hold, where they are — plus paraphrases of some emotions, never the emotion words themselves.

The visible content (:func:`appearance`, :func:`setting`) is read off the drawn person and scene, so
the description and the picture of the same person share instance-level content, as a real caption
does; a joint embedding has something to align. The emotion content (:data:`TEXT_CUES`) is the text
modality's own signal, noisy like every cue.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emotic_mm.synthetic.people import Look

# Text cues: paraphrases completing "<subject> ..." — never the category name or its word forms.
TEXT_CUES: dict[str, tuple[str, ...]] = {
    "Anticipation": (
        "is waiting for what comes next",
        "keeps glancing at the door as if expecting someone",
        "is counting down the minutes",
        "leans forward, ready for the start",
    ),
    "Doubt/Confusion": (
        "frowns at a map that makes no sense",
        "scratches their head over the instructions",
        "is not sure which way to go",
        "stares at the screen without understanding it",
    ),
    "Yearning": (
        "gazes at the horizon, missing home",
        "looks at an old photograph for a long time",
        "wishes they were somewhere else",
        "stares longingly through the shop window",
    ),
    "Sympathy": (
        "puts a hand on a friend's shoulder",
        "listens kindly to someone who lost their job",
        "offers comfort to a crying child",
        "nods softly while another person talks about a loss",
    ),
    "Esteem": (
        "looks up to the speaker with admiration",
        "applauds the winner respectfully",
        "watches the mentor with deep respect",
        "bows to the elder",
    ),
    "Disquietment": (
        "paces nervously around the room",
        "bites their nails while waiting for news",
        "cannot sit still",
        "keeps checking the phone, restless",
    ),
    "Annoyance": (
        "rolls their eyes at the loud neighbour",
        "sighs at the long queue",
        "is irritated by the constant noise",
        "taps the counter impatiently",
    ),
    "Disapproval": (
        "shakes their head at the mess",
        "crosses their arms and frowns at the decision",
        "points a finger at the broken rule",
        "gives a stern look to the latecomer",
    ),
    "Sensitivity": (
        "is moved to tears by the song",
        "reacts softly to every small remark",
        "holds the fragile gift very carefully",
        "is touched by the kind words",
    ),
    "Engagement": (
        "is focused on the game",
        "concentrates on the task in front of them",
        "takes part in the discussion",
        "is absorbed in the work",
    ),
    "Happiness": ("is smiling broadly", "laughs with friends", "beams with joy", "grins from ear to ear"),
    "Pleasure": (
        "enjoys a warm meal",
        "relaxes in the sun with a drink",
        "savours the dessert",
        "sinks into a comfortable chair with a sigh of delight",
    ),
    "Sadness": (
        "has tears in their eyes",
        "looks down with a heavy heart",
        "sits alone, crying quietly",
        "mourns at the grave",
    ),
    "Affection": (
        "hugs a loved one tightly",
        "holds hands with a partner",
        "kisses the baby's forehead",
        "cuddles the puppy",
    ),
    "Anger": (
        "shouts furiously at the referee",
        "slams a fist on the table",
        "is red in the face with rage",
        "clenches their jaw, furious",
    ),
    "Surprise": (
        "gasps at the unexpected gift",
        "opens their mouth wide in astonishment",
        "jumps back, startled",
        "raises their eyebrows in shock",
    ),
    "Disconnection": (
        "stares blankly into space",
        "ignores everyone around them",
        "is lost in thought, far away",
        "scrolls the phone, detached from the group",
    ),
}
# Sentences about nothing visible (a captioner's filler); they carry no signal.
DISTRACTORS: tuple[str, ...] = (
    "It looks like late afternoon.",
    "The photo is a little grainy.",
    "It seems to be a weekend.",
    "The picture was taken a few years ago.",
    "Other people are just outside the frame.",
    "The shot is slightly out of focus.",
    "It might be early spring.",
)
# Templates of the visible content ({S} subject or pronoun, {P} pronoun).
WEAR = (
    "{S} wears {cloth}{legs}.",
    "{S} is dressed in {cloth}{legs}.",
    "{S}, in {cloth}{legs}, is in the picture.",
)
HAIR = ("{P} has {hair} hair.", "{P} has {hair} hair, visible from afar.")
HOLD = {
    "cup": "holds a cup",
    "book": "holds a book",
    "bag": "carries a bag",
    "umbrella": "holds a closed umbrella",
    "bottle": "holds a bottle",
    "newspaper": "holds a newspaper",
}
PLACE = ("{P} is {at}.", "The picture was taken {at}.", "{P} stands {at}.")
WALL_GROUND = (
    "Behind {o} is a {wall}.",
    "{P} stands on the {ground}.",
    "{P} stands on the {ground} in front of a {wall}.",
)
_SUBJECTS = {
    ("Male", "Adult"): ("The man", "He", "him"),
    ("Female", "Adult"): ("The woman", "She", "her"),
    ("Male", "Teenager"): ("The teenage boy", "He", "him"),
    ("Female", "Teenager"): ("The teenage girl", "She", "her"),
    ("Male", "Kid"): ("The boy", "He", "him"),
    ("Female", "Kid"): ("The girl", "She", "her"),
}


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def appearance(rng: np.random.Generator, look: Look, held_visible: bool) -> list[str]:
    """Sentences about the clothes, hair and held object of the person as drawn ({S}/{P} placeholders)."""
    pattern = "" if look.pattern == "plain" else f"{look.pattern} "
    article = "an" if (pattern or look.cloth)[0] in "aeiou" else "a"
    if look.dress:
        cloth, legs = f"{article} {pattern}{look.cloth} dress", ""
    else:
        legs = "" if look.shot == "close" else f" and {look.trousers} trousers"  # a close-up shows no legs
        cloth = f"{article} {pattern}{look.cloth} {look.garment}"
    out = [_pick(rng, WEAR).format(S="{S}", cloth=cloth, legs=legs)]
    hair = f"{'long' if look.hair_long else 'short'} {look.hair}" if look.hair else ""
    if hair and rng.random() < 0.8:
        out.append(_pick(rng, HAIR).format(P="{P}", hair=hair))
    elif not hair and rng.random() < 0.8:
        out.append("{P} is bald.")
    if held_visible and look.held is not None:
        out.append("{P} " + HOLD[look.held] + ".")
    return out


def setting(rng: np.random.Generator, scene: dict[str, str]) -> str:
    """One sentence about where the picture was taken ({P}/{O} placeholders)."""
    if "place" in scene:
        return _pick(rng, PLACE).format(P="{P}", at=scene.get("at", f"in {scene['place']}"))
    return _pick(rng, WALL_GROUND).format(P="{P}", o="{O}", wall=scene["wall"], ground=scene["ground"])


def description(
    rng: np.random.Generator,
    truth: Sequence[str],
    look: Look,
    held_visible: bool,
    scene: dict[str, str],
    text_hit: float,
    text_false: float,
) -> str:
    """The person's description: visible content, emotion paraphrases (noisy), the setting, filler."""
    subject, pronoun, obj = _SUBJECTS.get(
        (look.gender, look.age), ("The person", "This person", "this person")
    )
    cues = [
        c
        for c in TEXT_CUES
        if (c in truth and rng.random() < text_hit) or (c not in truth and rng.random() < text_false)
    ]
    emotion = ["{S} " + _pick(rng, TEXT_CUES[c]) + "." for c in rng.permutation(cues).tolist()]
    visible = appearance(rng, look, held_visible)
    place = [setting(rng, scene)] if rng.random() < 0.85 else []
    body = visible + emotion if rng.random() < 0.6 else emotion + visible
    sentences = body[:1] + place + body[1:] if rng.random() < 0.3 else body + place
    if rng.random() < 0.35:
        sentences.insert(int(rng.integers(1, len(sentences) + 1)), _pick(rng, DISTRACTORS))
    out = []
    named = False
    for s in sentences:
        if not named and s.startswith(("{S}", "{P}")):
            s = s.replace("{S}", subject, 1).replace("{P}", subject, 1)
            named = True
        s = s.replace("{S}", pronoun).replace("{P}", pronoun).replace("{O}", obj)
        out.append(s)
    return " ".join(out)
