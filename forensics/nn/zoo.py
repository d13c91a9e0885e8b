"""Foreign networks that published checkpoints need, each wrapped to return one logit per input.

Our own architectures are built by their detectors. The networks here are the ones
researchers already have weights for: any torchvision classifier with a one- or two-logit head
(CNNDetection's ResNet-50 is ``torchvision.resnet50`` with ``num_classes=1``), the
EfficientNets of the ``efficientnet_pytorch`` package (Self-Blended Images' EfficientNet-B4),
rebuilt faithfully on torchvision's modules (TensorFlow "same" padding, BatchNorm eps 1e-3), and the
published detectors we rebuilt from their papers (:func:`published_networks`: AASIST, RawGAT-ST,
Tiny-LaDeDa, Meso-4, MesoInception-4).
Nothing is downloaded: every network is built with ``weights=None``. Which published
checkpoints exist and how they become weights is :mod:`forensics.weights`' business.
"""

from __future__ import annotations

import math
import warnings
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

    def __init__(self, net: nn.Module, fake_index: int | None = None, real_output: bool = False) -> None:
        super().__init__()
        self.net = net
        self.fake_index = fake_index
        self.sign = -1.0 if real_output else 1.0  # a one-output head whose sigmoid is P(real), as MesoNet's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if isinstance(out, tuple):  # inception/googlenet outputs in training mode
            out = out[0]
        if out.shape[1] == 1:
            return self.sign * out[:, 0]
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


class LogisticEnsemble(nn.Module):
    """``intercept + coef . z``: the ensemble logit from its members' calibrated file logits ``z`` ``(B, k)``."""

    def __init__(self, members: int) -> None:
        super().__init__()
        self.register_buffer("coef", torch.zeros(members))
        self.register_buffer("intercept", torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.coef + self.intercept


def published_networks() -> dict[str, Any]:
    """Builders of the published detectors rebuilt in :mod:`forensics.nn` (AASIST, RawGAT-ST, Tiny-LaDeDa, MesoNet)."""
    from forensics.nn.aasist import AASIST, RawGATST
    from forensics.nn.ladeda import TinyLaDeDa
    from forensics.nn.mesonet import MesoNet

    return {
        "aasist": AASIST,
        "rawgat_st": RawGATST,
        "tiny_ladeda": TinyLaDeDa,
        "meso4": lambda **kw: MesoNet(inception=False, **kw),
        "mesoinception4": lambda **kw: MesoNet(inception=True, **kw),
    }


def build_network(architecture: dict[str, Any]) -> nn.Module | None:
    """Build a foreign network named by a card's ``architecture``, or None for our own.

    Names: ``torchvision.<classifier>`` (args ``num_classes`` 1 or 2, ``fake_index`` for 2, any
    other arg goes to the torchvision builder, e.g. ``aux_logits``) and
    ``efficientnet_pytorch.efficientnet_b<N>`` (also ``image_size``), and :func:`published_networks`
    (their own args, plus ``real_output`` for a one-output head meaning real), and ``ensemble``
    (:class:`LogisticEnsemble` over the card's ``members``). The module returns one
    logit per input (higher = more fake) and loads the weights' tensors with
    ``load_state_dict(strict=True)``. Detectors call this first in ``build()`` and build their
    own architecture when it returns None.
    """
    name = str(architecture.get("name", ""))
    args = dict(architecture.get("args", {}))
    if name == "ensemble":  # members (weights names) are loaded by the detector; this is the combination
        return LogisticEnsemble(len(architecture["members"])).eval()
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
    elif name in (builders := published_networks()):
        extra = {k: v for k, v in args.items() if k not in ("num_classes", "fake_index", "real_output")}
        net = builders[name](**extra)
    else:
        return None
    real_output = bool(args.get("real_output", False))
    return OneLogit(net, fake_index if num_classes == 2 else None, real_output).eval()
