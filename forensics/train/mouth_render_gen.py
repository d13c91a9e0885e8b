"""A learned mouth generator for ``mouth_render``'s training fakes (the issue's "quickly trained decoder").

Lip-sync generators (Wav2Lip and its successors) repaint the lower face of each frame from that frame with its
lower face masked and a reference frame of the same person, at low resolution, and paste it back. This is that
recipe at its smallest: an encoder-decoder with skip connections (:class:`MouthGenerator`) trained for a few
minutes with an L1 loss on the training sources' real crops only (no sync expert, no adversarial loss). Its
mouths are plausible but smoothed, and differ from frame to frame in ways the rest of the face does not: the
texture a random decoder (:mod:`forensics.train.mouth_render_data`) does not have. Snapshots taken along the
training give generators of rising quality; :func:`repaint` draws one per clip.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from forensics.train.mouth_render_data import crop_landmarks

Log = Callable[[str], None]
SIZE = 64  # the generator's resolution (Wav2Lip: 96 px for the whole face; here the lower face crop)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True))


class MouthGenerator(nn.Module):
    """Repaints a grey ``SIZE`` px crop from the crop with its lower face masked and a reference frame."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        w = width
        self.enc = nn.ModuleList(
            [_block(2, w, 1), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2), _block(4 * w, 4 * w, 2)]
        )
        self.dec = nn.ModuleList([_block(8 * w, 2 * w, 1), _block(4 * w, w, 1), _block(2 * w, w, 1)])
        self.out = nn.Conv2d(w, 1, 3, 1, 1)

    def forward(self, masked: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        x = torch.cat([masked, ref], dim=1)
        skips = []
        for layer in self.enc:
            x = layer(x)
            skips.append(x)
        for layer, skip in zip(self.dec, reversed(skips[:-1]), strict=True):
            x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = layer(torch.cat([x, skip], dim=1))
        return torch.sigmoid(self.out(x))


def mask_row(prep: dict[str, Any], size: int = SIZE) -> int:
    """First masked row of a ``size`` px crop: a fifth of the way from the nose to the mouth line."""
    lm = crop_landmarks(prep)
    nose, mouth = lm[2, 1], lm[3:, 1].mean()
    return round(float(nose + 0.2 * (mouth - nose)) / float(prep["mouth_height"]) * size)


def _small(crops: np.ndarray) -> np.ndarray:
    """uint8 ``T x H x W`` crops at ``SIZE`` px, float in [0, 1]."""
    return np.stack([cv2.resize(c, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for c in crops]).astype(np.float32) / 255


def _masked(small: np.ndarray, row: int) -> np.ndarray:
    """``small`` with rows from ``row`` on set to each frame's mean there: the generator's input."""
    out = small.copy()
    out[:, row:] = small[:, row:].mean(axis=(1, 2), keepdims=True)
    return out


def train_generator(
    tracks: list[np.ndarray], work: Path, prep: dict[str, Any], *, minutes: float, seed: int = 0, log: Log,
    snapshots: int = 3, batch: int = 32,
) -> list[Path]:  # fmt: skip
    """Train :class:`MouthGenerator` on real crops (L1 on the whole crop, weighted 4x below the mask row) for
    ``minutes``; saves ``snapshots`` state dicts evenly along the run (``work/mouth_gen_K.pt``). Finished
    snapshots are reused, so the stage resumes at the first missing one."""
    paths = [work / f"mouth_gen_{k}.pt" for k in range(snapshots)]
    if all(p.exists() for p in paths):
        return paths
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = MouthGenerator()
    opt = torch.optim.Adam(gen.parameters(), lr=2e-3)
    row = mask_row(prep)
    weight = torch.ones(1, 1, SIZE, SIZE)
    weight[..., row:, :] = 4.0
    lengths = np.array([len(t) for t in tracks], np.float64)
    budget, t0, step = minutes * 60.0, time.time(), 0
    for k, path in enumerate(paths):
        if path.exists():
            gen.load_state_dict(torch.load(path, weights_only=True))
            t0 -= budget / snapshots  # this share of the budget was spent before
            continue
        while time.time() - t0 < budget * (k + 1) / snapshots:
            crops, refs = [], []
            for ti in rng.choice(len(tracks), size=batch, p=lengths / lengths.sum()):
                i, j = rng.integers(0, len(tracks[ti]), size=2)
                crops.append(tracks[ti][i])
                refs.append(tracks[ti][j])
            target = torch.from_numpy(_small(np.stack(crops))[:, None])
            masked = torch.from_numpy(_masked(_small(np.stack(crops)), row)[:, None])
            ref = torch.from_numpy(_small(np.stack(refs))[:, None])
            loss = ((gen(masked, ref) - target).abs() * weight).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 100 == 0:
                log(f"  generator step {step}  L1 {loss.item():.4f}  {time.time() - t0:.0f}s")
        torch.save(gen.state_dict(), path)
        log(f"  generator snapshot {k} at step {step}: {path}")
    return paths


def load_generators(paths: list[Path]) -> list[MouthGenerator]:
    """The saved snapshots, in eval mode."""
    out = []
    for p in paths:
        gen = MouthGenerator()
        gen.load_state_dict(torch.load(p, weights_only=True))
        out.append(gen.eval())
    return out


def painters(paths: list[Path]) -> list[Callable[[np.ndarray, dict[str, Any], np.random.Generator], np.ndarray]]:
    """One :func:`repaint` per saved snapshot: what :func:`~forensics.train.mouth_render_data.make_pair` draws from."""
    return [functools.partial(repaint, gen) for gen in load_generators(paths)]


def repaint(gen: MouthGenerator, crops: np.ndarray, prep: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """The generator's ``SIZE`` px repaint of each frame of a uint8 clip, in [0, 1] (``T x SIZE x SIZE``), with a
    reference frame drawn from the clip; the caller brings it to size and pastes it."""
    small = _small(crops)
    masked = torch.from_numpy(_masked(small, mask_row(prep))[:, None])
    ref = torch.from_numpy(np.repeat(small[None, int(rng.integers(len(crops)))], len(crops), 0)[:, None])
    with torch.inference_mode():
        return gen(masked, ref)[:, 0].numpy()
