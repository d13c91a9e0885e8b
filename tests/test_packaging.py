"""A plain ``pip install .`` carries everything README's first command, ``forensics demo``, imports.

Building a fresh virtual environment with torch is too heavy for a test. Instead the demo runs in
a subprocess whose import system cannot see any top-level module that a plain install would not
have: modules of distributions outside the closure of the project's non-extra dependencies
(``[project] dependencies`` of pyproject.toml, then recursively what those require, leaving out
requirements behind an ``extra == ...`` marker). The standard library and ``forensics`` itself stay
visible. Hidden modules look absent (``find_spec`` gives None) rather than failing, so optional
imports of dependencies (torch probes a few) behave as on a fresh machine, and a module that only a
``dev`` extra installs (scikit-image once) fails the demo as it fails there.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import forensics
from forensics.records import read_records

ROOT = Path(__file__).resolve().parents[1]

# Run with ``sys.argv[1:] = [allowed distributions as JSON, demo folder]``.
GUARDED_DEMO = """
import importlib.abc, importlib.metadata, json, re, sys

allowed = set(json.loads(sys.argv[1]))
owners = importlib.metadata.packages_distributions()


class PlainInstallOnly(importlib.abc.MetaPathFinder):
    # The usual finders, blind to the top-level modules a plain install lacks (as if absent: no spec).

    def __init__(self, finders):
        self.finders = finders

    def find_spec(self, name, path=None, target=None):
        dists = owners.get(name, []) if "." not in name and name not in sys.stdlib_module_names else []
        if dists and name != "forensics" and not any(re.sub(r"[-_.]+", "-", d).lower() in allowed for d in dists):
            return None
        for finder in self.finders:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self):
        for finder in self.finders:
            if hasattr(finder, "invalidate_caches"):
                finder.invalidate_caches()


sys.meta_path[:] = [PlainInstallOnly(list(sys.meta_path))]
from forensics.cli import main

sys.exit(main(["demo", "--dir", sys.argv[2]]))
"""


def plain_install_closure() -> set[str]:
    """Canonical names of the distributions ``pip install .`` installs (without extras), as installed here."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [(Requirement(r), "") for r in deps]
    seen: set[tuple[str, str]] = set()
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue  # an extra's requirement (or another platform's)
        name = canonicalize_name(req.name)
        for wanted in ("", *sorted(req.extras)):
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            with contextlib.suppress(md.PackageNotFoundError):  # not installed here: nothing of it imports either
                todo += [(Requirement(r), wanted) for r in md.requires(req.name) or []]
    return {name for name, _ in seen}


def test_closure_reads_markers() -> None:
    closure = plain_install_closure()
    assert {"torch", "opencv-python-headless", "numpy"} <= closure
    assert not {"pytest", "ruff", "ray"} & closure  # dev and ray extras only


@pytest.mark.slow
def test_demo_runs_with_a_plain_install_only(tmp_path: Path) -> None:
    """``forensics demo`` builds its folder and scans it importing nothing beyond a plain install (~25 s)."""
    env = dict(os.environ, FORENSICS_HOME=str(tmp_path / "home"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(forensics.__file__).parents[1]), env.get("PYTHONPATH")]))
    folder = tmp_path / "demo"
    allowed = json.dumps(sorted(plain_install_closure()))
    proc = subprocess.run(
        [sys.executable, "-c", GUARDED_DEMO, allowed, str(folder)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = list(read_records(folder / "results.jsonl"))
    assert len(records) == len([p for p in folder.iterdir() if p.suffix in (".jpg", ".png", ".mp4")])
    assert (folder / "report.html").stat().st_size > 0
