"""Stores built from test releases: ``convert`` for the hand-written ones, ``synthetic_store`` for
seeded synthetic releases (the text is the release's own descriptions.jsonl, as ``emotic-mm prepare``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# synthetic_store and TOKENIZER (the shipped MiniLM tokenizer: offline) are shared with the bench scripts.
from emotic_mm.testkit import TOKENIZER, SyntheticStore, synthetic_store  # noqa: F401

COMMUNITY_COLUMNS = [
    "Index",
    "Folder",
    "Filename",
    "Image Size",
    "BBox",
    "Categorical_Labels",
    "Continuous_Labels",
    "Gender",
    "Age",
]
EXTRA_COLUMNS = ["Person", "Description", "Description_Source"]


def text_cfg(source: str = "template", **kw: Any) -> Any:
    """A ``text`` config node for ``source`` (template, file, captioner)."""
    from omegaconf import OmegaConf

    return OmegaConf.create({"source": source, **kw})


def captioner_cfg(model_dir: Path, view: str = "crop") -> Any:
    """A ``text=captioner`` node for the captioner saved in ``model_dir``, small and on the CPU."""
    return text_cfg(
        "captioner",
        model=str(model_dir),
        view=view,
        batch_size=2,
        max_new_tokens=5,
        device="cpu",
        prompt=None,
    )


def convert(raw: Path, out: Path, text: Any = None, workers: int = 0, **kw: Any) -> dict[str, Any]:
    """``convert_release`` of ``raw`` into ``out`` (template text unless ``text``); returns the manifest."""
    from omegaconf import OmegaConf

    from emotic_mm.data.convert import ConvertOptions, convert_release

    cfg = text if text is not None else text_cfg("template")
    if isinstance(cfg, dict):
        cfg = OmegaConf.create(cfg)
    return convert_release(
        ConvertOptions(
            raw_dir=Path(raw),
            out_dir=Path(out),
            text_cfg=cfg,
            tokenizer_name=TOKENIZER,
            workers=workers,
            **kw,
        )
    )


def read_csv_str(path: Path) -> Any:
    """A CSV as a DataFrame of strings, empty cells kept as ''."""
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)
