"""The converter on a hand-made release: counts, skip reasons, labels, boxes, pixels, CSV and tokens."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
from PIL import Image

from emotic_mm.data.categories import CATEGORIES, CATEGORY_INDEX
from support.digest import digest
from support.main_release import MAIN_EXPECTED, MAIN_PERSONS, MAIN_SKIPPED
from support.releases import BODY, CONTEXT, Img, expected_views, make_release, person
from support.stores import COMMUNITY_COLUMNS, EXTRA_COLUMNS, convert, read_csv_str

SPLITS = ("train", "val", "test")


def test_fixture_images_have_the_intended_modes(main_raw):
    """The release really holds palette/RGBA PNGs and grayscale files (else the RGB checks prove nothing)."""
    modes = {}
    for path in (main_raw / "emotic").rglob("*.*"):
        try:
            with Image.open(path) as im:
                modes[path.name] = (im.format, im.mode)
        except Exception:
            modes[path.name] = None
    assert modes["train_palette.png"] == ("PNG", "P")
    assert modes["val_b.png"] == ("PNG", "RGBA")
    assert modes["train_gray.jpg"] == ("JPEG", "L")
    assert modes["test_gray.png"] == ("PNG", "L")
    assert modes["train_bad.jpg"] is None
    assert not (main_raw / "emotic" / "mscoco/images/train_missing.jpg").exists()


def test_manifest_counts_and_skip_reasons(main_store):
    out, manifest = main_store
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert manifest["format"] == "emotic-mm-store"
    assert manifest["categories"] == list(CATEGORIES)
    assert manifest["text_source"] == "template"
    assert manifest["sizes"] == {"context": CONTEXT, "body": BODY}
    assert set(manifest["splits"]) == set(SPLITS)
    for split in SPLITS:
        info = manifest["splits"][split]
        assert info["persons"] == MAIN_PERSONS[split], split
        assert info["kept"] == len(MAIN_EXPECTED[split]), split
        assert info["skipped"] == MAIN_SKIPPED[split], split
        assert info["kept"] + sum(info["skipped"].values()) == info["persons"]
        assert info["descriptions"] == {"template": info["kept"]}
        expected_counts = {c: sum(c in e.categories for e in MAIN_EXPECTED[split]) for c in CATEGORIES}
        assert info["label_counts"] == expected_counts


def test_no_partial_leftovers(main_store):
    out, _ = main_store
    assert [p.name for p in out.parent.iterdir()] == ["store"]


@pytest.mark.parametrize("split", SPLITS)
def test_label_arrays(main_store, split):
    out, _ = main_store
    expected = MAIN_EXPECTED[split]
    n = len(expected)
    cats = np.load(out / f"{split}_cat_arr.npy")
    cont = np.load(out / f"{split}_cont_arr.npy")
    boxes = np.load(out / f"{split}_bbox_arr.npy")
    sizes = np.load(out / f"{split}_image_size_arr.npy")
    want_cats = np.zeros((n, 26))
    for i, e in enumerate(expected):
        for c in e.categories:
            want_cats[i, CATEGORY_INDEX[c]] = 1
    assert cats.shape == (n, 26)
    np.testing.assert_array_equal(cats, want_cats)
    assert cont.shape == (n, 3)
    np.testing.assert_array_equal(cont, np.array([e.vad for e in expected], dtype=np.float64))
    np.testing.assert_array_equal(boxes, np.array([e.box for e in expected]).reshape(n, 4))
    np.testing.assert_array_equal(sizes, np.array([e.image_size for e in expected]).reshape(n, 2))
    votes_path = out / f"{split}_votes_arr.npy"
    if split == "train":
        assert not votes_path.exists()
    else:
        votes = np.load(votes_path)
        want = np.zeros((n, 26))
        for i, e in enumerate(expected):
            for c, k in e.votes.items():
                want[i, CATEGORY_INDEX[c]] = k
        np.testing.assert_array_equal(votes, want)


@pytest.mark.parametrize("split", SPLITS)
def test_pixels_match_pil(main_store, main_raw, split):
    out, _ = main_store
    expected = MAIN_EXPECTED[split]
    context = np.load(out / f"{split}_context_arr.npy")
    body = np.load(out / f"{split}_body_arr.npy")
    assert context.shape == (len(expected), CONTEXT, CONTEXT, 3) and context.dtype == np.uint8
    assert body.shape == (len(expected), BODY, BODY, 3) and body.dtype == np.uint8
    for i, e in enumerate(expected):
        want_context, want_body = expected_views(main_raw / "emotic" / e.rel, e.box)
        np.testing.assert_array_equal(context[i], want_context, err_msg=f"{split}[{i}] context")
        np.testing.assert_array_equal(body[i], want_body, err_msg=f"{split}[{i}] body")


def test_grayscale_is_converted_to_rgb(main_store):
    out, _ = main_store
    gray = np.load(out / "test_context_arr.npy")[0].astype(int)  # test_gray.png, mode L
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert gray.std() > 0


def test_annotated_size_is_used_for_the_clamp(main_store, main_raw):
    """train_small.jpg is 40x30 on disk but annotated 36x28: x2=39.6 → 36, y2=29.9 → 28, not 39/29."""
    out, _ = main_store
    assert tuple(np.load(out / "train_bbox_arr.npy")[4]) == (10, 5, 36, 28)
    _, wrong = expected_views(main_raw / "emotic/mscoco/images/train_small.jpg", (10, 5, 39, 29))
    assert not np.array_equal(np.load(out / "train_body_arr.npy")[4], wrong)


@pytest.mark.parametrize("split", SPLITS)
def test_csv(main_store, split):
    out, _ = main_store
    expected = MAIN_EXPECTED[split]
    header = (out / f"{split}.csv").read_text().splitlines()[0]
    assert header.split(",") == COMMUNITY_COLUMNS + EXTRA_COLUMNS
    df = read_csv_str(out / f"{split}.csv")
    assert list(df.columns[:9]) == COMMUNITY_COLUMNS
    assert list(df.columns[9:]) == EXTRA_COLUMNS
    assert len(df) == len(expected)
    for i, (e, row) in enumerate(zip(expected, df.to_dict("records"))):
        folder, filename = e.rel.rsplit("/", 1)
        assert row["Index"] == str(i)
        assert row["Folder"] == folder and row["Filename"] == filename
        assert row["Image Size"] == f"[{e.image_size[0]}, {e.image_size[1]}]"
        assert row["BBox"] == "[" + ", ".join(str(v) for v in e.box) + "]"
        assert row["Categorical_Labels"] == "[" + ", ".join(f"'{c}'" for c in e.categories) + "]"
        assert ast.literal_eval(row["Categorical_Labels"]) == list(e.categories)
        assert row["Continuous_Labels"].startswith("[") and row["Continuous_Labels"].endswith("]")
        assert ast.literal_eval(row["Continuous_Labels"]) == list(e.vad)
        assert row["Gender"] == e.gender and row["Age"] == e.age
        assert row["Person"] == str(e.person)
        assert row["Description"].strip()
        assert row["Description_Source"] == "template"
    if split == "train":
        first = df.iloc[0]
        assert first["BBox"] == "[2, 3, 20, 28]"
        assert first["Categorical_Labels"] == "['Engagement', 'Happiness']"


@pytest.mark.parametrize("split", SPLITS)
def test_tokens_match_minilm(main_store, tokenizer, split):
    out, manifest = main_store
    texts = read_csv_str(out / f"{split}.csv")["Description"].tolist()
    ids = np.load(out / f"{split}_token_ids_arr.npy")
    lengths = np.load(out / f"{split}_token_len_arr.npy")
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=64)
    assert ids.shape == (len(texts), 64)
    np.testing.assert_array_equal(ids, np.asarray(enc["input_ids"]))
    np.testing.assert_array_equal(lengths, np.asarray(enc["attention_mask"]).sum(axis=1))
    for row, n in zip(ids, lengths):
        assert row[0] == tokenizer.cls_token_id and row[n - 1] == tokenizer.sep_token_id
        assert (row[n:] == tokenizer.pad_token_id).all()
    assert manifest["tokenizer"] == {"name": "shipped:all-MiniLM-L6-v2", "max_length": 64,
                                     "pad_id": tokenizer.pad_token_id, "vocab_size": len(tokenizer)}


@pytest.mark.slow  # worker processes
def test_workers_2_gives_the_same_store(main_store, main_raw, tmp_path):
    out0, manifest0 = main_store
    manifest2 = convert(main_raw, tmp_path / "store", workers=2)
    assert manifest2["splits"] == manifest0["splits"]
    names0 = sorted(p.name for p in out0.iterdir())
    assert names0 == sorted(p.name for p in (tmp_path / "store").iterdir())
    for name in names0:
        if name.endswith(".npy"):
            np.testing.assert_array_equal(np.load(out0 / name), np.load(tmp_path / "store" / name), err_msg=name)
        elif name.endswith(".csv"):
            assert digest(out0 / name) == digest(tmp_path / "store" / name), name


def test_reconvert_replaces_an_existing_store(main_raw, tmp_path):
    out = tmp_path / "store"
    convert(main_raw, out)
    (out / "stray.txt").write_text("from an older build")
    convert(main_raw, out)
    assert not (out / "stray.txt").exists()
    assert (out / "manifest.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_release_paths_name_what_is_missing(tmp_path):
    from emotic_mm.data.convert import release_paths
    from emotic_mm.errors import DataFormatError

    with pytest.raises(DataFormatError, match="is not a folder") as info:
        release_paths(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    (tmp_path / "raw" / "emotic").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="annotations file not found") as info:
        release_paths(tmp_path / "raw")
    assert str(tmp_path / "raw" / "Annotations" / "Annotations.mat") in str(info.value)
    (tmp_path / "raw" / "Annotations").mkdir()
    (tmp_path / "raw" / "Annotations" / "Annotations.mat").write_bytes(b"")
    (tmp_path / "raw" / "emotic").rmdir()
    with pytest.raises(DataFormatError, match="images folder not found") as info:
        release_paths(tmp_path / "raw")
    assert str(tmp_path / "raw" / "emotic") in str(info.value)


def test_a_split_with_no_persons(tmp_path):
    """An empty split still gets every array (with 0 rows) and a CSV with the header only."""
    raw = make_release(tmp_path / "raw", {"train": [Img("a.jpg", "mscoco/images", "rgb_jpg",
                                                        [person([1, 1, 20, 20], ["Fear"])])]})
    manifest = convert(raw, tmp_path / "store")
    assert manifest["splits"]["val"]["persons"] == 0 and manifest["splits"]["test"]["kept"] == 0
    assert np.load(tmp_path / "store" / "val_context_arr.npy").shape == (0, CONTEXT, CONTEXT, 3)
    assert np.load(tmp_path / "store" / "val_votes_arr.npy").shape == (0, 26)
    assert np.load(tmp_path / "store" / "test_token_ids_arr.npy").shape == (0, 64)
    assert (tmp_path / "store" / "test.csv").read_text().splitlines() == [",".join(COMMUNITY_COLUMNS + EXTRA_COLUMNS)]
