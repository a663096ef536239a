"""Release folder → prepared store: the one converter both ``data=emotic`` and ``data=synthetic`` use.

Reads ``<raw_dir>/Annotations/Annotations.mat`` and ``<raw_dir>/emotic/<folder>/<file>``, decodes and
resizes in ``workers`` processes (a bounded window of images in flight), streams the pixels into
preallocated ``.npy`` memory maps, then writes labels, VAD, annotator votes, descriptions, token ids,
the community converter's CSV, and ``manifest.json`` last. Everything is built in a hidden sibling
folder and renamed into place at the end, so an interrupted run never leaves a folder that looks
complete. The folder it replaces must be a store of ours (or empty, or ``overwrite``), never the
release itself; decode workers die with their parent, so a killed ``prepare`` leaves no processes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.data import emotic_mat as em
from emotic_mm.data.categories import CATEGORIES, CATEGORY_INDEX, NUM_CATEGORIES
from emotic_mm.data.images import (BODY_SIZE, CONTEXT_SIZE, EmptyCropError, ImageDecodeError, ImageTooLargeError,
                                   UnsupportedImageError, context_view, is_constant, open_rgb, person_crop)
from emotic_mm.data.npy_writer import NpyRowWriter
from emotic_mm.data.store import read_manifest
from emotic_mm.data.text import Descriptions, PersonMeta, make_describer
from emotic_mm.data.tokens import DEFAULT_MAX_LENGTH, load_tokenizer, tokenize
from emotic_mm.data.workers import spawn_pool
from emotic_mm.errors import ConfigError, DataFormatError
from emotic_mm.fsutil import atomic_dir, check_replaceable, is_within, write_json_atomic
from emotic_mm.progress import progress_bar

log = logging.getLogger(__name__)

STORE_FORMAT = "emotic-mm-store"
STORE_VERSION = 1
COMMUNITY_COLUMNS = ("Index", "Folder", "Filename", "Image Size", "BBox", "Categorical_Labels",
                     "Continuous_Labels", "Gender", "Age")
MAX_VIEW_SIZE = 4096  # a view side beyond this is a typo, not a store (224 x 224 is the release's)
SIZE_RATIO = 2.0  # an annotated image size further than this factor from the file's is counted and warned


@dataclass
class ConvertOptions:
    raw_dir: Path
    out_dir: Path
    text_cfg: Any
    tokenizer_name: str
    max_length: int = DEFAULT_MAX_LENGTH
    workers: int = 2
    context_size: int = CONTEXT_SIZE
    body_size: int = BODY_SIZE
    window_per_worker: int = 8
    extra_manifest: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False  # replace out_dir even when it is not a store of ours (never the release)
    protect: list[Path] = field(default_factory=list)  # more paths out_dir may not be or hold (run dir)


@dataclass
class KeptPerson:
    person: em.PersonAnnotation
    box: tuple[int, int, int, int]


@dataclass
class SplitResult:
    kept: list[KeptPerson]
    skipped: Counter
    constant: int = 0  # kept persons whose context view is a single colour
    size_mismatch: int = 0  # kept persons whose picture's annotated size is far from the file's
    outside: list[str] = field(default_factory=list)  # picture paths that left the release (skipped)


# --------------------------------------------------------------------------- checks
def is_store_of_ours(path: Path) -> bool:
    """A folder ``prepare`` wrote: its ``manifest.json`` parses and names our store format."""
    try:
        return (read_manifest(Path(path)) or {}).get("format") == STORE_FORMAT
    except DataFormatError:  # a broken manifest is not a store of ours
        return False


def check_view_sizes(context_size: Any, body_size: Any) -> tuple[int, int]:
    """``data.context_size`` and ``data.body_size`` as ints in 1..MAX_VIEW_SIZE, or one line naming the key."""
    sizes = []
    for key, value in (("data.context_size", context_size), ("data.body_size", body_size)):
        try:
            size = int(value)
            ok = float(value) == size
        except (TypeError, ValueError):
            ok = False
        if not ok or not 1 <= size <= MAX_VIEW_SIZE:
            raise ConfigError(f"{key}={value!r} must be a whole number of pixels between 1 and {MAX_VIEW_SIZE}")
        sizes.append(size)
    return sizes[0], sizes[1]


def check_out_dir(opts: ConvertOptions) -> None:
    """``opts.out_dir`` may be replaced: a store of ours, an empty folder, nothing, or ``overwrite``;
    never the release, the descriptions file, or a folder holding either."""
    raw = Path(opts.raw_dir)  # the release, and its two parts (replacing either destroys it too)
    protect = [raw, raw / "emotic", raw / "Annotations" / "Annotations.mat", *opts.protect]
    if str(opts.text_cfg.get("source")) == "file" and opts.text_cfg.get("path"):
        protect.append(Path(str(opts.text_cfg.path)))
    check_replaceable(Path(opts.out_dir), key="data.prepared_dir", ours=is_store_of_ours,
                      what_ours="a store written by prepare (no manifest.json of ours)", protect=protect,
                      overwrite=opts.overwrite)


def release_paths(raw_dir: Path) -> tuple[Path, Path]:
    """The annotation file and the images folder of a release; raises naming what is missing."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataFormatError(f"{raw_dir}: data.raw_dir is not a folder (expected the EMOTIC release root)")
    mat = raw_dir / "Annotations" / "Annotations.mat"
    if not mat.is_file():
        raise DataFormatError(f"{mat}: annotations file not found (expected <raw_dir>/Annotations/Annotations.mat)")
    images = raw_dir / "emotic"
    if not images.is_dir():
        raise DataFormatError(f"{images}: images folder not found (expected <raw_dir>/emotic/<folder>/<file>)")
    return mat, images


# --------------------------------------------------------------------------- decoding (worker side)
def decode_image(path: str, width: int, height: int, bboxes: Sequence[Sequence[float]],
                 context_size: int, body_size: int) -> tuple[Any, list[Any], tuple[int, int] | None]:
    """Context array (or a skip reason for every person), per person (body, box) or a skip reason, and
    the file's own (width, height) (``None`` when it did not decode)."""
    try:
        image = open_rgb(Path(path))
    except FileNotFoundError:
        return em.SKIP_MISSING_IMAGE, [], None
    except ImageTooLargeError:
        return em.SKIP_TOO_LARGE, [], None
    except UnsupportedImageError:
        return em.SKIP_UNSUPPORTED, [], None
    except ImageDecodeError:
        return em.SKIP_UNDECODABLE, [], None
    context = context_view(image, context_size)
    bodies: list[Any] = []
    for bbox in bboxes:
        try:
            bodies.append(person_crop(image, bbox, width, height, body_size))
        except EmptyCropError:
            bodies.append(em.SKIP_EMPTY_CROP)
    return context, bodies, image.size


def size_disagrees(annotated: tuple[int, int], actual: tuple[int, int]) -> bool:
    """The annotated image size is off the file's by more than SIZE_RATIO in either side: boxes (clamped
    to the annotated size) and the scene surface (mapped through it) then miss the person."""
    return any(a <= 0 or max(a / f, f / a) > SIZE_RATIO for a, f in zip(annotated, actual))


def _decode_task(args: tuple) -> tuple[Any, list[Any], tuple[int, int] | None]:
    return decode_image(*args)


def _ordered_results(tasks: Sequence[tuple], pool: ProcessPoolExecutor | None, window: int
                     ) -> Iterator[tuple[Any, list[Any], tuple[int, int] | None]]:
    """Results in task order, with at most ``window`` tasks in flight (bounded memory)."""
    if pool is None:
        for t in tasks:
            yield _decode_task(t)
        return
    pending: deque[Future] = deque()
    for t in tasks:
        pending.append(pool.submit(_decode_task, t))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


# --------------------------------------------------------------------------- one split
def _group_by_image(persons: Sequence[em.PersonAnnotation]) -> list[list[em.PersonAnnotation]]:
    groups: list[list[em.PersonAnnotation]] = []
    for p in persons:
        if groups and (groups[-1][0].image_index == p.image_index):
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups


def _convert_split(split: str, persons: Sequence[em.PersonAnnotation], images_dir: Path, out: Path,
                   opts: ConvertOptions, pool: ProcessPoolExecutor | None,
                   advance: Callable[[int], None]) -> SplitResult:
    skipped: Counter = Counter(p.skip_reason for p in persons if p.skip_reason)
    outside: list[str] = []
    groups = []
    for group in _group_by_image([p for p in persons if not p.skip_reason]):
        if is_within(images_dir / group[0].folder / group[0].filename, opts.raw_dir):
            groups.append(group)
        else:  # `..`, an absolute folder or a link leading out of the release: never opened
            skipped[em.SKIP_OUTSIDE] += len(group)
            outside.append(f"{group[0].folder}/{group[0].filename}")
    capacity = sum(len(g) for g in groups)
    context_w = NpyRowWriter(out / f"{split}_context_arr.npy", capacity, (opts.context_size, opts.context_size, 3), np.uint8)
    body_w = NpyRowWriter(out / f"{split}_body_arr.npy", capacity, (opts.body_size, opts.body_size, 3), np.uint8)
    tasks = [(str(images_dir / g[0].folder / g[0].filename), g[0].image_width, g[0].image_height,
              [p.bbox for p in g], opts.context_size, opts.body_size) for g in groups]
    kept: list[KeptPerson] = []
    window = max(1, opts.workers) * opts.window_per_worker
    advance(len(persons) - capacity)  # label-filtered and refused persons count as processed
    constant = mismatched = 0
    for group, task, (context, bodies, size) in zip(groups, tasks, _ordered_results(tasks, pool, window)):
        if isinstance(context, str):
            skipped[context] += len(group)
            if context != em.SKIP_MISSING_IMAGE:  # missing files are many in some releases; counted only
                log.warning("%s: %d person(s) skipped (%s)", task[0], len(group), context)
        else:
            if is_constant(context):
                constant += len(group)
                log.warning("%s: the picture is a single colour; its %d person(s) are kept", task[0], len(group))
            if size is not None and size_disagrees((task[1], task[2]), size):
                mismatched += len(group)
                log.warning("%s: annotated as %dx%d but the file is %dx%d; its %d person(s) are kept with "
                            "boxes clamped to the annotated size", task[0], task[1], task[2], *size,
                            len(group))
            for person, body in zip(group, bodies):
                if isinstance(body, str):
                    skipped[body] += 1
                    continue
                context_w.append(context)
                body_w.append(body[0])
                kept.append(KeptPerson(person, body[1]))
        advance(len(group))
    context_w.close()
    body_w.close()
    return SplitResult(kept, skipped, constant, mismatched, outside)


def _label_arrays(split: str, kept: Sequence[KeptPerson], out: Path) -> None:
    cats = np.zeros((len(kept), NUM_CATEGORIES), dtype=np.uint8)
    vad = np.zeros((len(kept), 3), dtype=np.float32)
    boxes = np.zeros((len(kept), 4), dtype=np.int32)
    sizes = np.zeros((len(kept), 2), dtype=np.int32)
    for i, k in enumerate(kept):
        for name in k.person.categories:
            cats[i, CATEGORY_INDEX[name]] = 1
        vad[i] = k.person.vad
        boxes[i] = k.box
        sizes[i] = (k.person.image_width, k.person.image_height)
    np.save(out / f"{split}_cat_arr.npy", cats)
    np.save(out / f"{split}_cont_arr.npy", vad)
    np.save(out / f"{split}_bbox_arr.npy", boxes)
    np.save(out / f"{split}_image_size_arr.npy", sizes)
    if split != "train":
        votes = np.array([k.person.votes for k in kept], dtype=np.uint8).reshape(len(kept), NUM_CATEGORIES)
        np.save(out / f"{split}_votes_arr.npy", votes)


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _csv(split: str, kept: Sequence[KeptPerson], texts: Descriptions, out: Path) -> None:
    rows = []
    for i, k in enumerate(kept):
        p = k.person
        rows.append({
            "Index": i, "Folder": p.folder, "Filename": p.filename,
            "Image Size": f"[{p.image_width}, {p.image_height}]",
            "BBox": "[" + ", ".join(str(v) for v in k.box) + "]",
            "Categorical_Labels": "[" + ", ".join(repr(c) for c in p.categories) + "]",
            "Continuous_Labels": "[" + ", ".join(_fmt_number(v) for v in p.vad) + "]",
            "Gender": p.gender, "Age": p.age,
            "Person": p.person_index, "Description": texts.texts[i], "Description_Source": texts.sources[i],
        })
    columns = [*COMMUNITY_COLUMNS, "Person", "Description", "Description_Source"]
    pd.DataFrame(rows, columns=columns).to_csv(out / f"{split}.csv", index=False)


def _meta(k: KeptPerson) -> PersonMeta:
    p = k.person
    return PersonMeta(folder=p.folder, filename=p.filename, person_index=p.person_index,
                      image_width=p.image_width, image_height=p.image_height, bbox=p.bbox, box=k.box,
                      gender=p.gender, age=p.age)


def _file_stat(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime": st.st_mtime}


def split_warnings(split_info: dict[str, Any]) -> list[str]:
    """What makes a split useless for training or scoring: no persons, or categories never positive
    (their AP is undefined). Recorded in the manifest's ``warnings``; ``train`` decides what to refuse."""
    out = []
    for split, info in split_info.items():
        if info["kept"] == 0:
            out.append(f"{split}: no persons kept (of {info['persons']} annotated)")
        elif info["categories_without_positives"]:
            missing = info["categories_without_positives"]
            out.append(f"{split}: {len(missing)} of {NUM_CATEGORIES} categories have no positive person "
                       f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})")
        if info.get("constant_pictures"):
            out.append(f"{split}: {info['constant_pictures']} person(s) come from single-colour pictures")
        if info.get("size_mismatch"):
            out.append(f"{split}: {info['size_mismatch']} person(s) come from pictures whose annotated size "
                       f"is more than {SIZE_RATIO:g}x off the file's")
    return out


# --------------------------------------------------------------------------- the recipe
def convert_release(opts: ConvertOptions) -> dict[str, Any]:
    """Convert a release folder into a store at ``opts.out_dir``; returns the manifest.

    An output folder that cannot be written (read-only, full, over a file-size limit) stops with one
    line naming it; the previous store, if any, is left as it was.
    """
    check_out_dir(opts)
    check_view_sizes(opts.context_size, opts.body_size)
    try:
        return _convert(opts)
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else None
        inputs = [Path(opts.raw_dir)] + ([Path(str(opts.text_cfg.path))] if opts.text_cfg.get("path") else [])
        if where is not None and any(is_within(where, i) for i in inputs):  # images are handled per person
            raise DataFormatError(f"{where}: cannot read ({exc.strerror or exc})") from None
        raise ConfigError(f"data.prepared_dir={opts.out_dir}: cannot write the store "
                          f"({exc.strerror or exc}{f': {where}' if where else ''})") from None


def _convert(opts: ConvertOptions) -> dict[str, Any]:
    started = time.time()
    mat_path, images_dir = release_paths(opts.raw_dir)
    annotations = em.load_annotations(mat_path)
    describe = make_describer(opts.text_cfg, images_dir)  # before any pixel work: a bad file fails fast
    tokenizer = load_tokenizer(opts.tokenizer_name)
    total = sum(len(v) for v in annotations.values())

    results: dict[str, SplitResult] = {}
    split_info: dict[str, Any] = {}
    with atomic_dir(Path(opts.out_dir)) as tmp:
        pool = spawn_pool(opts.workers)
        try:
            with progress_bar("prepare", total=total, unit="persons") as advance:
                for split, persons in annotations.items():
                    results[split] = _convert_split(split, persons, images_dir, tmp, opts, pool, advance)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        for split, res in results.items():
            _label_arrays(split, res.kept, tmp)
            texts = describe([_meta(k) for k in res.kept])
            tokens = tokenize(texts.texts, tokenizer, opts.max_length)
            np.save(tmp / f"{split}_token_ids_arr.npy", tokens.ids)
            np.save(tmp / f"{split}_token_len_arr.npy", tokens.lengths)
            _csv(split, res.kept, texts, tmp)
            split_info[split] = {
                "persons": len(annotations[split]),
                "kept": len(res.kept),
                "skipped": {r: int(res.skipped.get(r, 0)) for r in em.SKIP_REASONS
                            if r in em.RELEASE_SKIP_REASONS or res.skipped.get(r)},
                "descriptions": texts.counts,
                "label_counts": {c: int(sum(c in k.person.categories for k in res.kept)) for c in CATEGORIES},
                "constant_pictures": res.constant,
                "size_mismatch": res.size_mismatch,
            }
            split_info[split]["categories_without_positives"] = [
                c for c, n in split_info[split]["label_counts"].items() if n == 0]
        outside = [path for res in results.values() for path in res.outside]
        if outside:
            log.warning("%d picture(s) named in %s lie outside data.raw_dir=%s (e.g. %s); their persons "
                        "are skipped as %s", len(outside), mat_path.name, opts.raw_dir, outside[0],
                        em.SKIP_OUTSIDE)
        warnings = split_warnings(split_info)
        for line in warnings:
            log.warning("%s", line)
        sources = {"annotations": _file_stat(mat_path)}
        if str(opts.text_cfg.source) == "file":
            sources["descriptions"] = _file_stat(Path(str(opts.text_cfg.path)))
        manifest = {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.time() - started, 2),
            "raw_dir": str(Path(opts.raw_dir).resolve()),
            "sources": sources,
            "sizes": {"context": opts.context_size, "body": opts.body_size},
            "categories": list(CATEGORIES),
            "tokenizer": {"name": opts.tokenizer_name, "max_length": opts.max_length,
                          "pad_id": tokens.pad_id, "vocab_size": tokens.vocab_size},
            "text_source": str(opts.text_cfg.source),
            "splits": split_info,
            "warnings": warnings,
            **opts.extra_manifest,
        }
        write_json_atomic(tmp / "manifest.json", manifest)  # last: its presence marks a complete store
    return manifest

