"""Is a store whole? Row counts and view sizes of every per-split array, read from the ``.npy`` headers.

Unchecked, an array a few rows short of the others would surface as an ``IndexError`` from a memory
map in the middle of an epoch, and a body array of another size than the manifest's would train silently
at the wrong size. Both are checked once, when a :class:`~emotic_mm.data.store.Store` is opened, without
reading a pixel: each problem is one line naming the file, its shape and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.errors import DataFormatError

# every per-split array a store may hold, one row per person (context/body: (N, S, S, 3))
ROW_ARRAYS = ("context", "body", "cat", "cont", "votes", "bbox", "image_size", "token_ids", "token_len")
VIEWS = ("context", "body")


def npy_shape(path: Path) -> tuple[int, ...]:
    """The shape an ``.npy`` file's header declares; a header that does not parse, or data shorter than
    the header declares (a truncated copy), is one line naming the file."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            header = fmt.read_array_header_2_0 if version >= (2, 0) else fmt.read_array_header_1_0
            shape, _, dtype = header(f)
            offset = f.tell()
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a readable .npy array ({exc})") from None
    needed = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = Path(path).stat().st_size
    if not dtype.hasobject and have < needed:
        raise DataFormatError(f"{path}: shape {tuple(shape)} needs {needed} bytes but the file holds {have} "
                              f"(truncated); re-run `emotic-mm prepare`")
    return tuple(int(n) for n in shape)


def csv_rows(path: Path) -> int:
    """Persons in a split's CSV (quoted newlines in descriptions counted right)."""
    try:
        return len(pd.read_csv(path, usecols=[0]))
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a readable CSV ({exc})") from None


def check_store(path: Path, splits: list[str], manifest: dict[str, Any] | None) -> None:
    """Every array of every split has the rows the manifest counts (else the CSV's, else the context
    array's), and each view array is (N, S, S, 3) with the manifest's S (else the first one found)."""
    sizes = dict((manifest or {}).get("sizes") or {})
    for split in splits:
        expected, why = _expected_rows(path, split, manifest)
        for name in ROW_ARRAYS:
            file = path / f"{split}_{name}_arr.npy"
            if not file.is_file():
                continue
            shape = npy_shape(file)
            if not shape or shape[0] != expected:
                raise DataFormatError(f"{file}: shape {shape}, expected {expected} rows ({why})")
            if name in VIEWS:
                side = sizes.setdefault(name, shape[1] if len(shape) == 4 else -1)
                if shape[1:] != (side, side, 3):
                    ours = manifest is not None and "sizes" in manifest
                    where = "manifest.json sizes" if ours else "the first"
                    raise DataFormatError(f"{file}: shape {shape}, expected ({expected}, {side}, {side}, 3) "
                                          f"({where} {name} view is {side} px)")
        csv = path / f"{split}.csv"
        if csv.is_file() and why != "rows of the CSV" and (rows := csv_rows(csv)) != expected:
            raise DataFormatError(f"{csv}: {rows} rows, expected {expected} ({why})")


def _expected_rows(path: Path, split: str, manifest: dict[str, Any] | None) -> tuple[int, str]:
    kept = ((manifest or {}).get("splits") or {}).get(split, {}).get("kept") if manifest is not None else None
    if isinstance(kept, int) and not isinstance(kept, bool):
        return kept, f"manifest.json counts {kept} kept persons in {split}"
    csv = path / f"{split}.csv"
    if csv.is_file():
        return csv_rows(csv), "rows of the CSV"
    return npy_shape(path / f"{split}_context_arr.npy")[0], f"rows of {split}_context_arr.npy"
