"""Self-blended images (SBI): synthetic face-swap training pairs made from one real face.

A real aligned face crop and its 5 landmarks give a pair: the crop itself (label 0) and a
copy blended with a perturbed version of itself through a randomised, softened face-shaped
mask (label 1). Both then go through the *same* random degradation (resize, blur, JPEG) so
the only difference the network can learn is the blend. After Shiohara & Yamasaki, CVPR 2022.

A second kind of fake re-renders only the lower face (mouth, chin) at a lower resolution and pastes it
back, as lip-sync and expression re-enactment methods (Wav2Lip, Face2Face, NeuralTextures) do.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Landmark order (MTCNN): left eye, right eye, nose, mouth left, mouth right.
FLIP_ORDER = (1, 0, 2, 4, 3)


def _axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Eye centre, mouth centre, eye distance and eye-to-mouth distance."""
    eye = (landmarks[0] + landmarks[1]) / 2
    mouth = (landmarks[3] + landmarks[4]) / 2
    return eye, mouth, float(np.linalg.norm(landmarks[1] - landmarks[0])), float(np.linalg.norm(mouth - eye))


def face_mask(shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hard (0/1) face-shaped mask from 5 landmarks: a random ellipse or an extended convex hull."""
    h, w = shape
    eye, mouth, d_ee, d_em = _axes(np.asarray(landmarks, np.float64))
    d_ee, d_em = max(d_ee, 2.0), max(d_em, 2.0)
    down = (mouth - eye) / d_em
    mask = np.zeros((h, w), np.uint8)
    if rng.random() < 0.5:
        centre = eye + (mouth - eye) * rng.uniform(0.25, 0.6)
        axes = (d_ee * rng.uniform(0.8, 1.25), d_em * rng.uniform(1.2, 1.8))
        angle = float(np.degrees(np.arctan2(down[1], down[0]))) - 90 + rng.uniform(-8, 8)
        cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (round(axes[0]), round(axes[1])), angle, 0, 360, 1, -1)
    else:
        lm = np.asarray(landmarks, np.float64)
        up = -down * d_em
        side = (lm[1] - lm[0]) / d_ee  # left eye -> right eye
        out = np.stack([-side, side]) * d_ee
        pts = np.concatenate(
            [
                lm,
                lm[:2] + up * rng.uniform(0.4, 0.9),  # brows / forehead
                lm[:2] + out * rng.uniform(0.3, 0.6),  # temples
                lm[3:] + out * rng.uniform(0.2, 0.45) - up * rng.uniform(0.1, 0.3),  # cheeks
                lm[3:] - up * rng.uniform(0.3, 0.7),  # jaw / chin
            ]
        )
        centroid = pts.mean(0)
        pts = centroid + (pts - centroid) * rng.uniform(1.1, 1.5)
        hull = cv2.convexHull(np.round(pts).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(np.float32)


def deform(mask: np.ndarray, rng: np.random.Generator, *, strength: float = 0.04) -> np.ndarray:
    """Warp a mask with a smooth random displacement field (``strength`` x its side, in pixels)."""
    h, w = mask.shape
    amp = strength * max(h, w)
    grid = rng.uniform(-amp, amp, size=(2, 4, 4)).astype(np.float32)
    dx = cv2.resize(grid[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(grid[1], (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def soften(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random erosion or dilation, then a Gaussian-blurred boundary; values in [0, 1]."""
    side = max(mask.shape)
    k = int(rng.integers(0, max(2, side // 16)))
    if k > 0:
        kernel = np.ones((k, k), np.uint8)
        mask = (cv2.erode if rng.random() < 0.5 else cv2.dilate)(mask, kernel)
    sigma = rng.uniform(0.01, 0.05) * side
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return np.clip(mask, 0.0, 1.0)


def mouth_mask(shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hard (0/1) lower-face mask from 5 landmarks: an ellipse over mouth and chin, or everything between
    the cheeks from about the nose down to the chin (the box Wav2Lip-style generators re-render)."""
    h, w = shape
    lm = np.asarray(landmarks, np.float64)
    eye, mouth, d_ee, d_em = _axes(lm)
    d_ee, d_em = max(d_ee, 2.0), max(d_em, 2.0)
    down = (mouth - eye) / d_em
    mask = np.zeros((h, w), np.uint8)
    if rng.random() < 0.5:
        centre = mouth + down * d_em * rng.uniform(0.0, 0.25)
        width = max(float(np.linalg.norm(lm[4] - lm[3])), 4.0)
        axes = (width * rng.uniform(0.8, 1.3), d_em * rng.uniform(0.45, 0.8))
        angle = float(np.degrees(np.arctan2(down[1], down[0]))) - 90
        cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (round(axes[0]), round(axes[1])), angle, 0, 360, 1, -1)
    else:
        side = np.array([-down[1], down[0]])
        top = lm[2] + down * d_em * rng.uniform(-0.1, 0.25)
        bottom = mouth + down * d_em * rng.uniform(0.7, 1.1)
        half = d_ee * rng.uniform(0.7, 1.1)
        quad = np.array([top - side * half, top + side * half, bottom + side * half * 0.8, bottom - side * half * 0.8])
        cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
    return mask.astype(np.float32)


def rerender(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A generator-like copy: rendered at 0.3-0.75x and re-enlarged, slight colour shift, sometimes sharpened."""
    h, w = img.shape[:2]
    s = rng.uniform(0.3, 0.75)
    small = cv2.resize(img, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    up = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
    x = cv2.resize(small, (w, h), interpolation=up).astype(np.float32) + rng.uniform(-6, 6, size=3).astype(np.float32)
    if rng.random() < 0.4:
        x = x + rng.uniform(0.3, 1.2) * (x - cv2.GaussianBlur(x, (0, 0), 1.0))
    return np.clip(x, 0, 255).astype(np.uint8)


def blend_mask(shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Face mask, deformed, softened and scaled by a random blend ratio: float32 in [0, 1]."""
    m = soften(deform(face_mask(shape, landmarks, rng), rng), rng)
    ratio = float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))
    return (m * ratio).astype(np.float32)


def perturb(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The altered copy: colour shift, brightness/contrast, sharpen or blur, small scale and shift."""
    x = img.astype(np.float32)
    x = x + rng.uniform(-20, 20, size=3).astype(np.float32)  # per-channel colour shift
    x = (x - 128.0) * rng.uniform(0.85, 1.15) + 128.0 + rng.uniform(-15, 15)  # contrast, brightness
    if rng.random() < 0.5:
        hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.8, 1.2), 0, 255)
        x = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    r = rng.random()
    if r < 0.35:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    elif r < 0.7:
        soft = cv2.GaussianBlur(x, (0, 0), 1.0)
        x = x + rng.uniform(0.3, 1.0) * (x - soft)
    h, w = img.shape[:2]
    s = rng.uniform(0.95, 1.05)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, s)
    m[:, 2] += rng.uniform(-0.03, 0.03, size=2) * (w, h)
    x = cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(x, 0, 255).astype(np.uint8)


def self_blend(
    img: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    *,
    paste_altered: bool | None = None,
    region: str = "face",
) -> tuple[np.ndarray, np.ndarray]:
    """A self-blended fake from one real crop: ``(fake uint8, mask float32)``.

    ``region="face"``: either the altered copy is pasted into the original (``paste_altered``), or the
    original into the altered copy (as in SBI; random when None); the mask marks where the pasted face
    shows. ``region="mouth"``: a :func:`rerender` of the lower face pasted into the original.
    """
    if region == "mouth":
        mask = soften(deform(mouth_mask(img.shape[:2], landmarks, rng), rng), rng)
        src, tgt = rerender(img, rng), img
    elif region == "face":
        mask = blend_mask(img.shape[:2], landmarks, rng)
        alt = perturb(img, rng)
        if paste_altered is None:
            paste_altered = bool(rng.random() < 0.5)
        src, tgt = (alt, img) if paste_altered else (img, alt)
    else:
        raise ValueError(f"unknown blend region {region!r} (face or mouth)")
    m = mask[..., None]
    fake = src.astype(np.float32) * m + tgt.astype(np.float32) * (1.0 - m)
    return np.clip(np.round(fake), 0, 255).astype(np.uint8), mask


@dataclass(frozen=True)
class Degradation:
    """One draw of the shared degradation: downscale factor, blur sigma, JPEG quality (0 = off)."""

    scale: float = 1.0
    blur: float = 0.0
    jpeg: int = 0

    @classmethod
    def random(cls, rng: np.random.Generator) -> Degradation:
        return cls(
            scale=float(rng.uniform(0.35, 1.0)) if rng.random() < 0.6 else 1.0,
            blur=float(rng.uniform(0.3, 1.2)) if rng.random() < 0.2 else 0.0,
            jpeg=int(rng.integers(35, 96)) if rng.random() < 0.85 else 0,
        )

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        out = img
        if self.scale < 1.0:
            small = cv2.resize(
                out, (max(8, round(w * self.scale)), max(8, round(h * self.scale))), interpolation=cv2.INTER_AREA
            )
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if self.blur > 0:
            out = cv2.GaussianBlur(out, (0, 0), self.blur)
        if self.jpeg:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg])
            if ok:
                out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(out)


def jitter(img: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Geometric augmentation of a real crop and its landmarks: mirror, small zoom and shift."""
    h, w = img.shape[:2]
    lm = np.asarray(landmarks, np.float32).copy()
    if rng.random() < 0.5:
        img = img[:, ::-1]
        lm[:, 0] = w - 1 - lm[:, 0]
        lm = lm[list(FLIP_ORDER)]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-5, 5), rng.uniform(0.95, 1.08))
    m[:, 2] += rng.uniform(-0.04, 0.04, size=2) * (w, h)
    img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return img, (lm @ m[:, :2].T + m[:, 2]).astype(np.float32)


def make_pair(
    img: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, *, augment: bool = True, mouth: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(real, fake, mask)``: a real crop and its self-blended fake under one shared degradation; with
    chance ``mouth`` the fake re-renders the lower face only."""
    if augment:
        img, landmarks = jitter(img, landmarks, rng)
        if rng.random() < 0.05:
            img = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    region = "mouth" if mouth > 0 and rng.random() < mouth else "face"  # no draw at 0: whole-face streams unchanged
    fake, mask = self_blend(img, landmarks, rng, region=region)
    deg = Degradation.random(rng)
    return deg(img), deg(fake), mask
