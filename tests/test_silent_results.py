"""Results that used to come out without a word: each is now refused, warned about or counted."""

from __future__ import annotations

import logging

import pytest

from support.releases import Img, make_release, person, vperson


def test_an_annotated_size_far_from_the_files_is_counted_and_warned(tmp_path, caplog):
    """A 4000x4000 annotation for a 40x30 file: the person is kept (the box is clamped to the annotated size)
    but counted in the manifest, warned about in the log and listed in the manifest's warnings."""
    from support.stores import convert

    root = make_release(tmp_path / "raw", {
        "train": [Img("a.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"])]),
                  Img("big.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Fear"])],
                      annotated=(4000, 4000)),
                  Img("near.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Fear"])],
                      annotated=(36, 28))],  # a few pixels off: no warning
        "val": [Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])],
        "test": [Img("c.png", "ade20k/images", "rgb_png", [vperson([0, 0, 40, 30], [["Pain"]], (2, 6, 2))])],
    })
    with caplog.at_level(logging.WARNING):
        manifest = convert(root, tmp_path / "store")
    train = manifest["splits"]["train"]
    assert train["kept"] == 3 and train["size_mismatch"] == 1
    assert manifest["splits"]["val"]["size_mismatch"] == 0
    assert any("size_mismatch" not in w and "annotated size" in w for w in manifest["warnings"])
    lines = [r.getMessage() for r in caplog.records if "annotated as" in r.getMessage()]
    assert len(lines) == 1 and "big.jpg: annotated as 4000x4000 but the file is 40x30" in lines[0]


@pytest.mark.parametrize(("override", "needle"), [
    ("data.synthetic.images.train=-5", "data.synthetic.images.train=-5 must be >= 0"),
    ("data.synthetic.images.val=2.5", "data.synthetic.images.val=2.5 must be a whole number"),
    ("data.synthetic.cue_hit=1.5", "data.synthetic.cue_hit=1.5 must be <= 1"),
    ("data.synthetic.max_side=100", "data.synthetic.max_side=100 must be >= data.synthetic.min_side=200"),
])
def test_bad_synthetic_settings_are_refused_before_drawing(tmp_path, override, needle):
    from support.cli import run_cli

    proc = run_cli(["prepare", override, f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'r'}"])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "data").exists()  # nothing drawn
