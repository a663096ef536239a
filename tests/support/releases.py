"""Tiny EMOTIC-layout releases written by the tests: persons, images of every kind, the .mat file.

Images are 40x30 px by default, so converting a release takes a fraction of a second.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from emotic_mm.data.emotic_mat import ImageSpec, PersonSpec, write_annotations

CONTEXT, BODY = 224, 128  # the stored view sizes


def person(
    bbox: Sequence[float],
    cats: Sequence[str],
    vad: Sequence[float] = (5, 5, 5),
    gender: str = "Male",
    age: str = "Adult",
) -> PersonSpec:
    """A train person: one annotator with ``cats`` (none at all when ``cats`` is empty)."""
    annotators = [list(cats)] if cats else []
    return PersonSpec(
        bbox=list(bbox),
        annotators=annotators,
        annotator_vads=[list(vad)] * len(annotators),
        combined=list(cats),
        vad=list(vad),
        gender=gender,
        age=age,
    )


def vperson(
    bbox: Sequence[float],
    annotators: Sequence[Sequence[str]],
    vad: Sequence[float],
    combined: Sequence[str] | None = None,
    annotator_vads: Sequence[Sequence[float]] | None = None,
    gender: str = "Female",
    age: str = "Adult",
) -> PersonSpec:
    """A val/test person: per-annotator lists, combined labels (default: their union in order) and VAD."""
    if combined is None:
        combined = list(dict.fromkeys(c for a in annotators for c in a))
    if annotator_vads is None:
        annotator_vads = [[1.0, 2.0, 3.0]] * len(annotators)  # deliberately unlike the combined VAD
    return PersonSpec(
        bbox=list(bbox),
        annotators=[list(a) for a in annotators],
        annotator_vads=[list(v) for v in annotator_vads],
        combined=list(combined),
        vad=list(vad),
        gender=gender,
        age=age,
    )


@dataclass
class Img:
    """One image of a test release; ``kind`` says what file (if any) is written."""

    filename: str
    folder: str
    kind: str  # rgb_jpg | rgb_png | palette_png | rgba_png | gray_jpg | gray_png | bad | missing
    persons: Sequence[PersonSpec]
    size: tuple[int, int] = (40, 30)  # of the file
    annotated: tuple[int, int] | None = None  # image_size in the .mat (default: the file's size)
    seed: int | None = None

    @property
    def rel(self) -> str:
        return f"{self.folder}/{self.filename}"


def _pixels(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A smooth-ish random RGB picture, so bilinear resizing has something to interpolate."""
    w, h = size
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, h // 5), max(2, w // 5), 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), dtype=np.int16)
    noise = rng.integers(-20, 21, (h, w, 3))
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def write_image(path: Path, kind: str, size: tuple[int, int], seed: int) -> None:
    """Write one seeded picture as ``kind`` (nothing for ``missing``, junk bytes for ``bad``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(_pixels(seed, size), "RGB")
    if kind == "missing":
        return
    if kind == "bad":
        path.write_bytes(b"this is not an image, only some bytes\n" * 3)
    elif kind == "rgb_jpg":
        rgb.save(path, format="JPEG", quality=92)
    elif kind == "rgb_png":
        rgb.save(path, format="PNG")
    elif kind == "palette_png":
        rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(path, format="PNG")
    elif kind == "rgba_png":
        rgba = rgb.copy()
        rgba.putalpha(Image.fromarray(_pixels(seed + 1, size)[:, :, 0]))
        rgba.save(path, format="PNG")
    elif kind == "gray_jpg":
        rgb.convert("L").save(path, format="JPEG", quality=92)
    elif kind == "gray_png":
        rgb.convert("L").save(path, format="PNG")
    else:
        raise ValueError(kind)


def make_release(root: Path, spec: dict[str, Sequence[Img]]) -> Path:
    """Write ``root/emotic/<folder>/<file>`` and ``root/Annotations/Annotations.mat``; returns ``root``."""
    root = Path(root)
    (root / "emotic").mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    splits: dict[str, list[ImageSpec]] = {}
    for split, images in spec.items():
        splits[split] = []
        for im in images:
            if im.rel not in written:
                seed = im.seed if im.seed is not None else zlib.crc32(im.rel.encode())
                write_image(root / "emotic" / im.folder / im.filename, im.kind, im.size, seed)
                written.add(im.rel)
            w, h = im.annotated or im.size
            splits[split].append(
                ImageSpec(filename=im.filename, folder=im.folder, width=w, height=h, persons=list(im.persons))
            )
    for split in ("train", "val", "test"):
        splits.setdefault(split, [])
    write_annotations(root / "Annotations" / "Annotations.mat", splits)
    return root


def permuted_labels(spec: dict[str, list[Img]]) -> dict[str, list[Img]]:
    """The same images, boxes and metadata, with every person's labels rotated to the next person."""
    out: dict[str, list[Img]] = {}
    for split, images in spec.items():
        persons = [p for im in images for p in im.persons]
        labels = [(p.annotators, p.annotator_vads, p.combined, p.vad) for p in persons]
        labels = labels[1:] + labels[:1]
        it = iter(labels)
        new_images = []
        for im in images:
            new_persons = []
            for p in im.persons:
                annotators, annotator_vads, combined, vad = next(it)
                new_persons.append(
                    PersonSpec(
                        bbox=p.bbox,
                        annotators=annotators,
                        annotator_vads=annotator_vads,
                        combined=combined,
                        vad=vad,
                        gender=p.gender,
                        age=p.age,
                    )
                )
            new_images.append(
                Img(im.filename, im.folder, im.kind, new_persons, im.size, im.annotated, im.seed)
            )
        out[split] = new_images
    return out


def expected_views(path: Path, box: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Context and body computed with PIL directly: RGB, whole image → 224², clamped crop → 128²."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    context = np.asarray(rgb.resize((CONTEXT, CONTEXT), Image.BILINEAR), dtype=np.uint8)
    body = np.asarray(rgb.crop(tuple(box)).resize((BODY, BODY), Image.BILINEAR), dtype=np.uint8)
    return context, body
