"""Name → entry tables for the things a config group chooses among (attacks; defenses next).

One table per kind of thing, read by everything that needs to know the names: the stage that dispatches
``attack=<name>`` and the report that reads the runs' summaries. A new entry is one ``register`` call
in the kind's registry module; nothing else has an if/elif to extend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from emotic_mm.errors import ConfigError


class Named(Protocol):
    name: str


E = TypeVar("E", bound=Named)


class Registry(Generic[E]):
    """Entries by name; ``get`` of an unknown name is one line listing the known ones."""

    def __init__(self, key: str) -> None:
        self.key = key  # the config key that chooses an entry, for messages (e.g. "attack")
        self._entries: dict[str, E] = {}

    def register(self, entry: E) -> E:
        if entry.name in self._entries:
            raise ValueError(f"{self.key} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> E:
        """Take an entry out again (a test's toy entry); an unknown name is the same error as :meth:`get`."""
        entry = self.get(name)
        del self._entries[name]
        return entry

    def get(self, name: str) -> E:
        if name not in self._entries:
            known = ", ".join(self._entries) or "none yet"
            raise ConfigError(f"{self.key}={name!r} is not one of {known}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[E]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)


def load_callable(path: str) -> Callable[..., Any]:
    """``"package.module:function"`` → the function, imported on first use (so that reading a registry,
    as the report does, never imports torch-heavy recipe code)."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)
