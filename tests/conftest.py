"""Test session set-up: offline, one thread, and the shared fixtures of ``support.fixtures``.

Helpers live in the ``support`` package (see its docstring); test files import them from there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download, even when run without `make test`
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The tiny models here run far faster on one thread; OpenMP spinning on a 2-core box costs ms per op.
os.environ.setdefault("OMP_NUM_THREADS", "1")

if str(Path(__file__).parent) not in sys.path:  # `import support` under any --import-mode
    sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["support.fixtures"]
