"""Imports point down the layers of DESIGN.md and close no circle; the bottom of the house is light.

Every module under ``forensics/`` is parsed with ``ast``. Its dependencies are its imports of
``forensics`` modules, top-level and inside functions alike: a function-local import defers the
cost, not the dependency. Imports under ``if TYPE_CHECKING:`` serve annotations only and do not
count. ``from forensics.x import y`` depends on ``forensics.x.y`` when that is a module, else on
``forensics.x``. (Dynamic imports by name, like the detector registry's ``"module:Class"``
entries, are not seen.)

Circles are looked for at two levels:

- between modules, over every import: modules in a circle cannot be read, tested or moved apart,
  even when a function-local import keeps the circle from failing at import time (media.core and
  media.faces were one). The one kind of edge left out is a package ``__init__`` importing its own
  submodules inside a function: that is how a light facade hands out its heavy parts on first use
  (``forensics.weights.import_checkpoint``, ``forensics.scan()``), and those parts may build on the
  facade;
- between the units of the layer table (``nn``, ``media``, ``weights``, ``detectors``, ``scan``,
  ``report``, ...), over every import but the known upward ones: within one layer (orchestration,
  say) units may use each other, but never both ways round.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import forensics

PACKAGE = Path(forensics.__file__).parent

# DESIGN.md's layers, bottom (0) to top, by unit: the first name below ``forensics`` ("" is the package root,
# the facade that re-exports the verbs). A unit imports units of lower layers; units of one layer import
# each other only where the layer is listed in SHARED_LAYERS (nn and media must stay apart).
LAYERS = {
    "_version": 0,
    "errors": 0,
    "results": 0,
    "records": 0,
    "progress": 0,
    "nn": 1,
    "media": 1,
    "weights": 2,
    "profiles": 2,
    "detectors": 3,
    "scan": 4,
    "triage": 4,
    "engines": 4,
    "report": 4,
    "train": 4,
    "testing": 4,
    "cli": 5,
    "__main__": 5,
    "": 5,
}
SHARED_LAYERS = {0, 2, 4, 5}  # profiles find the forensics home through weights; nn and media stay apart

# Imports up a layer that are still there, each with why. Remove an entry when its import goes; never add one
# without a reason the design agrees with.
KNOWN_UPWARD = {
    ("forensics.weights.convert", "forensics.detectors"): (
        "the native converter checks a checkpoint against its detector's default weights, and foreign converters"
        " start from their preprocessing; only the detector's spec names those weights"
    ),
}

HEAVY = ("torch", "cv2", "av", "pandas")
LIGHT = ("forensics", "forensics.errors", "forensics.results", "forensics.detectors", "forensics.weights")


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported forensics module
    line: int
    local: bool  # inside a function


def module_names() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def walk(node: ast.AST, local: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for branch in child.orelse:
                    yield from walk_one(branch, local)
            else:
                yield from walk_one(child, local)

    def walk_one(node: ast.AST, local: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.partition(".")[0] == "forensics":
                    yield Import(module, alias.name, node.lineno, local)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            if base.partition(".")[0] == "forensics":
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    yield Import(module, sub if sub in known else base, node.lineno, local)
        else:
            yield from walk(node, local or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    yield from walk(ast.parse(path.read_text(), str(path)), False)


def all_imports() -> list[Import]:
    known = module_names()
    return [imp for module, path in known.items() for imp in _imports(module, path, known)]


def unit(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                out.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_parser_sees_top_level_and_local_imports_but_not_type_checking_ones(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import forensics.errors\n"
        "from forensics import weights as W\n"
        "from . import results\n"
        "if TYPE_CHECKING:\n"
        "    from forensics.media import Media\n"
        "class C:\n"
        "    from forensics.detectors import base\n"
        "    def f(self):\n"
        "        from forensics.scan import scan\n"
    )
    found = {(i.target, i.local) for i in _imports("forensics.mod", source, module_names())}
    assert found == {
        ("forensics.errors", False),
        ("forensics.weights", False),
        ("forensics.results", False),
        ("forensics.detectors.base", False),  # a class body runs at import
        ("forensics.scan", True),
    }


def test_every_unit_has_a_layer() -> None:
    assert {unit(m) for m in module_names()} <= set(LAYERS), "give a new package or module its layer in LAYERS"


def test_imports_point_down() -> None:
    upward = {}
    for imp in all_imports():
        src, dst = LAYERS[unit(imp.source)], LAYERS[unit(imp.target)]
        if not (unit(imp.source) == unit(imp.target) or dst < src or (dst == src and src in SHARED_LAYERS)):
            upward.setdefault((imp.source, imp.target), []).append(imp.line)
    unexplained = {
        f"{src}:{lines} imports {dst}" for (src, dst), lines in upward.items() if (src, dst) not in KNOWN_UPWARD
    }
    assert unexplained == set()
    assert set(KNOWN_UPWARD) - set(upward) == set(), "these imports are gone: remove them from KNOWN_UPWARD"


def test_nn_and_media_know_nothing_above_them() -> None:
    """DESIGN's sentences, spelled out: nn and media use only errors/results; media never sees detectors."""
    for imp in all_imports():
        if unit(imp.source) == "nn":
            assert unit(imp.target) in ("nn", "errors", "results"), imp
        if unit(imp.source) == "media":
            assert unit(imp.target) not in ("nn", "weights", "detectors", "scan", "report", "train", "cli", ""), imp
        if unit(imp.source) == "detectors":
            assert unit(imp.target) not in ("scan", "report", "train", "cli", ""), imp


def test_no_circles_between_modules() -> None:
    packages = {m for m, path in module_names().items() if path.name == "__init__.py"}
    graph: dict[str, set[str]] = {}
    for imp in all_imports():
        facade = imp.source in packages and imp.target.startswith(f"{imp.source}.")
        if not (facade and imp.local):
            graph.setdefault(imp.source, set()).add(imp.target)
    assert circles(graph) == []


def test_no_circles_between_units() -> None:
    graph: dict[str, set[str]] = {}
    for imp in all_imports():
        if unit(imp.source) != unit(imp.target) and (imp.source, imp.target) not in KNOWN_UPWARD:
            graph.setdefault(unit(imp.source), set()).add(unit(imp.target))
    assert circles(graph) == []


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_load_nothing_heavy(module: str) -> None:
    """Reports load without torch or OpenCV; ``import forensics`` is light (a fresh interpreter each)."""
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE.parent), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == [], f"import {module} loads {out.stdout.strip()}"
