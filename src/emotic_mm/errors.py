"""Exceptions the CLI turns into one clear line (no traceback) and a non-zero exit code.

Raise these for problems a user can fix (a path, a key, a file's layout); let programming errors
propagate as ordinary exceptions so they keep their traceback.
"""

from __future__ import annotations


class EmoticMMError(Exception):
    """A user-facing error: the message names the file or config key and what was expected."""


class ConfigError(EmoticMMError):
    """A config value is missing, out of range or inconsistent with another one."""


class DataFormatError(EmoticMMError):
    """An input file or folder does not have the layout the stage expects."""


class OutputError(EmoticMMError):
    """An output could not be written (disk full, read-only, over quota); nothing half-written is kept."""
