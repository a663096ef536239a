"""``emotic-mm train``: train a model variant on the store named by ``data.prepared_dir``.

Recipe: record the run (config, seed, versions, commit) → :func:`emotic_mm.training.run.train` into the
run dir (``best/``, ``last/``, ``metrics.csv``, ``train_summary.json``).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from emotic_mm.runinfo import output_dir, record_run
from emotic_mm.training.run import train


def main(cfg: DictConfig) -> dict[str, Any]:
    record_run("train", cfg, int(cfg.seed))
    return train(cfg, run_dir=output_dir())
