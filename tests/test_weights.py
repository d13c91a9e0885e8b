"""Weights registry and loader: checksums, pickles refused, URL download against a local server."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch
from tiny_detector import ColourStats, make_tiny_weights

from forensics import weights as W
from forensics.errors import ChecksumMismatchError, UnsafeWeightsError, WeightsError, WeightsNotFoundError


def test_save_load_round_trip(weights_home: Path) -> None:
    path = make_tiny_weights(W.user_weights_dir())
    lw = W.load_weights("tiny_test.v1")
    assert lw.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert lw.id == f"tiny_test.v1@{lw.sha256[:12]}"
    assert set(lw.tensors) == set(ColourStats().state_dict())
    assert lw.card["calibration"]["fpr"] == 0.01
    # the card travels inside the file too: loading by path works without the .json
    path.with_suffix(".json").unlink()
    assert W.load_weights(path).card["name"] == "tiny_test.v1"


def test_card_must_be_complete(weights_home: Path) -> None:
    with pytest.raises(WeightsError, match="lacks"):
        W.save_weights({"w": torch.zeros(1)}, {"name": "x.y"}, weights_home)


def test_unknown_and_pickled(weights_home: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError):
        W.load_weights("nothing.here")
    pt = tmp_path / "ckpt.pth"
    torch.save({"w": torch.zeros(2)}, pt)
    with pytest.raises(UnsafeWeightsError, match="import"):
        W.load_weights(pt)


def test_tamper_detected(weights_home: Path) -> None:
    path = make_tiny_weights(W.user_weights_dir())
    raw = bytearray(path.read_bytes())
    raw[-2] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(ChecksumMismatchError, match="modified or corrupted"):
        W.load_weights("tiny_test.v1")


def _serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder), **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def test_remote_download_verified_and_cached(weights_home: Path, tmp_path: Path) -> None:
    pub = tmp_path / "pub"
    src = make_tiny_weights(pub, tag="remote")
    card = W.resolve(src).card
    srv, base = _serve(pub)
    try:
        seen: list[int] = []
        W.register_remote("tiny_test.remote", url=f"{base}/{src.name}", sha256=card["sha256"], card=card)
        lw = W.load_weights("tiny_test.remote", progress=lambda done, total: seen.append(done))
        assert lw.path.parent == W.user_weights_dir() and seen and seen[-1] == src.stat().st_size
        W.register_remote("tiny_test.bad", url=f"{base}/{src.name}", sha256="0" * 64, card=card)
        with pytest.raises(ChecksumMismatchError):
            W.load_weights("tiny_test.bad")
        assert not list(W.user_weights_dir().glob(".part-*"))
    finally:
        srv.shutdown()
        W._REMOTE.clear()
    with pytest.raises(WeightsError, match="64-hex"):
        W.register_remote("x.y", url="http://127.0.0.1/x", sha256="abc", card={})


def test_import_pickled_checkpoint(weights_home: Path, tmp_path: Path) -> None:
    from tiny_detector import TinyDetector

    from forensics.detectors import register

    register("tiny_test", TinyDetector)
    make_tiny_weights(W.user_weights_dir())
    torch.manual_seed(3)
    ckpt = tmp_path / "theirs.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ColourStats().state_dict().items()}}, ckpt)
    out = W.import_checkpoint(ckpt, detector="tiny_test", tag="theirs")
    lw = W.load_weights("tiny_test.theirs")
    assert out.suffix == ".safetensors" and lw.card["source_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    bad = tmp_path / "bad.pth"
    torch.save({"other.weight": torch.zeros(3)}, bad)
    with pytest.raises(WeightsError, match="does not match"):
        W.import_checkpoint(bad, detector="tiny_test", tag="bad")


def test_shipped_weights_verify() -> None:
    for name, status in W.verify_all():
        if W.registry()[name].source == "builtin":
            assert status == "ok", name


def test_published_pickle_is_downloaded_converted_and_scores(weights_home: Path, tmp_path: Path) -> None:
    """A remote entry with a converter: download, verify, convert tensors-only, then a detector uses it."""
    import torchvision

    import forensics

    pytest.importorskip("forensics.detectors.gan_fingerprint")
    pub = tmp_path / "pub"
    pub.mkdir()
    torch.manual_seed(0)
    torch.save({"model": torchvision.models.resnet18(num_classes=1).state_dict()}, pub / "theirs.pth")
    digest = hashlib.sha256((pub / "theirs.pth").read_bytes()).hexdigest()
    srv, base = _serve(pub)
    try:
        card = {"converter": "torchvision", "licence": "test", "training_data": "none"}
        W.register_remote("gan_fingerprint.theirs", url=f"{base}/theirs.pth", sha256=digest, card=card)
        lw = W.load_weights("gan_fingerprint.theirs")
    finally:
        srv.shutdown()
        W._REMOTE.clear()
    assert lw.card["architecture"]["name"] == "torchvision.resnet18" and lw.card["source_sha256"] == digest
    assert lw.card["preprocessing"], "the converter's preprocessing lands in the card"
    from forensics.testing import write_image

    r = forensics.create_detector("gan_fingerprint", "theirs").detect(write_image(tmp_path / "x.png"))
    assert r.status == "ok" and r.weights.startswith("gan_fingerprint.theirs@") and 0 <= r.score <= 1
