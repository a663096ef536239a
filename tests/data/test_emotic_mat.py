"""The .mat reader against a file built here with numpy structured arrays + scipy.io.savemat.

This fixture does not use the package's writer, so a writer and a reader that agree on a wrong nesting
cannot both pass. It follows shared/EMOTIC_FORMAT.md field by field, in the release's field order.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from emotic_mm.data.categories import CATEGORIES
from emotic_mm.data.emotic_mat import load_annotations
from emotic_mm.errors import DataFormatError
from support.releases import Img, expected_views, make_release, person, vperson, write_image
from support.stores import convert

VAD_FIELDS = [("valence", "O"), ("arousal", "O"), ("dominance", "O")]
IMAGE_FIELDS = [("filename", "O"), ("folder", "O"), ("image_size", "O"), ("original_database", "O"),
                ("person", "O")]
TRAIN_FIELDS = [("body_bbox", "O"), ("annotations_categories", "O"), ("annotations_continuous", "O"),
                ("gender", "O"), ("age", "O")]
COMBINED_FIELDS = [("body_bbox", "O"), ("annotations_categories", "O"), ("combined_categories", "O"),
                   ("annotations_continuous", "O"), ("combined_continuous", "O"), ("gender", "O"), ("age", "O")]


def _cell(names, column=False):
    cell = np.empty((len(names), 1) if column else (1, len(names)), dtype=object)
    for i, n in enumerate(names):
        cell.flat[i] = np.array([n])
    return cell


def _vad(v, a, d):
    s = np.empty((1, 1), dtype=VAD_FIELDS)
    s[0, 0] = (np.array([[v]], dtype=np.float64), np.array([[a]], dtype=np.float64), np.array([[d]], dtype=np.float64))
    return s


def _categories(names, column=False):
    s = np.empty((1, 1), dtype=[("categories", "O")])
    s[0, 0]["categories"] = _cell(names, column)
    return s


def _train_person(bbox, names, vad, gender, age, column=False):
    return (np.array([bbox], dtype=np.float64), _categories(names, column), _vad(*vad), np.array([gender]),
            np.array([age]))


def _combined_person(bbox, annotators, combined, vads, vad, gender, age):
    anns = np.empty((1, len(annotators)), dtype=[("categories", "O")])
    for i, a in enumerate(annotators):
        anns[0, i]["categories"] = _cell(a)
    cont = np.empty((1, len(vads)), dtype=VAD_FIELDS)
    for i, v in enumerate(vads):
        cont[0, i] = tuple(np.array([[x]], dtype=np.float64) for x in v)
    return (np.array([bbox], dtype=np.float64), anns, _cell(combined), cont, _vad(*vad), np.array([gender]),
            np.array([age]))


def _image(filename, folder, width, height, persons, fields):
    size = np.empty((1, 1), dtype=[("n_col", "O"), ("n_row", "O")])
    size[0, 0] = (np.array([[width]], dtype=np.uint16), np.array([[height]], dtype=np.uint16))
    db = np.empty((1, 1), dtype=[("name", "O"), ("info", "O")])
    db[0, 0] = (np.array([folder.split("/")[0]]), np.array(["from the test"]))
    ps = np.empty((1, len(persons)), dtype=fields)
    for i, p in enumerate(persons):
        ps[0, i] = p
    return (np.array([filename]), np.array([folder]), size, db, ps)


def _split(images):
    arr = np.empty((1, len(images)), dtype=IMAGE_FIELDS)
    for i, im in enumerate(images):
        arr[0, i] = im
    return arr


def write_handmade_mat(path: Path) -> None:
    train = _split([
        _image("a.jpg", "mscoco/images", 40, 30, [
            _train_person([1.5, 2.5, 20.25, 28.75], ["Engagement", "Peace"], (6, 4, 7), "Male", "Adult"),
            _train_person([-3, 4, 45, 31], ["Fear"], (2, 8, 2.5), "Female", "Kid", column=True),
        ], TRAIN_FIELDS),
        _image("b.png", "ade20k/images", 40, 30, [
            _train_person([3, 3, 30, 25], ["Happiness"], (8, math.nan, 6), "Male", "Teenager"),
        ], TRAIN_FIELDS),
    ])
    val = _split([
        _image("c.jpg", "framesdb/images", 40, 30, [
            _combined_person([2, 2, 38, 28], [["Sadness", "Pain"], ["Sadness"], ["Suffering"]],
                             ["Pain", "Sadness", "Suffering"], [(2, 5, 3), (3, 5, 3), (2, 4, 2)], (2.25, 4.75, 2.5),
                             "Female", "Adult"),
            _combined_person([5, 5, 20, 20], [], [], [], (math.nan, math.nan, math.nan), "Male", "Adult"),
        ], COMBINED_FIELDS),
    ])
    test = _split([
        _image("d.jpg", "emodb_small/images", 40, 30, [
            _combined_person([0, 0, 40, 30], [["Yearning"], ["Yearning", "Esteem"]], ["Yearning", "Esteem"],
                             [(5, 5, 5), (6, 4, 5)], (5.5, 4.5, 5), "Male", "Kid"),
        ], COMBINED_FIELDS),
    ])
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"train": train, "val": val, "test": test})


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("handmade") / "raw"
    write_handmade_mat(raw / "Annotations" / "Annotations.mat")
    for rel, kind in [("mscoco/images/a.jpg", "rgb_jpg"), ("ade20k/images/b.png", "rgb_png"),
                      ("framesdb/images/c.jpg", "gray_jpg"), ("emodb_small/images/d.jpg", "rgb_jpg")]:
        write_image(raw / "emotic" / rel, kind, (40, 30), seed=len(rel))
    return raw


def test_handmade_file_has_the_documented_nesting(handmade):
    mat = scipy.io.loadmat(str(handmade / "Annotations" / "Annotations.mat"))
    assert mat["train"].shape == (1, 2) and mat["val"].shape == (1, 1)
    rec = mat["train"][0, 0]
    assert rec["filename"][0] == "a.jpg"
    assert rec["image_size"][0, 0]["n_col"][0, 0] == 40
    assert rec["person"].shape == (1, 2)
    assert rec["person"][0, 0]["annotations_categories"][0, 0]["categories"][0, 1][0] == "Peace"
    assert mat["val"][0, 0]["person"].dtype.names[2] == "combined_categories"


def test_reader_on_handmade_file(handmade):
    ann = load_annotations(handmade / "Annotations" / "Annotations.mat")
    assert [len(ann[s]) for s in ("train", "val", "test")] == [3, 2, 1]
    a0, a1, b0 = ann["train"]
    assert (a0.folder, a0.filename, a0.image_width, a0.image_height) == ("mscoco/images", "a.jpg", 40, 30)
    assert a0.bbox == (1.5, 2.5, 20.25, 28.75)
    assert a0.categories == ("Engagement", "Peace") and a0.vad == (6.0, 4.0, 7.0)
    assert (a0.gender, a0.age, a0.votes, a0.skip_reason) == ("Male", "Adult", None, None)
    assert (a0.image_index, a0.person_index, a1.person_index, b0.image_index) == (0, 0, 1, 1)
    assert a1.categories == ("Fear",) and a1.vad == (2.0, 8.0, 2.5) and a1.bbox == (-3.0, 4.0, 45.0, 31.0)
    assert (a1.gender, a1.age) == ("Female", "Kid")
    assert b0.skip_reason == "nan_vad" and math.isnan(b0.vad[1])
    c0, c1 = ann["val"]
    assert c0.categories == ("Pain", "Sadness", "Suffering")  # combined_categories, not annotator 0
    assert c0.vad == (2.25, 4.75, 2.5)  # combined_continuous, not an annotator's
    votes = dict(zip(CATEGORIES, c0.votes))
    assert {k: v for k, v in votes.items() if v} == {"Sadness": 2, "Pain": 1, "Suffering": 1}
    assert c1.skip_reason == "no_category" and c1.categories == ()
    (d0,) = ann["test"]
    assert d0.categories == ("Yearning", "Esteem") and d0.vad == (5.5, 4.5, 5.0)
    assert (d0.folder, d0.filename) == ("emodb_small/images", "d.jpg")


def test_convert_handmade_file(handmade, tmp_path):
    manifest = convert(handmade, tmp_path / "store")
    assert {s: (i["persons"], i["kept"]) for s, i in manifest["splits"].items()} == {
        "train": (3, 2), "val": (2, 1), "test": (1, 1)}
    assert manifest["splits"]["train"]["skipped"]["nan_vad"] == 1
    assert manifest["splits"]["val"]["skipped"]["no_category"] == 1
    boxes = np.load(tmp_path / "store" / "train_bbox_arr.npy")
    np.testing.assert_array_equal(boxes, [[1, 2, 20, 28], [0, 4, 40, 30]])
    _, body = expected_views(handmade / "emotic/mscoco/images/a.jpg", (0, 4, 40, 30))
    np.testing.assert_array_equal(np.load(tmp_path / "store" / "train_body_arr.npy")[1], body)
    np.testing.assert_array_equal(np.load(tmp_path / "store" / "val_cont_arr.npy"), [[2.25, 4.75, 2.5]])


def test_package_writer_matches_the_handmade_layout(tmp_path):
    """The package's writer produces the same dtype names/order and shapes as the handmade file."""
    write_handmade_mat(tmp_path / "hand.mat")
    make_release(tmp_path / "raw", {
        "train": [Img("a.jpg", "mscoco/images", "rgb_jpg", [person([1, 1, 5, 5], ["Fear"])])],
        "val": [Img("c.jpg", "framesdb/images", "rgb_jpg",
                    [vperson([1, 1, 5, 5], [["Fear"]], (1, 2, 3))])],
    })
    hand = scipy.io.loadmat(str(tmp_path / "hand.mat"))
    ours = scipy.io.loadmat(str(tmp_path / "raw" / "Annotations" / "Annotations.mat"))
    for split in ("train", "val"):
        assert ours[split].dtype.names == hand[split].dtype.names
        assert ours[split][0, 0]["person"].dtype.names == hand[split][0, 0]["person"].dtype.names
        assert ours[split][0, 0]["image_size"].dtype.names == ("n_col", "n_row")
        assert ours[split][0, 0]["person"][0, 0]["body_bbox"].shape == (1, 4)


# --------------------------------------------------------------------------- bad layouts, in process
def _save(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), data)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="annotations file not found") as info:
        load_annotations(tmp_path / "nope.mat")
    assert str(tmp_path / "nope.mat") in str(info.value)


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "Annotations.mat"
    path.write_bytes(b"hello, I am text\n" * 20)
    with pytest.raises(DataFormatError, match="not a readable MATLAB") as info:
        load_annotations(path)
    assert str(path) in str(info.value)


def test_missing_splits(tmp_path):
    path = _save(tmp_path / "a.mat", {"train": np.zeros((1, 2)), "something": np.ones(3)})
    with pytest.raises(DataFormatError, match="missing split") as info:
        load_annotations(path)
    assert str(path) in str(info.value) and "val" in str(info.value) and "test" in str(info.value)


def test_split_is_a_numeric_array(tmp_path):
    path = _save(tmp_path / "a.mat", {"train": np.zeros((1, 3)), "val": np.zeros((1, 3)), "test": np.zeros((1, 3))})
    with pytest.raises(DataFormatError, match="train") as info:
        load_annotations(path)
    assert str(path) in str(info.value)


def test_person_lacks_fields(tmp_path):
    fields = [("body_bbox", "O"), ("gender", "O")]
    image = _image("a.jpg", "mscoco/images", 40, 30, [(np.array([[1.0, 2, 3, 4]]), np.array(["Male"]))], fields)
    path = _save(tmp_path / "a.mat", {s: _split([image]) for s in ("train", "val", "test")})
    with pytest.raises(DataFormatError, match="lacks field") as info:
        load_annotations(path)
    msg = str(info.value)
    assert str(path) in msg and "annotations_categories" in msg and "train[0].person[0]" in msg


def test_image_size_not_a_struct(tmp_path):
    image = list(_image("a.jpg", "mscoco/images", 40, 30,
                        [_train_person([1, 2, 3, 4], ["Fear"], (1, 2, 3), "Male", "Adult")], TRAIN_FIELDS))
    image[2] = np.array([[40, 30]], dtype=np.float64)  # image_size as a plain [width, height] vector
    path = _save(tmp_path / "a.mat", {s: _split([tuple(image)]) for s in ("train", "val", "test")})
    with pytest.raises(DataFormatError) as info:
        load_annotations(path)
    assert str(path) in str(info.value) and "image_size" in str(info.value)


def test_bbox_with_wrong_length(tmp_path):
    image = _image("a.jpg", "mscoco/images", 40, 30,
                   [_train_person([1, 2, 3], ["Fear"], (1, 2, 3), "Male", "Adult")], TRAIN_FIELDS)
    path = _save(tmp_path / "a.mat", {s: _split([image]) for s in ("train", "val", "test")})
    with pytest.raises(DataFormatError, match="body_bbox") as info:
        load_annotations(path)
    assert str(path) in str(info.value)
