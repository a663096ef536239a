"""A prepared store on disk: memory-mapped arrays per split, the CSV, and the manifest.

Two kinds of folders load: the ones ``emotic-mm prepare`` writes (``manifest.json`` present, written
last) and the ones the community converter writes (``{split}_context_arr.npy`` etc. and ``{split}.csv``,
no manifest, no descriptions). A folder holding only some of the arrays — an interrupted build — is
rejected with a message naming what is missing; arrays of other row counts or view sizes than the
manifest's are rejected when the store is opened (:mod:`emotic_mm.data.store_check`).
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.data.categories import NUM_CATEGORIES
from emotic_mm.data.store_check import check_store
from emotic_mm.errors import DataFormatError

SPLITS = ("train", "val", "test")
REQUIRED = ("context", "body", "cat", "cont")


def read_array(path: Path, required: bool = True) -> np.ndarray | None:
    """A store array, memory-mapped (object arrays are refused: loading them could run pickled code)."""
    if not path.is_file():
        if required:
            raise DataFormatError(f"{path}: missing store array")
        return None
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise DataFormatError(f"{path}: not a readable .npy array ({exc})") from None


@dataclass
class StoreSplit:
    """One split of a store; arrays are read-only memory maps (nothing is loaded until indexed)."""

    name: str
    context: np.ndarray  # (N, 224, 224, 3) uint8
    body: np.ndarray  # (N, 128, 128, 3) uint8
    categories: np.ndarray  # (N, 26) multi-hot
    vad: np.ndarray  # (N, 3) on the 1-10 scale
    votes: np.ndarray | None  # (N, 26) annotator votes (val/test of our stores)
    boxes: np.ndarray | None  # (N, 4) clamped [x1, y1, x2, y2] in original pixels
    image_sizes: np.ndarray | None  # (N, 2) annotated (width, height)
    token_ids: np.ndarray | None  # (N, L) int32
    token_lengths: np.ndarray | None  # (N,) int32
    table: pd.DataFrame | None

    def __len__(self) -> int:
        return int(self.context.shape[0])

    @property
    def descriptions(self) -> list[str] | None:
        if self.table is None or "Description" not in self.table.columns:
            return None
        return self.table["Description"].fillna("").astype(str).tolist()

    def category_names(self, i: int) -> list[str]:
        if self.table is None:
            return []
        return list(ast.literal_eval(self.table["Categorical_Labels"].iloc[i]))


def read_manifest(store_dir: Path) -> dict[str, Any] | None:
    """The store's ``manifest.json`` (written last by ``prepare``), or ``None`` for a community folder.
    A manifest that is not a JSON object with a ``splits`` object is one line naming the file."""
    path = Path(store_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DataFormatError(f"{path}: not a readable store manifest ({exc}); re-run `emotic-mm prepare`") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("splits", {}), dict):
        raise DataFormatError(f"{path}: not a store manifest (expected a JSON object with a 'splits' object); "
                              f"re-run `emotic-mm prepare`")
    sizes = manifest.get("sizes", {})
    if not isinstance(sizes, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in sizes.values()):
        raise DataFormatError(f"{path}: 'sizes' must map view names to whole numbers of pixels")
    return manifest


def store_fingerprint(manifest: Path) -> str:
    """Hash of what a store holds, not of when it was built: re-running ``prepare`` on the same release
    with the same settings keeps the cached clean models valid."""
    info = json.loads(manifest.read_text())
    for volatile in ("created", "seconds"):
        info.pop(volatile, None)
    for source in (info.get("sources") or {}).values():
        if isinstance(source, dict):
            source.pop("mtime", None)
    return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()


def view_sizes(store_dir: Path, manifest: dict[str, Any] | None = None) -> dict[str, int] | None:
    """Side lengths of the stored context and body views: from the manifest (read here unless given),
    else from the arrays' headers (community folders); ``None`` when neither is there."""
    manifest = manifest if manifest is not None else read_manifest(store_dir)
    if manifest is not None and manifest.get("sizes"):
        return {k: int(v) for k, v in manifest["sizes"].items()}
    out = {}
    for view in ("context", "body"):
        for split in SPLITS:
            array = read_array(Path(store_dir) / f"{split}_{view}_arr.npy", required=False)
            if array is not None and array.ndim == 4:
                out[view] = int(array.shape[1])
                break
    return out or None


class Store:
    """Open a store folder; ``store[split]`` gives a :class:`StoreSplit`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.token_dir: Path | None = None  # token arrays of another tokenizer (data.access.retokenized)
        self.tokenizer_name: str | None = None  # whose tokens token_dir holds
        if not self.path.is_dir():
            raise DataFormatError(f"{self.path}: no prepared store here (data.prepared_dir); run `emotic-mm prepare`")
        self.manifest: dict[str, Any] | None = read_manifest(self.path)
        present = [s for s in SPLITS if (self.path / f"{s}_context_arr.npy").is_file()]
        if self.manifest is not None:
            self.splits = [s for s in SPLITS if s in self.manifest.get("splits", {})]
        elif present:
            self.splits = present  # community converter folder
        else:
            raise DataFormatError(
                f"{self.path}: not a store (no manifest.json and no {{split}}_context_arr.npy files)"
            )
        for split in self.splits:
            lacking = [f"{split}_{k}_arr.npy" for k in REQUIRED if not (self.path / f"{split}_{k}_arr.npy").is_file()]
            if lacking:
                raise DataFormatError(f"{self.path}: incomplete store, missing {', '.join(lacking)}")
        check_store(self.path, self.splits, self.manifest)  # whole before anything trusts it: headers only

    @property
    def view_sizes(self) -> dict[str, int] | None:
        return view_sizes(self.path, self.manifest)

    @property
    def is_community(self) -> bool:
        return self.manifest is None

    def __getitem__(self, split: str) -> StoreSplit:
        if split not in self.splits:
            raise DataFormatError(f"{self.path}: split {split!r} not in store (has {', '.join(self.splits)})")
        p = self.path
        context = read_array(p / f"{split}_context_arr.npy")
        cats = read_array(p / f"{split}_cat_arr.npy")
        if cats.ndim != 2 or cats.shape[1] != NUM_CATEGORIES or cats.shape[0] != context.shape[0]:
            raise DataFormatError(f"{p / f'{split}_cat_arr.npy'}: shape {cats.shape}, expected ({context.shape[0]}, 26)")
        csv = p / f"{split}.csv"
        return StoreSplit(
            name=split,
            context=context,
            body=read_array(p / f"{split}_body_arr.npy"),
            categories=cats,
            vad=read_array(p / f"{split}_cont_arr.npy"),
            votes=read_array(p / f"{split}_votes_arr.npy", required=False),
            boxes=read_array(p / f"{split}_bbox_arr.npy", required=False),
            image_sizes=read_array(p / f"{split}_image_size_arr.npy", required=False),
            token_ids=read_array((self.token_dir or p) / f"{split}_token_ids_arr.npy", required=False),
            token_lengths=read_array((self.token_dir or p) / f"{split}_token_len_arr.npy", required=False),
            table=pd.read_csv(csv) if csv.is_file() else None,
        )
