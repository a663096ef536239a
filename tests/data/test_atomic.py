"""An interrupted conversion never leaves a folder that looks complete, nor damages the previous store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import emotic_mm.data.convert as convert_mod
from emotic_mm.data.store import Store
from emotic_mm.errors import DataFormatError
from support.digest import file_digests
from support.stores import TOKENIZER, convert


class Crash(RuntimeError):
    pass


def _crash_after_train_csv(monkeypatch):
    """Let the pixels and train's labels/CSV be written, then fail while writing val's CSV."""
    original = convert_mod._csv
    seen = []

    def failing(split, kept, texts, out):
        seen.append(split)
        if split == "val":
            assert (out / "train.csv").is_file() and (out / "train_context_arr.npy").is_file()
            raise Crash("disk on fire")
        return original(split, kept, texts, out)

    monkeypatch.setattr(convert_mod, "_csv", failing)
    return seen


def test_crash_leaves_no_target(main_raw, tmp_path, monkeypatch):
    seen = _crash_after_train_csv(monkeypatch)
    out = tmp_path / "stores" / "store"
    with pytest.raises(Crash):
        convert(main_raw, out)
    assert seen == ["train", "val"]  # it really crashed mid-way, after some work
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # the partial build was removed, nothing visible remains
    with pytest.raises(DataFormatError):
        Store(out)


def test_crash_keeps_the_previous_store(main_raw, tmp_path, monkeypatch):
    out = tmp_path / "store"
    convert(main_raw, out)
    before = file_digests(out)
    _crash_after_train_csv(monkeypatch)
    with pytest.raises(Crash):
        convert(main_raw, out)
    assert file_digests(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["store"]
    monkeypatch.undo()
    convert(main_raw, out)  # a re-run succeeds
    assert Store(out)["val"].votes.shape == (4, 26)


KILL_SCRIPT = textwrap.dedent("""
    import os, sys
    from omegaconf import OmegaConf
    import emotic_mm.data.convert as c

    original = c._label_arrays

    def dying(split, kept, out):
        original(split, kept, out)
        if split == "val":
            os._exit(17)  # like a SIGKILL: no cleanup runs

    c._label_arrays = dying
    c.convert_release(c.ConvertOptions(raw_dir=sys.argv[1], out_dir=sys.argv[2],
                                       text_cfg=OmegaConf.create({"source": "template"}),
                                       tokenizer_name=sys.argv[3], workers=0))
""")


@pytest.mark.slow  # kills a converter process
def test_hard_kill_then_rerun_cleans_stale_partials(main_raw, tmp_path):
    out = tmp_path / "store"
    convert(main_raw, out)
    before = file_digests(out)
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(main_raw), str(out), TOKENIZER],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 17, proc.stderr
    # the previous complete store is untouched; the killed build is a hidden partial without a manifest
    assert file_digests(out) == before
    partials = sorted(p for p in tmp_path.iterdir() if p.name != "store")
    assert len(partials) == 1 and partials[0].name.startswith(".store.partial-")
    assert (partials[0] / "train_cat_arr.npy").is_file()  # it got somewhere before dying ...
    assert not (partials[0] / "manifest.json").exists()  # ... but does not look complete
    visible = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert visible == [out]
    # an older leftover of another interrupted run, too
    stale = tmp_path / ".store.partial-0ld0ld00"
    stale.mkdir()
    (stale / "train_context_arr.npy").write_bytes(b"junk")
    manifest = convert(main_raw, out)
    assert [p.name for p in tmp_path.iterdir()] == ["store"]
    assert Store(out).manifest["splits"] == manifest["splits"]


def test_stale_partials_of_other_folders_are_left_alone(main_raw, tmp_path):
    other = tmp_path / ".other.partial-12345678"
    other.mkdir()
    convert(main_raw, tmp_path / "store")
    assert other.is_dir()
