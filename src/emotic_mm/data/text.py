"""Descriptions: one sentence-level text per person, from a file, a captioning model, or a template.

EMOTIC ships no text, so ``prepare`` makes one description per person. None of the sources may see the
emotion labels on real data: describers receive a :class:`PersonMeta` (metadata only) and, for the
captioner, pixels — the labels are not part of either.

Each source is a class that a ``text`` config block names with ``_target_`` (``configs/text/``) and that
:func:`make_describer` builds with Hydra's ``instantiate``, like models and optimizers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from emotic_mm.data.descriptions import (SOURCE_CAPTIONER, SOURCE_FILE, SOURCE_TEMPLATE, Describer,
                                         Descriptions, PersonMeta, count_sources)
from emotic_mm.errors import DataFormatError

__all__ = ["SOURCE_CAPTIONER", "SOURCE_FILE", "SOURCE_TEMPLATE", "TEXT_COLUMNS", "Describer",
           "DescriptionFile", "Descriptions", "FileDescriber", "PersonMeta", "TemplateDescriber",
           "make_describer", "template_description"]

TEXT_COLUMNS = ("text", "description", "caption")
# the _target_ of a text block saved without one (in a store's manifest or a checkpoint), by its source
SOURCE_TARGETS = {SOURCE_FILE: "emotic_mm.data.text.FileDescriber",
                  SOURCE_TEMPLATE: "emotic_mm.data.text.TemplateDescriber",
                  SOURCE_CAPTIONER: "emotic_mm.data.captioner.CaptionDescriber"}


# --------------------------------------------------------------------------- template
_SOURCES = {
    "mscoco": "an everyday photo from MS COCO",
    "ade20k": "a scene photo from ADE20K",
    "framesdb": "a film frame",
    "emodb_small": "a web photo found by an image search",
}
_WHO = {
    ("male", "adult"): "adult man", ("female", "adult"): "adult woman",
    ("male", "teenager"): "teenage boy", ("female", "teenager"): "teenage girl",
    ("male", "kid"): "young boy", ("female", "kid"): "young girl",
}
_AGE_ONLY = {"adult": "adult", "teenager": "teenager", "kid": "child"}


def template_description(meta: PersonMeta) -> str:
    """Sentences from metadata only: who (gender, age group), where from, box size and position."""
    gender, age = meta.gender.strip().lower(), meta.age.strip().lower()
    who = _WHO.get((gender, age), _AGE_ONLY.get(age, "person"))
    article = "An" if who[0] in "aeiou" else "A"
    source = _SOURCES.get(meta.folder.split("/")[0], f"a picture from {meta.folder.split('/')[0]}")
    x1, y1, x2, y2 = meta.box
    area = max(0, x2 - x1) * max(0, y2 - y1) / max(1, meta.image_width * meta.image_height)
    size = "a small" if area < 0.1 else "a medium" if area < 0.35 else "a large"
    centre = (x1 + x2) / 2 / max(1, meta.image_width)
    side = "on the left" if centre < 1 / 3 else "on the right" if centre > 2 / 3 else "in the middle"
    bx1, by1, bx2, by2 = meta.bbox
    outside = bx1 < 0 or by1 < 0 or bx2 > meta.image_width or by2 > meta.image_height
    cut = ", partly outside the frame" if outside else ""
    return f"{article} {who} in {source}. The person takes up {size} part of the picture, {side}{cut}."


class TemplateDescriber:
    """``text=template``: :func:`template_description` for every person."""

    def __init__(self, source: str = SOURCE_TEMPLATE, path: Any = None,
                 images_dir: Path | None = None) -> None:
        pass  # path: data=synthetic sets text.path for whichever source is chosen; a template reads none

    def __call__(self, metas: Sequence[PersonMeta]) -> Descriptions:
        texts = [template_description(m) for m in metas]
        return Descriptions(texts, [SOURCE_TEMPLATE] * len(texts), {SOURCE_TEMPLATE: len(texts)})


# --------------------------------------------------------------------------- file
class DescriptionFile:
    """Descriptions keyed by (folder, filename[, person]) from a CSV or JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        frame = self._read(self.path)
        text_column = next((c for c in TEXT_COLUMNS if c in frame.columns), None)
        missing = [c for c in ("folder", "filename") if c not in frame.columns]
        if missing or text_column is None:
            raise DataFormatError(
                f"{self.path}: descriptions need columns folder, filename, text (and optionally person); "
                f"found {', '.join(map(str, frame.columns)) or 'none'}"
            )
        self._by_person: dict[tuple[str, str, int], str] = {}
        self._by_image: dict[tuple[str, str], str] = {}
        has_person = "person" in frame.columns
        for row in frame.itertuples(index=False):
            row_d = row._asdict()
            value = row_d[text_column]
            if value is None or (isinstance(value, float) and value != value):  # empty cell: missing, not "nan"
                continue
            text = str(value).strip()
            if not text:
                continue
            key = (str(row_d["folder"]), str(row_d["filename"]))
            person = row_d.get("person") if has_person else None
            if person is None or pd.isna(person):
                self._by_image[key] = text
            else:
                self._by_person[(*key, int(person))] = text

    @staticmethod
    def _read(path: Path) -> pd.DataFrame:
        if not path.is_file():
            raise DataFormatError(f"{path}: descriptions file not found (text.path)")
        try:
            if path.suffix.lower() in (".jsonl", ".json"):
                with open(path) as f:
                    return pd.DataFrame([json.loads(line) for line in f if line.strip()])
            return pd.read_csv(path)
        except (ValueError, pd.errors.ParserError) as exc:
            raise DataFormatError(f"{path}: cannot parse descriptions ({exc})") from None

    def lookup(self, meta: PersonMeta) -> str | None:
        key = (meta.folder, meta.filename)
        return self._by_person.get((*key, meta.person_index), self._by_image.get(key))


class FileDescriber:
    """``text=file``: each person's entry of a :class:`DescriptionFile`; persons without one are described
    by the template (and counted as such)."""

    def __init__(self, path: Any, source: str = SOURCE_FILE, images_dir: Path | None = None) -> None:
        self.table = DescriptionFile(Path(str(path)))

    def __call__(self, metas: Sequence[PersonMeta]) -> Descriptions:
        found = [self.table.lookup(m) for m in metas]
        texts = [f if f else template_description(m) for f, m in zip(found, metas)]
        sources = [SOURCE_FILE if f else SOURCE_TEMPLATE for f in found]
        return Descriptions(texts, sources, count_sources(sources))


# --------------------------------------------------------------------------- config → source
def make_describer(text_cfg: Any, images_dir: Path) -> Describer:
    """Build the configured description source once (reads the file / loads the captioner once): its
    ``_target_`` called with the block's keys and ``images_dir``. A block saved without ``_target_`` (in a
    store's manifest or a checkpoint) gets the one its ``source`` names."""
    from emotic_mm.config import instantiate_config

    block = (OmegaConf.to_container(text_cfg, resolve=True) if isinstance(text_cfg, DictConfig)
             else dict(text_cfg))
    if "_target_" not in block:
        source = str(block.get("source"))
        if source not in SOURCE_TARGETS:
            raise DataFormatError(f"text.source={source!r} is not one of file, captioner, template")
        block["_target_"] = SOURCE_TARGETS[source]
    check_trusted(str(block["_target_"]))
    return instantiate_config(OmegaConf.create(block), "text", images_dir=Path(images_dir))


def check_trusted(target: str) -> None:
    """A text block may come from a shared store's manifest or checkpoint: its ``_target_`` must be a
    builder of emotic-mm or one the user trusts (``EMOTIC_MM_TRUSTED_TARGETS``), as for checkpoints."""
    from emotic_mm.checkpoint import trusted_targets
    from emotic_mm.errors import ConfigError

    if not target.startswith(trusted_targets()):
        raise ConfigError(f"text._target_={target} is not a builder of emotic-mm; a description source of "
                          f"your own: list its module in EMOTIC_MM_TRUSTED_TARGETS")
