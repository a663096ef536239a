"""The store a run reads, as its model sees it: open the store a config names, check that it fits the
model (tokenizer, vocabulary, view sizes), build datasets, read boxes. Every stage and recipe that reads
a store goes through here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotic_mm.data.loader import EmoticDataset
from emotic_mm.data.store import Store, StoreSplit
from emotic_mm.errors import ConfigError

log = logging.getLogger(__name__)


def has_checkpoint(cfg: Any) -> bool:
    """``checkpoint=`` was given (Hydra's ``???`` and null mean it was not)."""
    return cfg.get("checkpoint") not in (None, "", "???")


def open_store(cfg: Any) -> Store:
    """The store named by ``data.prepared_dir`` (the key every stage reads)."""
    return Store(Path(str(cfg.data.prepared_dir)))


def check_store_fits_model(store: Store, trained_cfg: Any, checkpoint: Path | None = None,
                           trained_sizes: dict[str, int] | None = None) -> None:
    """The store must hold what the model was built for: token ids of its tokenizer, inside its
    vocabulary, and views of the sizes it was trained on.

    ``trained_cfg`` is the model's training config (its ``model`` and ``data`` blocks). The trained view
    sizes are ``trained_sizes`` if given, else the ``checkpoint``'s ``meta.json``; without a checkpoint
    (a config of the user's), those of the store its config names, when reachable and not ``store``.
    """
    model_cfg = trained_cfg.model
    own_tokenizer = model_cfg.get("tokenizer")
    if trained_sizes is None and checkpoint is not None:
        from emotic_mm.checkpoint import trained_view_sizes

        trained_sizes = trained_view_sizes(checkpoint)
    modalities = [str(m) for m in model_cfg.modalities]
    if "text" in modalities:
        wanted = str(own_tokenizer.name) if own_tokenizer is not None else str(model_cfg.text_encoder.name)
        stored = store.tokenizer_name or (store.manifest or {}).get("tokenizer", {}).get("name")
        if stored is not None and stored != wanted:
            key = "model.tokenizer.name" if own_tokenizer is not None else "model.text_encoder.name"
            raise ConfigError(
                f"{store.path}: tokenised with {stored!r} but {key}={wanted!r}; "
                f"re-run `emotic-mm prepare tokenizer.name={wanted}`"
            )
        _check_token_ids(store, wanted)
    if trained_sizes is None and checkpoint is None:  # a checkpoint's own paths are never followed
        trained_sizes = _trained_sizes(trained_cfg, store)
    _check_view_sizes(store, modalities, trained_sizes)


def _check_token_ids(store: Store, encoder: str) -> None:
    """Every stored token id indexes the encoder's embedding table (else: an IndexError mid-epoch)."""
    from transformers import AutoConfig

    from emotic_mm.config import resolve_model_name

    try:
        config = AutoConfig.from_pretrained(resolve_model_name(encoder), trust_remote_code=False)
        vocab = int(getattr(config, "vocab_size", None) or config.text_config.vocab_size)
    except (OSError, ValueError, TypeError, AttributeError):
        return  # the encoder itself fails to load later, with its own one-line message
    from emotic_mm.data.store import read_array

    for split in store.splits:
        ids = read_array((store.token_dir or store.path) / f"{split}_token_ids_arr.npy", required=False)
        if ids is None or ids.size == 0:
            continue
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab:
            raise ConfigError(
                f"{store.path / f'{split}_token_ids_arr.npy'}: token ids in [{low}, {high}] lie outside the "
                f"vocabulary of model.text_encoder.name={encoder!r} (0..{vocab - 1}); re-run `emotic-mm prepare`"
            )


def _trained_sizes(trained_cfg: Any, store: Store) -> dict[str, int] | None:
    """View sizes of the store the training config names (``data.prepared_dir``), if reachable."""
    from omegaconf import OmegaConf

    from emotic_mm.data.store import view_sizes

    trained = OmegaConf.select(trained_cfg, "data.prepared_dir", default=None)
    if trained in (None, "", "???") or not Path(str(trained)).is_dir():
        return None
    if Path(str(trained)).resolve() == store.path.resolve():
        return None  # training on it, or evaluating on the very store it was trained on
    return view_sizes(Path(str(trained)))


def _check_view_sizes(store: Store, modalities: list[str], trained: dict[str, int] | None) -> None:
    if not trained:
        return
    have = store.view_sizes or {}
    for view in ("context", "body"):
        if view in modalities and view in trained and view in have and have[view] != trained[view]:
            raise ConfigError(
                f"{store.path}: {view} views are {have[view]}x{have[view]} px but the checkpoint was trained on "
                f"{trained[view]}x{trained[view]}; prepare a store with data.{view}_size={trained[view]}"
            )


def store_for_model(cfg: Any, trained_cfg: Any, checkpoint: Path | None = None) -> Store:
    """The store ``data.prepared_dir`` names, as the model reads it, checked to fit it.

    A model whose block names its own ``tokenizer`` (``model=clip``: the text tower's) reads token ids of
    that tokenizer: the store's descriptions are re-tokenised once and cached beside its arrays, keyed by
    tokenizer and length (:func:`retokenized`). Other models read the store's own token ids.
    """
    store = open_store(cfg)
    own = trained_cfg.model.get("tokenizer")
    if own is not None and "text" in [str(m) for m in trained_cfg.model.modalities]:
        store = retokenized(store, str(own.name), own.get("max_length"))
    check_store_fits_model(store, trained_cfg, checkpoint)
    return store


def model_length(tokenizer: Any) -> int:
    """A tokenizer's own sequence length (capped: some report a huge sentinel)."""
    return int(min(int(getattr(tokenizer, "model_max_length", 77) or 77), 512))


def tower_positions(name: str) -> int | None:
    """``max_position_embeddings`` of the text tower a model folder declares (its ``text_config``, else its
    own config), or ``None`` when it declares none or does not load (it fails later with its own line)."""
    from transformers import AutoConfig

    from emotic_mm.config import resolve_model_name

    try:
        config = AutoConfig.from_pretrained(resolve_model_name(name), trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    value = getattr(getattr(config, "text_config", None) or config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def token_length(tokenizer: Any, name: str, max_length: Any = None) -> int:
    """The length descriptions are tokenised at for the text tower ``name``: ``max_length`` when given
    (refused when longer than the tower's positions), else the smaller of the tokenizer's model length
    and the tower's ``max_position_embeddings`` (a tokenizer saved from another model may declare more)."""
    positions = tower_positions(name)
    if max_length not in (None, ""):
        from emotic_mm.config import whole_number

        length = whole_number(max_length, "model.tokenizer.max_length", 4)
        if positions is not None and length > positions:
            raise ConfigError(f"model.tokenizer.max_length={length} exceeds the text tower's "
                              f"max_position_embeddings={positions} ({name})")
        return length
    own = model_length(tokenizer)
    return min(own, positions) if positions is not None else own


def retokenized(store: Store, tokenizer_name: str, max_length: int | None) -> Store:
    """``store`` reading token ids of ``tokenizer_name`` from ``<store>/tokens/<key>/`` (made on first use).

    ``max_length=None``: the tokenizer's model length (e.g. 77 for CLIP, 64 for SigLIP, whose text tower
    pools the last position and so expects that fixed padding), never more than the text tower's
    positions (:func:`token_length`).
    """
    import hashlib
    import json

    from emotic_mm.data.tokens import load_tokenizer, tokenize
    from emotic_mm.fsutil import atomic_dir

    tokenizer = load_tokenizer(tokenizer_name, "model.tokenizer.name")
    length = token_length(tokenizer, tokenizer_name, max_length)
    stored = (store.manifest or {}).get("tokenizer", {})
    if stored.get("name") == tokenizer_name and max_length in (None, stored.get("max_length")) \
            and int(stored.get("max_length") or 0) <= length:
        return store  # prepare already used this tokenizer, at a length the tower takes
    manifest = json.dumps(store.manifest, sort_keys=True, default=str) if store.manifest else str(store.path)
    key = hashlib.sha256(f"{tokenizer_name}|{length}|{manifest}".encode()).hexdigest()[:12]
    folder = store.path / "tokens" / key
    if not (folder / "tokens.json").is_file():
        log.info("re-tokenising %s's descriptions with %s (once; cached in %s)", store.path, tokenizer_name, folder)
        with atomic_dir(folder) as tmp:
            for split in store.splits:
                texts = store[split].descriptions
                if texts is None:
                    raise ConfigError(f"{store.path}: split {split!r} has no descriptions to tokenise with "
                                      f"{tokenizer_name!r}; re-run `emotic-mm prepare`")
                arrays = tokenize(texts, tokenizer, length)
                np.save(tmp / f"{split}_token_ids_arr.npy", arrays.ids)
                np.save(tmp / f"{split}_token_len_arr.npy", arrays.lengths)
            (tmp / "tokens.json").write_text(json.dumps({"tokenizer": tokenizer_name, "max_length": length}) + "\n")
    store.token_dir, store.tokenizer_name = folder, tokenizer_name
    return store


def dataset(store: Store, split: str, modalities: Any) -> EmoticDataset:
    return EmoticDataset(store[split], modalities=[str(m) for m in modalities])


def person_boxes(split: StoreSplit, ids: np.ndarray) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Stored boxes and image sizes of ``ids`` (what the scene surface maps through), or ``(None, None)``."""
    if split.boxes is None or split.image_sizes is None:
        return None, None
    return torch.from_numpy(np.asarray(split.boxes[ids])), torch.from_numpy(np.asarray(split.image_sizes[ids]))
