"""The face_swap detector: crop geometry, network, a few training steps, shipped weights end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from forensics.detectors.face_swap import FaceSwapDetector, face_crop, normalize
from forensics.media.faces import Face, align_matrix
from forensics.nn.face_swap import FaceSwapNet
from forensics.train.sbi import make_pair

MODELS = Path(__file__).resolve().parents[1] / "models"
PRE = {"size": 96, "margin": 0.2, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 0.5], "sample_fps": 2.0}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny networks run fastest on one thread, and the CI machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _shipped_card() -> dict:
    path = MODELS / "face_swap.sbi_v2.json"
    if not path.exists():
        pytest.skip("face_swap.sbi_v2 weights are not built yet")
    return json.loads(path.read_text())


def test_crop_landmarks_follow_align_face() -> None:
    img = np.zeros((300, 400, 3), np.uint8)
    lms = np.array([[170, 120], [230, 132], [200, 160], [178, 190], [222, 198]], np.float32)  # tilted face
    for x, y in lms:
        cv2.circle(img, (int(x), int(y)), 4, (255, 255, 255), -1)
    face = Face(0, 0.0, (150.0, 90.0, 250.0, 220.0), 0.99, lms)
    crop, crop_lms = face_crop(img, face, PRE)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    assert crop_lms is not None and crop_lms.shape == (5, 2)
    for x, y in crop_lms:
        assert crop[round(y), round(x)].min() > 100  # each landmark lands on its dot
    assert abs(crop_lms[0, 1] - crop_lms[1, 1]) < 1.0  # eyes levelled
    m = align_matrix(face, size=96, margin=0.2)
    centre = m @ np.array([200.0, 155.0, 1.0])
    assert np.allclose(centre, [48, 48], atol=1e-6)  # the box centre maps to the crop centre


def test_normalize_shapes_and_range() -> None:
    crop = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    x = normalize(crop, PRE)
    assert x.shape == (3, 96, 96) and x.dtype == np.float32
    assert np.isclose(x[0].max(), (crop[..., 0].max() / 255 - 0.5) / 0.25)
    assert normalize(np.stack([crop, crop]), PRE).shape == (2, 3, 96, 96)
    assert x.min() >= -2.01 and x.max() <= 2.01


def test_network_outputs_one_logit_per_crop_and_is_small() -> None:
    net = FaceSwapNet().eval()
    assert sum(p.numel() for p in net.parameters()) < 2_000_000
    with torch.no_grad():
        out = net(torch.randn(3, 3, 128, 128))
    assert out.shape == (3,) and out.dtype == torch.float32


def test_a_few_sbi_training_steps_reduce_the_loss() -> None:
    from skimage import data

    torch.manual_seed(0)
    img = cv2.resize(data.astronaut()[60:190, 160:290], (48, 48), interpolation=cv2.INTER_AREA)
    lms = np.array([[18, 19], [30, 19], [24, 26], [19, 33], [28, 33]], np.float32)
    rng = np.random.default_rng(0)
    pairs = [make_pair(img, lms, rng) for _ in range(8)]
    x = torch.from_numpy(normalize(np.stack([p[0] for p in pairs] + [p[1] for p in pairs]), PRE))
    y = torch.tensor([0.0] * 8 + [1.0] * 8)
    net = FaceSwapNet(widths=(8, 16, 32), dropout=0.0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


# -- shipped weights --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> FaceSwapDetector:
    _shipped_card()
    from forensics import create_detector

    return create_detector("face_swap")


def test_card_carries_preprocessing_and_calibration() -> None:
    card = _shipped_card()
    for key in ("size", "margin", "mean", "std", "sample_fps"):
        assert key in card["preprocessing"]
    cal = card["calibration"]
    assert cal["temperature"] > 0 and 0 < cal["threshold"] < 1 and cal["fpr"] == 0.01
    assert card["architecture"]["name"] == "FaceSwapNet"
    assert (MODELS / card["file"]).stat().st_size < 20_000_000


def test_shipped_weights_score_an_image_face(detector: FaceSwapDetector, media_dir: Path) -> None:
    res = detector.detect(media_dir / "face.jpg")
    assert res.status == "ok", res.reason
    assert 0.0 <= res.score <= 1.0 and res.weights.startswith("face_swap.sbi_v2@")
    seg = res.segments[0]
    x1, y1, x2, y2 = seg.box
    assert 150 < (x1 + x2) / 2 < 300 and 50 < (y1 + y2) / 2 < 200  # the astronaut's face
    assert res.evidence["suspicious_track"] == seg.track


def test_shipped_weights_score_a_video_per_face_and_time(detector: FaceSwapDetector, media_dir: Path) -> None:
    units, logits = detector.decision_function(media_dir / "talk.mp4")
    assert len(units) >= 3 and np.all(np.isfinite(logits))
    size = detector.preprocessing["size"]
    assert units[0].x.shape == (3, size, size) and units[0].x.dtype == np.float32
    starts = [u.start for u in units]
    assert starts == sorted(starts) and units[-1].start > 0.4
    assert all(u.end > u.start for u in units)
    res = detector.detect(media_dir / "talk.mp4")
    assert res.status == "ok" and len(res.segments) == len(units)


def test_skips_media_without_faces(detector: FaceSwapDetector, media_dir: Path, tmp_path: Path) -> None:
    from forensics.testing import write_image

    blank = write_image(tmp_path / "sky.jpg", np.full((200, 300, 3), 120, np.uint8))
    res = detector.detect(blank)
    assert res.status == "skipped" and "no face" in res.reason and res.score is None
    res = detector.detect(media_dir / "tone.wav")
    assert res.status == "skipped" and "audio" in res.reason


def test_heatmap_is_a_unit_range_map(detector: FaceSwapDetector, media_dir: Path) -> None:
    units, _ = detector.decision_function(media_dir / "face.jpg")
    hm = detector.heatmap(units[0].x)
    size = detector.preprocessing["size"]
    assert hm.shape == (size, size) and hm.dtype == np.float32
    assert hm.min() >= 0.0 and hm.max() <= 1.0
    pre = detector.preprocessing
    crop = np.clip((units[0].x.transpose(1, 2, 0) * pre["std"] + pre["mean"]) * 255, 0, 255).astype(np.uint8)
    assert detector.heatmap(crop).shape == (size, size)
    with pytest.raises(ValueError):
        detector.heatmap(np.zeros((4, 4)))


def test_explain_maps_the_heatmap_onto_the_face_box(detector: FaceSwapDetector, media_dir: Path) -> None:
    from forensics.media import open_media

    media = open_media(media_dir / "face.jpg")
    res = detector.detect(media)
    seg = res.segments[0]
    hm = detector.explain(media, seg)
    x1, y1, x2, y2 = seg.box
    assert hm is not None and hm.dtype == np.float32
    assert abs(hm.shape[1] - (x2 - x1)) <= 2 and abs(hm.shape[0] - (y2 - y1)) <= 2
    assert hm.min() >= 0.0 and hm.max() <= 1.0
    seg.frame = 99  # a face that is not in the media
    assert detector.explain(media, seg) is None


def test_self_blended_fake_scores_above_its_real(detector: FaceSwapDetector) -> None:
    """The network separates the self-blends of its recipe from their sources on a face it never saw."""
    from skimage import data

    from forensics.media.faces import default_face_detector

    img = data.astronaut()
    box, score, lms = default_face_detector().detect(img)[0]
    crop, crop_lms = face_crop(img, Face(0, 0.0, box, score, lms), detector.preprocessing)
    mouth = _shipped_card()["recipe"].get("lower_face_rerender_share", 0.0)  # sbi_v2: lower-face re-renders only
    rng = np.random.default_rng(0)
    reals, fakes = [], []
    for _ in range(16):
        r, f, _ = make_pair(crop, crop_lms, rng, augment=False, mouth=mouth)
        reals.append(r)
        fakes.append(f)
    lg = detector.forward(normalize(np.stack(reals + fakes), detector.preprocessing))
    assert lg[16:].mean() > lg[:16].mean()


def test_scores_a_shared_real_video(detector: FaceSwapDetector, shared_data: Path) -> None:
    res = detector.detect(shared_data / "real_video" / "smeetrs__deep_avsr__audio__demo__00006.mp4")
    assert res.status == "ok" and res.segments and all(s.box is not None for s in res.segments)
