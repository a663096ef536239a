"""Every defense kind, once — shaped like :mod:`emotic_mm.attacks.registry`, empty until the first
defense lands.

A new defense is: its mechanism in ``defenses/`` (an input transform inside the model's preprocessing,
a certification, or a training-set filter), a config file ``configs/defense/<name>.yaml`` with
``name: <name>``, and one ``DEFENSES.register(DefenseKind(...))`` here; ``eval``, ``attack`` and the
report find it by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emotic_mm.registry import Registry, load_callable


@dataclass(frozen=True)
class DefenseKind:
    """One kind of defense (``defense=<name>``)."""

    name: str
    where: str        # "input" (inside the model, every attack goes through it) | "training" | "certify"
    build: str        # "module:function" taking the defense config block, returning the defense object
    title: str        # report heading

    def make(self, block: Any) -> Any:
        return load_callable(self.build)(block)


DEFENSES: Registry[DefenseKind] = Registry("defense")
