"""The one way a transformers object is loaded from a hub id or a local folder.

A model folder, like a shared checkpoint, is untrusted input: ``trust_remote_code=False`` is passed on
every load, so a folder whose ``config.json`` maps its classes to Python files in the folder
(``auto_map``) is refused with one line instead of transformers asking "run the custom code? [y/N]"
on the terminal. Every other failure is one line naming the config key and the folder too.
"""

from __future__ import annotations

from typing import Any

from emotic_mm.errors import ConfigError

REMOTE_CODE_MARKERS = ("contains custom code", "trust_remote_code", "execute the configuration file")


def load_pretrained(loader: Any, name: str, key: str, what: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained(name)`` (``name`` may be ``shipped:<model>``), never running code from
    the folder; a failure is a :class:`ConfigError` naming ``key``, the folder and ``what`` was wanted."""
    from emotic_mm.config import resolve_model_name

    resolved = resolve_model_name(str(name))
    try:
        return loader.from_pretrained(resolved, trust_remote_code=False, **kwargs)
    # RuntimeError: weights that do not fit the folder's own config
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise load_error(exc, key, name, resolved, what) from None


def load_error(exc: BaseException, key: str, name: str, resolved: str, what: str) -> ConfigError:
    """One line for a failed load: custom code is named as such; otherwise the first line of the cause."""
    text = str(exc).strip()
    if any(marker in text for marker in REMOTE_CODE_MARKERS):
        return ConfigError(
            f"{key}={name!r}: {resolved} needs custom Python code from its folder (auto_map "
            f"in config.json) to load {what}; emotic-mm never runs code from a model folder"
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    return ConfigError(f"{key}={name!r}: cannot load {what} from {resolved} ({first})")
