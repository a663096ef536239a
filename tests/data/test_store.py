"""Opening stores: ours (with manifest) and community-converter folders (arrays + CSV, no manifest)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emotic_mm.data.store import Store
from emotic_mm.errors import DataFormatError
from support.main_release import MAIN_EXPECTED
from support.stores import COMMUNITY_COLUMNS, convert

SIZES = {"train": 3, "val": 2, "test": 2}


def write_community_folder(folder, sizes=SIZES, seed=0):
    """What the community converter writes: 4 arrays and a CSV per split, float64 labels, no manifest."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n in sizes.items():
        context = rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)
        body = rng.integers(0, 256, (n, 128, 128, 3), dtype=np.uint8)
        cats = np.zeros((n, 26), dtype=np.float64)
        cats[np.arange(n), rng.integers(0, 26, n)] = 1.0
        cats[0, 11] = 1.0
        cont = rng.integers(1, 11, (n, 3)).astype(np.float64)
        np.save(folder / f"{split}_context_arr.npy", context)
        np.save(folder / f"{split}_body_arr.npy", body)
        np.save(folder / f"{split}_cat_arr.npy", cats)
        np.save(folder / f"{split}_cont_arr.npy", cont)
        rows = [{"Index": i, "Folder": "mscoco/images", "Filename": f"{split}_{i}.jpg", "Image Size": "[640, 480]",
                 "BBox": "[12, 40, 200, 310]", "Categorical_Labels": "['Engagement', 'Happiness']",
                 "Continuous_Labels": "[6, 5, 7]", "Gender": "Male", "Age": "Adult"} for i in range(n)]
        pd.DataFrame(rows, columns=COMMUNITY_COLUMNS).to_csv(folder / f"{split}.csv")
        data[split] = (context, body, cats, cont)
    return data


def test_community_folder_loads(tmp_path):
    data = write_community_folder(tmp_path / "community")
    store = Store(tmp_path / "community")
    assert store.is_community and store.manifest is None
    assert store.splits == ["train", "val", "test"]
    for split, (context, body, cats, cont) in data.items():
        s = store[split]
        assert len(s) == SIZES[split]
        np.testing.assert_array_equal(s.context, context)
        np.testing.assert_array_equal(s.body, body)
        np.testing.assert_array_equal(s.categories, cats)
        assert s.categories.dtype == np.float64
        np.testing.assert_array_equal(s.vad, cont)
        assert s.votes is None and s.token_ids is None and s.token_lengths is None and s.boxes is None
        assert s.descriptions is None  # no Description column
        assert s.category_names(0) == ["Engagement", "Happiness"]
        assert list(s.table["Filename"]) == [f"{split}_{i}.jpg" for i in range(SIZES[split])]


def test_community_folder_with_only_some_splits(tmp_path):
    write_community_folder(tmp_path / "c", sizes={"train": 2, "test": 1})
    store = Store(tmp_path / "c")
    assert store.splits == ["train", "test"]
    with pytest.raises(DataFormatError, match="'val' not in store"):
        store["val"]


@pytest.mark.parametrize("missing", ["train_body_arr.npy", "val_cat_arr.npy", "test_cont_arr.npy"])
def test_incomplete_community_folder_names_the_missing_file(tmp_path, missing):
    write_community_folder(tmp_path / "c")
    (tmp_path / "c" / missing).unlink()
    with pytest.raises(DataFormatError) as info:
        Store(tmp_path / "c")
    assert missing in str(info.value) and str(tmp_path / "c") in str(info.value)


def test_cat_array_with_wrong_width(tmp_path):
    write_community_folder(tmp_path / "c")
    np.save(tmp_path / "c" / "train_cat_arr.npy", np.zeros((3, 25)))
    with pytest.raises(DataFormatError, match="train_cat_arr.npy"):
        Store(tmp_path / "c")["train"]


def test_not_a_store(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="not a store"):
        Store(tmp_path / "empty")
    with pytest.raises(DataFormatError, match="no prepared store"):
        Store(tmp_path / "absent")


def test_our_store_loads(main_store):
    out, manifest = main_store
    store = Store(out)
    assert not store.is_community and store.manifest == json.loads(json.dumps(manifest))
    assert store.splits == ["train", "val", "test"]
    val = store["val"]
    assert len(val) == len(MAIN_EXPECTED["val"])
    assert val.votes.shape == (len(val), 26) and store["train"].votes is None
    assert val.token_ids.shape == (len(val), 64) and val.token_lengths.shape == (len(val),)
    assert len(val.descriptions) == len(val)
    assert val.category_names(3) == ["Yearning", "Sympathy"]
    np.testing.assert_array_equal(val.boxes[1], [30, 0, 40, 20])
    np.testing.assert_array_equal(store["train"].image_sizes[4], [36, 28])


def test_our_store_missing_an_array(main_raw, tmp_path):
    convert(main_raw, tmp_path / "s")
    (tmp_path / "s" / "val_context_arr.npy").unlink()
    with pytest.raises(DataFormatError, match="val_context_arr.npy"):
        Store(tmp_path / "s")
