"""What the tests share, in one place (conftest.py only registers it and sets the environment).

* ``support.cli``: ``run_cli`` / ``run_cli_all``, the ``emotic-mm`` command offline; ``REPO``, ``EMOTIC_MM``.
* ``support.compose``: ``compose_cfg(stage, overrides)`` and the ``TINY_MODEL`` / ``TINY_TRAIN`` overrides.
* ``support.digest``: ``digest`` of a file or folder, ``file_digests`` of a folder.
* ``support.releases``: hand-written EMOTIC-layout releases (``person``, ``vperson``, ``Img``,
  ``make_release``).
* ``support.main_release``: the MAIN and PERM releases and the store MAIN must give.
* ``support.stores``: ``convert``, ``synthetic_store``, text configs, ``TOKENIZER``, the CSV columns.
* ``support.checkpoints``: ``train_tiny`` and the ``TINY_CHECKPOINT`` overrides.
* ``support.text``: ``label_words`` (descriptions must not name their emotion).
* ``support.clip``: ``save_tiny`` — tiny random CLIP / SigLIP folders with a real (MiniLM) vocabulary.
* ``support.fixtures``: the session fixtures (releases, stores, tiny BLIP, tiny checkpoints).

Scripts do not import from here: what they share with the tests (``compose_cfg``, ``synthetic_store``,
``save_tiny``) lives in ``emotic_mm.testkit`` and is re-exported by the modules above.
"""

from support.cli import EMOTIC_MM, REPO, run_cli, run_cli_all
from support.compose import LEARNING_BACKBONE, TINY_MODEL, TINY_TRAIN, compose_cfg
from support.digest import digest, file_digests

__all__ = [
    "EMOTIC_MM",
    "LEARNING_BACKBONE",
    "REPO",
    "TINY_MODEL",
    "TINY_TRAIN",
    "compose_cfg",
    "digest",
    "file_digests",
    "run_cli",
    "run_cli_all",
]
