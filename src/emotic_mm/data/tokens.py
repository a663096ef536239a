"""Tokenise descriptions once, at ``prepare`` time, with the configured text encoder's tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emotic_mm.errors import ConfigError


@dataclass
class TokenArrays:
    ids: np.ndarray  # (N, max_length) int32, padded with the tokenizer's pad id
    lengths: np.ndarray  # (N,) int32, number of real tokens (special tokens included)
    pad_id: int
    vocab_size: int


def load_tokenizer(name: str, key: str = "tokenizer.name"):  # -> transformers.PreTrainedTokenizerBase
    """The tokenizer of a hub id, local folder or ``shipped:`` model (no code from the folder is run)."""
    from transformers import AutoTokenizer

    from emotic_mm.pretrained import load_pretrained

    return load_pretrained(AutoTokenizer, name, key, "a tokenizer")


DEFAULT_MAX_LENGTH = 64  # prepare's tokenizer.max_length default (configs/prepare.yaml)


def tokenize(texts: Sequence[str], tokenizer, max_length: int, batch_size: int = 256) -> TokenArrays:
    """Fixed-length token ids and lengths, batched so very large splits stay light."""
    if max_length < 4:
        raise ConfigError(f"tokenizer.max_length={max_length} is too small (need at least 4)")
    ids = np.full((len(texts), max_length), tokenizer.pad_token_id or 0, dtype=np.int32)
    lengths = np.zeros(len(texts), dtype=np.int32)
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        enc = tokenizer(chunk, padding="max_length", truncation=True, max_length=max_length)
        block = np.asarray(enc["input_ids"], dtype=np.int32)
        mask = np.asarray(enc["attention_mask"], dtype=np.int32)
        ids[start:start + len(chunk)] = block
        lengths[start:start + len(chunk)] = mask.sum(axis=1)
    return TokenArrays(ids, lengths, int(tokenizer.pad_token_id or 0), int(len(tokenizer)))
