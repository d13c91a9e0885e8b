"""The shared detector plumbing, exercised with a tiny test-only detector, plus scan/analyze/CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics.cli import main
from forensics.detectors import register
from forensics.detectors.base import aggregate, calibrate
from forensics.errors import ChecksumMismatchError
from forensics.records import read_records
from forensics.report import load_results
from forensics.train.calibration import fit_temperature, threshold_at_fpr
from forensics.weights import user_weights_dir


@pytest.fixture()
def tiny(weights_home: Path) -> TinyDetector:
    register("tiny_test", TinyDetector)
    make_tiny_weights(user_weights_dir())
    return forensics.create_detector("tiny_test")


def test_calibrate_and_aggregate() -> None:
    p = calibrate(np.array([-2.0, 0.0, 2.0]), {"temperature": 2.0, "bias": 0.0})
    assert p[1] == pytest.approx(0.5) and p[2] == pytest.approx(1 / (1 + np.exp(-1)))
    s = np.array([0.1, 0.9, 0.2, 0.3])
    assert aggregate("max", s, [None] * 4) == 0.9
    assert aggregate("track_max", s, [0, 1, 0, 0]) == 0.9
    assert aggregate("mean", s, [None] * 4) == pytest.approx(0.375)


def test_calibration_fit_and_threshold() -> None:
    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(-2, 1, 500), rng.normal(2, 1, 500)])
    labels = np.r_[np.zeros(500), np.ones(500)]
    # Class-conditional N(+-2, 1) has Bayes logit 4x; scaled inputs 3x need temperature 3/4.
    t, b = fit_temperature(logits * 3, labels)
    assert t == pytest.approx(0.75, rel=0.15) and abs(b) < 0.5
    real = rng.random(1000)
    thr = threshold_at_fpr(real, 0.01)
    assert (real >= thr).mean() <= 0.01 and (real >= thr - 0.02).mean() > 0.005


def test_detect_ok_result(tiny: TinyDetector, media_dir: Path) -> None:
    r = tiny.detect(media_dir / "talk.mp4")
    assert r.status == "ok" and 0 <= r.score <= 1 and r.label == (r.score >= r.threshold)
    assert r.weights.startswith("tiny_test.v1@") and len(r.weights.split("@")[1]) == 12
    assert [s.start for s in r.segments] == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=0.041)
    assert r.params["aggregation"] == "mean" and r.version == forensics.__version__
    img = tiny.detect(media_dir / "face.jpg")
    assert img.status == "ok" and img.score != r.score


@pytest.mark.parametrize("keeps", [True, False])
def test_detect_scores_streamed_units_batch_by_batch(
    tiny: TinyDetector, media_dir: Path, monkeypatch: pytest.MonkeyPatch, keeps: bool
) -> None:
    _, logits = tiny.decision_function(media_dir / "talk.mp4")  # 4 frames
    seen: list[int] = []
    live: list = []

    def streamed(media: object) -> Iterator:
        for u in tiny.units(media):
            seen.append(sum(1 for v in live if v.x.size))  # inputs alive when the next unit is made
            live.append(u)
            yield u

    monkeypatch.setattr(tiny, "iter_units", streamed)
    monkeypatch.setattr(type(tiny), "keeps_inputs", keeps)
    monkeypatch.setattr(tiny, "batch_size", 3)
    r = tiny.detect(media_dir / "talk.mp4")
    assert r.status == "ok" and [s.logit for s in r.segments] == pytest.approx(logits.tolist(), abs=1e-5)
    assert seen == ([0, 1, 2, 3] if keeps else [0, 1, 2, 0])  # freed after the first batch of 3
    assert all((u.x.size > 0) == keeps for u in live)


def test_detect_statuses_never_score(tiny: TinyDetector, media_dir: Path) -> None:
    assert tiny.detect(media_dir / "tone.wav").status == "skipped"
    for bad in ("empty.mp4", "notes.mp4", "random.bin"):
        r = tiny.detect(media_dir / bad)
        assert r.status == "error" and r.score is None and r.reason


def test_tampered_weights_are_refused(tiny: TinyDetector, media_dir: Path) -> None:
    path = user_weights_dir() / "tiny_test.v1.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    fresh = forensics.create_detector("tiny_test")
    r = fresh.detect(media_dir / "face.jpg")
    assert r.status == "error" and "ChecksumMismatch" in r.reason
    assert main(["weights", "verify"]) == 4
    for run in (
        lambda d: list(forensics.scan(media_dir, detectors=[d])),
        lambda d: forensics.analyze(media_dir / "face.jpg", detectors=[d]),
    ):
        with pytest.raises(ChecksumMismatchError):  # a scan refuses bad weights once, before any file
            run(forensics.create_detector("tiny_test"))


def test_analyze_and_verdict(tiny: TinyDetector, media_dir: Path) -> None:
    rep = forensics.analyze(media_dir / "talk.mp4", detectors=[tiny])
    assert rep.sha256 and rep.info["kind"] == "video" and rep.verdict.label in ("fake", "real")
    bad = forensics.analyze(media_dir / "notes.mp4", detectors=[tiny])
    assert bad.status == "error" and bad.verdict.label == "unknown" and bad.results[0].status == "error"


def test_scan_resume_and_table(tiny: TinyDetector, media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    first = list(forensics.scan(media_dir, detectors=[tiny], output=out))
    files = sorted(p for p in media_dir.iterdir())
    assert len(first) == len(files)
    recs = list(read_records(out))
    assert {r["path"] for r in recs} == {str(p) for p in files}
    statuses = {Path(r["path"]).name: r["results"][0]["status"] for r in recs}
    assert statuses["talk.mp4"] == "ok" and statuses["tone.wav"] == "skipped" and statuses["empty.mp4"] == "error"
    # A re-run scans nothing new; a partial last line (killed writer) is repaired.
    with open(out, "a") as fh:
        fh.write('{"path": "half')
    again = list(forensics.scan(media_dir, detectors=[tiny], output=out))
    assert again == [] and len(list(read_records(out))) == len(files)
    # A copy of a scanned file gets its own record without rescoring.
    dup_dir = tmp_path / "more"
    dup_dir.mkdir()
    (dup_dir / "copy.mp4").write_bytes((media_dir / "talk.mp4").read_bytes())
    (rep,) = forensics.scan(dup_dir, detectors=[tiny], output=out)
    assert rep.results[0].score == next(r for r in recs if r["path"].endswith("talk.mp4"))["results"][0]["score"]
    df = load_results(out)
    assert len(df) == len(files) + 1 and set(df["status"]) == {"ok", "skipped", "error"}


@pytest.mark.parametrize("workers", [None, 2])
def test_scan_hashes_files_as_it_goes(
    tiny: TinyDetector, media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int | None
) -> None:
    import importlib

    scan_mod = importlib.import_module("forensics.scan")  # the module, not the function forensics.scan
    hashed: list[str] = []
    real = scan_mod.file_sha256
    monkeypatch.setattr(scan_mod, "file_sha256", lambda p: hashed.append(Path(p).name) or real(p))
    out = tmp_path / "r.jsonl"
    iso = scan_mod.Isolation(workers=workers) if workers else None
    stream = forensics.scan(media_dir, detectors=[tiny], output=out, isolation=iso)
    next(stream)
    n = len(list(media_dir.iterdir()))
    if workers:  # hashing happens in the workers, under the file's time limit: the scanning process reads no file
        assert hashed == []
    else:
        assert len(hashed) <= 2 < n  # the first result came before the folder was hashed
    assert 1 + len(list(stream)) == n and len(hashed) == (0 if workers else n)
    (tmp_path / "again").mkdir()
    for name in ("a.mp4", "b.mp4"):  # copies of scanned content are recorded, not rescored
        (tmp_path / "again" / name).write_bytes((media_dir / "talk.mp4").read_bytes())
    reps = list(forensics.scan(tmp_path / "again", detectors=[tiny], output=out, isolation=iso))
    assert sorted(Path(r.path).name for r in reps) == ["a.mp4", "b.mp4"]
    copies = [r for r in read_records(out) if Path(r["path"]).parent.name == "again"]
    assert len(copies) == 2 and all(r["duplicate_of"].endswith("talk.mp4") for r in copies)
    assert all(r["results"] == next(x for x in read_records(out) if x["path"] == r["duplicate_of"])["results"]
               for r in copies)  # fmt: skip


def test_cli_scan_exports_and_exit_code(tiny: TinyDetector, media_dir: Path, tmp_path: Path) -> None:
    out, csv, pq = tmp_path / "r.jsonl", tmp_path / "r.csv", tmp_path / "r.parquet"
    code = main(
        [
            "scan",
            str(media_dir),
            "-o",
            str(out),
            "--detectors",
            "tiny_test",
            "--csv",
            str(csv),
            "--parquet",
            str(pq),
            "-q",
        ]
    )
    assert code & 4  # some files errored
    import pandas as pd

    assert len(pd.read_csv(csv)) == len(pd.read_parquet(pq)) == len(list(media_dir.iterdir()))
    assert main(["scan", str(media_dir), "--detectors", "no_such_detector", "-o", str(out)]) == 2


def test_cli_weights_info_and_list(tiny: TinyDetector, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "info", "tiny_test.v1"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["name"] == "tiny_test.v1" and len(card["sha256"]) == 64 and card["source"] == "user"
    assert main(["weights", "list"]) == 0
    assert "tiny_test.v1" in capsys.readouterr().out
