"""synthetic_speech heads over a frozen published backbone (AASIST): training, the shipped head, its backbone.

The backbone is random-initialised here (a small AASIST for training, the published shape for the shipped
head) unless ../shared/pretrained holds the published file, where the shipped head must rank shared fakes
above their reals; those tests skip without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from forensics.detectors import create_detector
from forensics.errors import WeightsNotFoundError
from forensics.nn.aasist import AASIST
from forensics.train.speech_head import embed_windows, fit_head, head_logits, head_preprocessing
from forensics.train.vocoders import formant_voice, griffin_lim_stft, wide_channel
from forensics.weights import builtin_dir, save_weights

SR = 16000
HEAD = "synthetic_speech.aasist_head_v1"
PRETRAINED = Path(__file__).resolve().parents[1].parent / "shared" / "pretrained"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REPOS = ("gemelo-ai/vocos", "OlaWod/FreeVC-demo")  # pages with fakes and their own real recordings

pytestmark = pytest.mark.usefixtures("one_thread")


def head_card() -> dict:
    return json.loads((builtin_dir() / f"{HEAD}.json").read_text())


def install_random_backbone(card: dict) -> None:
    """A random-initialised AASIST of the published shape as the user's ``synthetic_speech.aasist``."""
    from forensics.weights import user_weights_dir

    torch.manual_seed(0)
    args = {"filts": [70, 32, 32, 64, 64], "gat_dims": [64, 32], "pool_ratios": [0.5, 0.7, 0.5],
            "temperatures": [2.0, 2.0, 100.0], "n_freq": 23}  # fmt: skip
    net = AASIST(**args).eval()
    pre = {k: v for k, v in card["preprocessing"].items() if k not in ("loudness_dbfs", "max_gain_db")}
    save_weights(dict(net.state_dict()), {
        "name": "synthetic_speech.aasist", "detector": "synthetic_speech",
        "architecture": {"name": "aasist", "args": args | {"num_classes": 2, "fake_index": 0}}, "preprocessing": pre,
        "calibration": {"temperature": 1.0, "bias": 0.0, "threshold": 0.5}, "training_data": "none (random test)",
        "metrics": {}, "licence": "test",
    }, user_weights_dir())  # fmt: skip


def test_head_fits_on_embeddings_of_generated_speech_from_a_random_backbone() -> None:
    """A few full-batch steps on the windows of speech-like audio vs its Griffin-Lim copy, through a small
    random AASIST: the head separates what it was fitted on, and channel augmentation keeps the shapes."""
    torch.manual_seed(0)
    net = AASIST(filts=(70, 8, 8, 16, 16), gat_dims=(8, 8)).eval()
    pre = head_preprocessing(
        {"sample_rate": SR, "window_s": 1.0, "hop_s": 1.0, "min_speech_s": 0.5, "n_fft": 512, "win_length": 400,
         "hop_length": 160, "features": "raw",
         "vad": {"abs_floor_dbfs": -55.0, "rel_db": 35.0, "min_active": 0.2, "min_modulation_db": 3.0,
                 "max_flatness": 0.3}}
    )  # fmt: skip
    real = [formant_voice(3.0, SR, seed=s) for s in range(3)]
    fake = [griffin_lim_stft(w, SR, n_iter=4) for w in real]
    aug, desc = wide_channel(real[0], SR, np.random.default_rng(1))
    assert aug.shape == real[0].shape and aug.dtype == np.float32 and desc
    xr = np.concatenate([embed_windows(net, w, pre) for w in real])
    xf = np.concatenate([embed_windows(net, w, pre) for w in fake])
    assert xr.shape[1] == 5 * 8 and len(xr) >= 6 and len(xf) >= 6
    x, y = np.concatenate([xr, xf]), np.r_[np.zeros(len(xr)), np.ones(len(xf))]
    head = fit_head(x, y, steps=60)
    s = head_logits(head, x)
    assert s.shape == (len(x),) and np.all(np.isfinite(s))
    assert s[y == 1].mean() > s[y == 0].mean()
    assert embed_windows(net, np.zeros(SR, np.float32), pre).shape == (0, 40)  # silence: no window


def test_shipped_head_without_its_backbone_names_the_install_command(weights_home: Path, tmp_path: Path) -> None:
    card = head_card()
    assert card["architecture"]["backbone"] == "synthetic_speech.aasist"
    assert card["metrics"]["leave_family_out"]["original"] and card["calibration"]["fpr"] == 0.01
    wav = tmp_path / "v.wav"
    sf.write(str(wav), formant_voice(4.0, SR), SR)
    r = create_detector("synthetic_speech", HEAD).detect(wav)
    assert r.status == "error" and r.score is None
    assert "forensics weights get synthetic_speech.aasist" in r.reason


@pytest.mark.slow
def test_shipped_head_loads_and_scores_over_a_random_backbone(weights_home: Path, tmp_path: Path) -> None:
    """The shipped head's tensors load into the detector over a random-initialised AASIST of the published
    shape (the published file is not needed to check the plumbing) and score every speech window."""
    install_random_backbone(head_card())
    wav = tmp_path / "v.wav"
    sf.write(str(wav), formant_voice(4.0, SR), SR)
    r = create_detector("synthetic_speech", HEAD).detect(wav)
    assert r.status == "ok" and 0 <= r.score <= 1 and len(r.segments) == 1
    assert r.weights.startswith(f"{HEAD}@")


@pytest.mark.slow
@pytest.mark.data
def test_shipped_head_over_the_published_aasist_ranks_shared_fakes_above_reals(weights_home: Path) -> None:
    """Fakes of two families vs the real recordings of their pages, through the whole detector."""
    if not (PRETRAINED.is_dir() and (DATA / "MANIFEST.tsv").exists()):
        pytest.skip("needs ../shared/pretrained and ../shared/data")
    from forensics.train.manifest import read_manifest
    from forensics.weights.published import install_from

    if "synthetic_speech.aasist" not in install_from(PRETRAINED, ["synthetic_speech.aasist"]):
        pytest.skip("../shared/pretrained does not hold the published AASIST")
    rows = [r for r in read_manifest(DATA) if r.kind == "audio" and r.repo in REPOS]
    det = create_detector("synthetic_speech", HEAD)
    scores: dict[str, list[float]] = {"fake": [], "real": []}
    for label in scores:
        for r in [r for r in rows if r.label == label][:4]:
            res = det.detect(DATA / r.file)
            assert res.status == "ok", res.reason
            scores[label].append(res.score)
    auc = np.mean([(f > g) + 0.5 * (f == g) for f in scores["fake"] for g in scores["real"]])
    assert auc > 0.7, scores

