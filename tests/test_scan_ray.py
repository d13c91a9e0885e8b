"""The Ray engine: same files, same records as the local engine, on a local Ray instance."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics.detectors import register
from forensics.records import read_records
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
        for part in ("video", "audio"):  # fingerprints come from the same ScoreTask on the actors
            assert (remote[p].fingerprint or {}).get(part) == (r.fingerprint or {}).get(part)
    assert len(list(read_records(out))) == len(local)
    assert any((r.fingerprint or {}).get("video") for r in remote.values())
    # resume rules are the engine's caller's: a second run scores nothing
    assert list(forensics.scan(media_dir, detectors=[det], engine="ray", output=out)) == []


def test_ray_workers_that_never_start_end_the_scan_with_an_error(weights_home: Path, media_dir: Path) -> None:
    """A worker stuck in start-up (here: a warm-up that never returns) must not stall a scan for ever."""
    import time

    from chaos_detectors import NeverReadyDetector

    from forensics.errors import ForensicsError

    register("tiny_test", NeverReadyDetector)
    try:
        make_tiny_weights(user_weights_dir())
        det = forensics.create_detector("tiny_test")
        t0 = time.monotonic()
        with pytest.raises(ForensicsError, match="did not start within 3 s"):
            list(forensics.scan(media_dir, detectors=[det], engine="ray", isolation=Isolation(workers=1, timeout_s=3)))
        assert time.monotonic() - t0 < 120
    finally:
        register("tiny_test", TinyDetector)
