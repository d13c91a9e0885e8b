"""Synthetic upsampling traces and the shared crop / resize / JPEG normalisation for ``gan_fingerprint``.

A real image passed through a randomly initialised upsampling decoder (transposed convolutions, or
nearest / bilinear upsampling followed by convolutions) carries the periodic high-frequency trace
that generators leave, without any one generator's content: such images are the synthetic fakes.
Real and fake training crops then go through the very same :func:`normalise` (random crop, resize,
JPEG re-encode), so size, format and compression cannot separate the classes.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MODES = ("transposed", "nearest", "bilinear")


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode an RGB uint8 image as JPEG at ``quality`` and decode it again."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def resize(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize by ``scale`` (area filter when shrinking, bicubic when enlarging)."""
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator, *, even: bool = True) -> np.ndarray:
    """A ``size`` x ``size`` crop at a random (by default even) offset; the whole image if smaller."""
    h, w = img.shape[:2]
    y = int(rng.integers(0, max(h - size, 0) + 1))
    x = int(rng.integers(0, max(w - size, 0) + 1))
    if even:
        y, x = y - y % 2, x - x % 2
    return img[y : y + size, x : x + size]


class RandomUpsamplingDecoder(nn.Module):
    """A randomly initialised decoder that enlarges an image ``2**stages`` times.

    Output = a plain interpolation of the input plus the decoder's residual, rescaled to
    ``amplitude`` (in [0, 1] units): the residual carries the upsampling layers' periodic trace.
    """

    def __init__(self, *, stages: int, mode: str, width: int, kernel: int, amplitude: float, seed: int) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        gen = torch.Generator().manual_seed(seed)
        self.stages, self.mode, self.amplitude = stages, mode, amplitude
        self.inp = nn.Conv2d(3, width, 3, 1, 1)
        ups: list[nn.Module] = []
        for _ in range(stages):
            if mode == "transposed":
                pad = (kernel - 2 + 1) // 2
                ups.append(nn.ConvTranspose2d(width, width, kernel, 2, pad, output_padding=kernel % 2))
            else:
                ups += [nn.Upsample(scale_factor=2.0, mode=mode), nn.Conv2d(width, width, 3, 1, 1)]
            ups.append(nn.LeakyReLU(0.2))
        self.ups = nn.Sequential(*ups)
        self.out = nn.Conv2d(width, 3, 1)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * (3.0 / max(1, p[0].numel())) ** 0.5)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        f = 2**self.stages
        base_mode = "nearest" if self.mode == "nearest" else "bilinear"
        base = F.interpolate(low, scale_factor=float(f), mode=base_mode)
        r = self.out(self.ups(F.leaky_relu(self.inp(low), 0.2)))
        r = r - r.mean(dim=(2, 3), keepdim=True)
        r = r / (r.std() + 1e-8) * self.amplitude
        return (base + r).clamp(0.0, 1.0)


def random_decoder(rng: np.random.Generator) -> RandomUpsamplingDecoder:
    """Draw a decoder: 1 (3 in 4) or 2 stages, a mode from :data:`MODES`, width 8-16, amplitude 2-10 grey levels."""
    return RandomUpsamplingDecoder(
        stages=int(rng.choice([1, 1, 1, 2])),
        mode=str(rng.choice(MODES)),
        width=int(rng.integers(8, 17)),
        kernel=int(rng.choice([2, 3, 4])),
        amplitude=float(rng.uniform(2.0, 10.0)) / 255.0,
        seed=int(rng.integers(2**31)),
    )


def upsampling_trace(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A synthetic fake: ``img`` shrunk by the decoder's factor (area filter) and regrown by a random decoder.

    Returns an RGB uint8 image of (nearly) the input's size: H and W are cut to a multiple of the factor.
    """
    dec = random_decoder(rng)
    f = 2**dec.stages
    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    if h < f or w < f:
        raise ValueError(f"image too small for a x{f} decoder")
    low = cv2.resize(np.ascontiguousarray(img[:h, :w]), (w // f, h // f), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(low).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        out = dec(x)[0].permute(1, 2, 0).numpy()
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def plain_resample(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The real counterpart of :func:`upsampling_trace`: the same shrink, then plain interpolation back.

    Labelled real in training, so that the blur of upsampled content is not a fake cue: only the
    decoder's trace is. Factor 2 (3 in 4) or 4; bilinear, bicubic or Lanczos enlargement.
    """
    f = int(rng.choice([2, 2, 2, 4]))
    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    low = cv2.resize(np.ascontiguousarray(img[:h, :w]), (w // f, h // f), interpolation=cv2.INTER_AREA)
    interp = int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4]))
    return cv2.resize(low, (w, h), interpolation=interp)


def normalise(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    crop: int,
    quality: tuple[int, int] = (65, 100),
    jpeg_p: float = 0.9,
    resize_p: float = 0.3,
    scale: tuple[float, float] = (0.75, 1.33),
    grey_p: float = 0.05,
) -> np.ndarray:
    """The label-blind pipeline every training / validation crop goes through.

    Random region (1.5x ``crop``), random resize with probability ``resize_p``, JPEG re-encode at a
    random quality with probability ``jpeg_p``, then a random ``crop`` x ``crop`` (even offset, 3 in 4).
    With probability ``grey_p`` the region is made greyscale first (some real sources are greyscale:
    colour must not be a class cue). Images smaller than ``crop`` after resizing are enlarged to fit (bicubic).
    """
    region = random_crop(img, int(crop * 1.5), rng)
    if rng.random() < grey_p:
        region = np.repeat(cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    if rng.random() < resize_p:
        region = resize(region, float(rng.uniform(*scale)))
    if min(region.shape[:2]) < crop:
        region = resize(region, crop / min(region.shape[:2]) + 1e-3)
    if rng.random() < jpeg_p:
        region = jpeg_roundtrip(region, int(rng.integers(quality[0], quality[1] + 1)))
    return np.ascontiguousarray(random_crop(region, crop, rng, even=rng.random() < 0.75))
