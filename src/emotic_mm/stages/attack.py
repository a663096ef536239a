"""``emotic-mm attack attack=<kind>``: run one attack against a clean model (given or trained once).

Recipe: record the run → look the kind up in :data:`~emotic_mm.attacks.registry.ATTACKS` → its recipe
(:mod:`emotic_mm.recipes`) writes ``summary.json`` and its files into the run dir.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from emotic_mm.attacks.registry import ATTACKS
from emotic_mm.runinfo import record_run


def main(cfg: DictConfig) -> dict[str, Any]:
    kind = ATTACKS.get(str(cfg.attack.name))  # an unknown kind fails before anything is recorded
    record_run("attack", cfg, int(cfg.seed))
    return kind.run(cfg)
