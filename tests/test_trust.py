"""Trust boundaries: a release, a model folder and a shared checkpoint are untrusted input. Nothing in
them makes a stage open a file outside the paths the user gave, run code, or ask a question."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest

from support.checkpoints import TINY_CHECKPOINT
from support.cli import EMOTIC_MM, REPO, cli_env
from support.releases import Img, make_release, person, vperson
from support.stores import convert
from emotic_mm.errors import ConfigError, DataFormatError


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# =========================================================================== a release's picture paths
def test_picture_paths_leaving_the_release_are_skipped_counted_and_never_opened(tmp_path, caplog):
    """``..`` to /etc, a folder beside the release, an absolute folder and a link out of the release are
    refused before anything is opened; the persons are counted as outside_release, in one warning line."""
    root = tmp_path / "raw"
    beside = Img("intruder.jpg", "../../beside/images", "rgb_jpg", [person([1, 1, 20, 20], ["Fear"])])
    make_release(root, {
        "train": [
            Img("a.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"])]),
            Img("passwd", "../../../../../../../../etc", "missing", [person([0, 0, 5, 5], ["Anger"])]),
            Img("environ", "/proc/self", "missing", [person([0, 0, 5, 5], ["Anger"])]),
            beside,
            Img("link.jpg", "mscoco/images", "missing", [person([0, 0, 10, 10], ["Pain"]),
                                                          person([1, 1, 9, 9], ["Pain"])]),
        ],
        "val": [Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])],
        "test": [Img("c.png", "ade20k/images", "rgb_png", [vperson([0, 0, 40, 30], [["Pain"]], (2, 6, 2))])],
    })
    assert (tmp_path / "beside" / "images" / "intruder.jpg").is_file()  # the release names a real picture
    (root / "emotic" / "mscoco" / "images" / "link.jpg").symlink_to(tmp_path / "beside" / "images" / "intruder.jpg")
    with caplog.at_level(logging.WARNING):
        manifest = convert(root, tmp_path / "store")
    train = manifest["splits"]["train"]
    assert train["kept"] == 1 and train["skipped"]["outside_release"] == 5
    assert train["skipped"]["undecodable_image"] == 0 and train["skipped"]["missing_image"] == 0
    lines = [r.getMessage() for r in caplog.records if "outside data.raw_dir" in r.getMessage()]
    assert len(lines) == 1 and "4 picture(s)" in lines[0], lines
    assert not any("passwd" in r.getMessage() and "undecodable" in r.getMessage() for r in caplog.records)


def test_a_release_that_is_itself_a_link_still_reads_its_own_pictures(tmp_path):
    real = make_release(tmp_path / "real", {
        "train": [Img("a.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"])])],
        "val": [Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])],
        "test": [Img("c.png", "ade20k/images", "rgb_png", [vperson([0, 0, 40, 30], [["Pain"]], (2, 6, 2))])],
    })
    (tmp_path / "link").symlink_to(real)
    manifest = convert(tmp_path / "link", tmp_path / "store")
    assert [s["kept"] for s in manifest["splits"].values()] == [1, 1, 1]
