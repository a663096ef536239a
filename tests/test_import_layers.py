"""Imports run one way: a package imports only packages of its own layer or below, and no two packages
import each other, even through others.

Every module under ``src/emotic_mm`` is parsed with ``ast`` (nothing is imported); every ``import`` counts,
at the top of a file or inside a function. A node is a subpackage (``data``, ``models``, ...) or a
top-level module (``config``, ``checkpoint``, ...). The registries' ``"module:function"`` strings are
lookups by name, not imports, and are not counted.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "emotic_mm"

# lowest first; a node may import nodes of its own layer or of the layers before it
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "errors",
        "fsutil",
        "config",
        "registry",
        "pretrained",
        "progress",
        "locks",
        "runinfo",
        "fixed_keys",
        "batching",
        "checkpoint",
        "measures",
    ),  # base: no knowledge of data, models or runs
    ("data",),  # release reader, converter, store, loader
    ("synthetic",),  # writes a raw release with data's writer
    ("figures",),  # the one matplotlib set-up: run figures from arrays
    ("defenses",),  # mechanisms a model puts in its preprocessing, detectors
    ("models",),  # encoders, variants, factory, loading
    ("training",),  # trainer, losses, metrics, inference, runtime, train()
    ("attacks", "prediction", "evaluation"),  # what is done with a model
    ("recipes",),  # config → run dir, one per attack kind (and certification)
    ("report",),  # reads run dirs
    ("stages",),  # one recipe per subcommand
    ("cli", "testkit"),  # entry points: the command; tiny models and stores for tests
)


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules ``module`` imports (``from a import b`` names ``a.b`` when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                here = here[: len(here) - node.level + 1]
                base = ".".join(here + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def _node(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def _edges() -> set[tuple[str, str]]:
    """(importer, imported) module pairs across nodes."""
    known = _modules()
    return {
        (module, target)
        for module, path in known.items()
        for target in _imported(module, path, known)
        if _node(module) != _node(target)
    }


def _layer() -> dict[str, int]:
    return {node: i for i, layer in enumerate(LAYERS) for node in layer}


def test_every_package_has_a_layer():
    layer = _layer()
    unplaced = sorted({_node(m) for m in _modules()} - set(layer) - {PACKAGE})
    assert not unplaced, f"place {unplaced} in LAYERS of tests/test_import_layers.py (and docs/extending.md)"


def test_imports_run_downward():
    layer = _layer()
    upward = sorted(
        f"{a} -> {b}" for a, b in _edges() if layer.get(_node(b), len(LAYERS)) > layer.get(_node(a), -1)
    )
    assert not upward, "imports of a higher layer (see LAYERS):\n" + "\n".join(upward)


def test_no_import_circles_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in _edges():
        graph[_node(a)].add(_node(b))

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return False

    circles = sorted({" <-> ".join(sorted((a, b))) for a in list(graph) for b in graph[a] if reaches(b, a)})
    assert not circles, "packages that import each other (directly or through others): " + ", ".join(circles)


def test_stages_never_import_each_other():
    known, stage = _modules(), f"{PACKAGE}.stages."
    crossed = sorted(
        f"{m} -> {t}"
        for m, path in known.items()
        if m.startswith(stage)
        for t in _imported(m, path, known)
        if t.startswith(stage) and t != m
    )
    assert not crossed, "stages import each other:\n" + "\n".join(crossed)
