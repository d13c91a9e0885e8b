"""Shared fixtures: generated media, an isolated weights cache, and a tiny test-only detector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from forensics.testing import write_image, write_video, write_wav

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "MANIFEST.tsv").exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of generated media: video with tone, video without audio, image, wav, and broken files."""
    d = tmp_path_factory.mktemp("media")
    write_video(d / "talk.mp4", audio="tone")
    write_video(d / "mute.mp4", audio=None, seconds=1.0)
    write_image(d / "face.jpg")
    write_image(d / "face.png")
    write_wav(d / "tone.wav")
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("this is text, not a video\n")
    (d / "random.bin").write_bytes(np.random.default_rng(1).bytes(4096))
    good = (d / "talk.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(good[: len(good) // 3])
    return d


@pytest.fixture()
def weights_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private ``$FORENSICS_HOME`` for the test."""
    monkeypatch.setenv("FORENSICS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op torch thread for a module's tests: on a shared 2-core machine, two spinning threads are much
    slower. A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
