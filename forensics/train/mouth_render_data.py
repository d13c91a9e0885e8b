"""Re-rendered mouths made from real talking-head clips: the training fakes of ``mouth_render``.

A clip is ``clip_frames`` consecutive grey lower-face crops (:func:`forensics.detectors.lip_sync.mouth_crop`
geometry: level, scaled by the eye-mouth distance, so the mouth and nose sit at known places). Its fake
re-renders the lower face the way lip-sync generators do: down-sampled to a generator's resolution, passed
through a small randomly initialised conv decoder, blurred, JPEG-coded and noised *independently per frame*
(a generated mouth flickers while the rest of the face does not), brought back to size with a brightness
mismatch and pasted with a soft mask of varied shape (:func:`forensics.train.sbi.mouth_mask`, ``deform``,
``soften``). Real and fake then share one degradation (:class:`forensics.train.sbi.Degradation`, per frame
with the same settings), so the only difference to learn is the re-render.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from forensics.train.sbi import Degradation, deform, mouth_mask, soften


def crop_landmarks(prep: dict[str, Any]) -> np.ndarray:
    """Where the 5 MTCNN points (eyes, nose, mouth corners) fall in a crop made with ``prep`` (typical face)."""
    w, h = int(prep["mouth_width"]), int(prep["mouth_height"])
    px = w / float(prep["mouth_scale"])  # pixels per eye-mouth distance
    mx, my = w / 2, h / 2 - float(prep["mouth_shift"]) * px
    return np.array(
        [[mx - 0.5 * px, my - px], [mx + 0.5 * px, my - px], [mx, my - 0.45 * px], [mx - 0.38 * px, my],
         [mx + 0.38 * px, my]], np.float64,
    )  # fmt: skip


def random_decoder(rng: np.random.Generator, hidden: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """A randomly initialised two-layer 3x3 conv decoder: ``hidden`` kernels, then their mixing kernels."""
    k1 = rng.normal(0, 1 / 3, size=(hidden, 3, 3)).astype(np.float32)
    k2 = rng.normal(0, 1 / (3 * np.sqrt(hidden)), size=(hidden, 3, 3)).astype(np.float32)
    return [(k1[i], k2[i]) for i in range(hidden)]


def decode(img: np.ndarray, decoder: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The decoder's residual texture for a float image in [0, 1] (zero-mean, about unit scale)."""
    out = np.zeros_like(img)
    for k1, k2 in decoder:
        out += cv2.filter2D(np.tanh(cv2.filter2D(img, -1, k1) * 3.0), -1, k2)
    return out


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else img


def rerender_clip(
    crops: np.ndarray,
    prep: dict[str, Any],
    rng: np.random.Generator,
    *,
    independent: bool = True,
    whole: bool = False,
    sharp: bool = False,
    painted: np.ndarray | None = None,
) -> np.ndarray:
    """A lip-sync-like fake of a uint8 clip (``T x H x W``): the lower face regenerated per frame and pasted.

    ``independent``: each frame's decoder input noise, added noise and brightness wobble are drawn anew
    (flicker); otherwise one draw serves the whole clip (texture cues only). ``whole``: the whole crop is
    regenerated (talking-head generators render the entire face), no paste boundary. ``sharp``: a second random
    decoder adds its texture at full size after the up-sampling (the crisp, wrong detail of GAN and diffusion
    decoders, re-drawn every frame), instead of only a blurred copy. ``painted``: the lower face comes from a learned
    generator instead (``T x S x S`` in [0, 1], :func:`forensics.train.mouth_render_gen.repaint`), brought to
    the drawn resolution when that is lower, then blurred, noised and coded as the decoder's would be.
    """
    t, h, w = crops.shape
    lm = crop_landmarks(prep) + rng.normal(0, 0.03 * w, size=(5, 2))
    if whole:
        mask = np.ones((h, w), np.float32)
    else:
        mask = soften(deform(mouth_mask((h, w), lm, rng), rng), rng) * float(rng.choice([0.7, 0.85, 1.0, 1.0, 1.0]))
    side = int(rng.integers(max(12, w // 8), max(13, int(w * 0.75))))  # the generator's resolution
    dec = random_decoder(rng) if rng.random() < 0.7 else None
    amp = rng.uniform(0.01, 0.08)
    blur = rng.uniform(0.3, 1.0) if rng.random() < 0.4 else 0.0
    quality = int(rng.integers(40, 95)) if rng.random() < 0.5 else 0
    noise = rng.uniform(0.5, 3.0) if rng.random() < 0.6 else 0.0
    flicker = rng.uniform(0.0, 2.0)  # per-frame brightness wobble (grey levels)
    gain, offset = rng.uniform(0.92, 1.08), rng.uniform(-8, 8)  # colour mismatch of the pasted region
    up = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
    sharpen = rng.uniform(0.3, 1.0) if rng.random() < 0.3 else 0.0
    fine, fine_amp = (random_decoder(rng), rng.uniform(0.02, 0.08)) if sharp else (None, 0.0)
    seed = int(rng.integers(2**31))
    out = np.empty_like(crops)
    for i in range(t):
        frame_rng = rng if independent else np.random.default_rng(seed)
        if painted is not None:
            small = painted[i]
            if side < small.shape[0]:
                small = cv2.resize(small, (side, side), interpolation=cv2.INTER_AREA)
        else:
            small = cv2.resize(crops[i], (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        if dec is not None and painted is None:  # per-frame input noise: the texture differs from frame to frame
            small = small + amp * decode(small + frame_rng.normal(0, 0.02, small.shape).astype(np.float32), dec)
        if blur:
            small = cv2.GaussianBlur(small, (0, 0), blur)
        if noise:
            small = small + frame_rng.normal(0, noise / 255.0, small.shape).astype(np.float32)
        small = np.clip(small * 255.0, 0, 255).astype(np.uint8)
        if quality:
            small = _jpeg(small, quality)
        r = cv2.resize(small, (w, h), interpolation=up).astype(np.float32)
        if sharpen:
            r = r + sharpen * (r - cv2.GaussianBlur(r, (0, 0), 1.0))
        if fine is not None:
            z = r / 255.0 + frame_rng.normal(0, 0.02, r.shape).astype(np.float32)
            r = r + 255.0 * fine_amp * decode(z.astype(np.float32), fine)
        r = (r - 128.0) * gain + 128.0 + offset + (rng.normal(0, flicker) if independent else 0.0)
        out[i] = np.clip(np.round(r * mask + crops[i].astype(np.float32) * (1.0 - mask)), 0, 255).astype(np.uint8)
    return out


def augment(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same mirror and small zoom/shift/rotation for every frame of a uint8 clip (the crop's framing varies)."""
    t, h, w = crops.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-5, 5), rng.uniform(0.9, 1.1))
    m[:, 2] += rng.uniform(-0.04, 0.04, size=2) * (w, h)
    flip = rng.random() < 0.5
    out = np.empty_like(crops)
    for i in range(t):
        img = cv2.warpAffine(crops[i], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[i] = img[:, ::-1] if flip else img
    return out


def degrade(crops: np.ndarray, deg: Degradation) -> np.ndarray:
    """One :class:`Degradation` applied to every frame of a grey clip."""
    return np.stack([deg(np.repeat(c[..., None], 3, 2))[..., 0] for c in crops])


def wobble(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame gain and offset of a whole clip (auto exposure, fades), drawn once for a real/fake pair."""
    if rng.random() < 0.5:
        return np.ones(frames), np.zeros(frames)
    return 1 + rng.normal(0, rng.uniform(0.005, 0.04), frames), rng.normal(0, rng.uniform(0.5, 4.0), frames)


def make_pair(
    crops: np.ndarray,
    prep: dict[str, Any],
    rng: np.random.Generator,
    *,
    independent: float = 1.0,
    whole: float = 0.0,
    shared_flicker: bool = False,
    sharp: float = 0.0,
    learned: float = 0.0,
    painters: list[Callable[[np.ndarray, dict[str, Any], np.random.Generator], np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(real, fake)`` uint8 clips from one real clip: augmented, the fake re-rendered (frames independently
    with chance ``independent``; the whole crop with chance ``whole``; with crisp full-size decoder texture with
    chance ``sharp``), both degraded alike; with ``shared_flicker`` both also get one per-frame whole-clip
    brightness wobble (:func:`wobble`), so that only flicker confined to the mouth region tells a fake. With chance
    ``learned`` the lower face is repainted by one of ``painters`` (learned generators:
    :func:`forensics.train.mouth_render_gen.painters`), pasted with a mask (never the whole crop)."""
    real = augment(crops, rng)
    whole_draw = bool(rng.random() < whole) if whole > 0 else False  # no draw at 0: earlier recipes unchanged
    sharp_draw = bool(rng.random() < sharp) if sharp > 0 else False
    painted = None
    if learned > 0 and painters and rng.random() < learned:
        painted = painters[int(rng.integers(len(painters)))](real, prep, rng)
        whole_draw = False
    fake = rerender_clip(
        real, prep, rng, independent=bool(rng.random() < independent), whole=whole_draw, sharp=sharp_draw,
        painted=painted,
    )  # fmt: skip
    deg = Degradation.random(rng)
    real, fake = degrade(real, deg), degrade(fake, deg)
    if shared_flicker:
        gain, offset = wobble(rng, len(real))
        g, o = gain[:, None, None], offset[:, None, None]
        real, fake = (
            np.clip((c.astype(np.float32) - 128) * g + 128 + o, 0, 255).astype(np.uint8) for c in (real, fake)
        )
    return real, fake
