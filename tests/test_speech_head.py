"""synthetic_speech heads: over a frozen published backbone (AASIST; training, loading, the missing-backbone
error) and the shipped self-contained LFCC head.

The backbone is random-initialised here (a small AASIST for training, the published shape for loading and
scoring): the published file is not needed to test the plumbing. The shipped head's ranking check needs
../shared/data and skips without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from forensics.detectors import create_detector
from forensics.nn.aasist import AASIST
from forensics.nn.synthetic_speech import EmbeddingHead
from forensics.train.speech_head import embed_windows, fit_head, head_logits, head_preprocessing
from forensics.train.vocoders import formant_voice, griffin_lim_stft, wide_channel
from forensics.weights import save_weights, user_weights_dir

SR = 16000
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REPOS = ("gemelo-ai/vocos", "OlaWod/FreeVC-demo")  # pages with fakes and their own real recordings

pytestmark = pytest.mark.usefixtures("one_thread")


PRE = {
    "sample_rate": SR, "window_s": 4.0375, "hop_s": 2.0, "min_speech_s": 0.5, "n_fft": 512, "win_length": 400,
    "hop_length": 160, "features": "raw",
    "vad": {"abs_floor_dbfs": -55.0, "rel_db": 35.0, "min_active": 0.2, "min_modulation_db": 3.0, "max_flatness": 0.3},
}  # fmt: skip
AASIST_ARGS = {"filts": [70, 32, 32, 64, 64], "gat_dims": [64, 32], "pool_ratios": [0.5, 0.7, 0.5],
               "temperatures": [2.0, 2.0, 100.0], "n_freq": 23}  # fmt: skip


def card(name: str, architecture: dict, pre: dict) -> dict:
    return {
        "name": name, "detector": "synthetic_speech", "architecture": architecture, "preprocessing": pre,
        "calibration": {"temperature": 1.0, "bias": 0.0, "threshold": 0.5, "fpr": 0.01, "aggregation": "mean"},
        "training_data": "none (test)", "metrics": {}, "licence": "test",
    }  # fmt: skip


def head_weights(folder: Path) -> Path:
    """Head weights of the shipped shape (160-value AASIST embedding, linear) over ``synthetic_speech.aasist``."""
    torch.manual_seed(1)
    arch = {"name": "embedding_head", "args": {"dim": 160, "hidden": 0}, "backbone": "synthetic_speech.aasist"}
    head = EmbeddingHead(160)
    return save_weights(
        dict(head.state_dict()), card("synthetic_speech.test_head", arch, head_preprocessing(PRE)), folder
    )


def install_random_backbone() -> None:
    """A random-initialised AASIST of the published shape as the user's ``synthetic_speech.aasist``."""
    torch.manual_seed(0)
    arch = {"name": "aasist", "args": AASIST_ARGS | {"num_classes": 2, "fake_index": 0}}
    save_weights(
        dict(AASIST(**AASIST_ARGS).state_dict()), card("synthetic_speech.aasist", arch, PRE), user_weights_dir()
    )


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


def test_head_without_its_backbone_names_the_install_command(weights_home: Path, tmp_path: Path) -> None:
    """No backbone installed: an error naming `forensics weights get`, never a download or a score."""
    wav = tmp_path / "v.wav"
    sf.write(str(wav), formant_voice(4.0, SR), SR)
    r = create_detector("synthetic_speech", str(head_weights(tmp_path))).detect(wav)
    assert r.status == "error" and r.score is None
    assert "forensics weights get synthetic_speech.aasist" in r.reason


@pytest.mark.slow
def test_head_loads_and_scores_over_a_random_backbone(weights_home: Path, tmp_path: Path) -> None:
    """Head weights load into the detector over a random-initialised AASIST of the published shape (the published
    file is not needed to check the plumbing) and score every speech window."""
    install_random_backbone()
    wav = tmp_path / "v.wav"
    sf.write(str(wav), formant_voice(4.0, SR), SR)
    r = create_detector("synthetic_speech", str(head_weights(tmp_path))).detect(wav)
    assert r.status == "ok" and 0 <= r.score <= 1 and len(r.segments) == 1
    assert r.weights.startswith("synthetic_speech.test_head@")


@pytest.mark.data
def test_shipped_lfcc_head_ranks_shared_fakes_above_their_reals() -> None:
    """``lfcc_lr_v1`` through the whole detector on fakes and real recordings of two pages. It was trained on all
    shared audio, so this checks that scanning computes the features it was fitted on (a wrong window, level or
    statistic lands near chance), not how it generalises: the card's leave-family-out table says that."""
    if not (DATA / "MANIFEST.tsv").exists():
        pytest.skip("needs ../shared/data")
    from forensics.train.manifest import read_manifest

    rows = [r for r in read_manifest(DATA) if r.kind == "audio" and r.repo in REPOS]
    det = create_detector("synthetic_speech", "lfcc_lr_v1")
    scores: dict[str, list[float]] = {"fake": [], "real": []}
    for label in scores:
        for r in [r for r in rows if r.label == label][:6]:
            res = det.detect(DATA / r.file)
            assert res.status == "ok", res.reason
            scores[label].append(res.score)
    auc = np.mean([(f > g) + 0.5 * (f == g) for f in scores["fake"] for g in scores["real"]])
    assert auc > 0.7, scores
