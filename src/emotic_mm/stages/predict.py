"""``emotic-mm predict checkpoint=<run>/best input=photo.jpg|people.csv``: emotions of people in new photos.

Recipe: load the checkpoint → the preprocessing it was trained with (view sizes, tokenizer, token
length, description source — from its store's manifest, else from its config) → read and check the
input → describe persons without text the way ``prepare`` would → tokenise with ``prepare``'s function
→ stream through a DataLoader → top-k emotions, VAD, dominant emotion → ``predictions.json``,
``predictions.csv`` and a table. Pixels go through :mod:`emotic_mm.data.images`, the very functions
``prepare`` uses, so a photo from the store gives the store's arrays.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from torch.utils.data import DataLoader

from emotic_mm.checkpoint import checkpoint_dir, load_config, read_meta
from emotic_mm.models.loading import load_model
from emotic_mm.data.categories import CATEGORIES
from emotic_mm.data.images import BODY_SIZE, CONTEXT_SIZE
from emotic_mm.data.photos import Photo, PhotoDataset, check_photos, parse_box, read_csv_input, small_warning
from emotic_mm.data.store import read_manifest
from emotic_mm.data.text import SOURCE_CAPTIONER, SOURCE_TEMPLATE, make_describer
from emotic_mm.data.tokens import DEFAULT_MAX_LENGTH, load_tokenizer, tokenize
from emotic_mm.errors import ConfigError, DataFormatError
from emotic_mm.fsutil import check_replaceable, write_json_atomic, write_text_atomic
from emotic_mm.models.multimodal import IMAGE_MODALITIES
from emotic_mm.progress import print_table, progress_bar
from emotic_mm.runinfo import output_dir, record_run
from emotic_mm.data.access import has_checkpoint
from emotic_mm.training.inference import collect_outputs
from emotic_mm.training.runtime import select_device

log = logging.getLogger(__name__)
VAD_NAMES = ("valence", "arousal", "dominance")
# predictions.csv's leading columns (top-k, VAD and per-category scores follow); also how an earlier
# run's file is recognised
CSV_COLUMNS = ("row", "path", "x1", "y1", "x2", "y2", "text", "text_source", "dominant")


def _json_with(path: Path, keys: tuple[str, ...]) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in keys)


def _ours_csv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().startswith(",".join(CSV_COLUMNS) + ",")
    except (OSError, UnicodeDecodeError):
        return False


# the files predict writes into its run dir, and how an earlier run's copy of each is recognised
OUTPUTS = {
    "predictions.json": lambda p: _json_with(p, ("checkpoint", "predictions", "preprocessing")),
    "predictions.csv": _ours_csv,
    "run.json": lambda p: _json_with(p, ("stage", "argv", "versions")),
    "config.yaml": lambda p: _json_with(p.parent / "run.json", ("stage", "argv", "versions")),
}


def check_outputs(run_dir: Path, overwrite: Any, names: tuple[str, ...] = tuple(OUTPUTS)) -> None:
    """Predict writes only over its own earlier outputs (``overwrite=true`` for anything else), so a
    ``hydra.run.dir`` that names a user's folder never loses a file there."""
    for name in names:
        check_replaceable(Path(run_dir) / name, key="hydra.run.dir", ours=OUTPUTS[name],
                          what_ours=f"the {name} of an earlier run", overwrite=overwrite)


@dataclass
class Preprocessing:
    """What ``prepare`` did for the store the checkpoint was trained on."""

    modalities: list[str]
    context_size: int
    body_size: int
    tokenizer: str
    max_length: int
    text_source: str  # where the store's descriptions came from: file, template, captioner
    text_cfg: Any  # prepare's text config (the captioner's model and view, for instance)
    origin: str  # where these settings were read

    @property
    def needs_image(self) -> bool:
        return any(m in IMAGE_MODALITIES for m in self.modalities)

    @property
    def fallback_source(self) -> str:
        """What describes a person without text: a new photo has no entry in a description file, and
        ``prepare`` describes such persons by the template; a captioner is simply run again."""
        return SOURCE_CAPTIONER if self.text_source == SOURCE_CAPTIONER else SOURCE_TEMPLATE

    @property
    def fallback_note(self) -> str:
        if self.text_source == SOURCE_CAPTIONER:
            return f"captioned by {self.text_cfg.get('model')}, as the checkpoint's training store was"
        if self.text_source == SOURCE_TEMPLATE:
            return "described by the template (no gender/age known), as the checkpoint's training store was"
        return (f"described by the template (no gender/age known): the checkpoint was trained on "
                f"{self.text_source!r} descriptions, and prepare uses the template for persons a description "
                f"file lacks")


def trained_manifest(store: Any, store_id: str | None) -> dict[str, Any] | None:
    """The manifest of the store a checkpoint names, only when it is the very store the checkpoint was
    trained on (its fingerprint is the checkpoint's ``meta.json`` ``store``): a path in a shared
    checkpoint never makes predict take settings from some other file."""
    from emotic_mm.data.store import store_fingerprint

    if not store or not store_id:
        return None
    try:
        manifest = read_manifest(Path(str(store)))
        same = manifest is not None and store_fingerprint(Path(str(store)) / "manifest.json") == store_id
    except (DataFormatError, OSError, ValueError):
        return None
    return manifest if same else None


def trained_preprocessing(model_cfg: DictConfig, max_length: int | None = None,
                          store_id: str | None = None) -> Preprocessing:
    """Settings from the store's ``manifest.json`` when the checkpoint's ``data.prepared_dir`` holds the
    store it was trained on (``store_id``; it records what prepare really did), else from its config."""
    data = model_cfg.get("data") or {}
    store = data.get("prepared_dir")
    manifest = trained_manifest(store, store_id)
    text_cfg = model_cfg.get("text") or OmegaConf.create({"source": SOURCE_TEMPLATE})
    if manifest is not None:
        sizes = manifest.get("sizes", {})
        context, body = sizes.get("context", data.get("context_size", CONTEXT_SIZE)), sizes.get("body", data.get("body_size", BODY_SIZE))
        stored_length = manifest.get("tokenizer", {}).get("max_length")
        prepared_text = (manifest.get("config") or {}).get("text")
        text_cfg = OmegaConf.create(prepared_text) if prepared_text else text_cfg
        source = str(manifest.get("text_source", text_cfg.get("source", SOURCE_TEMPLATE)))
        origin = f"store manifest {Path(str(store)) / 'manifest.json'}"
    else:
        context, body = data.get("context_size", CONTEXT_SIZE), data.get("body_size", BODY_SIZE)
        stored_length = None  # a training config does not record the token length; prepare's default
        source = str(text_cfg.get("source", SOURCE_TEMPLATE))
        origin = "checkpoint config (its store is not reachable here" + (
            ")" if max_length else f"; token length {DEFAULT_MAX_LENGTH}, prepare's default)")
    own = model_cfg.model.get("tokenizer")  # a model that reads its own tokenizer's ids (model=clip)
    if own is not None:
        tokenizer_name, stored_length = str(own.name), _model_length(str(own.name), own.get("max_length"))
    else:
        tokenizer_name = str(model_cfg.model.text_encoder.name)
    return Preprocessing(
        modalities=[str(m) for m in model_cfg.model.modalities], context_size=int(context), body_size=int(body),
        tokenizer=tokenizer_name,
        max_length=int(max_length or stored_length or DEFAULT_MAX_LENGTH),
        text_source=source, text_cfg=text_cfg, origin=origin)


def _model_length(tokenizer: str, max_length: Any = None) -> int:
    """The token length :func:`emotic_mm.data.access.retokenized` uses for this tokenizer."""
    from emotic_mm.data.access import token_length
    from emotic_mm.data.tokens import load_tokenizer

    return token_length(load_tokenizer(tokenizer, "model.tokenizer.name"), tokenizer, max_length)


def read_input(cfg: DictConfig, prep: Preprocessing) -> list[Photo]:
    """One photo (``input=photo.jpg bbox=[...] text=...``), a CSV of them, or text alone for a
    text-only checkpoint."""
    given = cfg.get("input")
    text = cfg.get("description")  # text=... on the command line
    if given in (None, ""):
        if prep.needs_image or text in (None, ""):
            raise ConfigError("input is not set: pass input=photo.jpg (optionally bbox=[x1,y1,x2,y2] text=\"...\") "
                              "or input=people.csv")
        return [Photo(row=0, where="text", path=None, text=str(text))]
    path = Path(str(given)).expanduser()
    if path.suffix.lower() == ".csv":
        if cfg.get("bbox") is not None or text not in (None, ""):
            raise ConfigError("bbox= and text= go with a single image; in a CSV input give them as columns "
                              "x1, y1, x2, y2, text")
        if not path.is_file():
            raise DataFormatError(f"{path}: input CSV not found")
        return read_csv_input(path)
    bbox = cfg.get("bbox")
    return [Photo(row=0, where=str(path), path=path,
                  bbox=parse_box(list(bbox) if bbox is not None else None, str(path)),
                  text=str(text) if text not in (None, "") else None)]


def flag_small(photos: list[Photo], prep: Preprocessing, min_side: Any = None) -> None:
    """Warn, once per row (and in its output record), about pictures or boxes below ``min_side`` px
    (default: the smallest view the checkpoint reads)."""
    from emotic_mm.config import whole_number

    views = {"context": prep.context_size, "body": prep.body_size}
    read = [size for view, size in views.items() if view in prep.modalities]
    if not read:
        return
    threshold = min(read) if min_side is None else whole_number(min_side, "min_side", 1)
    for p in photos:
        p.warning = small_warning(p, threshold, "body" in prep.modalities)
        if p.warning:
            log.warning("%s: %s", p.where, p.warning)


def describe_missing(photos: list[Photo], prep: Preprocessing, fallback: str) -> None:
    """Give every person without text the description ``prepare`` would have given (or fail, with
    ``text_fallback=none``). Photos keep which source their text came from."""
    for p in photos:
        if p.text is not None:
            p.text_source = "given"
    missing = [p for p in photos if p.text is None]
    if not missing or "text" not in prep.modalities:
        return
    if fallback == "none":
        raise DataFormatError(f"{missing[0].where}: no text, and the checkpoint reads text "
                              f"(text_fallback=none; trained on {prep.text_source!r} descriptions)")
    if fallback != "checkpoint":
        raise ConfigError(f"text_fallback={fallback!r} is not one of checkpoint, none")
    if prep.fallback_source == SOURCE_CAPTIONER:
        if any(p.path is None for p in missing):
            raise DataFormatError(f"{missing[0].where}: no text and no image to caption")
        describe = make_describer(prep.text_cfg, Path("/"))
        metas = [p.meta(folder=str(p.path.resolve().parent)) for p in missing]  # type: ignore[union-attr]
    else:
        describe = make_describer(OmegaConf.create({"source": SOURCE_TEMPLATE}), Path("."))
        metas = [p.meta() for p in missing]
    described = describe(metas)
    for p, text, source in zip(missing, described.texts, described.sources):
        p.text, p.text_source = text, source


def predict(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Score every person of the input; returns what ``predictions.json`` holds."""
    run_dir = Path(run_dir or output_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    check_outputs(run_dir, cfg.get("overwrite", False), ("predictions.json", "predictions.csv"))
    if not has_checkpoint(cfg):
        raise ConfigError("checkpoint is not set: pass checkpoint=outputs/train/<date>/<time>/best")
    top_k = int(cfg.top_k)
    if not 1 <= top_k <= len(CATEGORIES):
        raise ConfigError(f"top_k={top_k} must be between 1 and {len(CATEGORIES)}")
    checkpoint = Path(str(cfg.checkpoint))
    prep = trained_preprocessing(load_config(checkpoint), cfg.get("max_length"),
                                 read_meta(checkpoint_dir(checkpoint)).get("store"))
    photos = read_input(cfg, prep)
    check_photos(photos, prep.needs_image)  # every input problem surfaces before a model is loaded
    flag_small(photos, prep, cfg.get("min_side"))
    describe_missing(photos, prep, str(cfg.text_fallback))
    device = select_device(str(cfg.device))
    model, model_cfg, _ = load_model(checkpoint, device)
    model.eval()
    ids = lengths = None
    if "text" in prep.modalities:
        tokens = tokenize([p.text or "" for p in photos], load_tokenizer(prep.tokenizer), prep.max_length)
        ids, lengths = tokens.ids, tokens.lengths
    data = PhotoDataset(photos, prep.modalities, prep.context_size, prep.body_size, ids, lengths)
    loader = DataLoader(data, batch_size=int(cfg.batch_size), num_workers=int(cfg.workers),
                        pin_memory=device.type == "cuda")
    with progress_bar("predict", total=len(photos), unit="images") as advance:
        out = collect_outputs(model, _checked(loader, photos, advance), device, str(cfg.precision))
    scores = torch.sigmoid(out["logits"])
    result = {
        "checkpoint": str(cfg.checkpoint), "variant": str(model_cfg.model.name), "modalities": prep.modalities,
        "preprocessing": {"context_size": prep.context_size, "body_size": prep.body_size,
                          "tokenizer": prep.tokenizer, "max_length": prep.max_length,
                          "trained_text_source": prep.text_source, "fallback_text_source": prep.fallback_source,
                          "without_text": prep.fallback_note, "from": prep.origin},
        "predictions": [_record(p, scores[i], out["vad_pred"][i], top_k, prep) for i, p in enumerate(photos)],
    }
    write_json_atomic(run_dir / "predictions.json", result)
    write_text_atomic(run_dir / "predictions.csv", _csv(result["predictions"], top_k))
    _print(result, top_k, int(cfg.print_rows), run_dir)
    return result


def _checked(loader: DataLoader, photos: list[Photo], advance: Any):
    """The loader's batches; a photo that failed to decode stops the run with one line naming it."""
    for batch in loader:
        bad = batch.pop("error").nonzero().flatten()
        if len(bad):
            p = photos[int(batch["index"][bad[0]])]
            raise DataFormatError(f"{p.where}: the image header reads but the pixels do not decode")
        yield batch
        advance(len(batch["index"]))


def _record(p: Photo, scores: torch.Tensor, vad: torch.Tensor, top_k: int, prep: Preprocessing) -> dict[str, Any]:
    order = scores.argsort(descending=True).tolist()
    return {
        "row": p.row, "path": str(p.path) if p.path else None, "bbox": list(p.bbox) if p.bbox else None,
        "box": list(p.box) if p.box else None, "image_size": list(p.image_size) if p.image_size else None,
        "text": p.text if "text" in prep.modalities else None,
        "text_source": p.text_source if "text" in prep.modalities else "unused (the checkpoint reads no text)",
        "dominant": CATEGORIES[order[0]],
        "top_k": [{"emotion": CATEGORIES[c], "score": float(scores[c])} for c in order[:top_k]],
        "vad": {name: float(v) for name, v in zip(VAD_NAMES, vad.tolist())},
        "scores": {c: float(s) for c, s in zip(CATEGORIES, scores.tolist())},
        "warning": p.warning,
    }


def _csv(records: list[dict[str, Any]], top_k: int) -> str:
    rows = []
    for r in records:
        box = r["box"] or [None] * 4
        lead = (r["row"], r["path"], *box, r["text"], r["text_source"], r["dominant"])
        rows.append({
            **dict(zip(CSV_COLUMNS, lead)),
            f"top{top_k}": ";".join(f"{e['emotion']}:{e['score']:.4f}" for e in r["top_k"]),
            "warning": r["warning"] or "", **r["vad"], **r["scores"],
        })
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return buffer.getvalue()


def _print(result: dict[str, Any], top_k: int, print_rows: int, run_dir: Path) -> None:
    records = result["predictions"]
    console = Console()
    if len(records) == 1:
        r = records[0]
        print_table(Path(r["path"]).name if r["path"] else "text", ["rank", "emotion", "score"],
                    [[i + 1, e["emotion"], f"{e['score']:.3f}"] for i, e in enumerate(r["top_k"])])
        console.print(f"dominant emotion: {r['dominant']}")
        console.print("VAD (1-10): " + " · ".join(f"{k} {v:.2f}" for k, v in r["vad"].items()))
    else:
        shown = records[:max(0, print_rows)]
        print_table(f"{len(records)} persons" + (f" (first {len(shown)} shown)" if len(shown) < len(records) else ""),
                    ["#", "image", "dominant", f"top {top_k}", "V / A / D", "text"],
                    [[r["row"] + 1, Path(r["path"]).name if r["path"] else "-", r["dominant"],
                      ", ".join(f"{e['emotion']} {e['score']:.2f}" for e in r["top_k"]),
                      "/".join(f"{x:.1f}" for x in r["vad"].values()), r["text_source"]] for r in shown])
    p = result["preprocessing"]
    if "text" in result["modalities"]:
        sources = sorted({r["text_source"] for r in records})
        note = ", ".join(sources)
        if any(s != "given" for s in sources):
            note += f" — persons without text are {p['without_text']}"
        console.print(f"descriptions: {note}")
        if len(records) == 1:
            console.print(f"text: {records[0]['text']}")
    warned = sum(1 for r in records if r.get("warning"))
    if warned:
        console.print(f"[yellow]{warned} of {len(records)} row(s) have a picture or box too small to show a "
                      "person; see their warning field[/yellow]")
    console.print(f"preprocessing from {p['from']}; wrote predictions.json, predictions.csv to {run_dir}")


def main(cfg: DictConfig) -> dict[str, Any]:
    # before run.json and config.yaml are written (predict() checks its own two files)
    check_outputs(output_dir(), cfg.get("overwrite", False), ("run.json", "config.yaml"))
    record_run("predict", cfg, None)
    return predict(cfg)
