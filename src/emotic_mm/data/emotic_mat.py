"""Read (and, for the synthetic generator and tests, write) the release's ``Annotations.mat``.

The nesting is the one ``scipy.io.loadmat`` returns for the EMOTIC "PAMI version" release (see
``shared/EMOTIC_FORMAT.md``): per split a (1, N_images) struct array, per image a (1, P) struct array of
persons. Fields are read by name, and every value is unwrapped whatever its (1, 1) or squeezed shape,
so files saved with other ``savemat``/``loadmat`` options read the same.

The reader decides the label-based skip reasons (no category, NaN VAD, VAD outside 1-10 or infinite,
unknown category, a NaN box coordinate); the image based ones (a path leaving the release, missing file,
undecodable, too large, unsupported value range, empty crop) are decided where the pixels are read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from emotic_mm.data.categories import CATEGORY_INDEX, NUM_CATEGORIES
from emotic_mm.errors import DataFormatError

SPLITS: tuple[str, str, str] = ("train", "val", "test")
IMAGE_FIELDS: tuple[str, ...] = ("filename", "folder", "image_size", "person")
TRAIN_PERSON_FIELDS: tuple[str, ...] = (
    "body_bbox", "annotations_categories", "annotations_continuous", "gender", "age",
)
COMBINED_PERSON_FIELDS: tuple[str, ...] = (
    "body_bbox", "annotations_categories", "combined_categories", "annotations_continuous",
    "combined_continuous", "gender", "age",
)

SKIP_NO_CATEGORY = "no_category"
SKIP_NAN_VAD = "nan_vad"
SKIP_UNKNOWN_CATEGORY = "unknown_category"
SKIP_MISSING_IMAGE = "missing_image"
SKIP_UNDECODABLE = "undecodable_image"
SKIP_EMPTY_CROP = "empty_crop"
SKIP_VAD_RANGE = "vad_out_of_range"  # finite or infinite values outside the release's 1-10 scale
SKIP_NAN_BOX = "nan_box"
SKIP_TOO_LARGE = "too_large"  # more pixels than Pillow's decompression-bomb limit
SKIP_UNSUPPORTED = "unsupported_image"  # decodes, but its values have no known 8-bit scale
SKIP_OUTSIDE = "outside_release"  # folder/filename resolve (links followed) outside data.raw_dir
# the reasons of the release's own conventions, always listed in a manifest (zeros included) ...
RELEASE_SKIP_REASONS: tuple[str, ...] = (
    SKIP_MISSING_IMAGE, SKIP_UNDECODABLE, SKIP_EMPTY_CROP, SKIP_NO_CATEGORY, SKIP_NAN_VAD,
    SKIP_UNKNOWN_CATEGORY,
)
# ... and every reason, the later ones (bad values the release itself never has) listed where they occur
SKIP_REASONS: tuple[str, ...] = (*RELEASE_SKIP_REASONS, SKIP_VAD_RANGE, SKIP_NAN_BOX, SKIP_TOO_LARGE,
                                 SKIP_UNSUPPORTED, SKIP_OUTSIDE)
VAD_RANGE = (1.0, 10.0)


@dataclass(frozen=True)
class PersonAnnotation:
    """One annotated person as the converter needs it; ``skip_reason`` is set for label problems."""

    split: str
    image_index: int
    person_index: int
    folder: str
    filename: str
    image_width: int
    image_height: int
    bbox: tuple[float, float, float, float]
    categories: tuple[str, ...]
    vad: tuple[float, float, float]
    votes: tuple[int, ...] | None
    gender: str
    age: str
    skip_reason: str | None = None

    @property
    def image_key(self) -> tuple[str, str]:
        return (self.folder, self.filename)


# --------------------------------------------------------------------------- unwrapping helpers
def _unwrap(value: Any) -> Any:
    """Strip (1, 1)/(1,) array wrappers until a scalar, a string, a struct or a longer array remains."""
    while isinstance(value, np.ndarray) and value.size == 1 and value.dtype.names is None:
        value = value.reshape(-1)[0]
    return value


def _as_str(value: Any) -> str:
    value = _unwrap(value)
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        if value.dtype.kind == "U":
            return "".join(value.reshape(-1).tolist())
        return _as_str(value.reshape(-1)[0])
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _as_float(value: Any) -> float:
    value = _unwrap(value)
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return math.nan
        return _as_float(value.reshape(-1)[0])
    return float(value)


def _records(value: Any) -> list[Any]:
    """The elements of a struct array (any shape, possibly empty) as a flat list of records."""
    value = value if isinstance(value, np.ndarray) else np.asarray(value)
    if value.dtype.names is None and value.dtype == object:
        # a (1, 1) object wrapper around a struct array
        if value.size == 1 and isinstance(value.reshape(-1)[0], np.ndarray):
            return _records(value.reshape(-1)[0])
    return list(value.reshape(-1))


def _field(record: Any, name: str) -> Any:
    return record[name]


def _struct(value: Any) -> Any:
    """A (1, 1) struct as one record, or None when empty."""
    items = _records(value)
    return items[0] if items else None


def _names(value: Any) -> list[str]:
    """A cell array of category names (any shape, possibly empty, or squeezed to a string) as a list."""
    if isinstance(value, str):
        return [value] if value else []
    value = np.asarray(value)
    if value.dtype.kind == "U":
        return [name for name in value.reshape(-1).tolist() if name]
    return [name for name in (_as_str(v) for v in value.reshape(-1)) if name]


def _vad(record: Any) -> tuple[float, float, float]:
    if record is None:
        return (math.nan, math.nan, math.nan)
    return tuple(_as_float(_field(record, k)) for k in ("valence", "arousal", "dominance"))  # type: ignore[return-value]


# --------------------------------------------------------------------------- reader
def load_annotations(mat_path: Path) -> dict[str, list[PersonAnnotation]]:
    """Every person of every split, in file order; raises DataFormatError naming the path on bad layout."""
    mat_path = Path(mat_path)
    if not mat_path.is_file():
        raise DataFormatError(
            f"{mat_path}: annotations file not found (expected <raw_dir>/Annotations/Annotations.mat)"
        )
    try:
        present = {name for name, _, _ in scipy.io.whosmat(str(mat_path))}
    except Exception as exc:  # scipy raises several unrelated types for a non-.mat file
        raise DataFormatError(f"{mat_path}: not a readable MATLAB .mat file ({exc})") from None
    missing = [s for s in SPLITS if s not in present]
    if missing:
        raise DataFormatError(
            f"{mat_path}: missing split(s) {', '.join(missing)} (expected top-level keys train, val, test)"
        )
    out: dict[str, list[PersonAnnotation]] = {}
    for split in SPLITS:  # one split at a time: the raw nested arrays are several times the records
        raw = scipy.io.loadmat(str(mat_path), variable_names=[split])[split]
        out[split] = list(_read_split(mat_path, split, raw))
        del raw
    _release_freed_memory()
    return out


def _release_freed_memory() -> None:
    """Hand the parsed .mat's freed heap back to the OS so it does not inflate the conversion's peak."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _read_split(mat_path: Path, split: str, images: Any) -> Iterable[PersonAnnotation]:
    images = np.asarray(images)
    names = images.dtype.names or ()
    lacking = [f for f in IMAGE_FIELDS if f not in names]
    if lacking:
        raise DataFormatError(
            f"{mat_path}: split {split!r} is not a struct array of images with fields "
            f"{', '.join(IMAGE_FIELDS)} (lacks {', '.join(lacking)})"
        )
    for image_index, image in enumerate(images.reshape(-1)):
        size = _struct(_field(image, "image_size"))
        persons = _records(_field(image, "person"))
        size_fields = getattr(getattr(size, "dtype", None), "names", None) or ()
        if not {"n_col", "n_row"} <= set(size_fields) or (persons and not getattr(persons[0], "dtype", None)):
            raise DataFormatError(f"{mat_path}: {split}[{image_index}] has no image_size/person structs")
        for person_index, person in enumerate(persons):
            try:
                record = _read_person(mat_path, split, image_index, person_index, image, size, person)
            except (IndexError, KeyError, TypeError, ValueError) as exc:  # a value nested unlike the release
                raise DataFormatError(
                    f"{mat_path}: {split}[{image_index}].person[{person_index}] is not nested like the release ({exc})"
                ) from None
            yield record


def _read_person(
    mat_path: Path, split: str, image_index: int, person_index: int, image: Any, size: Any, person: Any
) -> PersonAnnotation:
    fields = person.dtype.names or ()
    combined = "combined_categories" in fields
    expected = COMBINED_PERSON_FIELDS if combined else TRAIN_PERSON_FIELDS
    lacking = [f for f in expected if f not in fields]
    if lacking:
        raise DataFormatError(
            f"{mat_path}: {split}[{image_index}].person[{person_index}] lacks field(s) {', '.join(lacking)}"
            f" (expected {', '.join(expected)})"
        )
    bbox_values = np.asarray(_unwrap(_field(person, "body_bbox")), dtype=np.float64).reshape(-1)
    if bbox_values.size != 4:
        raise DataFormatError(
            f"{mat_path}: {split}[{image_index}].person[{person_index}].body_bbox has "
            f"{bbox_values.size} values (expected [x1, y1, x2, y2])"
        )
    annotators = _records(_field(person, "annotations_categories"))
    if combined:
        categories = _names(_field(person, "combined_categories"))
        vad = _vad(_struct(_field(person, "combined_continuous")))
        per_annotator = [_names(_field(a, "categories")) for a in annotators]
    else:
        categories = _names(_field(annotators[0], "categories")) if annotators else []
        vad = _vad(_struct(_field(person, "annotations_continuous")))
        per_annotator = None
    skip = None
    if not categories:
        skip = SKIP_NO_CATEGORY
    elif any(c not in CATEGORY_INDEX for c in categories):
        skip = SKIP_UNKNOWN_CATEGORY
    elif any(math.isnan(v) for v in vad):
        skip = SKIP_NAN_VAD
    elif any(not VAD_RANGE[0] <= v <= VAD_RANGE[1] for v in vad):
        skip = SKIP_VAD_RANGE
    elif np.isnan(bbox_values).any():
        skip = SKIP_NAN_BOX
    votes = None
    if per_annotator is not None and skip is None:
        counts = [0] * NUM_CATEGORIES
        for names in per_annotator:
            for name in set(names):
                if name in CATEGORY_INDEX:
                    counts[CATEGORY_INDEX[name]] += 1
        if not any(counts):  # combined labels without per-annotator lists: one vote each
            for name in categories:
                counts[CATEGORY_INDEX[name]] = 1
        votes = tuple(counts)
    return PersonAnnotation(
        split=split,
        image_index=image_index,
        person_index=person_index,
        folder=_as_str(_field(image, "folder")),
        filename=_as_str(_field(image, "filename")),
        image_width=int(_as_float(_field(size, "n_col"))),
        image_height=int(_as_float(_field(size, "n_row"))),
        bbox=tuple(float(v) for v in bbox_values),  # type: ignore[arg-type]
        categories=tuple(categories),
        vad=vad,
        votes=votes,
        gender=_as_str(_field(person, "gender")),
        age=_as_str(_field(person, "age")),
        skip_reason=skip,
    )


# --------------------------------------------------------------------------- writer
@dataclass
class PersonSpec:
    """A person to write. Train uses ``annotators[0]``/``vad``; val/test write every annotator."""

    bbox: Sequence[float]
    annotators: Sequence[Sequence[str]]
    annotator_vads: Sequence[Sequence[float]]
    combined: Sequence[str]
    vad: Sequence[float]
    gender: str = "Male"
    age: str = "Adult"


@dataclass
class ImageSpec:
    filename: str
    folder: str
    width: int
    height: int
    persons: Sequence[PersonSpec]


def _cell(names: Sequence[str]) -> np.ndarray:
    cell = np.empty((1, len(names)), dtype=object)
    for i, name in enumerate(names):
        cell[0, i] = np.array([name])
    return cell


def _vad_struct(vad: Sequence[float]) -> dict[str, float]:
    return {"valence": float(vad[0]), "arousal": float(vad[1]), "dominance": float(vad[2])}


def _struct_array(dicts: Sequence[dict[str, Any]], fields: Sequence[str]) -> np.ndarray:
    out = np.empty((1, len(dicts)), dtype=[(f, object) for f in fields])
    for i, d in enumerate(dicts):
        for f in fields:
            out[0, i][f] = d[f]
    return out


def _person_dict(p: PersonSpec, combined: bool) -> dict[str, Any]:
    bbox = np.asarray(p.bbox, dtype=np.float64).reshape(1, 4)
    if not combined:
        cats = p.annotators[0] if p.annotators else []
        return {
            "body_bbox": bbox,
            "annotations_categories": _struct_array([{"categories": _cell(cats)}], ["categories"]),
            "annotations_continuous": _struct_array([_vad_struct(p.vad)], ["valence", "arousal", "dominance"]),
            "gender": p.gender,
            "age": p.age,
        }
    return {
        "body_bbox": bbox,
        "annotations_categories": _struct_array([{"categories": _cell(a)} for a in p.annotators], ["categories"]),
        "combined_categories": _cell(p.combined),
        "annotations_continuous": _struct_array(
            [_vad_struct(v) for v in p.annotator_vads], ["valence", "arousal", "dominance"]
        ),
        "combined_continuous": _struct_array([_vad_struct(p.vad)], ["valence", "arousal", "dominance"]),
        "gender": p.gender,
        "age": p.age,
    }


def write_annotations(mat_path: Path, splits: dict[str, Sequence[ImageSpec]]) -> None:
    """Write an ``Annotations.mat`` with the release's nesting (used by the synthetic generator)."""
    out: dict[str, np.ndarray] = {}
    for split, images in splits.items():
        combined = split != "train"
        fields = COMBINED_PERSON_FIELDS if combined else TRAIN_PERSON_FIELDS
        records = []
        for im in images:
            records.append({
                "filename": im.filename,
                "folder": im.folder,
                "image_size": {"n_col": int(im.width), "n_row": int(im.height)},
                "original_database": {"name": im.folder.split("/")[0], "info": ""},
                "person": _struct_array([_person_dict(p, combined) for p in im.persons], fields),
            })
        out[split] = _struct_array(records, ["filename", "folder", "image_size", "original_database", "person"])
    Path(mat_path).parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(mat_path), out)
