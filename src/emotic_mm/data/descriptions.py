"""What a description source sees about a person and what it gives back: the contract every ``text=``
source meets, in a module of its own so that each source imports it and none imports another."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

SOURCE_FILE = "file"
SOURCE_TEMPLATE = "template"
SOURCE_CAPTIONER = "captioner"


@dataclass(frozen=True)
class PersonMeta:
    """What a description source may know about a person: never its emotion labels."""

    folder: str
    filename: str
    person_index: int
    image_width: int
    image_height: int
    bbox: tuple[float, float, float, float]  # as annotated (may leave the image)
    box: tuple[int, int, int, int]  # clamped
    gender: str
    age: str


@dataclass
class Descriptions:
    """One text per person, the source each came from, and how many came from each source."""

    texts: list[str]
    sources: list[str]
    counts: dict[str, int]


Describer = Callable[[Sequence[PersonMeta]], Descriptions]


def count_sources(sources: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in sources:
        counts[s] = counts.get(s, 0) + 1
    return counts
