"""Two-stream audio-visual sync network (SyncNet-style), knowing nothing of media.

One input row packs a grey mouth clip of ``frames`` frames (``height`` x ``width``), a log-mel
window of ``n_mels`` x ``(frames + 2 * max_offset) * mel_per_frame`` (the audio covers the clip
plus ``max_offset`` video frames on each side) and the audio's voice-activity flags on the same
span. Both streams are embedded at the video frame rate; the cosine similarity of the clip with
the audio shifted by ``d`` frames, averaged over the frames where that shifted audio is speech,
is computed for every ``d`` in ``[-max_offset, max_offset]``. Higher logits mean less in sync
(more fake); ``logit_rule`` picks how a curve becomes one:

- ``"median_gap"``: ``logit_scale * (median(sims[|d| > NEAR_FRAMES]) - sims[0])``, how far the zero-offset
  similarity falls below that of a typical clearly shifted audio;
- ``"far_near_gap"``: ``logit_scale * (max(sims[|d| > NEAR_FRAMES]) - max(sims[|d| <= NEAR_FRAMES]))``,
  how much better the best clearly shifted audio fits than the best near-aligned one (within
  ``NEAR_FRAMES`` = 2 frames, 0.08 s at 25 fps): a direct test of "the best offset lies outside the tolerance".
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _tconv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    pad = 0 if stride > 1 else k // 2
    return nn.Sequential(nn.Conv1d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm1d(cout), nn.ReLU(inplace=True))


LOGIT_RULES = ("median_gap", "far_near_gap")
NEAR_FRAMES = 2  # offsets within this many frames of zero count as in sync (0.08 s at 25 fps)


class LipSyncNet(nn.Module):
    """Mouth-clip and log-mel encoders sharing an embedding space at the video frame rate."""

    def __init__(
        self,
        *,
        frames: int = 25,
        height: int = 32,
        width: int = 64,
        n_mels: int = 40,
        mel_per_frame: int = 4,
        max_offset: int = 15,
        channels: int = 16,
        dim: int = 64,
        hidden: int | None = None,
        dropout: float = 0.0,
        logit_scale: float = 10.0,
        logit_rule: str = "median_gap",
    ) -> None:
        super().__init__()
        if logit_rule not in LOGIT_RULES:
            raise ValueError(f"logit_rule must be one of {LOGIT_RULES}, not {logit_rule!r}")
        self.logit_rule = logit_rule
        self.frames, self.height, self.width = frames, height, width
        self.n_mels, self.mel_per_frame, self.max_offset = n_mels, mel_per_frame, max_offset
        self.logit_scale = logit_scale
        c, hid = channels, hidden or 6 * channels
        self.visual_frame = nn.Sequential(
            _conv_bn(1, c, 2), _conv_bn(c, 2 * c, 2), _conv_bn(2 * c, 4 * c, 2), _conv_bn(4 * c, 6 * c, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.visual_time = nn.Sequential(
            nn.Dropout(dropout), _tconv(6 * c, hid, 5), _tconv(hid, hid, 3), nn.Dropout(dropout), nn.Conv1d(hid, dim, 1)
        )
        self.audio = nn.Sequential(
            _tconv(n_mels, hid, mel_per_frame, stride=mel_per_frame), nn.Dropout(dropout), _tconv(hid, hid, 5),
            _tconv(hid, hid, 3), nn.Dropout(dropout), nn.Conv1d(hid, dim, 1),
        )  # fmt: skip
        self.temperature = nn.Parameter(torch.tensor(10.0))  # training-only InfoNCE scale, kept for resuming

    @property
    def video_size(self) -> int:
        return self.frames * self.height * self.width

    @property
    def audio_frames(self) -> int:
        return (self.frames + 2 * self.max_offset) * self.mel_per_frame

    @property
    def input_size(self) -> int:
        return self.video_size + self.n_mels * self.audio_frames + self.frames + 2 * self.max_offset

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Packed rows -> (mouth clips ``B x T x H x W``, log-mels ``B x n_mels x A``, speech ``B x (T + 2m)``)."""
        na = self.n_mels * self.audio_frames
        v = x[:, : self.video_size].reshape(-1, self.frames, self.height, self.width)
        a = x[:, self.video_size : self.video_size + na].reshape(-1, self.n_mels, self.audio_frames)
        return v, a, x[:, self.video_size + na :]

    def embed_video(self, v: torch.Tensor) -> torch.Tensor:
        """``B x T x H x W`` -> unit-norm embeddings ``B x dim x T``."""
        b, t = v.shape[:2]
        f = self.visual_frame(v.reshape(b * t, 1, self.height, self.width)).reshape(b, t, -1).transpose(1, 2)
        return F.normalize(self.visual_time(f), dim=1)

    def embed_audio(self, a: torch.Tensor) -> torch.Tensor:
        """``B x n_mels x A`` -> unit-norm embeddings ``B x dim x A / mel_per_frame``."""
        return F.normalize(self.audio(a), dim=1)

    def offset_similarities(self, ev: torch.Tensor, ea: torch.Tensor) -> torch.Tensor:
        """Per-frame cosine similarity for each audio shift: ``B x (2 * max_offset + 1) x T``."""
        t, m = ev.shape[2], self.max_offset
        return torch.stack([(ev * ea[:, :, m + d : m + d + t]).sum(1) for d in range(-m, m + 1)], dim=1)

    def weighted_curve(self, sims: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        """Mean of ``B x S x T`` per-frame similarities, per shift over the frames whose shifted audio is speech."""
        t, m = sims.shape[2], self.max_offset
        w = torch.stack([speech[:, m + d : m + d + t] for d in range(-m, m + 1)], dim=1) + 1e-3  # no speech: plain mean
        return (sims * w).sum(2) / w.sum(2)

    def sync_curve(self, x: torch.Tensor) -> torch.Tensor:
        """Speech-weighted similarity of the clip with the audio at each shift: ``B x (2 * max_offset + 1)``."""
        v, a, w = self.split(x)
        return self.weighted_curve(self.offset_similarities(self.embed_video(v), self.embed_audio(a)), w)

    def logit_from_curve(self, curve: torch.Tensor) -> torch.Tensor:
        """One logit per curve by ``logit_rule`` (module docstring); higher = less in sync."""
        m, n = self.max_offset, NEAR_FRAMES
        shifted = torch.cat([curve[:, : m - n], curve[:, m + n + 1 :]], dim=1)  # |d| > NEAR_FRAMES
        if self.logit_rule == "far_near_gap":
            return self.logit_scale * (shifted.max(dim=1).values - curve[:, m - n : m + n + 1].max(dim=1).values)
        return self.logit_scale * (shifted.median(dim=1).values - curve[:, m])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit_from_curve(self.sync_curve(x.float()))


class LipSyncEnsemble(nn.Module):
    """Several :class:`LipSyncNet` of one architecture (trained from different seeds) whose sync curves are
    averaged: one network trained on a few minutes of speech varies a lot from seed to seed, their mean less.

    Same interface as one network; state-dict keys are ``members.<i>.<network key>``.
    """

    def __init__(self, *, members: int, **net_args: Any) -> None:
        super().__init__()
        if members < 1:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(LipSyncNet(**net_args) for _ in range(members))
        self.max_offset = self.members[0].max_offset

    def sync_curve(self, x: torch.Tensor) -> torch.Tensor:
        """The members' mean sync curve: ``B x (2 * max_offset + 1)``."""
        return torch.stack([m.sync_curve(x) for m in self.members]).mean(0)

    def logit_from_curve(self, curve: torch.Tensor) -> torch.Tensor:
        return self.members[0].logit_from_curve(curve)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit_from_curve(self.sync_curve(x.float()))


def build_lip_sync(architecture: dict) -> LipSyncNet | LipSyncEnsemble:
    """The network a card's ``architecture`` names: ``LipSyncNet`` or ``LipSyncEnsemble`` (``members`` in args)."""
    name, args = architecture.get("name"), dict(architecture.get("args", {}))
    if name == "LipSyncNet":
        return LipSyncNet(**args)
    if name == "LipSyncEnsemble":
        return LipSyncEnsemble(**args)
    raise ValueError(f"lip_sync cannot build architecture {name!r}")
