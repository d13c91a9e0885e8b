"""Foreign networks that published checkpoints need, each wrapped to return one logit per input.

Our own architectures are built by their detectors. The networks here are the ones
researchers already have weights for: any torchvision classifier with a one- or two-logit head
(CNNDetection's ResNet-50 is ``torchvision.resnet50`` with ``num_classes=1``) and the
EfficientNets of the ``efficientnet_pytorch`` package (Self-Blended Images' EfficientNet-B4),
rebuilt faithfully on torchvision's modules (TensorFlow "same" padding, BatchNorm eps 1e-3).
Nothing is downloaded: every network is built with ``weights=None``.

:data:`PUBLISHED` lists the published checkpoints we know of; :func:`import_published` converts
a downloaded one with its publisher's card facts, and :func:`register_published` puts those
with a verifiable sha256 in the weights registry.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from forensics.errors import WeightsError

TORCHVISION = "torchvision."
EFFICIENTNET_PYTORCH = "efficientnet_pytorch."
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# efficientnet_pytorch's compound scaling: variant -> (width, depth, native resolution)
EFFICIENTNET_PARAMS: dict[str, tuple[float, float, int]] = {
    "efficientnet_b0": (1.0, 1.0, 224),
    "efficientnet_b1": (1.0, 1.1, 240),
    "efficientnet_b2": (1.1, 1.2, 260),
    "efficientnet_b3": (1.2, 1.4, 300),
    "efficientnet_b4": (1.4, 1.8, 380),
    "efficientnet_b5": (1.6, 2.2, 456),
    "efficientnet_b6": (1.8, 2.6, 528),
    "efficientnet_b7": (2.0, 3.1, 600),
}


class OneLogit(nn.Module):
    """Wrap a classifier so it returns one logit per input, higher = more fake.

    A one-output head is returned as is; for two outputs the logit is
    ``out[:, fake_index] - out[:, 1 - fake_index]`` (the log-odds of its softmax). The state
    dict is the wrapped network's own (no prefix), so published key names are kept.
    """

    def __init__(self, net: nn.Module, fake_index: int | None = None) -> None:
        super().__init__()
        self.net = net
        self.fake_index = fake_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if isinstance(out, tuple):  # inception/googlenet outputs in training mode
            out = out[0]
        if out.shape[1] == 1:
            return out[:, 0]
        if out.shape[1] != 2 or self.fake_index not in (0, 1):
            raise WeightsError(f"a {out.shape[1]}-output head needs 2 outputs and fake_index 0 or 1")
        return out[:, self.fake_index] - out[:, 1 - self.fake_index]

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        return self.net.load_state_dict(state_dict, strict=strict, assign=assign)


def torchvision_classifiers() -> list[str]:
    """Names of torchvision's image classifiers (``resnet50``, ``efficientnet_b4``, ...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_classifier(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """A torchvision classifier with random weights (never downloads); ``kwargs`` go to its builder."""
    import torchvision

    if name not in torchvision_classifiers():
        raise WeightsError(f"torchvision has no classifier {name!r}")
    with warnings.catch_warnings():  # notices about default random init: the weights are loaded after
        warnings.simplefilter("ignore", FutureWarning)
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one axis of ``size`` pixels."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class StaticSameConv2d(nn.Conv2d):
    """A strided convolution with fixed TensorFlow "SAME" padding for an ``image_size`` input.

    The same computation as ``efficientnet_pytorch.utils.Conv2dStaticSamePadding``.
    """

    def __init__(self, conv: nn.Conv2d, image_size: int) -> None:
        k, s = conv.kernel_size[0], conv.stride[0]
        super().__init__(
            conv.in_channels, conv.out_channels, k, s, padding=0, groups=conv.groups, bias=conv.bias is not None
        )
        before, after = same_pads(image_size, k, s)
        self.pads = (before, after, before, after)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))


def efficientnet_pytorch(variant: str, num_classes: int, image_size: int | None = None) -> nn.Module:
    """``efficientnet_pytorch``'s EfficientNet on torchvision modules (state dict in torchvision's layout).

    The differences from torchvision's own EfficientNet that change outputs are reproduced:
    BatchNorm eps 1e-3, and stride-2 convolutions padded TensorFlow-style for their input size
    given an ``image_size`` input (default: the variant's native resolution), as
    ``EfficientNet.from_pretrained`` builds them. Stride-1 "SAME" padding equals torchvision's.
    """
    if variant not in EFFICIENTNET_PARAMS:
        raise WeightsError(f"unknown efficientnet_pytorch variant {variant!r}")
    import torchvision

    size = int(image_size or EFFICIENTNET_PARAMS[variant][2])
    net = torchvision.models.get_model(variant, weights=None, num_classes=num_classes)
    for parent in list(net.modules()):  # module order: stem, then the stride-2 stages in order
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                child.eps, child.momentum = 1e-3, 0.01
            elif isinstance(child, nn.Conv2d) and child.stride[0] == 2:
                setattr(parent, name, StaticSameConv2d(child, size))
                size = math.ceil(size / 2)
    return net


def build_network(architecture: dict[str, Any]) -> nn.Module | None:
    """Build a foreign network named by a card's ``architecture``, or None for our own.

    Names: ``torchvision.<classifier>`` (args ``num_classes`` 1 or 2, ``fake_index`` for 2, any
    other arg goes to the torchvision builder, e.g. ``aux_logits``) and
    ``efficientnet_pytorch.efficientnet_b<N>`` (also ``image_size``). The module returns one
    logit per input (higher = more fake) and loads the weights' tensors with
    ``load_state_dict(strict=True)``. Detectors call this first in ``build()`` and build their
    own architecture when it returns None.
    """
    name = str(architecture.get("name", ""))
    args = dict(architecture.get("args", {}))
    num_classes = int(args.get("num_classes", 1))
    fake_index = args.get("fake_index")
    if num_classes not in (1, 2):
        raise WeightsError(f"{name}: a detector needs a 1- or 2-logit head, not {num_classes}")
    if num_classes == 2 and fake_index not in (0, 1):
        raise WeightsError(f"{name}: a 2-logit head needs args.fake_index 0 or 1 (which output means fake)")
    if name.startswith(TORCHVISION):
        extra = {k: v for k, v in args.items() if k not in ("num_classes", "fake_index")}
        net = torchvision_classifier(name[len(TORCHVISION) :], num_classes, **extra)
    elif name.startswith(EFFICIENTNET_PYTORCH):
        net = efficientnet_pytorch(name[len(EFFICIENTNET_PYTORCH) :], num_classes, args.get("image_size"))
    else:
        return None
    return OneLogit(net, fake_index if num_classes == 2 else None).eval()


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A checkpoint published by its authors, and how to turn it into our weights."""

    name: str  # the weights name it becomes: detector.tag
    url: str
    converter: str
    sha256: str | None  # full sha256 of the published file, when it can be verified
    card: dict[str, Any] = field(default_factory=dict)


_CNNDETECTION = {
    "paper": "Wang et al., CNN-generated images are surprisingly easy to spot... for now, CVPR 2020",
    "code": "https://github.com/PeterWang512/CNNDetection (weights/download_weights.sh)",
    "training_data": "ProGAN fakes and LSUN reals, 20 object classes; blur + JPEG augmentation",
    "licence": "CC BY-NC-SA 4.0 (CNNDetection LICENSE.txt): non-commercial",
}
_SBI = {
    "paper": "Shiohara & Yamasaki, Detecting Deepfakes with Self-Blended Images, CVPR 2022",
    "code": "https://github.com/mapooon/SelfBlendedImages (README, Pretrained model)",
    "training_data": "self-blended images from FaceForensics++ real videos",
    "licence": "Yamasaki Lab licence: academic / non-profit non-commercial research use only",
}

# The files as their authors link them (CNNDetection's download_weights.sh, SBI's README: Google
# Drive pages, fetched with gdown). No author publishes a sha256, so none is recorded here: a
# user who has downloaded a file supplies its ``sha256sum`` to register_published(), or imports
# the file directly with ``forensics weights import FILE --detector D --tag T --converter C``.
PUBLISHED: dict[str, PublishedCheckpoint] = {
    p.name: p
    for p in (
        PublishedCheckpoint(
            "gan_fingerprint.cnndetection_blur_jpg_prob0.5",
            "https://www.dropbox.com/s/2g2jagq2jn1fd0i/blur_jpg_prob0.5.pth?dl=0",
            "cnndetection",
            None,
            _CNNDETECTION,
        ),
        PublishedCheckpoint(
            "gan_fingerprint.cnndetection_blur_jpg_prob0.1",
            "https://www.dropbox.com/s/h7tkpcgiwuftb6g/blur_jpg_prob0.1.pth?dl=0",
            "cnndetection",
            None,
            _CNNDETECTION,
        ),
        PublishedCheckpoint(
            "face_swap.sbi_ffraw",
            "https://drive.google.com/file/d/12sLyqBp0VFwdpA-oZLdIOkOTkz_ZnIhV/view?usp=sharing",
            "sbi_efficientnet_b4",
            None,
            dict(_SBI, training_data=_SBI["training_data"] + " (raw)"),
        ),
        PublishedCheckpoint(
            "face_swap.sbi_ffc23",
            "https://drive.google.com/file/d/1X0-NYT8KPursLZZdxduRQju6E52hauV0/view?usp=sharing",
            "sbi_efficientnet_b4",
            None,
            dict(_SBI, training_data=_SBI["training_data"] + " (c23)"),
        ),
    )
}


def register_published(sha256: dict[str, str] | None = None) -> list[str]:
    """Register every published checkpoint whose full sha256 is known; returns their names.

    ``sha256`` maps weights names to the full sha256 of the file the user trusts (the registry
    refuses remote entries without one). The card records the source file's sha256 under
    ``source_sha256`` and the converter that turns the pickle into safetensors under ``converter``.
    """
    from forensics.weights import register_remote

    known = sha256 or {}
    unknown = sorted(set(known) - set(PUBLISHED))
    if unknown:
        raise WeightsError(f"no published checkpoint named {unknown[0]!r}; known: {', '.join(sorted(PUBLISHED))}")
    done = []
    for p in PUBLISHED.values():
        digest = known.get(p.name) or p.sha256
        if not digest:
            continue
        card = dict(p.card, converter=p.converter, source_url=p.url, source_sha256=digest.lower())
        register_remote(p.name, url=p.url, sha256=digest, card=card)
        done.append(p.name)
    return done


def import_published(name: str, path: str | os.PathLike[str], *, sha256: str | None = None) -> Path:
    """Convert a downloaded published checkpoint into weights ``name``, its card carrying the publisher's facts.

    The file must have the full ``sha256`` given, or the entry's when known; with neither, its
    sha256 is only recorded (``source_sha256``), as ``forensics weights import`` does.
    """
    from forensics.errors import ChecksumMismatchError
    from forensics.weights import import_checkpoint, sha256_file

    if name not in PUBLISHED:
        raise WeightsError(f"no published checkpoint named {name!r}; known: {', '.join(sorted(PUBLISHED))}")
    entry = PUBLISHED[name]
    want = (sha256 or entry.sha256 or "").lower()
    digest = sha256_file(Path(path))
    if want and digest != want:
        raise ChecksumMismatchError(f"{path} has sha256 {digest[:12]}…, expected {want[:12]}… for {name}")
    detector, tag = name.split(".", 1)
    card = dict(entry.card, source_url=entry.url)
    return import_checkpoint(path, detector=detector, tag=tag, converter=entry.converter, card=card)
