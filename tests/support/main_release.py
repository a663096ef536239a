"""The releases most data tests read: MAIN_SPEC (every kind of image and every skip reason) with the
store it must give, and PERM_SPEC (nothing skipped; its labels can be rotated with ``permuted_labels``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from support.releases import Img, person, vperson

NAN = math.nan


@dataclass
class Expected:
    """One kept person as the store must hold it."""

    rel: str
    person: int
    image_size: tuple[int, int]  # annotated
    box: tuple[int, int, int, int]
    categories: tuple[str, ...]  # as annotated (CSV order)
    vad: tuple[float, float, float]
    gender: str
    age: str
    votes: dict[str, int] | None = None


MAIN_SPEC: dict[str, list[Img]] = {
    "train": [
        Img(
            "train_rgb.jpg",
            "mscoco/images",
            "rgb_jpg",
            [
                person([2.7, 3.2, 20.9, 28.5], ["Engagement", "Happiness"], (6, 5, 7)),
                person([-5.5, -3.0, 55.0, 41.0], ["Peace"], (5.5, 4, 6.25), "Female", "Teenager"),  # outside
            ],
        ),
        Img(
            "train_palette.png",
            "framesdb/images",
            "palette_png",
            [
                person([10, 5, 30, 25], ["Sadness", "Fear", "Pain"], (2, 6, 3), "Female", "Kid"),
            ],
        ),
        Img(
            "train_gray.jpg",
            "ade20k/images",
            "gray_jpg",
            [
                person([1, 1, 20, 20], ["Fatigue"], (4, NAN, 4)),  # nan_vad
                person([0, 0, 12.99, 9.5], ["Affection"], (1, 10, 3), "Male", "Kid"),
            ],
        ),
        Img("train_missing.jpg", "mscoco/images", "missing", [person([1, 1, 10, 10], ["Esteem"])]),
        Img(
            "train_bad.jpg",
            "emodb_small/images",
            "bad",
            [
                person([1, 1, 10, 10], ["Esteem"]),
                person([5, 5, 20, 20], ["Pleasure"]),
            ],
        ),
        # file is 40x30 but annotated 36x28: the clamp uses the annotated size
        Img(
            "train_small.jpg",
            "mscoco/images",
            "rgb_jpg",
            annotated=(36, 28),
            persons=[
                person([10.4, 5.6, 39.6, 29.9], ["Excitement"], (8, 8, 7)),
                person([37, 29, 60, 50], ["Anger"]),  # entirely outside the annotated size → empty_crop
                person([2, 2, 20, 20], []),  # no annotator → no_category
            ],
        ),
    ],
    "val": [
        Img(
            "val_a.jpg",
            "mscoco/images",
            "rgb_jpg",
            [
                # combined labels are the label even where they differ from the annotators' union
                vperson(
                    [3, 4, 18, 27],
                    [["Engagement", "Happiness"], ["Engagement"], ["Happiness", "Surprise"]],
                    (6.5, 5.25, 7),
                    combined=["Engagement", "Happiness"],
                ),
                vperson([5, 5, 15, 15], [], (NAN, NAN, NAN), combined=[]),  # zero annotators → no_category
                vperson(
                    [30, -4, 48, 20],
                    [["Anticipation"], ["Anticipation", "Confidence"]],
                    (7, 6, 8),
                    gender="Male",
                    age="Teenager",
                ),
            ],
        ),
        Img(
            "val_b.png",
            "framesdb/images",
            "rgba_png",
            [
                vperson([0, 0, 40, 30], [["Doubt/Confusion"]], (4, 5, 4)),
                vperson(
                    [20.5, 10.5, 39.5, 29.5],
                    [["Yearning"], ["Yearning", "Sympathy"], ["Sympathy"], ["Yearning"]],
                    (5, 5, 4.5),
                    gender="Male",
                    age="Kid",
                ),
            ],
        ),
        Img(
            "val_nan.jpg",
            "ade20k/images",
            "rgb_jpg",
            [
                vperson([2, 2, 30, 20], [["Pleasure"], ["Pleasure"]], (7, 5, NAN)),  # nan_vad
            ],
        ),
    ],
    "test": [
        Img(
            "test_gray.png",
            "emodb_small/images",
            "gray_png",
            [
                vperson([5, 5, 45, 25], [["Embarrassment"], ["Embarrassment"]], (3, 6, 3)),
            ],
        ),
        Img(
            "test_missing.png",
            "mscoco/images",
            "missing",
            [vperson([1, 1, 9, 9], [["Suffering"]], (2, 5, 3))],
        ),
        Img("test_c.jpg", "ade20k/images", "rgb_jpg", [vperson([1, 1, 9, 9], [["Boredom"]], (2, 5, 3))]),
    ],
}

MAIN_EXPECTED: dict[str, list[Expected]] = {
    "train": [
        Expected(
            "mscoco/images/train_rgb.jpg",
            0,
            (40, 30),
            (2, 3, 20, 28),
            ("Engagement", "Happiness"),
            (6, 5, 7),
            "Male",
            "Adult",
        ),
        Expected(
            "mscoco/images/train_rgb.jpg",
            1,
            (40, 30),
            (0, 0, 40, 30),
            ("Peace",),
            (5.5, 4, 6.25),
            "Female",
            "Teenager",
        ),
        Expected(
            "framesdb/images/train_palette.png",
            0,
            (40, 30),
            (10, 5, 30, 25),
            ("Sadness", "Fear", "Pain"),
            (2, 6, 3),
            "Female",
            "Kid",
        ),
        Expected(
            "ade20k/images/train_gray.jpg",
            1,
            (40, 30),
            (0, 0, 12, 9),
            ("Affection",),
            (1, 10, 3),
            "Male",
            "Kid",
        ),
        Expected(
            "mscoco/images/train_small.jpg",
            0,
            (36, 28),
            (10, 5, 36, 28),
            ("Excitement",),
            (8, 8, 7),
            "Male",
            "Adult",
        ),
    ],
    "val": [
        Expected(
            "mscoco/images/val_a.jpg",
            0,
            (40, 30),
            (3, 4, 18, 27),
            ("Engagement", "Happiness"),
            (6.5, 5.25, 7),
            "Female",
            "Adult",
            votes={"Engagement": 2, "Happiness": 2, "Surprise": 1},
        ),
        Expected(
            "mscoco/images/val_a.jpg",
            2,
            (40, 30),
            (30, 0, 40, 20),
            ("Anticipation", "Confidence"),
            (7, 6, 8),
            "Male",
            "Teenager",
            votes={"Anticipation": 2, "Confidence": 1},
        ),
        Expected(
            "framesdb/images/val_b.png",
            0,
            (40, 30),
            (0, 0, 40, 30),
            ("Doubt/Confusion",),
            (4, 5, 4),
            "Female",
            "Adult",
            votes={"Doubt/Confusion": 1},
        ),
        Expected(
            "framesdb/images/val_b.png",
            1,
            (40, 30),
            (20, 10, 39, 29),
            ("Yearning", "Sympathy"),
            (5, 5, 4.5),
            "Male",
            "Kid",
            votes={"Yearning": 3, "Sympathy": 2},
        ),
    ],
    "test": [
        Expected(
            "emodb_small/images/test_gray.png",
            0,
            (40, 30),
            (5, 5, 40, 25),
            ("Embarrassment",),
            (3, 6, 3),
            "Female",
            "Adult",
            votes={"Embarrassment": 2},
        ),
    ],
}

MAIN_SKIPPED: dict[str, dict[str, int]] = {
    "train": {
        "missing_image": 1,
        "undecodable_image": 2,
        "empty_crop": 1,
        "no_category": 1,
        "nan_vad": 1,
        "unknown_category": 0,
    },
    "val": {
        "missing_image": 0,
        "undecodable_image": 0,
        "empty_crop": 0,
        "no_category": 1,
        "nan_vad": 1,
        "unknown_category": 0,
    },
    "test": {
        "missing_image": 1,
        "undecodable_image": 0,
        "empty_crop": 0,
        "no_category": 0,
        "nan_vad": 0,
        "unknown_category": 1,
    },
}
MAIN_PERSONS = {"train": 11, "val": 6, "test": 3}


PERM_SPEC: dict[str, list[Img]] = {
    "train": [
        Img(
            "p_train_a.jpg",
            "mscoco/images",
            "rgb_jpg",
            [
                person([2, 2, 18, 28], ["Engagement", "Happiness"], (6, 5, 7)),
                person([20, 3, 39, 29], ["Fear"], (2, 8, 2), "Female", "Kid"),
            ],
        ),
        Img(
            "p_train_b.png",
            "framesdb/images",
            "rgb_png",
            [person([5, 0, 35, 30], ["Peace", "Pleasure"], (8, 2, 6))],
        ),
    ],
    "val": [
        Img(
            "p_val_a.jpg",
            "ade20k/images",
            "rgb_jpg",
            [
                vperson([0, 0, 20, 30], [["Sadness"], ["Sadness", "Pain"]], (2, 3, 3)),
                vperson(
                    [18, 2, 40, 28], [["Excitement"], ["Excitement"], ["Surprise"]], (8, 8, 6), gender="Male"
                ),
            ],
        ),
        Img(
            "p_val_b.jpg", "emodb_small/images", "gray_jpg", [vperson([4, 4, 30, 26], [["Anger"]], (2, 8, 7))]
        ),
    ],
    "test": [
        Img(
            "p_test_a.png",
            "mscoco/images",
            "rgb_png",
            [
                vperson([1, 1, 21, 29], [["Confidence"], ["Confidence", "Esteem"]], (7, 6, 8)),
                vperson(
                    [22, 4, 38, 27], [["Fatigue"], ["Fatigue"]], (4, 2, 4), gender="Male", age="Teenager"
                ),
            ],
        ),
    ],
}
