"""gan_fingerprint: crops, residuals, synthetic traces, shared normalisation, shipped weights, fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from forensics.detectors.gan_fingerprint import (
    GanFingerprint,
    add_fingerprint,
    crop_boxes,
    face_crop_box,
    list_fingerprints,
    to_input,
)
from forensics.errors import ForensicsError, SkipDetection
from forensics.nn.gan_fingerprint import ResidualFingerprintNet, laplacian_residual, npr_residual, unshuffled_conv
from forensics.testing import face_photo, write_image, write_video, write_wav
from forensics.train import gan_fingerprint_data as gd
from forensics.train.upsampling import (
    RandomUpsamplingDecoder,
    jpeg_roundtrip,
    normalise,
    plain_resample,
    upsampling_trace,
)


# -- preprocessing ----------------------------------------------------------------------------
def test_crop_boxes_are_aligned_inside_and_native_size() -> None:
    boxes = crop_boxes(512, 768, crop=128, max_crops=4, align=8, min_side=64)
    assert len(boxes) == 4 and len(set(boxes)) == 4
    for x1, y1, x2, y2 in boxes:
        assert x2 - x1 == 128 and y2 - y1 == 128
        assert x1 % 8 == 0 and y1 % 8 == 0 and x1 >= 0 and x2 <= 768 and y1 >= 0 and y2 <= 512
    small = crop_boxes(100, 300, crop=128, max_crops=4, align=8, min_side=64)
    assert all(b[2] - b[0] == 96 and b[3] - b[1] == 96 for b in small)  # short side, rounded down to 8
    with pytest.raises(SkipDetection, match="smaller than"):
        crop_boxes(40, 500, crop=128, max_crops=4, align=8, min_side=64)


def test_face_crop_box_is_centred_aligned_and_inside() -> None:
    assert face_crop_box((300.0, 200.0, 380.0, 300.0), 720, 1280, crop=128, align=8) == (272, 184, 400, 312)
    x1, y1, x2, y2 = face_crop_box((1250.0, 690.0, 1290.0, 730.0), 720, 1280, crop=128, align=8)
    assert (x2, y2) == (1280, 720) and x1 % 8 == 0 and y1 % 8 == 0  # pushed inside at the corner
    assert face_crop_box((10.0, 10.0, 50.0, 50.0), 100, 300, crop=128, align=8) == (0, 0, 96, 96)


def test_to_input_layout_and_range() -> None:
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = 255
    x = to_input(img, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    assert np.allclose(x[0], 2.0) and np.allclose(x[1:], -2.0)


def test_residuals_remove_content_and_expose_upsampling() -> None:
    flat = torch.full((1, 3, 32, 32), 0.7)
    assert torch.allclose(laplacian_residual(flat), torch.zeros_like(flat), atol=1e-6)
    assert torch.allclose(npr_residual(flat), torch.zeros_like(flat), atol=1e-6)
    low = torch.rand(1, 3, 16, 16)
    up = F.interpolate(low, scale_factor=2.0, mode="nearest")
    assert torch.allclose(npr_residual(up), torch.zeros_like(up), atol=1e-6)  # nearest x2 is NPR-invisible
    noise = torch.rand(1, 3, 32, 32)
    assert npr_residual(noise).abs().mean() > 0.1


def test_network_shapes_any_even_size() -> None:
    net = ResidualFingerprintNet(widths=(4, 8, 8, 8), embed=8).eval()
    for size in (64, 96, 128):
        x = torch.randn(2, 3, size, size)
        assert net(x).shape == (2, 1) and net.embed(x).shape == (2, 8)


def test_unshuffled_conv_equals_unshuffle_then_conv_values_and_gradients() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4 * 5, 7, 3, 1, 1, bias=False)
    x = torch.randn(2, 5, 12, 18, requires_grad=True)
    ref = conv(F.pixel_unshuffle(x, 2))
    out = unshuffled_conv(x, conv)
    assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-5)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), conv.weight)
    (g_out,) = torch.autograd.grad(out.square().sum(), conv.weight)
    assert torch.allclose(g_out, g_ref, atol=1e-4)


# -- synthetic traces and shared normalisation --------------------------------------------------
def test_decoder_adds_a_trace_of_the_stated_amplitude() -> None:
    low = torch.full((1, 3, 24, 24), 0.5) + 0.05 * torch.rand(1, 3, 24, 24)
    for mode in ("transposed", "nearest", "bilinear"):
        dec = RandomUpsamplingDecoder(stages=1, mode=mode, width=8, kernel=4, amplitude=6 / 255, seed=3)
        out = dec(low)
        assert out.shape == (1, 3, 48, 48)
        base = F.interpolate(low, scale_factor=2.0, mode="nearest" if mode == "nearest" else "bilinear")
        assert abs(float((out - base).detach().std()) - 6 / 255) < 1e-3


def test_upsampling_trace_is_a_periodic_fake_of_the_input() -> None:
    img = face_photo()[100:260, 150:310]
    rng = np.random.default_rng(0)
    out = upsampling_trace(img, rng)
    assert out.dtype == np.uint8 and abs(out.shape[0] - 160) <= 4 and out.shape[2] == 3
    h, w = out.shape[:2]
    diff = np.abs(out.astype(int) - img[:h, :w].astype(int)).mean()
    assert 1.0 < diff < 40.0  # same content, visibly re-synthesised
    # beyond the plain shrink-and-regrow, the decoder adds its trace: 2-10 grey levels (std)
    low = cv2.resize(np.ascontiguousarray(img[:h, :w]), (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    plain = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR).astype(float)
    stds = [np.std(upsampling_trace(img, np.random.default_rng(s)).astype(float) - plain) for s in range(8)]
    assert np.median(stds) > 1.5


def test_plain_resample_is_the_trace_free_blur_twin() -> None:
    img = face_photo()[100:260, 150:310]
    out = plain_resample(img, np.random.default_rng(2))
    assert out.shape == img.shape and out.dtype == np.uint8

    def lap(a: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(a.astype(np.float32), cv2.CV_32F)).mean())

    assert lap(out) < lap(img)  # content lost detail, as in a synthetic fake, but no decoder trace was added


def test_normalise_is_label_blind_and_sized() -> None:
    rng = np.random.default_rng(1)
    for img in (face_photo(), face_photo()[:70, :90]):
        out = normalise(img, rng, crop=96)
        assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    q = jpeg_roundtrip(face_photo(), 70)
    assert q.shape == (512, 512, 3) and 0 < np.abs(q.astype(int) - face_photo()).mean() < 10


def test_a_few_training_steps_reduce_the_loss() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    src = face_photo()
    real = [src[y : y + 48, x : x + 48] for y in range(100, 400, 75) for x in (150, 300)]
    fake = [upsampling_trace(r, rng)[:48, :48] for r in real]
    mean, std = [0.5] * 3, [0.25] * 3
    x = torch.from_numpy(np.stack([to_input(a, mean, std) for a in real + fake]))
    y = torch.tensor([0.0] * len(real) + [1.0] * len(fake))
    net = ResidualFingerprintNet(widths=(4, 8, 8, 8), embed=8)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = F.binary_cross_entropy_with_logits(net(x)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


# -- data helpers ------------------------------------------------------------------------------
def test_grid_tiles_and_eval_reencode() -> None:
    grid = np.zeros((512, 768, 3), np.uint8)
    row = gd.Row("fake_image/x__samples.jpg", "fake", "image_grid", "justinpinkney/awesome-pretrained-stylegan2", "")
    ts = gd.tiles(grid, row)
    assert len(ts) == 6 and all(t.shape == (256, 256, 3) for t in ts)
    assert gd.family(row) == "stylegan2-zoo"
    big = np.ascontiguousarray(np.tile(face_photo(), (2, 2, 1)))
    a = cv2.imdecode(np.frombuffer(gd.reencode(big, geometry="crop", quality=90), np.uint8), cv2.IMREAD_COLOR)
    b = cv2.imdecode(np.frombuffer(gd.reencode(big, geometry="crop", quality=75, scale=0.5), np.uint8), 1)
    c = cv2.imdecode(np.frombuffer(gd.reencode(big, geometry="resize", quality=90), np.uint8), cv2.IMREAD_COLOR)
    assert a.shape == (512, 512, 3) and b.shape == (256, 256, 3) and c.shape == (512, 512, 3)


@pytest.mark.data
def test_spectral_baseline_rises_for_a_checkerboard_trace() -> None:
    photo = face_photo()[:256, :256]
    yy, xx = np.mgrid[:256, :256]
    checker = ((yy + xx) % 2 * 4 - 2)[..., None]  # +-2 grey levels: the period transposed convolutions leave
    traced = np.clip(photo.astype(int) + checker, 0, 255).astype(np.uint8)
    assert gd.spectral_peak(traced) > gd.spectral_peak(photo) + 1.5
    with pytest.raises(ValueError, match="too small"):
        gd.spectral_peak(photo[:8, :8])


def test_split_holds_out_generator_families_and_real_sources(shared_data: Path) -> None:
    parts = gd.split(gd.read_manifest(shared_data))
    train_fams = {gd.family(r) for r in parts["train_fake"]}
    val_fams = {gd.family(r) for r in parts["val_fake"]}
    assert train_fams == {*gd.TRAIN_FAKE_FAMILIES, *gd.SPLIT_FAMILIES}
    assert train_fams & val_fams == set(gd.SPLIT_FAMILIES)  # only the split family is seen, by other files
    assert {"stable-diffusion", "grip-biggan", "grip-progan"} <= val_fams - train_fams
    assert not {r.file for r in parts["train_fake"]} & {r.file for r in parts["val_fake"]}
    assert not any(r.kind == "image_grid" for rs in parts.values() for r in rs)
    assert not {r.repo for r in parts["train_real"]} & {r.repo for r in parts["val_real"]}
    assert all(r.label == "real" for r in parts["train_real"] + parts["val_real"])


# -- shipped weights ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def det() -> GanFingerprint:
    return GanFingerprint().load()


def test_shipped_weights_score_generated_image_and_video(det: GanFingerprint, tmp_path: Path) -> None:
    img = write_image(tmp_path / "photo.jpg", quality=90)
    r = det.detect(img)
    assert r.status == "ok" and 0.0 <= r.score <= 1.0 and r.weights.startswith("gan_fingerprint.residual_v1@")
    assert len(r.segments) == det.preprocessing["max_crops"] and all(s.box is not None for s in r.segments)
    assert len({s.logit for s in r.segments}) > 1  # crops are scored separately
    vid = write_video(tmp_path / "clip.mp4", seconds=3.0, fps=10, size=(320, 240), audio=None)
    rv = det.detect(vid)
    assert rv.status == "ok" and len({s.frame for s in rv.segments}) >= 2
    assert all(s.end >= s.start for s in rv.segments)


def test_face_regions_are_cropped_when_the_card_asks(tmp_path: Path) -> None:
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    canvas[200:712, 760:1272] = face_photo()  # the face sits off-centre, outside the frame crops
    path = write_image(tmp_path / "presenter.png", canvas)
    det = GanFingerprint().load()
    det.card["preprocessing"] = dict(det.card["preprocessing"], face_crops=True, face_fps=2)
    r = det.detect(path)
    faces = [s for s in r.segments if s.track is not None]
    assert r.status == "ok" and len(faces) == 1 and len(r.segments) == det.preprocessing["max_crops"] + 1
    x1, y1, x2, y2 = faces[0].box
    assert x2 - x1 == 128 and 760 + 150 < (x1 + x2) / 2 < 760 + 260 and 200 + 40 < (y1 + y2) / 2 < 200 + 200
    assert set(r.evidence["regions"]) == {"face", "frame"}
    assert "regions" not in GanFingerprint().detect(path).evidence  # the shipped card: frame crops only


def test_shipped_weights_rank_a_synthetic_trace_above_its_source(det: GanFingerprint, tmp_path: Path) -> None:
    src = face_photo()
    rng = np.random.default_rng(7)
    fake = np.concatenate([upsampling_trace(src[:256, x : x + 256], rng) for x in (0, 256)], axis=1)
    p_real = write_image(tmp_path / "real.png", src[:256])
    p_fake = write_image(tmp_path / "fake.png", fake)
    assert det.detect(p_fake).score > det.detect(p_real).score


@pytest.mark.data
def test_fingerprints_attribute_shared_generator_families(
    det: GanFingerprint, shared_data: Path, tmp_path: Path
) -> None:
    res = gd.attribution(det, shared_data, tmp_path, "q90_512")
    assert {"generated-faces", "stable-diffusion"} <= set(res["families"])
    assert res["top1"] > res["chance"] + 0.2  # half of each family's images name the right family


def test_skip_reasons(det: GanFingerprint, tmp_path: Path) -> None:
    tiny = write_image(tmp_path / "tiny.png", face_photo()[:40, :40])
    r = det.detect(tiny)
    assert r.status == "skipped" and "smaller than" in r.reason
    wav = det.detect(write_wav(tmp_path / "tone.wav"))
    assert wav.status == "skipped" and "audio" in wav.reason


# -- fingerprints ------------------------------------------------------------------------------
def test_fingerprint_add_list_and_attribution(det: GanFingerprint, tmp_path: Path, weights_home: Path) -> None:
    folder = tmp_path / "botnet"
    folder.mkdir()
    src = face_photo()
    for i, (y, x) in enumerate([(0, 0), (0, 256), (256, 0)]):
        write_image(folder / f"{i}.png", upsampling_trace(src[y : y + 256, x : x + 256], np.random.default_rng(i)))
    (folder / "notes.txt").write_text("not an image")
    path = add_fingerprint("botnet_a", folder)
    assert path.parent == weights_home / "fingerprints" and path.exists()
    recs = list_fingerprints()
    assert [r["name"] for r in recs] == ["botnet_a"] and recs[0]["status"] == "ok"
    assert recs[0]["n_images"] == 3 and all(len(s["sha256"]) == 64 for s in recs[0]["sources"])
    r = GanFingerprint().detect(folder / "0.png")
    att = r.evidence["attribution"]
    assert att["name"] == "botnet_a" and -1.0 <= att["similarity"] <= 1.0001
    rec = json.loads(path.with_suffix(".json").read_text())
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    assert list_fingerprints()[0]["status"].startswith("checksum mismatch") and rec["sha256"]
    assert "attribution" not in GanFingerprint().detect(folder / "0.png").evidence
    with pytest.raises(ForensicsError, match="name"):
        add_fingerprint("../evil", folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ForensicsError, match="no usable image"):
        add_fingerprint("empty", empty)
