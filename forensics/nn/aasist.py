"""Raw-waveform spoofing detectors with graph attention: AASIST / AASIST-L and RawGAT-ST.

Written from the papers (Jung et al., "AASIST: Audio Anti-Spoofing using Integrated Spectro-Temporal
Graph Attention Networks", ICASSP 2022; Tak et al., "End-to-end spectro-temporal graph attention networks
for speaker verification anti-spoofing and speech deepfake detection", ASVspoof 2021 workshop) and from
the tensor names and shapes of their published checkpoints, whose key layout the modules keep so those
checkpoints load with ``strict=True``. Both read ``(B, samples)`` of 16 kHz audio and return the two
class logits ``(B, 2)`` of their training (index 1 = bona fide).

Two details of the published networks that the weights depend on are reproduced as they are: the
residual blocks convolve their *input* (their first BatchNorm is trained but its output unused), and
RawGAT-ST's first block adds its one-channel input to its 32 channels by broadcasting.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def mel_sinc_filters(n_filters: int, kernel: int, sample_rate: int = 16000, n_fft: int = 512) -> torch.Tensor:
    """Fixed band-pass sinc filters ``(n_filters, 1, kernel | 1)`` with Hamming windows, band edges equally
    spaced on the mel scale between 0 Hz and Nyquist (the edges of an ``n_fft`` spectrum)."""
    kernel += 1 - kernel % 2  # odd: a symmetric filter
    mel = 2595 * np.log10(1 + np.linspace(0, sample_rate // 2, n_fft // 2 + 1) / 700)
    edges = 700 * (10 ** (np.linspace(mel.min(), mel.max(), n_filters + 1) / 2595) - 1)
    t = np.arange(kernel) - (kernel - 1) / 2

    def lowpass(f: float) -> np.ndarray:
        return 2 * f / sample_rate * np.sinc(2 * f * t / sample_rate)

    bank = np.stack([(lowpass(hi) - lowpass(lo)) * np.hamming(kernel) for lo, hi in itertools.pairwise(edges)])
    return torch.tensor(bank, dtype=torch.float32).unsqueeze(1)


class SincFrontEnd(nn.Module):
    """Fixed sinc filter bank -> |.| -> 3 x 3 max-pool over (filter, time) -> ``first_bn`` -> SELU: ``(B, 1, F, T)``.

    The filters are computed, not stored (a non-persistent buffer); ``first_bn`` belongs to the network
    (its published key has no prefix), so it is passed in.
    """

    def __init__(self, n_filters: int, kernel: int) -> None:
        super().__init__()
        self.register_buffer("filters", mel_sinc_filters(n_filters, kernel), persistent=False)

    def forward(self, wav: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
        x = F.conv1d(wav.unsqueeze(1), self.filters).unsqueeze(1)
        return F.selu(bn(F.max_pool2d(x.abs(), 3)))


class ResBlock(nn.Module):
    """Residual block over (frequency, time): two (2, 3) convolutions, then a (1, 3) max-pool in time.

    As published, ``conv1`` reads the block input directly (``bn1`` exists but its output is unused).
    RawGAT-ST's blocks also hold ``conv_1`` (one input channel), which is the first block's ``conv1``.
    """

    def __init__(self, cin: int, cout: int, *, first: bool = False, rawgat: bool = False) -> None:
        super().__init__()
        self.first, self.rawgat = first, rawgat
        if not first:
            self.bn1 = nn.BatchNorm2d(cin)
        if not (first and rawgat):
            self.conv1 = nn.Conv2d(cin, cout, (2, 3), padding=(1, 1))
        if rawgat:
            self.conv_1 = nn.Conv2d(1, cout, (2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, (2, 3), padding=(0, 1))
        # RawGAT-ST's first block has 1 -> 32 channels and no projection: the input is broadcast onto them
        self.conv_downsample = nn.Conv2d(cin, cout, (1, 3), padding=(0, 1)) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_1(x) if self.first and self.rawgat else self.conv1(x)
        out = self.conv2(F.selu(self.bn2(out)))
        skip = self.conv_downsample(x) if self.conv_downsample is not None else x
        return F.max_pool2d(out + skip, (1, 3))


def encoder(channels: list[tuple[int, int]], *, rawgat: bool = False) -> nn.Sequential:
    """Residual blocks, each wrapped in its own ``nn.Sequential`` (the published ``encoder.N.0`` keys)."""
    return nn.Sequential(
        *(nn.Sequential(ResBlock(a, b, first=i == 0, rawgat=rawgat)) for i, (a, b) in enumerate(channels))
    )


def _bn_nodes(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    return bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class GraphAttention(nn.Module):
    """Graph attention over fully connected nodes ``(B, N, D)``: attention from the element-wise products
    of node pairs, softmax over neighbours (divided by ``temperature``), then BatchNorm and SELU."""

    def __init__(self, din: int, dout: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.att_proj = nn.Linear(din, dout)
        self.att_weight = nn.Parameter(torch.zeros(dout, 1))
        self.proj_with_att = nn.Linear(din, dout)
        self.proj_without_att = nn.Linear(din, dout)
        self.bn = nn.BatchNorm1d(dout)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pairs = x.unsqueeze(2) * x.unsqueeze(1)  # B, N, N, D
        att = torch.softmax(torch.tanh(self.att_proj(pairs)) @ self.att_weight / self.temperature, dim=2)
        out = self.proj_with_att(att.squeeze(-1) @ x) + self.proj_without_att(x)
        return F.selu(_bn_nodes(self.bn, out))


class HeteroGraphAttention(nn.Module):
    """AASIST's heterogeneous attention over temporal and spectral nodes plus a master node.

    Node pairs of the same type use their own attention vector, pairs across types share one; the
    master node attends to every node.
    """

    def __init__(self, din: int, dout: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.proj_type1 = nn.Linear(din, din)
        self.proj_type2 = nn.Linear(din, din)
        self.att_proj = nn.Linear(din, dout)
        self.att_projM = nn.Linear(din, dout)
        for name in ("att_weight11", "att_weight22", "att_weight12", "att_weightM"):
            setattr(self, name, nn.Parameter(torch.zeros(dout, 1)))
        self.proj_with_att = nn.Linear(din, dout)
        self.proj_without_att = nn.Linear(din, dout)
        self.proj_with_attM = nn.Linear(din, dout)
        self.proj_without_attM = nn.Linear(din, dout)
        self.bn = nn.BatchNorm1d(dout)
        self.temperature = temperature

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, master: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n1 = x1.shape[1]
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)
        h = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))  # B, N, N, dout
        is1 = (torch.arange(x.shape[1], device=x.device) < n1).view(-1, 1)
        both1, both2 = (is1 & is1.T).unsqueeze(-1), (~is1 & ~is1.T).unsqueeze(-1)
        cross = h @ self.att_weight12
        block = torch.where(both1, h @ self.att_weight11, torch.where(both2, h @ self.att_weight22, cross))
        att = torch.softmax(block / self.temperature, dim=2)
        att_m = torch.softmax(torch.tanh(self.att_projM(x * master)) @ self.att_weightM / self.temperature, dim=1)
        master = self.proj_with_attM(att_m.transpose(1, 2) @ x) + self.proj_without_attM(master)
        out = F.selu(_bn_nodes(self.bn, self.proj_with_att(att.squeeze(-1) @ x) + self.proj_without_att(x)))
        return out[:, :n1], out[:, n1:], master


class GraphPool(nn.Module):
    """Keep the ``ratio`` best-scored nodes (at least ``minimum``), each scaled by its sigmoid score."""

    def __init__(self, ratio: float, dim: int, minimum: int = 1) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 1)
        self.ratio, self.minimum = ratio, minimum

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        scores = torch.sigmoid(self.proj(h))  # B, N, 1
        k = max(int(h.shape[1] * self.ratio), self.minimum)
        idx = scores.topk(k, dim=1).indices.expand(-1, -1, h.shape[2])
        return torch.gather(h * scores, 1, idx)


class AASIST(nn.Module):
    """AASIST (``gat_dims`` 64, 32) and AASIST-L (24, 32): a sinc front end, six residual blocks, spectral
    and temporal graph attention, two heterogeneous graph branches with master nodes, a 2-class head."""

    def __init__(
        self,
        filts: tuple[int, ...] = (70, 32, 32, 64, 64),
        gat_dims: tuple[int, int] = (64, 32),
        pool_ratios: tuple[float, ...] = (0.5, 0.7, 0.5),
        temperatures: tuple[float, ...] = (2.0, 2.0, 100.0),
        first_conv: int = 128,
        n_freq: int = 23,
    ) -> None:
        super().__init__()
        n_filters, c1, c2, c3, c4 = filts
        g0, g1 = gat_dims
        self.front = SincFrontEnd(n_filters, first_conv)
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder = encoder([(1, c1), (c1, c2), (c2, c3), (c3, c4), (c4, c4), (c4, c4)])
        self.pos_S = nn.Parameter(torch.zeros(1, n_freq, c4))
        self.master1 = nn.Parameter(torch.zeros(1, 1, g0))
        self.master2 = nn.Parameter(torch.zeros(1, 1, g0))
        self.GAT_layer_S = GraphAttention(c4, g0, temperatures[0])
        self.GAT_layer_T = GraphAttention(c4, g0, temperatures[1])
        self.HtrgGAT_layer_ST11 = HeteroGraphAttention(g0, g1, temperatures[2])
        self.HtrgGAT_layer_ST12 = HeteroGraphAttention(g1, g1, temperatures[2])
        self.HtrgGAT_layer_ST21 = HeteroGraphAttention(g0, g1, temperatures[2])
        self.HtrgGAT_layer_ST22 = HeteroGraphAttention(g1, g1, temperatures[2])
        self.pool_S = GraphPool(pool_ratios[0], g0)
        self.pool_T = GraphPool(pool_ratios[1], g0)
        for name in ("pool_hS1", "pool_hT1", "pool_hS2", "pool_hT2"):
            setattr(self, name, GraphPool(pool_ratios[2], g1))
        self.out_layer = nn.Linear(5 * g1, 2)

    def _branch(self, t: torch.Tensor, s: torch.Tensor, master: torch.Tensor, i: int) -> tuple[torch.Tensor, ...]:
        first, second = getattr(self, f"HtrgGAT_layer_ST{i}1"), getattr(self, f"HtrgGAT_layer_ST{i}2")
        t, s, master = first(t, s, master)
        t, s = getattr(self, f"pool_hT{i}")(t), getattr(self, f"pool_hS{i}")(s)
        dt, ds, dm = second(t, s, master)
        return t + dt, s + ds, master + dm

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav``: ``(B, samples)`` -> ``(B, 2)`` logits (spoof, bona fide)."""
        return self.out_layer(self.embed(wav))

    def embed(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav``: ``(B, samples)`` -> ``(B, 5 * gat_dims[1])``: the graph-attention readout the 2-class head reads
        (max and mean of the temporal and spectral nodes, and the master node)."""
        e = self.encoder(self.front(wav, self.first_bn)).abs()  # B, C, F, T
        s = self.pool_S(self.GAT_layer_S(e.amax(dim=3).transpose(1, 2) + self.pos_S))
        t = self.pool_T(self.GAT_layer_T(e.amax(dim=2).transpose(1, 2)))
        t1, s1, m1 = self._branch(t, s, self.master1, 1)
        t2, s2, m2 = self._branch(t, s, self.master2, 2)
        t, s, m = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        return torch.cat([t.abs().amax(1), t.mean(1), s.abs().amax(1), s.mean(1), m.squeeze(1)], dim=1)


class RawGATST(nn.Module):
    """RawGAT-ST with multiplicative fusion: separate spectral and temporal encoders and graph attention,
    graphs projected to 12 nodes each, fused by element-wise product, a third graph layer, a 2-class head."""

    def __init__(self, n_filters: int = 70, first_conv: int = 128, n_freq: int = 23, n_time: int = 29) -> None:
        super().__init__()
        blocks = [(32, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)]
        self.front = SincFrontEnd(n_filters, first_conv)
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder1 = encoder(blocks, rawgat=True)
        self.encoder2 = encoder(blocks, rawgat=True)
        self.GAT_layer1 = GraphAttention(64, 32)
        self.GAT_layer2 = GraphAttention(64, 32)
        self.GAT_layer3 = GraphAttention(32, 16)
        self.pool1 = GraphPool(0.64, 32, minimum=2)
        self.pool2 = GraphPool(0.81, 32, minimum=2)
        self.pool3 = GraphPool(0.64, 16, minimum=2)
        self.proj1 = nn.Linear(max(int(n_freq * 0.64), 2), 12)
        self.proj2 = nn.Linear(max(int(n_time * 0.81), 2), 12)
        self.proj = nn.Linear(16, 1)
        self.proj_node = nn.Linear(math.floor(12 * 0.64), 2)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav``: ``(B, samples)`` -> ``(B, 2)`` logits (spoof, bona fide)."""
        x = self.front(wav, self.first_bn)
        spectral = self.pool1(self.GAT_layer1(self.encoder1(x).abs().amax(dim=3).transpose(1, 2)))
        temporal = self.pool2(self.GAT_layer2(self.encoder2(x).abs().amax(dim=2).transpose(1, 2)))
        fused = self.proj1(spectral.transpose(1, 2)) * self.proj2(temporal.transpose(1, 2))  # B, 32, 12 nodes
        return self.proj_node(self.proj(self.pool3(self.GAT_layer3(fused.transpose(1, 2)))).squeeze(-1))
