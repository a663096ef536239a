"""Every defense kind, once — shaped like :mod:`emotic_mm.attacks.registry`.

A new defense is: its mechanism in ``defenses/`` (an input transform inside the model's preprocessing,
a certification, a training-set filter or a test-time detector), a config file
``configs/defense/<name>.yaml`` with ``name: <name>``, and one ``DEFENSES.register(DefenseKind(...))``
here; ``train``, ``eval``, ``attack`` and the report find it by name.

``where`` says which stages act on it (a kind may act in several); ``make`` returns the object whose
contract (:mod:`emotic_mm.defenses.contracts`) those stages call:

* ``input`` — an ``InputDefense``: a transform the image encoders apply right after ``working_view``
  (every attack goes through it), pixels (B, 3, H, W) in [0, 255] → the backbone's input.
* ``certify`` — a ``Certifier``: ``eval certify=true`` runs the vote sampler and the certificate; its
  ``encoder_hook`` is the kind's input defense when it also acts at ``input``.
* ``training`` — a ``TrainingFilter``: a detector on representations between the store and the trainer
  (detect, filter, retrain).
* ``test`` — a ``TriggerDetector``: a test-time detector of triggered inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emotic_mm.defenses.contracts import Defense, InputDefense
from emotic_mm.registry import Registry, load_callable

WHERE = ("input", "certify", "training", "test")


@dataclass(frozen=True)
class DefenseKind:
    """One kind of defense (``defense=<name>``)."""

    name: str
    where: tuple[str, ...]  # stages that act on it, from WHERE; () for ``none``
    build: str  # "module:function" taking the defense config block, returning the defense object
    title: str  # a readable name
    weight_keys: tuple[
        str, ...
    ] = ()  # config keys that change the weights a model trains to (input defenses)

    def __post_init__(self) -> None:
        unknown = [w for w in self.where if w not in WHERE]
        if unknown:
            raise ValueError(f"defense {self.name!r}: where={unknown} not in {WHERE}")

    def acts(self, where: str) -> bool:
        return where in self.where

    def make(self, block: Any) -> Defense:
        """The defense object of a config block (``defense.*`` keys)."""
        return load_callable(self.build)(block)

    def input_defense(self, block: Any) -> InputDefense:
        """What goes inside the image encoders: the built object, or, for a kind that also certifies,
        the input defense its base classifier trains under (the certifier's ``encoder_hook``)."""
        made = self.make(block)
        return made.encoder_hook() if self.acts("certify") else made


def defense_of(cfg: Any) -> tuple[DefenseKind, dict[str, Any]]:
    """The kind and plain block of a config's ``defense`` (``none`` for a config without one)."""
    from omegaconf import DictConfig, OmegaConf

    block = cfg.get("defense") if cfg is not None else None
    block = (
        OmegaConf.to_container(block, resolve=True) if isinstance(block, DictConfig) else dict(block or {})
    )
    return DEFENSES.get(str(block.get("name") or "none")), block


def weights_defense(cfg: Any) -> dict[str, Any]:
    """What of a config's defense shapes the trained weights: an input defense's name and its
    ``weight_keys``. Training-set filters, test-time detectors and certification settings act after
    training, so every one of them shares one clean model (cache key, resume check, cached config)."""
    kind, block = defense_of(cfg)
    if not kind.acts("input"):
        return {"name": "none"}
    return {"name": kind.name, **{k: block[k] for k in kind.weight_keys if k in block}}


def no_defense(block: Any) -> None:
    """``defense=none``: nothing to build."""
    return None


DEFENSES: Registry[DefenseKind] = Registry("defense")

DEFENSES.register(DefenseKind("none", (), "emotic_mm.defenses.registry:no_defense", "No defense"))
DEFENSES.register(
    DefenseKind(
        "median", ("input",), "emotic_mm.defenses.smoothing:median_from_config", "Median filter", ("window",)
    )
)
DEFENSES.register(
    DefenseKind(
        "squeeze",
        ("input",),
        "emotic_mm.defenses.smoothing:squeeze_from_config",
        "Bit-depth reduction (feature squeezing)",
        ("bits",),
    )
)
# certify: the vote certificate (AblationSettings); input: its encoder_hook, RandomAblation, for training
DEFENSES.register(
    DefenseKind(
        "ablation",
        ("input", "certify"),
        "emotic_mm.defenses.ablation:ablation_from_config",
        "Randomized ablation (certified L0)",
        ("keep",),
    )
)
DEFENSES.register(
    DefenseKind(
        "spectral", ("training",), "emotic_mm.defenses.detectors:spectral_from_config", "Spectral signatures"
    )
)
DEFENSES.register(
    DefenseKind(
        "activation_clustering",
        ("training",),
        "emotic_mm.defenses.detectors:activation_clustering_from_config",
        "Activation clustering",
    )
)
DEFENSES.register(DefenseKind("strip", ("test",), "emotic_mm.defenses.strip:strip_from_config", "STRIP"))
