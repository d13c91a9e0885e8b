"""CLI commands over the shipped detectors: fingerprints, detectors list, analyze."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from forensics.cli import main
from forensics.testing import face_photo, write_image


def test_fingerprint_add_list_and_attribution(
    weights_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bot"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"{i}.png", np.roll(face_photo(), 40 * i, axis=1))
    assert main(["fingerprint", "add", "botnet", str(folder)]) == 0
    assert main(["fingerprint", "list"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split("\t")
    assert row[0] == "botnet" and row[1] == "3" and row[3] == "ok"
    main(["analyze", str(folder / "1.png"), "--detectors", "gan_fingerprint"])
    rep = json.loads(capsys.readouterr().out)
    attribution = rep["results"][0]["evidence"]["attribution"]
    assert attribution["name"] == "botnet" and -1 <= attribution["similarity"] <= 1
    assert main(["fingerprint", "add", "empty", str(tmp_path / "nothing")]) == 2


def test_detectors_lists_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detectors"]) == 0
    names = {line.split("\t")[0] for line in capsys.readouterr().out.splitlines()}
    assert {"face_swap", "gan_fingerprint", "lip_sync", "synthetic_speech"} <= names
