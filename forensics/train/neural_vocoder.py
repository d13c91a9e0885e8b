"""Small neural vocoders (MelGAN / HiFi-GAN-style generators) for neural copy-synthesis fakes.

No pretrained vocoder can be downloaded here, so the ``synthetic_speech`` training builds its own:
a generator maps an 80-band log-mel spectrogram to a waveform through a stack of learned
upsampling layers (transposed convolutions, or nearest-neighbour repetition + convolution) whose
factors multiply to the mel hop, each followed by residual dilated convolutions, with a ``tanh``
output. Those upsampling stacks leave the periodic spectral traces (at multiples of
``sample_rate / hop`` and of its factors) and the rebuilt upper band that neural vocoders share.
It is trained briefly on real speech with a multi-resolution STFT loss plus an L1 log-mel loss (no
discriminator). Copy-synthesis is wav -> log-mel -> generator -> wav, trimmed and loudness matched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))  # (n_fft, hop, win)


@dataclass
class VocoderConfig:
    """Everything that defines one generator and its mel front end (stored with its state dict)."""

    upsample: tuple[int, ...] = (8, 8, 4)
    upsample_mode: str = "transposed"  # or "nearest" (repeat + convolution)
    channels: int = 96  # after the input convolution; halved at every upsampling stage
    res_kernel: int = 3
    dilations: tuple[int, ...] = (1, 3, 9)
    sample_rate: int = 16000
    n_mels: int = 80
    n_fft: int = 1024
    fmin: float = 0.0
    fmax: float = 8000.0
    source: bool = False  # NSF-style: a sine + noise excitation from F0 is added at every stage
    adversarial_from: int | None = None  # step from which a multi-scale discriminator trains too (LSGAN)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hop(self) -> int:
        return math.prod(self.upsample)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VocoderConfig:
        d = dict(d)
        d["upsample"], d["dilations"] = tuple(d["upsample"]), tuple(d["dilations"])
        return cls(**d)


# -- mel front end ----------------------------------------------------------------------------


def mel_basis(cfg: VocoderConfig) -> torch.Tensor:
    """Slaney mel filterbank ``(n_mels, n_fft // 2 + 1)`` (librosa)."""
    import librosa

    m = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    return torch.from_numpy(m).float()


def log_mel(wav: torch.Tensor, cfg: VocoderConfig, basis: torch.Tensor) -> torch.Tensor:
    """``(B, n_samples)`` -> ``(B, n_mels, n_samples // hop)`` natural-log mel magnitudes (floor 1e-5).

    Frames are centred on ``k * hop`` with reflect padding, so ``n_samples // hop`` frames drive a
    generator that returns exactly ``frames * hop`` samples.
    """
    pad = (cfg.n_fft - cfg.hop) // 2
    x = F.pad(wav.unsqueeze(1), (pad, cfg.n_fft - cfg.hop - pad), mode="reflect").squeeze(1)
    spec = torch.stft(x, cfg.n_fft, cfg.hop, cfg.n_fft, torch.hann_window(cfg.n_fft), center=False,
                      return_complex=True).abs()  # fmt: skip
    return torch.log(torch.clamp(basis @ spec, min=1e-5))[..., : wav.shape[-1] // cfg.hop]


# -- generator ----------------------------------------------------------------------------------


class ResBlock(nn.Module):
    """Residual dilated convolutions (HiFi-GAN ResBlock2-like) with leaky ReLU."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2) for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, 0.1))
        return x


class Upsample(nn.Module):
    """One learned upsampling step by ``factor``: transposed convolution or nearest repeat + convolution."""

    def __init__(self, cin: int, cout: int, factor: int, mode: str) -> None:
        super().__init__()
        self.factor, self.mode = factor, mode
        if mode == "transposed":
            self.conv: nn.Module = nn.ConvTranspose1d(
                cin, cout, 2 * factor, stride=factor, padding=factor // 2 + factor % 2, output_padding=factor % 2
            )
        elif mode == "nearest":
            self.conv = nn.Conv1d(cin, cout, 2 * factor + 1, padding=factor)
        else:
            raise ValueError(f"unknown upsampling mode {mode!r} (transposed or nearest)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            x = F.interpolate(x, scale_factor=self.factor, mode="nearest")
        return self.conv(x)[..., : x.shape[-1] * (1 if self.mode == "nearest" else self.factor)]


def f0_track(wav: np.ndarray, sr: int, *, hop: int = 80) -> np.ndarray:
    """Per-sample F0 in Hz (0 where unvoiced): YIN every ``hop`` samples, voiced where loud and in range."""
    from forensics.train.vocoders import _yin_f0

    x = np.asarray(wav, dtype=np.float32)
    f0, voiced, _ = _yin_f0(np.pad(x, (0, 1024)), sr, hop)
    f0 = np.where(voiced, f0, 0.0)
    frame_centres = np.arange(f0.size) * hop + 512
    return np.interp(np.arange(x.size), frame_centres, f0).astype(np.float32) * (
        np.interp(np.arange(x.size), frame_centres, voiced.astype(float)) > 0.5
    )


def harmonic_source(f0: torch.Tensor, sr: int, generator: torch.Generator) -> torch.Tensor:
    """NSF excitation ``(B, N)``: a sine at F0 (amplitude 0.1) plus weak noise where voiced, noise elsewhere."""
    voiced = (f0 > 0).float()
    phase = 2 * torch.pi * torch.cumsum(f0 / sr, dim=1) + 2 * torch.pi * torch.rand(f0.shape[0], 1, generator=generator)
    noise = torch.randn(f0.shape, generator=generator)
    return 0.1 * torch.sin(phase) * voiced + noise * (0.003 * voiced + 0.033 * (1 - voiced))


class Stage(nn.Module):
    """Leaky ReLU, upsampling by ``factor``, (the excitation downsampled to this rate), residual block."""

    def __init__(self, cin: int, cout: int, factor: int, remaining: int, cfg: VocoderConfig) -> None:
        super().__init__()
        self.up = Upsample(cin, cout, factor, cfg.upsample_mode)
        self.res = ResBlock(cout, cfg.res_kernel, cfg.dilations)
        self.src: nn.Module | None = None
        if cfg.source:  # a strided convolution brings the sample-rate excitation down to this stage's rate
            k = 2 * remaining if remaining > 1 else 1
            self.src = nn.Conv1d(1, cout, k, stride=remaining, padding=(remaining + 1) // 2 if k > 1 else 0)

    def forward(self, x: torch.Tensor, source: torch.Tensor | None) -> torch.Tensor:
        x = self.up(F.leaky_relu(x, 0.1))
        if self.src is not None and source is not None:
            x = x + self.src(source.unsqueeze(1))[..., : x.shape[-1]]
        return self.res(x)


class Generator(nn.Module):
    """Log-mel ``(B, n_mels, T)`` -> waveform ``(B, T * hop)``; ``cfg.source`` adds an excitation ``(B, T * hop)``."""

    def __init__(self, cfg: VocoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c, remaining = cfg.channels, cfg.hop
        self.pre = nn.Conv1d(cfg.n_mels, c, 7, padding=3)
        self.stages = nn.ModuleList()
        for f in cfg.upsample:
            remaining //= f
            self.stages.append(Stage(c, max(c // 2, 8), f, remaining, cfg))
            c = max(c // 2, 8)
        self.post = nn.Sequential(nn.LeakyReLU(0.1), nn.Conv1d(c, 1, 7, padding=3), nn.Tanh())

    def forward(self, mel: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.source and source is None:
            raise ValueError("this vocoder needs an excitation (harmonic_source)")
        x = self.pre(mel)
        for stage in self.stages:
            x = stage(x, source)
        return self.post(x).squeeze(1)


# -- losses -------------------------------------------------------------------------------------


def stft_loss(fake: torch.Tensor, real: torch.Tensor, resolutions: Sequence[tuple[int, int, int]]) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + L1 log magnitude, averaged over resolutions."""
    total = fake.new_zeros(())
    for n_fft, hop, win in resolutions:
        w = torch.hann_window(win)
        mf = torch.stft(fake, n_fft, hop, win, w, return_complex=True).abs().clamp(min=1e-7)
        mr = torch.stft(real, n_fft, hop, win, w, return_complex=True).abs().clamp(min=1e-7)
        sc = torch.linalg.norm(mr - mf) / torch.linalg.norm(mr).clamp(min=1e-7)
        total = total + sc + F.l1_loss(torch.log(mf), torch.log(mr))
    return total / len(resolutions)


def vocoder_loss(fake: torch.Tensor, real: torch.Tensor, cfg: VocoderConfig, basis: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss + L1 between log-mels of output and target."""
    return stft_loss(fake, real, STFT_RESOLUTIONS) + F.l1_loss(log_mel(fake, cfg, basis), log_mel(real, cfg, basis))


# -- training and synthesis -----------------------------------------------------------------------


class Discriminator(nn.Module):
    """Tiny MelGAN-style multi-scale discriminator: the waveform at 1x, 1/2x and 1/4x rate.

    ``forward`` returns, per scale, the list of intermediate feature maps (the last is the score map).
    """

    def __init__(self, scales: int = 3, channels: int = 16) -> None:
        super().__init__()
        c = channels

        def block() -> nn.ModuleList:
            return nn.ModuleList([
                nn.Conv1d(1, c, 15, padding=7),
                nn.Conv1d(c, 2 * c, 41, stride=4, padding=20, groups=4),
                nn.Conv1d(2 * c, 4 * c, 41, stride=4, padding=20, groups=8),
                nn.Conv1d(4 * c, 4 * c, 5, padding=2),
                nn.Conv1d(4 * c, 1, 3, padding=1),
            ])  # fmt: skip

        self.blocks = nn.ModuleList(block() for _ in range(scales))

    def forward(self, wav: torch.Tensor) -> list[list[torch.Tensor]]:
        x, out = wav.unsqueeze(1), []
        for i, convs in enumerate(self.blocks):
            if i:
                x = F.avg_pool1d(x, 4, stride=2, padding=1, count_include_pad=False)
            h, feats = x, []
            for j, conv in enumerate(convs):
                h = conv(h)
                if j < len(convs) - 1:
                    h = F.leaky_relu(h, 0.2)
                feats.append(h)
            out.append(feats)
        return out


def discriminator_loss(disc: Discriminator, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """LSGAN discriminator loss (real -> 1, generated -> 0, over every scale)."""
    d_fake, d_real = disc(fake.detach()), disc(real)
    return sum(torch.mean((r[-1] - 1) ** 2) + torch.mean(f[-1] ** 2) for f, r in zip(d_fake, d_real, strict=True))


def generator_adversarial_loss(disc: Discriminator, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """LSGAN generator loss plus 2 x the feature-matching L1 (mean over scales)."""
    g_fake = disc(fake)
    with torch.no_grad():
        d_real = disc(real)
    adv = sum(torch.mean((f[-1] - 1) ** 2) for f in g_fake)
    pairs = [(a, b) for f, r in zip(g_fake, d_real, strict=True) for a, b in zip(f[:-1], r[:-1], strict=True)]
    return adv + 2 * sum(F.l1_loss(a, b) for a, b in pairs) / len(g_fake)


def random_segments(
    audio: np.ndarray, n: int, length: int, rng: np.random.Generator
) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` random segments of ``length`` samples (each scaled to a random level) and their starts."""
    starts = rng.integers(0, audio.size - length, n)
    x = np.stack([audio[s : s + length] for s in starts]).astype(np.float32)
    peak = np.abs(x).max(axis=1, keepdims=True) + 1e-6
    return torch.from_numpy(x / peak * rng.uniform(0.3, 0.95, (n, 1)).astype(np.float32)), starts


def _generate(model: Generator, wav: torch.Tensor, f0: torch.Tensor | None, basis: torch.Tensor,
              generator: torch.Generator) -> torch.Tensor:  # fmt: skip
    mel = log_mel(wav, model.cfg, basis)
    source = harmonic_source(f0, model.cfg.sample_rate, generator) if model.cfg.source else None
    return model(mel, source)


def train_vocoder(
    audio: np.ndarray,
    cfg: VocoderConfig,
    *,
    steps: int,
    batch: int = 4,
    segment: int = 8192,
    lr: float = 2e-3,
    state: dict[str, Any] | None = None,
    f0: np.ndarray | None = None,
    max_seconds: float = float("inf"),
) -> dict[str, Any]:
    """Train (or resume from ``state``) a generator on real speech ``audio`` (1-D, at ``cfg.sample_rate``).

    ``f0`` is :func:`f0_track` of ``audio`` (computed here when a source vocoder needs it and it is
    not given). From ``cfg.adversarial_from`` on, a :class:`Discriminator` trains with it. Returns a
    resumable state ``{"config", "model", "opt", "step", "losses"}`` (plus ``"disc"``, ``"opt_d"``
    once adversarial); stops at ``steps`` or after ``max_seconds``.
    """
    torch.manual_seed(cfg.seed)
    model = Generator(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.8, 0.99))
    step, losses = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, losses = int(state["step"]), list(state["losses"])
    if cfg.source and f0 is None:
        f0 = f0_track(audio, cfg.sample_rate)
    disc, opt_d = Discriminator(), None
    if cfg.adversarial_from is not None:
        opt_d = torch.optim.AdamW(disc.parameters(), lr=lr, betas=(0.8, 0.99))
        if state is not None and "disc" in state:
            disc.load_state_dict(state["disc"])
            opt_d.load_state_dict(state["opt_d"])
    basis = mel_basis(cfg)
    rng = np.random.default_rng(cfg.seed * 100003 + step)
    gen = torch.Generator().manual_seed(cfg.seed * 100003 + step)
    segment = segment // cfg.hop * cfg.hop
    t0 = time.time()
    model.train()
    while step < steps and time.time() - t0 < max_seconds:
        real, starts = random_segments(audio, batch, segment, rng)
        f0_seg = torch.from_numpy(np.stack([f0[s : s + segment] for s in starts])) if cfg.source else None
        fake = _generate(model, real, f0_seg, basis, gen)
        loss = vocoder_loss(fake, real, cfg, basis)
        if opt_d is not None and step >= cfg.adversarial_from:
            opt_d.zero_grad()
            discriminator_loss(disc, fake, real).backward()
            opt_d.step()
            loss = loss + generator_adversarial_loss(disc, fake, real)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        step += 1
        losses.append(loss.item())
    out = {"config": cfg.to_dict(), "model": model.state_dict(), "opt": opt.state_dict(), "step": step,
           "losses": losses}  # fmt: skip
    if opt_d is not None and step > cfg.adversarial_from:
        out |= {"disc": disc.state_dict(), "opt_d": opt_d.state_dict()}
    return out


def load_generator(state: dict[str, Any]) -> Generator:
    """The generator of a :func:`train_vocoder` state, in eval mode."""
    model = Generator(VocoderConfig.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def synthesize(wav: np.ndarray, model: Generator, *, chunk_s: float = 20.0, seed: int = 0) -> np.ndarray:
    """Copy-synthesis: ``wav`` (1-D float at the vocoder's rate) -> log-mel -> generator, same length and RMS.

    The input is first scaled to a peak of 0.9 (the level range the generator was trained on). Long
    signals are processed in chunks of ``chunk_s`` seconds (whole mel frames) and concatenated.
    ``seed`` draws the excitation noise of source vocoders.
    """
    from forensics.train.vocoders import _match

    cfg = model.cfg
    basis = mel_basis(cfg)
    gen = torch.Generator().manual_seed(seed)
    ref = np.asarray(wav, dtype=np.float32)
    x = ref * np.float32(0.9 / (np.abs(ref).max() + 1e-9))
    n = math.ceil(x.size / cfg.hop) * cfg.hop
    padded = torch.from_numpy(np.pad(x, (0, n - x.size)))
    f0 = torch.from_numpy(np.pad(f0_track(x, cfg.sample_rate), (0, n - x.size))) if cfg.source else None
    step = max(1, int(chunk_s * cfg.sample_rate) // cfg.hop) * cfg.hop
    out = []
    with torch.inference_mode():
        for i in range(0, n, step):
            size = min(step, n - i)
            lo = i if size >= cfg.n_fft else max(0, i - cfg.n_fft)  # reflect padding needs a little context
            f0_seg = f0[None, lo : i + size] if f0 is not None else None
            out.append(_generate(model, padded[None, lo : i + size], f0_seg, basis, gen)[0, -size:])
    return _match(torch.cat(out).numpy(), ref)
