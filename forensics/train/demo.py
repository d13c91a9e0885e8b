"""The built-in demo folder, made offline from real face photos that scikit-image and matplotlib ship.

It holds real photos, self-blended face-swap fakes made from them (the same synthesis the
face_swap detector is trained with), a synthetic upsampling-trace image (as GAN decoders leave),
short H.264/AAC videos of real and blended frames, and one truncated file that must be reported
as an error rather than scored.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from forensics.media.faces import default_face_detector
from forensics.train.reencode import _write


def real_photos() -> dict[str, np.ndarray]:
    """Real face photos shipped by packages: NASA's astronaut portrait and Grace Hopper's."""
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = np.asarray(Image.open(fh).convert("RGB"))
    return {"astronaut": np.ascontiguousarray(data.astronaut()), "grace_hopper": hopper}


def self_blended(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """A face-swap-like fake: the face re-blended into itself after a colour/scale change."""
    from forensics.train.sbi import self_blend

    faces = default_face_detector().detect(img)
    if not faces:
        raise ValueError("no face found to blend")
    _, _, landmarks = max(faces, key=lambda f: f[1])
    fake, _ = self_blend(img, landmarks, np.random.default_rng(seed), paste_altered=True)
    return fake


def pan(img: np.ndarray, seconds: float = 3.0, fps: int = 25, size: int = 360) -> list[np.ndarray]:
    """Frames of a slow camera pan over a photo (square crop, ``size`` px)."""
    h, w = img.shape[:2]
    side = int(min(h, w) * 0.9)
    n = int(seconds * fps)
    frames = []
    for i in range(n):
        dx = int((w - side) / 2 + 0.04 * side * np.sin(2 * np.pi * i / n))
        dy = (h - side) // 2
        frames.append(cv2.resize(img[dy : dy + side, dx : dx + side], (size, size), interpolation=cv2.INTER_AREA))
    return frames


def build_demo(folder: Path) -> list[Path]:
    """Write the demo media into ``folder`` and return the paths."""
    from forensics.train.upsampling import upsampling_trace

    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []

    def save(name: str, img: np.ndarray, quality: int = 92) -> None:
        p = folder / name
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(p)

    photos = real_photos()
    sr = 16000
    for i, (name, img) in enumerate(photos.items()):
        save(f"real_{name}.jpg", img)
        fake = self_blended(img, seed=i)
        save(f"fake_selfblend_{name}.jpg", fake)
        frames_real = pan(img)
        frames_fake = pan(fake)
        t = np.arange(int(3.0 * sr)) / sr
        hum = (0.05 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
        for label, frames in (("real", frames_real), ("fake_selfblend", frames_fake)):
            p = folder / f"{label}_{name}_pan.mp4"
            _write(p, frames, 25, hum, sr, crf=20)
            out.append(p)
    trace = upsampling_trace(photos["astronaut"], np.random.default_rng(7))
    p = folder / "fake_upsampling_trace_astronaut.png"
    cv2.imwrite(str(p), cv2.cvtColor(trace, cv2.COLOR_RGB2BGR))
    out.append(p)
    broken = folder / "broken_download.mp4"
    broken.write_bytes((folder / "real_astronaut_pan.mp4").read_bytes()[:2000])
    out.append(broken)
    return out
