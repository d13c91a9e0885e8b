"""gan_fingerprint feature heads: spectral statistics, cached features, heads and their tensors, shipped head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from forensics.detectors.gan_fingerprint import GanFingerprint, spectral_stats
from forensics.errors import SkipDetection, WeightsError
from forensics.media import open_media
from forensics.nn.gan_fingerprint import ResidualSpectralHead
from forensics.testing import face_photo, write_image, write_video
from forensics.train import gan_fingerprint_heads as gh
from forensics.train.manifest import Row
from forensics.train.metrics import summarize
from forensics.train.upsampling import upsampling_trace

pytestmark = pytest.mark.usefixtures("one_thread")
HEAD = "gan_fingerprint.spectral_head_v1"


def test_spectral_stats_shape_and_periodic_peaks() -> None:
    photo = face_photo()[:256, :256]
    yy, xx = np.mgrid[:256, :256]
    checker = ((yy // 2 + xx // 2) % 2 * 4 - 2)[..., None]  # a 4-pixel period: two upsampling stages
    traced = np.clip(photo.astype(int) + checker, 0, 255).astype(np.uint8)
    a, b = spectral_stats(photo), spectral_stats(traced)
    assert a.shape == (26,) and a.dtype == np.float32 and np.isfinite(a).all()
    at4 = slice(17 + 3, 17 + 6)  # the three peaks at period 4
    assert b[at4].max() > a[at4].max() + 1.0
    with pytest.raises(SkipDetection, match="too small"):
        spectral_stats(photo[:24, :24])


def test_views_are_label_blind_and_deterministic() -> None:
    img = face_photo()
    real, fake = Row("r.png", "real", "image", "x", "none"), Row("r.png", "fake", "image", "x", "SD")
    assert gh.view_bytes(img, real, "aug1") == gh.view_bytes(img, fake, "aug1")  # the file, not the label
    assert gh.view_bytes(img, real, "aug1") != gh.view_bytes(img, real, "aug2")
    with pytest.raises(ValueError, match="unknown view"):
        gh.view_bytes(img, real, "sharpened")


def _head_features(n: int = 6) -> tuple[GanFingerprint, np.ndarray, np.ndarray]:
    """residual_v1 as a head's backbone on real crops and their synthetic generated twins."""
    det = GanFingerprint("gan_fingerprint.residual_v1").load()
    det.card["preprocessing"] = dict(det.card["preprocessing"], side=128)  # frame_features also needs a side
    src = face_photo()
    real = [src[y : y + 128, x : x + 128] for y in range(64, 64 + 64 * n, 64) for x in (96, 288)][: 2 * n]
    rng = np.random.default_rng(0)
    fake = [upsampling_trace(r, rng) for r in real]  # shrunk and regrown by a random upsampling decoder
    x = np.stack([det.frame_features(im) for im in real + fake])
    return det, x, np.array([0] * len(real) + [1] * len(fake))


def test_a_head_trained_on_generated_images_separates_them_and_ships_as_weights(
    tmp_path: Path, weights_home: Path
) -> None:
    from forensics.weights import save_weights

    det, x, y = _head_features()
    groups = np.where(np.arange(len(y)) % 2 == 0, "a", "b")
    for kind in ("logistic", "mlp"):
        model = gh.fit_head(kind, x, y, groups=groups, c=1.0)
        s = gh.head_scores(model, x)
        assert summarize(y, s)["auc"] > 0.9, kind
        tensors, args = gh.head_tensors(model, dict(det.model.state_dict()))
        net = ResidualSpectralHead(backbone={"widths": (16, 32, 64, 96), "embed": 64}, **args)
        net.load_state_dict(tensors)
        with torch.inference_mode():
            logit = net(torch.from_numpy(x)).numpy()[:, 0]
        np.testing.assert_allclose(logit, s if kind == "logistic" else np.log(s / (1 - s)), rtol=1e-3, atol=1e-3)
    card = dict(det.card, name="gan_fingerprint.test_head", preprocessing=det.preprocessing,
                architecture={"name": "ResidualSpectralHead",
                              "args": {"backbone": det.card["architecture"]["args"]} | args})  # fmt: skip
    path = save_weights(tensors, card, tmp_path)
    head = GanFingerprint(str(path))
    r = head.detect(write_image(tmp_path / "photo.png", face_photo()))
    assert head.has_head and r.status == "ok" and len(r.segments) == 1 and 0 <= r.score <= 1
    assert head.file_embedding(tmp_path / "photo.png").shape == (64,)  # attribution reads the backbone's embedding
    vid = head.detect(write_video(tmp_path / "clip.mp4", seconds=3.0, fps=10, size=(320, 240), audio=None))
    assert vid.status == "ok" and len({s.frame for s in vid.segments}) >= 2
    small = head.detect(write_image(tmp_path / "tiny.png", face_photo()[:40, :40]))
    assert small.status == "skipped" and small.score is None
    card["preprocessing"] = dict(card["preprocessing"], blocks=["residual", "ladeda_fs", "spectral"],
                                 readers={"ladeda_fs": "gan_fingerprint.tiny_ladeda_forensynth"})  # fmt: skip
    card["name"] = "gan_fingerprint.test_head_readers"
    needs = GanFingerprint(str(save_weights(tensors, card, tmp_path)))
    with pytest.raises(WeightsError, match=r"forensics weights get gan_fingerprint\.tiny_ladeda_forensynth"):
        needs.units(open_media(tmp_path / "photo.png"))


def test_out_of_fold_scores_follow_the_protocol() -> None:
    rows, feats = [], {}
    rng = np.random.default_rng(0)
    for fam, n in (("Stable Diffusion", 4), ("Kandinsky 3", 3), ("StyleGAN2", 5)):
        for i in range(n):
            rows.append(Row(f"f/{fam}{i}.png", "fake", "image", f"p/{fam}", fam))
            rows.append(Row(f"r/{fam}{i}.png", "real", "image", f"p/{fam}", "none"))
    rows += [Row(f"r/o{i}.png", "real", "image", f"o/{i % 4}", "none") for i in range(8)]
    for r in rows:
        feats[r.file] = rng.normal(size=3).astype(np.float32) + (1.5 if r.label == "fake" else 0.0)

    def fit(x: np.ndarray, y: np.ndarray) -> object:
        return gh.fit_head("logistic", x, y, c=1.0)

    labels, scores = gh.out_of_fold_scores(rows, feats, fit, gh.head_scores, feats)
    assert len(labels) == len(scores) and set(labels) == {0, 1}
    assert labels.sum() == 12  # every fake is tested once, in its own family's fold
    cal = gh.real_quantile_calibration(scores[labels == 0])
    assert cal["temperature"] > 0 and cal["threshold"] == 0.5
    assert (scores[labels == 0] > cal["bias"]).sum() <= 1  # 1% of 18 held-out reals: at most one above the cut
    with pytest.raises(ValueError, match="two finite"):
        gh.real_quantile_calibration(np.ones(5))


# -- shipped head ------------------------------------------------------------------------------
HEAD = "gan_fingerprint.ladeda_head_v1"
PRETRAINED = Path(__file__).resolve().parents[1].parent / "shared" / "pretrained"


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GanFingerprint]:
    """The shipped head with the Tiny-LaDeDa weights it reads installed from ../shared/pretrained (skips without)."""
    from forensics.weights.published import install_from

    readers = list(GanFingerprint(HEAD).preprocessing["readers"].values())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORENSICS_HOME", str(tmp_path_factory.mktemp("home")))
        if not PRETRAINED.is_dir() or set(install_from(PRETRAINED, readers)) != set(readers):
            pytest.skip("../shared/pretrained does not hold the Tiny-LaDeDa checkpoints the head reads")
        yield GanFingerprint(HEAD).load()


def test_shipped_head_loads_and_scores(head: GanFingerprint, tmp_path: Path) -> None:
    assert head.has_head and head.weights_id.startswith(HEAD + "@")
    r = head.detect(write_image(tmp_path / "photo.jpg", quality=90))
    assert r.status == "ok" and 0.0 <= r.score <= 1.0 and len(r.segments) == 1


def test_shipped_head_features_are_its_training_features(head: GanFingerprint, tmp_path: Path) -> None:
    """The detector computes, from a file, the very vector its head was trained on (the feature-cache code)."""
    path = tmp_path / "view.jpg"
    path.write_bytes(gh.view_bytes(face_photo(), Row("x.png", "real", "image", "x", "none"), "as_is"))
    feats = gh.FeatureExtractor()(path)
    trained = np.concatenate([feats[b] for b in head.preprocessing["blocks"]])
    np.testing.assert_allclose(head.units(open_media(path))[0].x, trained, rtol=1e-4, atol=1e-3)


def test_shipped_head_ranks_shared_generated_images(head: GanFingerprint, shared_data: Path, tmp_path: Path) -> None:
    """As-is views of a few shared generated images and reals (its training data: a ranking check, not a measure)."""
    from forensics.train.manifest import read_manifest

    rows = gh.generated_image_rows(read_manifest(shared_data))
    picked = [r for r in rows if r.label == "fake" and r.kind == "image"][::5][:8]
    picked += [r for r in rows if r.label == "real"][::40][:8]
    scores, labels = [], []
    for r in picked:
        p = tmp_path / (Path(r.file).stem[-40:] + ".jpg")
        p.write_bytes(gh.view_bytes(gh.source_image(shared_data, r), r, "as_is"))
        res = head.detect(p)
        if res.status == "ok":
            scores.append(res.score)
            labels.append(int(r.label == "fake"))
    assert summarize(np.array(labels), np.array(scores))["auc"] > 0.75
