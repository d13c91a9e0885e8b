"""The Ray engine: same files, same records as the local engine, on a local Ray instance."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics.detectors import register
from forensics.report import read_records
from forensics.scan import Isolation
from forensics.weights import user_weights_dir

pytest.importorskip("ray")


def test_ray_engine_matches_local(weights_home: Path, media_dir: Path, tmp_path: Path) -> None:
    register("tiny_test", TinyDetector)
    make_tiny_weights(user_weights_dir())
    det = forensics.create_detector("tiny_test")
    local = {r.path: r for r in forensics.scan(media_dir, detectors=[det])}
    out = tmp_path / "ray.jsonl"
    remote = {r.path: r for r in forensics.scan(media_dir, detectors=[det], engine="ray", output=out,
                                                 isolation=Isolation(workers=2, timeout_s=120))}  # fmt: skip
    assert remote.keys() == local.keys()
    for p, r in local.items():
        assert remote[p].status == r.status and remote[p].sha256 == r.sha256
        assert [x.status for x in remote[p].results] == [x.status for x in r.results]
        assert [x.score for x in remote[p].results] == pytest.approx([x.score for x in r.results])
    assert len(list(read_records(out))) == len(local)
    # resume rules are the engine's caller's: a second run scores nothing
    assert list(forensics.scan(media_dir, detectors=[det], engine="ray", output=out)) == []
