"""Issue 13, data side: never lose a user's data, never store a silently wrong value, one clear line for
every bad input, and no processes left behind by a killed ``prepare``."""

from __future__ import annotations

import errno
import json
import math
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from support.digest import file_digests
from support.cli import EMOTIC_MM, REPO, run_cli
from support.compose import compose_cfg
from support.releases import Img, make_release, person, vperson
from support.stores import TOKENIZER, convert
from emotic_mm.data.store import Store, view_sizes
from emotic_mm.errors import ConfigError, DataFormatError

INF = math.inf
NAN = math.nan


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The CLI stopped with exit 2 and one ``error:`` line (no traceback) that names every needle."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def small_raw(tmp_path_factory) -> Path:
    """One train, one val and one test person: the cheapest release a conversion accepts."""
    return make_release(tmp_path_factory.mktemp("small") / "raw", {
        "train": [Img("a.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"], (5, 5, 5))])],
        "val": [Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])],
        "test": [Img("c.png", "ade20k/images", "rgb_png", [vperson([0, 0, 40, 30], [["Pain"]], (2, 6, 2))])],
    })


# =========================================================================== 1. data loss
@pytest.mark.slow  # CLI prepare
def test_cli_prepare_never_deletes_a_users_folder(small_raw, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "thesis.txt").write_text("x")
    proc = run_cli(["prepare", "data=emotic", f"data.raw_dir={small_raw}", f"data.prepared_dir={folder}",
                    "data.workers=0", f"hydra.run.dir={tmp_path / 'run'}"])
    _one_line_error(proc, f"data.prepared_dir={folder}", "thesis.txt", "overwrite=true")
    assert (folder / "thesis.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "run"]  # no hidden partial or .old-* left


@pytest.mark.slow  # CLI prepare
def test_a_synthetic_prepare_refuses_the_folder_before_drawing_anything(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "thesis.txt").write_text("x")
    proc = run_cli(["prepare", f"data.raw_dir={tmp_path / 'raw'}", f"data.prepared_dir={folder}",
                    f"hydra.run.dir={tmp_path / 'run'}"])
    _one_line_error(proc, f"data.prepared_dir={folder}", "thesis.txt", "overwrite=true")
    assert not (tmp_path / "raw").exists() and not list(tmp_path.glob(".raw.partial-*"))  # no picture drawn


def test_the_release_is_never_replaced_not_even_with_overwrite(small_raw, tmp_path):
    before = file_digests(small_raw)
    for out in (small_raw, small_raw.parent, small_raw / "emotic", small_raw / "Annotations"):
        for overwrite in (False, True):
            with pytest.raises(ConfigError, match="never replaced") as info:
                convert(small_raw, out, overwrite=overwrite)
            assert str(out) in str(info.value)
    assert file_digests(small_raw) == before
    convert(small_raw, small_raw / "store")  # a new folder inside the release is fine: nothing is replaced
    assert Store(small_raw / "store").manifest is not None
    shutil.rmtree(small_raw / "store")


def test_a_descriptions_file_is_protected_too(small_raw, tmp_path):
    texts = tmp_path / "texts" / "descriptions.jsonl"
    texts.parent.mkdir()
    texts.write_text("")
    cfg = OmegaConf.create({"source": "file", "path": str(texts)})
    with pytest.raises(ConfigError, match="never replaced"):
        convert(small_raw, texts.parent, text=cfg, overwrite=True)
    assert texts.is_file()


def test_a_regular_file_needs_overwrite_and_then_leaves_no_hidden_copy(small_raw, tmp_path):
    target = tmp_path / "store"
    target.write_text("my notes")
    with pytest.raises(ConfigError, match=r"is a file \(8 bytes\)"):
        convert(small_raw, target)
    assert target.read_text() == "my notes"
    convert(small_raw, target, overwrite=True)
    assert Store(target).manifest is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no .store.old-* file


def test_only_our_stores_and_empty_folders_are_replaced(small_raw, tmp_path):
    ours = tmp_path / "ours"
    convert(small_raw, ours)
    convert(small_raw, ours)  # a store of ours: replaced without asking
    empty = tmp_path / "empty"
    empty.mkdir()
    convert(small_raw, empty)
    community = tmp_path / "community"  # a store without our manifest (the community converter's)
    shutil.copytree(ours, community)
    (community / "manifest.json").unlink()
    with pytest.raises(ConfigError, match="no manifest.json of ours"):
        convert(small_raw, community)
    broken = tmp_path / "broken"  # a manifest.json that is not ours
    broken.mkdir()
    (broken / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match="broken"):
        convert(small_raw, broken)
    assert (broken / "manifest.json").is_file()


def test_synthetic_raw_dir_of_a_user_is_not_replaced(tmp_path):
    from emotic_mm.stages.prepare import prepare

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(b"x")
    cfg = compose_cfg("prepare", [f"data.raw_dir={folder}", f"data.prepared_dir={tmp_path / 'store'}"])
    with pytest.raises(ConfigError, match="data.raw_dir=.*photo.jpg"):
        prepare(cfg)
    assert (folder / "photo.jpg").read_bytes() == b"x"
    same = compose_cfg("prepare", [f"data.raw_dir={folder}", f"data.prepared_dir={folder}", "overwrite=true"])
    with pytest.raises(ConfigError, match="is data.raw_dir"):
        prepare(same)


def test_prepare_never_replaces_the_folder_it_runs_in(small_raw, tmp_path, monkeypatch):
    from emotic_mm.stages.prepare import prepare

    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("x")
    monkeypatch.chdir(work)
    cfg = compose_cfg("prepare", ["data=emotic", f"data.raw_dir={small_raw}", f"data.prepared_dir={tmp_path}",
                              "overwrite=true", "data.workers=0"])
    with pytest.raises(ConfigError, match="never replaced"):
        prepare(cfg)
    assert (work / "notes.txt").is_file()


def test_report_out_follows_the_same_rule(tmp_path):
    from emotic_mm.stages.report import output_folder

    runs = tmp_path / "multirun"
    runs.mkdir()
    file = tmp_path / "report.pdf"
    file.write_text("x")
    with pytest.raises(ConfigError, match=r"out=.*report.pdf is a file"):
        output_folder(OmegaConf.create({"out": str(file)}), runs)
    assert output_folder(OmegaConf.create({"out": str(file), "overwrite": True}), runs) == file
    for out in (runs, tmp_path):  # never the runs folder or a folder holding it, even with overwrite
        with pytest.raises(ConfigError, match="never replaced"):
            output_folder(OmegaConf.create({"out": str(out), "overwrite": True}), runs)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "report.md").write_text("# old")
    assert output_folder(OmegaConf.create({"out": str(earlier)}), runs) == earlier
    with pytest.raises(ConfigError, match="overwrite="):
        output_folder(OmegaConf.create({"out": str(earlier), "overwrite": "yes"}), runs)


def test_predict_writes_only_over_its_own_outputs(tmp_path):
    from emotic_mm.prediction.outputs import check_outputs

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "predictions.json").write_text('{"my": "data"}')
    with pytest.raises(ConfigError, match=r"hydra.run.dir=.*predictions.json is a file"):
        check_outputs(mine, False)
    check_outputs(mine, True)
    (mine / "predictions.json").unlink()
    (mine / "predictions.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="predictions.csv"):
        check_outputs(mine, False)
    (mine / "predictions.csv").unlink()
    (mine / "config.yaml").write_text("mine: true\n")  # a run.json of ours beside it makes it ours
    with pytest.raises(ConfigError, match="config.yaml"):
        check_outputs(mine, False)
    (mine / "run.json").write_text(json.dumps({"stage": "predict", "argv": [], "versions": {}}))
    earlier = {"checkpoint": "c", "predictions": [], "preprocessing": {}}
    (mine / "predictions.json").write_text(json.dumps(earlier))
    (mine / "predictions.csv").write_text("row,path,x1,y1,x2,y2,text,text_source,dominant,top5\n")
    check_outputs(mine, False)


def test_atomic_dir_over_a_file_leaves_nothing_hidden(tmp_path):
    from emotic_mm.fsutil import atomic_dir

    target = tmp_path / "x"
    target.write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["x"] and (target / "new").is_file()


# =========================================================================== 2. empty splits
def test_empty_split_and_categories_without_positives_are_recorded(tmp_path, caplog):
    raw = make_release(tmp_path / "raw", {
        "train": [Img("a.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"])])],
        "val": [Img("b.jpg", "mscoco/images", "missing", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])],
        "test": [],
    })
    caplog.set_level("WARNING")
    manifest = convert(raw, tmp_path / "store")
    assert manifest["splits"]["val"]["kept"] == 0 and manifest["splits"]["test"]["kept"] == 0
    assert "val: no persons kept (of 1 annotated)" in manifest["warnings"]
    assert "test: no persons kept (of 0 annotated)" in manifest["warnings"]
    train = manifest["splits"]["train"]
    assert len(train["categories_without_positives"]) == 25 and "Peace" not in train["categories_without_positives"]
    assert any(w.startswith("train: 25 of 26 categories have no positive") for w in manifest["warnings"])
    assert json.loads((tmp_path / "store" / "manifest.json").read_text())["warnings"] == manifest["warnings"]
    assert "val: no persons kept" in caplog.text


# =========================================================================== 3. bad values
def test_vad_outside_1_10_and_nan_boxes_are_skipped_and_counted(tmp_path):
    raw = make_release(tmp_path / "raw", {
        "train": [Img("a.jpg", "mscoco/images", "rgb_jpg", [
            person([2, 2, 30, 28], ["Peace"], (5, 5, 5)),
            person([2, 2, 30, 28], ["Peace"], (-50, 5, 5)),
            person([2, 2, 30, 28], ["Peace"], (5, INF, 5)),
            person([2, 2, 30, 28], ["Peace"], (5, 5, 10.5)),
            person([2, 2, 30, 28], ["Peace"], (1, 10, 1)),  # the ends of the scale are kept
            person([NAN, 2, 30, 28], ["Peace"], (5, 5, 5)),
            person([2, 2, 30, NAN], ["Peace"], (5, 5, 5)),
        ])],
        "val": [Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, -INF, 3))])],
        "test": [],
    })
    manifest = convert(raw, tmp_path / "store")
    train = manifest["splits"]["train"]
    assert train["kept"] == 2
    assert train["skipped"]["vad_out_of_range"] == 3 and train["skipped"]["nan_box"] == 2
    assert manifest["splits"]["val"]["skipped"]["vad_out_of_range"] == 1
    vad = Store(tmp_path / "store")["train"].vad
    assert np.isfinite(vad).all() and vad.min() >= 1 and vad.max() <= 10


def _gradient(width: int = 40, height: int = 30) -> np.ndarray:
    return np.add.outer(np.arange(height), np.arange(width)).astype(np.float64) / (width + height - 2)


def test_16bit_and_float_pictures_keep_their_content(tmp_path, caplog):
    ramp = _gradient()
    raw = make_release(tmp_path / "raw", {
        "train": [Img(name, "x/images", "missing", [person([0, 0, 40, 30], ["Peace"])])
                  for name in ("gray16.png", "float01.tif", "float255.tif", "float_wild.tif", "flat.png")],
        "val": [], "test": [],
    })
    folder = raw / "emotic" / "x" / "images"
    Image.fromarray(np.rint(ramp * 65535).astype(np.uint16)).save(folder / "gray16.png")
    Image.fromarray(ramp.astype(np.float32), "F").save(folder / "float01.tif")
    Image.fromarray((ramp * 255).astype(np.float32), "F").save(folder / "float255.tif")
    Image.fromarray((ramp * 1000 - 200).astype(np.float32), "F").save(folder / "float_wild.tif")
    Image.fromarray(np.full((30, 40, 3), 7, np.uint8)).save(folder / "flat.png")
    with Image.open(folder / "gray16.png") as im:
        assert im.mode in ("I;16", "I")  # really a wide mode (else this test proves nothing)
    caplog.set_level("WARNING")
    manifest = convert(raw, tmp_path / "store")
    train = manifest["splits"]["train"]
    assert train["kept"] == 4 and train["skipped"]["unsupported_image"] == 1
    assert "float_wild.tif: 1 person(s) skipped (unsupported_image)" in caplog.text
    expected = Image.fromarray(np.rint(ramp * 255).astype(np.uint8), "L").convert("RGB")
    expected = np.asarray(expected.resize((224, 224), Image.BILINEAR), dtype=np.int16)
    context = Store(tmp_path / "store")["train"].context
    for i in range(3):  # the three wide pictures: the ramp, scaled from their own range (not clipped)
        assert np.abs(context[i].astype(np.int16) - expected).max() <= 2, i
    assert train["constant_pictures"] == 1  # the flat picture is kept, and said
    assert any("single-colour" in w for w in manifest["warnings"])


def _bomb_png(path: Path, side: int = 20000) -> None:
    """A PNG header claiming side x side pixels (over Pillow's decompression-bomb limit), no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))


def test_decompression_bomb_is_a_per_person_skip_named_in_the_log(tmp_path, caplog):
    raw = make_release(tmp_path / "raw", {
        "train": [Img("ok.jpg", "m/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"])]),
                  Img("huge.png", "m/images", "missing", [person([2, 2, 30, 28], ["Fear"]),
                                                           person([1, 1, 9, 9], ["Pain"])])],
        "val": [], "test": [],
    })
    _bomb_png(raw / "emotic" / "m" / "images" / "huge.png")
    caplog.set_level("WARNING")
    manifest = convert(raw, tmp_path / "store")
    assert manifest["splits"]["train"]["kept"] == 1
    assert manifest["splits"]["train"]["skipped"]["too_large"] == 2
    assert "huge.png: 2 person(s) skipped (too_large)" in caplog.text


def test_predict_names_a_too_large_photo(tmp_path):
    from emotic_mm.data.photos import Photo, check_photos

    bomb = tmp_path / "huge.png"
    _bomb_png(bomb)
    with pytest.raises(DataFormatError, match=r"huge.png: image too large"):
        check_photos([Photo(row=0, where=str(bomb), path=bomb)], needs_image=True)


def _resnet18_state() -> dict[str, torch.Tensor]:
    import torchvision

    return torchvision.models.resnet18(weights=None).state_dict()


def test_image_encoder_weights_load_strictly(tmp_path):
    from safetensors.torch import save_file

    from emotic_mm.models.encoders import ImageEncoder

    state = _resnet18_state()
    good = tmp_path / "good.safetensors"
    save_file(state, str(good))
    ImageEncoder("resnet18", weights=str(good))
    headless = tmp_path / "headless.safetensors"  # a feature extractor's file: the head is dropped anyway
    save_file({k: v for k, v in state.items() if not k.startswith("fc.")}, str(headless))
    ImageEncoder("resnet18", weights=str(headless))
    renamed = {("module." + k if k.startswith("layer1") else k): v for k, v in state.items()}
    wrong = tmp_path / "wrong.safetensors"
    save_file(renamed, str(wrong))
    with pytest.raises(ConfigError) as info:
        ImageEncoder("resnet18", weights=str(wrong))
    message = str(info.value)
    assert "\n" not in message and str(wrong) in message
    assert "missing (layer1." in message and "unexpected (module.layer1." in message
    other = tmp_path / "other.safetensors"
    save_file({**state, "conv1.weight": torch.zeros(8, 3, 7, 7)}, str(other))
    with pytest.raises(ConfigError, match=r"1 of another shape \(conv1.weight\)"):
        ImageEncoder("resnet18", weights=str(other))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ConfigError, match="truncated.safetensors: not a readable weights file"):
        ImageEncoder("resnet18", weights=str(truncated))
    not_torch = tmp_path / "junk.pt"
    not_torch.write_bytes(b"junk")
    with pytest.raises(ConfigError, match="junk.pt: not a readable weights file"):
        ImageEncoder("resnet18", weights=str(not_torch))


def test_stem_pool_off_halves_the_stem_stride():
    """``stem_pool=false`` keeps twice the first feature map's side (a 2-px cue keeps its own cell), and a
    backbone without a stem max-pool is refused in one line naming the key."""
    from emotic_mm.models.encoders import ImageEncoder

    sides = {}
    for pool in (True, False):
        encoder = ImageEncoder("resnet18", input_size=64, stem_pool=pool).eval()
        stem = torch.nn.Sequential(*list(encoder.backbone.children())[:5])  # conv1, bn1, relu, maxpool, layer1
        sides[pool] = stem(torch.zeros(1, 3, 64, 64)).shape[-1]
        assert encoder(torch.zeros(2, 3, 80, 80)).shape == (2, 512)
    assert sides == {True: 16, False: 32}
    with pytest.raises(ConfigError, match=r"^model.image_encoder.stem_pool=false: .*mobilenet_v3_small") as info:
        ImageEncoder("mobilenet_v3_small", stem_pool=False)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def two_stores(small_raw, tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("sizes")
    convert(small_raw, base / "s128")
    convert(small_raw, base / "s64", body_size=64)
    return base / "s128", base / "s64"


def _ckpt_cfg(store: Path, modalities=("context", "body")):
    return OmegaConf.create({"data": {"prepared_dir": str(store)},
                             "model": {"name": "baseline", "modalities": list(modalities),
                                       "text_encoder": {"name": TOKENIZER}}})


def test_a_store_of_other_view_sizes_is_refused(two_stores, tmp_path):
    from emotic_mm.checkpoint import save_checkpoint, trained_view_sizes
    from emotic_mm.data.access import check_store_fits_model

    s128, s64 = two_stores
    assert view_sizes(s64) == {"context": 224, "body": 64}
    cfg = _ckpt_cfg(s128)
    with pytest.raises(ConfigError, match=r"body views are 64x64 px but the checkpoint was trained on 128x128"):
        check_store_fits_model(Store(s64), cfg)
    check_store_fits_model(Store(s128), cfg)  # its own store
    check_store_fits_model(Store(s64), _ckpt_cfg(s128, ["context", "text"]))  # reads no body view
    # the checkpoint keeps the sizes itself, so the check holds where its store is not reachable
    ckpt = save_checkpoint(tmp_path / "best", torch.nn.Linear(2, 2), cfg, {"epoch": 0, "view_sizes": view_sizes(s128)})
    assert trained_view_sizes(ckpt) == {"context": 224, "body": 128}
    gone = _ckpt_cfg(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="trained on 128x128"):
        check_store_fits_model(Store(s64), gone, ckpt)


def test_token_ids_beyond_the_vocabulary_are_one_line(two_stores, tmp_path):
    from emotic_mm.data.access import check_store_fits_model

    store = tmp_path / "store"
    shutil.copytree(two_stores[0], store)
    cfg = _ckpt_cfg(store, ["context", "text"])
    check_store_fits_model(Store(store), cfg)
    ids = np.load(store / "val_token_ids_arr.npy")
    ids[0, 1] = 10 ** 6
    np.save(store / "val_token_ids_arr.npy", ids)
    with pytest.raises(ConfigError, match=r"val_token_ids_arr.npy: token ids in \[0, 1000000\] lie outside"):
        check_store_fits_model(Store(store), cfg)


# =========================================================================== 4. one line, not a traceback
@pytest.fixture()
def tiny_checkpoint(two_stores, tmp_path) -> Path:
    from emotic_mm.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path / "best", torch.nn.Linear(3, 2), _ckpt_cfg(two_stores[0]), {"epoch": 0})


def test_truncated_checkpoint_weights(tiny_checkpoint):
    from emotic_mm.checkpoint import MODEL_FILE, load_weights

    file = tiny_checkpoint / MODEL_FILE
    file.write_bytes(file.read_bytes()[:20])
    with pytest.raises(DataFormatError, match=f"{file}: not a readable safetensors file"):
        load_weights(torch.nn.Linear(3, 2), tiny_checkpoint)


@pytest.mark.parametrize("text", ["model: [unclosed\n", "- a list\n", "model: {name: x}\n", "just text\n"])
def test_bad_checkpoint_config(tiny_checkpoint, text):
    from emotic_mm.checkpoint import CONFIG_FILE, load_config

    (tiny_checkpoint / CONFIG_FILE).write_text(text)
    with pytest.raises(DataFormatError, match=f"{tiny_checkpoint / CONFIG_FILE}: not a") as info:
        load_config(tiny_checkpoint)
    assert "\n" not in str(info.value)


def test_unbuildable_checkpoint_config(tiny_checkpoint):
    from emotic_mm.checkpoint import CONFIG_FILE
    from emotic_mm.models.loading import load_model

    (tiny_checkpoint / CONFIG_FILE).write_text("model: {name: baseline, modalities: [context]}\n")
    with pytest.raises(DataFormatError, match="cannot build the model it describes"):
        load_model(tiny_checkpoint)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"splits": 3}', '{"splits": {}, "sizes": {"body": "big"}}'])
def test_malformed_manifest(two_stores, tmp_path, text):
    store = tmp_path / "store"
    shutil.copytree(two_stores[0], store)
    (store / "manifest.json").write_text(text)
    with pytest.raises(DataFormatError, match=f"{store / 'manifest.json'}: ") as info:
        Store(store)
    assert "\n" not in str(info.value)


@pytest.mark.slow  # CLI prepare
def test_cli_context_size_zero(small_raw, tmp_path):
    proc = run_cli(["prepare", "data=emotic", f"data.raw_dir={small_raw}", f"data.prepared_dir={tmp_path / 's'}",
                    "data.context_size=0", f"hydra.run.dir={tmp_path / 'run'}"])
    _one_line_error(proc, "data.context_size=0")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("value", [-3, 2.5, "abc", 10 ** 6])
def test_view_sizes_are_checked(value):
    from emotic_mm.data.convert import check_view_sizes

    with pytest.raises(ConfigError, match="data.body_size="):
        check_view_sizes(224, value)


def test_output_below_a_file_is_one_line(small_raw, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"data.prepared_dir=.*file/store: cannot write the store"):
        convert(small_raw, tmp_path / "file" / "store")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_full_or_read_only_output_is_one_line_and_keeps_the_old_store(small_raw, tmp_path, monkeypatch, code):
    import emotic_mm.data.convert as convert_mod

    out = tmp_path / "store"
    convert(small_raw, out)
    before = file_digests(out)

    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(convert_mod.np, "save", failing)
    with pytest.raises(ConfigError, match=f"cannot write the store \\({os.strerror(code)}"):
        convert(small_raw, out)
    assert file_digests(out) == before and [p.name for p in tmp_path.iterdir()] == ["store"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_parent_is_one_line(small_raw, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="cannot write the store"):
            convert(small_raw, parent / "store")
    finally:
        parent.chmod(0o755)


@pytest.mark.slow  # CLI prepare under ulimit
def test_cli_prepare_under_a_file_size_limit(small_raw, tmp_path):
    """RLIMIT_FSIZE: Python ignores SIGXFSZ, so the write fails with EFBIG: one line, nothing left."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([EMOTIC_MM, "prepare", "data=emotic", f"data.raw_dir={small_raw}",
                           f"data.prepared_dir={tmp_path / 'out' / 'store'}", "data.workers=0",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=str(REPO), capture_output=True, text=True,
                          timeout=120, env=env, preexec_fn=limit)
    _one_line_error(proc, "data.prepared_dir=", "File too large")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


# =========================================================================== 5. a killed prepare leaves nothing
KILLED_PREPARE = textwrap.dedent("""
    import sys, time
    from omegaconf import OmegaConf
    import emotic_mm.data.convert as c

    original = c._ordered_results

    def stalled(tasks, pool, window):
        for result in original(tasks, pool, window):
            print("READY", flush=True)
            time.sleep(600)  # the workers and the resource tracker are alive now; the test kills us
            yield result

    c._ordered_results = stalled
    c.convert_release(c.ConvertOptions(raw_dir=sys.argv[1], out_dir=sys.argv[2], workers=2,
                                       text_cfg=OmegaConf.create({"source": "template"}), tokenizer_name=sys.argv[3]))
""")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow  # kills a prepare process
def test_kill_9_of_prepare_leaves_no_workers_nor_resource_tracker(main_raw, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PREPARE, str(main_raw), str(tmp_path / "store"), TOKENIZER],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    children: list[int] = []
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
        children = _children(proc.pid)
        commands = [Path(f"/proc/{c}/cmdline").read_bytes() for c in children]
        assert len(children) == 3, commands  # two decode workers and the resource tracker
        assert sum(b"resource_tracker" in c for c in commands) == 1, commands
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(c) for c in children):
            time.sleep(0.1)
        left = [c for c in children if _alive(c)]
        assert not left, [Path(f"/proc/{c}/cmdline").read_bytes() for c in left]
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in children:  # only on failure: what this test started, by pid
            if _alive(child):
                os.kill(child, signal.SIGKILL)
