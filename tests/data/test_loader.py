"""EmoticDataset through a torch DataLoader: the batch contract every model consumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from emotic_mm.data.loader import EmoticDataset, collate_batch
from emotic_mm.data.store import Store
from emotic_mm.errors import DataFormatError


@pytest.fixture
def spy_getitems(monkeypatch):
    calls = []
    original = EmoticDataset.__getitems__

    def spy(self, indices):
        calls.append(list(indices))
        return original(self, indices)

    monkeypatch.setattr(EmoticDataset, "__getitems__", spy)
    return calls


def _check_rows(batch, split, order):
    order = list(order)
    assert batch["index"].tolist() == order
    assert batch["index"].dtype == torch.int64
    for j, i in enumerate(order):
        assert torch.equal(batch["context"][j], torch.from_numpy(np.array(split.context[i])).permute(2, 0, 1))
        assert torch.equal(batch["body"][j], torch.from_numpy(np.array(split.body[i])).permute(2, 0, 1))
        assert torch.equal(batch["input_ids"][j], torch.from_numpy(np.array(split.token_ids[i], dtype=np.int64)))
        n = int(split.token_lengths[i])
        assert batch["attention_mask"][j].tolist() == [1] * n + [0] * (64 - n)
        assert torch.equal(batch["categories"][j], torch.from_numpy(np.array(split.categories[i], dtype=np.float32)))
        assert torch.equal(batch["vad"][j], torch.from_numpy(np.array(split.vad[i], dtype=np.float32)))
        if split.votes is not None:
            assert torch.equal(batch["votes"][j], torch.from_numpy(np.array(split.votes[i], dtype=np.float32)))


def test_val_batches_in_requested_order(main_store, spy_getitems):
    store = Store(main_store[0])
    val = store["val"]
    assert len(val) == 4
    order = [3, 0, 2, 1]
    loader = DataLoader(EmoticDataset(val), batch_size=4, sampler=order, collate_fn=collate_batch)
    batches = list(loader)
    assert spy_getitems == [order]  # one __getitems__ call with the unsorted indices
    (batch,) = batches
    assert set(batch) == {"index", "context", "body", "input_ids", "attention_mask", "categories", "vad", "votes"}
    assert batch["context"].shape == (4, 3, 224, 224) and batch["context"].dtype == torch.uint8
    assert batch["body"].shape == (4, 3, 128, 128) and batch["body"].dtype == torch.uint8
    assert batch["input_ids"].shape == (4, 64) and batch["input_ids"].dtype == torch.int64
    assert batch["attention_mask"].shape == (4, 64) and batch["attention_mask"].dtype == torch.int64
    assert batch["categories"].shape == (4, 26) and batch["categories"].is_floating_point()
    assert batch["vad"].shape == (4, 3) and batch["vad"].is_floating_point()
    assert batch["votes"].shape == (4, 26)
    _check_rows(batch, val, order)
    # the rows really are in the requested order, not sorted: val[3] is Yearning+Sympathy (3 votes)
    assert batch["votes"][0].max() == 3 and batch["categories"][1].sum() == 2


def test_train_batches_without_votes(main_store, spy_getitems):
    train = Store(main_store[0])["train"]
    order = [4, 2, 0, 3, 1]
    batches = list(DataLoader(EmoticDataset(train), batch_size=4, sampler=order, collate_fn=collate_batch))
    assert spy_getitems == [order[:4], order[4:]]
    assert [b["context"].shape[0] for b in batches] == [4, 1]
    for b, part in zip(batches, (order[:4], order[4:])):
        assert "votes" not in b
        _check_rows(b, train, part)


def test_single_item_and_stacking_fallback(main_store):
    ds = EmoticDataset(Store(main_store[0])["val"])
    item = ds[2]
    assert item["context"].shape == (3, 224, 224) and int(item["index"]) == 2
    stacked = collate_batch([ds[1], ds[0]])
    assert stacked["index"].tolist() == [1, 0] and stacked["body"].shape == (2, 3, 128, 128)


def test_modalities_limit_fields(main_store):
    ds = EmoticDataset(Store(main_store[0])["test"], modalities=("body",))
    batch = ds.__getitems__([0])
    assert set(batch) == {"index", "body", "categories", "vad", "votes"}


def test_community_store_without_tokens(tmp_path):
    from test_store import write_community_folder

    write_community_folder(tmp_path / "c")
    split = Store(tmp_path / "c")["train"]
    with pytest.raises(DataFormatError, match="no token ids"):
        EmoticDataset(split)
    batch = next(iter(DataLoader(EmoticDataset(split, modalities=("context", "body")), batch_size=4,
                                 collate_fn=collate_batch)))
    assert batch["context"].shape == (3, 3, 224, 224) and batch["categories"].dtype == torch.float32
    assert "votes" not in batch and "input_ids" not in batch
