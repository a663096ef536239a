"""Every defense kind, once — shaped like :mod:`emotic_mm.attacks.registry`.

A new defense is: its mechanism in ``defenses/`` (an input transform inside the model's preprocessing,
a certification, a training-set filter or a test-time detector), a config file
``configs/defense/<name>.yaml`` with ``name: <name>``, and one ``DEFENSES.register(DefenseKind(...))``
here; ``train``, ``eval``, ``attack`` and the report find it by name.

``where`` says which stages act on it (a kind may act in several):

* ``input`` — a pixel transform the image encoders apply right after ``working_view`` (every attack goes
  through it); ``make`` returns an ``nn.Module`` (pixels (B, 3, H, W) in [0, 255] → the encoder's input).
* ``certify`` — ``eval certify=true`` runs the vote sampler and the certificate; ``make`` returns settings.
* ``training`` — a detector on representations between the store and the trainer (detect, filter, retrain).
* ``test`` — a test-time detector of triggered inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emotic_mm.registry import Registry, load_callable

WHERE = ("input", "certify", "training", "test")


@dataclass(frozen=True)
class DefenseKind:
    """One kind of defense (``defense=<name>``)."""

    name: str
    where: tuple[str, ...]  # stages that act on it, from WHERE; () for ``none``
    build: str              # "module:function" taking the defense config block, returning the defense object
    title: str              # report heading

    def __post_init__(self) -> None:
        unknown = [w for w in self.where if w not in WHERE]
        if unknown:
            raise ValueError(f"defense {self.name!r}: where={unknown} not in {WHERE}")

    def acts(self, where: str) -> bool:
        return where in self.where

    def make(self, block: Any) -> Any:
        return load_callable(self.build)(block)


def no_defense(block: Any) -> None:
    """``defense=none``: nothing to build."""
    return None


DEFENSES: Registry[DefenseKind] = Registry("defense")

DEFENSES.register(DefenseKind("none", (), "emotic_mm.defenses.registry:no_defense", "No defense"))
DEFENSES.register(DefenseKind("median", ("input",), "emotic_mm.defenses.smoothing:median_from_config",
                              "Median filter"))
DEFENSES.register(DefenseKind("squeeze", ("input",), "emotic_mm.defenses.smoothing:squeeze_from_config",
                              "Bit-depth reduction (feature squeezing)"))
# input: RandomAblation hook (AblationSettings.encoder_hook) for training; certify: the vote certificate
DEFENSES.register(DefenseKind("ablation", ("input", "certify"), "emotic_mm.defenses.ablation:ablation_from_config",
                              "Randomized ablation (certified L0)"))
DEFENSES.register(DefenseKind("spectral", ("training",), "emotic_mm.defenses.detectors:spectral_from_config",
                              "Spectral signatures"))
DEFENSES.register(DefenseKind("activation_clustering", ("training",),
                              "emotic_mm.defenses.detectors:activation_clustering_from_config",
                              "Activation clustering"))
DEFENSES.register(DefenseKind("strip", ("test",), "emotic_mm.defenses.strip:strip_from_config", "STRIP"))
