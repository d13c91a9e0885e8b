"""Self-blended image synthesis: masks, boundaries, geometry and label correctness."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from forensics.train import sbi

SIZE = 128
# An upright face in a 128 px aligned crop: left eye, right eye, nose, mouth left, mouth right.
LMS = np.array([[48, 52], [80, 52], [64, 70], [52, 88], [76, 88]], np.float32)


def _face_image() -> np.ndarray:
    from skimage import data

    return cv2.resize(data.astronaut()[60:190, 160:290], (SIZE, SIZE), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("seed", range(8))
def test_face_mask_covers_the_face_and_not_the_corners(seed: int) -> None:
    m = sbi.face_mask((SIZE, SIZE), LMS, np.random.default_rng(seed))
    assert m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    for x, y in LMS.astype(int):
        assert m[y, x] == 1.0  # every landmark lies inside the face region
    assert m[0, 0] == m[0, -1] == m[-1, 0] == m[-1, -1] == 0.0
    assert 0.1 < m.mean() < 0.7


def test_blend_mask_has_a_soft_boundary_and_bounded_values() -> None:
    rng = np.random.default_rng(3)
    for _ in range(10):
        m = sbi.blend_mask((SIZE, SIZE), LMS, rng)
        assert m.min() >= 0.0 and m.max() <= 1.0 and m.max() > 0.2
        transition = ((m > 0.02) & (m < 0.98 * m.max())).mean()
        assert transition > 0.01  # blurred, not a hard edge
        assert m[0, 0] < 0.02


def test_soften_blurs_a_hard_mask() -> None:
    hard = np.zeros((SIZE, SIZE), np.float32)
    hard[32:96, 32:96] = 1
    soft = sbi.soften(hard, np.random.default_rng(0))
    assert ((soft > 0.01) & (soft < 0.99)).sum() > 0
    assert np.abs(soft - hard).max() > 0.1


@pytest.mark.parametrize("paste_altered", [True, False])
def test_self_blend_changes_only_where_the_pasted_face_shows(paste_altered: bool) -> None:
    img = _face_image()
    rng = np.random.default_rng(5)
    for _ in range(5):
        fake, mask = sbi.self_blend(img, LMS, rng, paste_altered=paste_altered)
        diff = np.abs(fake.astype(int) - img.astype(int)).max(axis=2)
        pasted = mask > 0.2
        assert pasted.mean() > 0.05
        if paste_altered:  # background untouched, face altered
            assert diff[mask == 0].max() <= 1
            assert diff[pasted].mean() > 2
        else:  # original face kept (in proportion to the mask), background altered
            assert diff[mask == 0].mean() > 2
            full = mask > 0.999
            if full.any():
                assert diff[full].max() <= 1


def test_make_pair_labels_real_and_fake_with_a_shared_degradation() -> None:
    img = _face_image()
    rng = np.random.default_rng(11)
    diffs_in, diffs_out = [], []
    for _ in range(12):
        real, fake, mask = sbi.make_pair(img, LMS, rng, augment=False)
        assert real.shape == fake.shape == img.shape and real.dtype == fake.dtype == np.uint8
        d = np.abs(real.astype(int) - fake.astype(int)).mean(axis=2)
        core = cv2.erode((mask > 0.5).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        far = cv2.dilate((mask > 1e-3).astype(np.uint8), np.ones((17, 17), np.uint8)) == 0
        if core.any():
            diffs_in.append(d[core].mean())
        if far.any():
            diffs_out.append(d[far].mean())
    # the fake differs from its real twin; same degradation means identical pixels far from the blend,
    # unless the altered copy was the target (then differences are everywhere): compare medians
    assert np.median(diffs_in) > 1.0
    assert min(diffs_out) < 1.0


def test_degradation_is_deterministic_and_keeps_shape() -> None:
    img = _face_image()
    deg = sbi.Degradation(scale=0.5, blur=0.8, jpeg=40)
    a, b = deg(img), deg(img)
    assert np.array_equal(a, b) and a.shape == img.shape and a.dtype == np.uint8
    assert not np.array_equal(a, img)
    assert np.array_equal(sbi.Degradation()(img), img)


def test_jitter_moves_landmarks_with_the_pixels() -> None:
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for (x, y), c in zip(LMS.astype(int), colours, strict=True):
        cv2.circle(img, (int(x), int(y)), 3, c, -1)
    rng = np.random.default_rng(0)
    orders = set()
    for _ in range(12):
        out, lm = sbi.jitter(img, LMS, rng)
        assert lm[0, 0] < lm[1, 0]  # the left eye stays on the left, even after mirroring
        for order in ((0, 1, 2, 3, 4), sbi.FLIP_ORDER):
            px = [out[round(y), round(x)].astype(int) for x, y in lm]
            if all(np.abs(p - np.array(colours[o])).max() < 90 for p, o in zip(px, order, strict=True)):
                orders.add(order)
                break
        else:
            raise AssertionError("landmarks do not follow the pixels")
    assert len(orders) == 2  # both plain and mirrored draws happened and stayed consistent


def test_perturb_alters_the_copy_but_keeps_its_format() -> None:
    img = _face_image()
    out = sbi.perturb(img, np.random.default_rng(2))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img.astype(int)).mean() > 1


@pytest.mark.parametrize("seed", range(8))
def test_mouth_mask_covers_the_mouth_and_spares_the_eyes(seed: int) -> None:
    m = sbi.mouth_mask((SIZE, SIZE), LMS, np.random.default_rng(seed))
    assert m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    for x, y in LMS[3:].astype(int):
        assert m[y, x] == 1.0  # both mouth corners inside
    assert m[: int(LMS[:2, 1].max()) + 1].sum() == 0  # nothing at or above the eyes
    assert 0.03 < m.mean() < 0.35


def test_mouth_blend_re_renders_the_lower_face_only() -> None:
    img = _face_image()
    rng = np.random.default_rng(4)
    for _ in range(5):
        fake, mask = sbi.self_blend(img, LMS, rng, region="mouth")
        diff = np.abs(fake.astype(int) - img.astype(int)).max(axis=2)
        assert diff[mask == 0].max() <= 1  # the rest of the face and the background untouched
        assert diff[mask > 0.9].mean() > 2  # the pasted region is the re-rendered copy
        assert mask[:40].max() < 0.02  # the eye band (eyes at y=52) keeps its pixels
    with pytest.raises(ValueError, match="region"):
        sbi.self_blend(img, LMS, rng, region="nose")


def test_make_pair_mixes_mouth_re_renders_in_at_the_asked_rate() -> None:
    img = _face_image()
    rng = np.random.default_rng(8)
    lower = 0
    for _ in range(40):
        real, fake, mask = sbi.make_pair(img, LMS, rng, augment=False, mouth=0.5)
        if mask[:40].max() < 0.02:  # a lower-face re-render: the twins agree above the mouth, differ on it
            lower += 1
            assert np.abs(real[:32].astype(int) - fake[:32].astype(int)).max() <= 2
            assert np.abs(real.astype(int) - fake.astype(int))[mask > 0.9].mean() > 1
    assert 10 < lower < 30
