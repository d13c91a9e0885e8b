"""Converters: published or foreign state dicts -> our tensor names plus architecture record.

:func:`import_checkpoint` reads a pickled checkpoint as tensors only, converts it and saves
safetensors plus card in the user's weights folder.

A converter takes a plain ``{name: tensor}`` dict and returns ``(tensors, architecture)``.
Converters of foreign checkpoints (``cnndetection``, ``torchvision``, ``efficientnet_pytorch``,
``sbi_efficientnet_b4``, ``aasist``, ``rawgat_st``, ``tiny_ladeda``, ``mesonet``) check every key and
shape against the network :func:`forensics.nn.zoo.build_network` builds from ``architecture``, and put
the preprocessing the publisher used in ``architecture["preprocessing"]``. :func:`read_checkpoint`
reads torch files (zip or legacy pickle) as tensors only and Keras HDF5 weight files through h5py.
"""

from __future__ import annotations

import functools
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from forensics.errors import UnsafeWeightsError, WeightsError, WeightsNotFoundError
from forensics.nn import zoo
from forensics.weights import load_weights, save_weights, sha256_file, user_weights_dir

Converter = Callable[[dict[str, Any], str], tuple[dict[str, Any], dict[str, Any]]]
CONVERTERS: dict[str, Converter] = {}


def converter(name: str) -> Callable[[Converter], Converter]:
    """Register a converter under ``name``."""

    def deco(fn: Converter) -> Converter:
        CONVERTERS[name] = fn
        return fn

    return deco


def unwrap_state_dict(obj: Any) -> dict[str, Any]:
    """The tensor dict inside common checkpoint layouts (``state_dict``/``model`` keys, ``module.`` prefixes)."""
    import torch

    for key in ("state_dict", "model", "net", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise WeightsError("checkpoint holds no state dict")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        for prefix in ("module.", "model."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    if not out:
        raise WeightsError("checkpoint holds no tensors")
    return out


@converter("native")
def native(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A checkpoint of one of our own architectures: keys must match the detector's shipped weights."""
    from forensics.detectors import get_detector_class

    spec = get_detector_class(detector).spec
    try:
        ref = load_weights(f"{detector}.{spec.default_weights}")
    except WeightsNotFoundError as exc:
        hint = _hint(state)
        raise WeightsError(f"{detector} has no shipped weights to check a native checkpoint against{hint}") from exc
    missing = sorted(set(ref.tensors) - set(state))
    unexpected = sorted(set(state) - set(ref.tensors))
    if missing or unexpected:
        raise WeightsError(
            f"checkpoint does not match {detector}'s architecture: missing {missing[:5]}, unexpected {unexpected[:5]}"
            + _hint(state)
        )
    for k, v in ref.tensors.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise WeightsError(f"{k}: shape {tuple(state[k].shape)} != expected {tuple(v.shape)}")
    return state, ref.card["architecture"]


def suggest_converter(state: dict[str, Any]) -> str | None:
    """The converter whose published layout a state dict has, judged from its key names and head shape."""
    bare = {k.removeprefix("net."): v for k, v in state.items()}
    if "_conv_stem.weight" in bare and "_fc.weight" in bare:
        return "sbi_efficientnet_b4" if tuple(bare["_fc.weight"].shape) == (2, 1792) else "efficientnet_pytorch"
    fc = state.get("fc.weight")
    if fc is not None and "layer4.2.conv3.weight" in state and tuple(fc.shape) == (1, 2048):
        return "cnndetection"
    if any(v.ndim == 2 for v in state.values()) and any(_candidates(_top_level(state))):
        return "torchvision"
    return None


def _hint(state: dict[str, Any]) -> str:
    name = suggest_converter(state)
    return f"; it looks like a published checkpoint: try --converter {name}" if name else ""


BN_BUFFER = "num_batches_tracked"


def expected_shapes(architecture: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state dict of a foreign network, built on the meta device (no memory, no init cost)."""
    return dict(_shapes(str(architecture.get("name")), json.dumps(architecture.get("args", {}), sort_keys=True)))


@functools.cache
def _shapes(name: str, args: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    import torch

    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's notices about default init of some classifiers
        net = zoo.build_network({"name": name, "args": json.loads(args)})
    if net is None:
        raise WeightsError(f"{name!r} is not a foreign architecture")
    return tuple((k, tuple(v.shape)) for k, v in net.state_dict().items())


def mismatches(state: dict[str, Any], expected: dict[str, tuple[int, ...]]) -> Iterator[str]:
    """Human-readable differences between a state dict and the expected key -> shape layout."""
    missing = sorted(k for k in set(expected) - set(state) if not k.endswith(BN_BUFFER))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        yield f"missing {len(missing)} keys ({', '.join(missing[:3])}...)"
    if unexpected:
        yield f"unexpected {len(unexpected)} keys ({', '.join(unexpected[:3])}...)"
    for k in sorted(set(state) & set(expected)):
        if tuple(state[k].shape) != expected[k]:
            yield f"{k} has shape {list(state[k].shape)}, expected {list(expected[k])}"


def checked(state: dict[str, Any], architecture: dict[str, Any], what: str) -> dict[str, Any]:
    """``state`` as float tensors after checking every key and shape against ``architecture``.

    BatchNorm ``num_batches_tracked`` counters absent from older checkpoints are filled with zero.
    """
    import torch

    expected = expected_shapes(architecture)
    problems = list(mismatches(state, expected))
    if problems:
        raise WeightsError(f"not a {what} checkpoint: " + "; ".join(problems[:4]))
    out = {}
    for k, shape in expected.items():
        v = state.get(k)
        if v is None:  # a num_batches_tracked counter
            v = torch.zeros(shape, dtype=torch.long)
        out[k] = v.float() if v.is_floating_point() else v
    return out


def head_outputs(state: dict[str, Any], key: str, what: str) -> int:
    """Number of outputs of the classification head ``key`` (1 or 2, else WeightsError)."""
    if key not in state:
        raise WeightsError(f"not a {what} checkpoint: no head weight {key!r}")
    n = int(state[key].shape[0])
    if n not in (1, 2):
        raise WeightsError(f"{what}: head {key} has {n} outputs; a detector needs 1 (fake logit) or 2 (real, fake)")
    return n


def detector_preprocessing(detector: str, **published: Any) -> dict[str, Any]:
    """The detector's default preprocessing (from its shipped weights, when present) with the publisher's values.

    ``input_size`` is also written under the key the detector uses for it (``size`` or ``crop``).
    """
    from forensics.detectors import get_detector_class

    try:
        spec = get_detector_class(detector).spec
        base = dict(load_weights(f"{detector}.{spec.default_weights}").card.get("preprocessing", {}))
    except Exception:  # unknown detector or no shipped weights: the publisher's values alone
        base = {}
    out = dict(base, **published)
    for key in ("size", "crop"):
        if key in base and "input_size" in published:
            out[key] = published["input_size"]
    return out


def arch(name: str, preprocessing: dict[str, Any], **args: Any) -> dict[str, Any]:
    """An architecture record: what :func:`forensics.nn.zoo.build_network` reads, plus the publisher's preprocessing."""
    return {"name": name, "args": args, "preprocessing": preprocessing}


@converter("cnndetection")
def cnndetection(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """CNNDetection (Wang et al. 2020): torchvision ResNet-50 with a one-logit ``fc`` (sigmoid = P(fake))."""
    n = head_outputs(state, "fc.weight", "CNNDetection ResNet-50")
    if n != 1:
        raise WeightsError("not a CNNDetection checkpoint: its fc has 1 output (use --converter torchvision for 2)")
    pre = detector_preprocessing(
        detector,
        input_size=224,
        mean=zoo.IMAGENET_MEAN,
        std=zoo.IMAGENET_STD,
        note="CNNDetection scores whole images (no resize) normalised with ImageNet mean/std; trained on 224 crops",
    )
    a = arch("torchvision.resnet50", pre, num_classes=1)
    return checked(state, a, "CNNDetection ResNet-50"), a


def _head_key(state: dict[str, Any]) -> str:
    """The last 2-D weight: the classification head of a torchvision classifier."""
    keys = [k for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if not keys:
        raise WeightsError("not a torchvision classifier checkpoint: no linear layer")
    return keys[-1]


def _top_level(keys: Any) -> frozenset[str]:
    return frozenset(k.split(".", 1)[0] for k in keys)


@functools.cache
def _families() -> tuple[tuple[frozenset[str], tuple[str, ...]], ...]:
    """(top-level modules, member names) of each torchvision classifier family (builder module).

    One member per family is built to read its layout, so a search costs a few dozen meta builds.
    """
    import torchvision

    families: dict[str, list[str]] = {}
    for name in zoo.torchvision_classifiers():
        families.setdefault(torchvision.models.get_model_builder(name).__module__, []).append(name)
    out = []
    for members in families.values():
        try:
            layout = _top_level(expected_shapes(arch(f"torchvision.{members[0]}", {}, num_classes=1)))
        except Exception:  # regnets cannot be built on the meta device: not candidates
            continue
        out.append((layout, tuple(members)))
    return tuple(out)


AUX_HEADS = frozenset({"AuxLogits", "aux1", "aux2"})  # inception_v3's and googlenet's training-only heads


def _candidates(top: frozenset[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(classifier, extra builder args) of the torchvision families with the top-level modules ``top``.

    Checkpoints saved without inception's or googlenet's auxiliary heads match with ``aux_logits=False``.
    """
    for layout, members in _families():
        if layout == top:
            yield from ((name, {}) for name in members)
        elif layout - AUX_HEADS == top and layout != top:
            yield from ((name, {"aux_logits": False}) for name in members)


@converter("torchvision")
def torchvision_any(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Any torchvision classifier with a 1- or 2-logit head; the architecture is inferred from keys and shapes.

    A 2-logit head is read as (real, fake): ``fake_index`` 1, the ImageFolder order of ``0_real``/``1_fake``.
    """
    head = _head_key(state)
    n = head_outputs(state, head, "torchvision classifier")
    for name, extra in _candidates(_top_level(state)):
        a = arch(f"torchvision.{name}", {}, num_classes=n, **extra, **({"fake_index": 1} if n == 2 else {}))
        if not any(mismatches(state, expected_shapes(a))):
            a["preprocessing"] = detector_preprocessing(
                detector, input_size=224, mean=zoo.IMAGENET_MEAN, std=zoo.IMAGENET_STD
            )
            return checked(state, a, name), a
    raise WeightsError(
        f"no torchvision classifier has this checkpoint's keys and shapes ({len(state)} tensors, head {head}"
        f" {list(state[head].shape)})"
    )


@functools.cache
def efficientnet_pytorch_key_map(variant: str, num_classes: int = 2) -> dict[str, str]:
    """``efficientnet_pytorch`` state-dict key -> key of our torchvision-layout rebuild of ``variant``."""
    import torch

    with torch.device("meta"):
        net = zoo.efficientnet_pytorch(variant, num_classes)
    names: dict[str, str] = {}
    bn = ("weight", "bias", "running_mean", "running_var", BN_BUFFER)

    def conv_bn(conv: str, norm: str, tv: str) -> None:
        names[f"{conv}.weight"] = f"{tv}.0.weight"
        names.update({f"{norm}.{b}": f"{tv}.1.{b}" for b in bn})

    feats = net.features
    last = len(feats) - 1
    conv_bn("_conv_stem", "_bn0", "features.0")
    i = 0
    for s in range(1, last):
        for j, block in enumerate(feats[s]):
            ep, tv = f"_blocks.{i}", f"features.{s}.{j}.block"
            d = len(block.block) - 3  # 1 with an expansion conv, 0 without
            if d:
                conv_bn(f"{ep}._expand_conv", f"{ep}._bn0", f"{tv}.0")
            conv_bn(f"{ep}._depthwise_conv", f"{ep}._bn1", f"{tv}.{d}")
            for a, b in (("_se_reduce", "fc1"), ("_se_expand", "fc2")):
                names.update({f"{ep}.{a}.{p}": f"{tv}.{d + 1}.{b}.{p}" for p in ("weight", "bias")})
            conv_bn(f"{ep}._project_conv", f"{ep}._bn2", f"{tv}.{d + 2}")
            i += 1
    conv_bn("_conv_head", "_bn1", f"features.{last}")
    names["_fc.weight"], names["_fc.bias"] = "classifier.1.weight", "classifier.1.bias"
    return names


def _efficientnet_variant(state: dict[str, Any]) -> str:
    """The B0-B7 variant whose block count and stem/head widths match an ``efficientnet_pytorch`` state dict."""
    blocks = {k.split(".")[1] for k in state if k.startswith("_blocks.")}
    ends = ("_conv_stem.weight", "_conv_head.weight")
    for variant, (_, depth, _) in zoo.EFFICIENTNET_PARAMS.items():
        count = sum(math.ceil(r * depth) for r in (1, 2, 2, 3, 3, 4, 1))
        if count != len(blocks) or not all(k in state for k in ends):
            continue
        key_map = efficientnet_pytorch_key_map(variant)
        shapes = expected_shapes(arch(f"{zoo.EFFICIENTNET_PYTORCH}{variant}", {}, num_classes=2, fake_index=1))
        if all(tuple(state[k].shape) == shapes[key_map[k]] for k in ends):
            return variant
    raise WeightsError(
        f"not an efficientnet_pytorch EfficientNet-B0..B7 checkpoint ({len(blocks)} blocks,"
        f" stem {list(state['_conv_stem.weight'].shape) if '_conv_stem.weight' in state else 'missing'})"
    )


def _efficientnet(
    state: dict[str, Any], detector: str, variant: str | None, **published: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    state = {k.removeprefix("net."): v for k, v in state.items()}
    variant = variant or _efficientnet_variant(state)
    what = f"efficientnet_pytorch {variant}"
    n = head_outputs(state, "_fc.weight", what)
    key_map = efficientnet_pytorch_key_map(variant, n)
    unknown = sorted(set(state) - set(key_map))
    if unknown:
        raise WeightsError(f"not an {what} checkpoint: unexpected {len(unknown)} keys ({', '.join(unknown[:3])}...)")
    size = zoo.EFFICIENTNET_PARAMS[variant][2]
    pre = detector_preprocessing(
        detector, **{"input_size": size, "mean": zoo.IMAGENET_MEAN, "std": zoo.IMAGENET_STD, **published}
    )
    extra = {"fake_index": 1} if n == 2 else {}
    a = arch(f"{zoo.EFFICIENTNET_PYTORCH}{variant}", pre, num_classes=n, image_size=size, **extra)
    return checked({key_map[k]: v for k, v in state.items()}, a, what), a


@converter("efficientnet_pytorch")
def efficientnet_any(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ``efficientnet_pytorch`` EfficientNet-B0..B7 (``_conv_stem``, ``_blocks.N``, ``_fc``) with 1 or 2 outputs.

    Keys may carry a ``net.`` prefix; a 2-logit head is read as (real, fake).
    """
    return _efficientnet(state, detector, None)


@converter("sbi_efficientnet_b4")
def sbi_efficientnet_b4(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Self-Blended Images (Shiohara & Yamasaki 2022): ``net.``-prefixed efficientnet_pytorch B4, ``_fc`` [2, 1792].

    SBI feeds 380 x 380 RGB face crops scaled to [0, 1] (no mean/std) and reads softmax[:, 1] as P(fake).
    """
    head = state.get("net._fc.weight", state.get("_fc.weight"))
    if head is None or tuple(head.shape) != (2, 1792):
        raise WeightsError("not an SBI EfficientNet-B4 checkpoint: its head net._fc.weight must be [2, 1792]")
    return _efficientnet(
        state,
        detector,
        "efficientnet_b4",
        mean=[0.0, 0.0, 0.0],
        std=[1.0, 1.0, 1.0],
        margin=0.125,
        note="SBI crops the RetinaFace box enlarged by 1/8 of its side on each side, unrotated, resized to 380 x 380",
    )


# -- published detectors rebuilt in forensics.nn ----------------------------------------------------

AASIST_SAMPLES = 64600  # 4.04 s at 16 kHz: the input length AASIST and RawGAT-ST were trained on


def raw_speech_preprocessing(**published: Any) -> dict[str, Any]:
    """synthetic_speech preprocessing for a network that reads the waveform itself: 16 kHz samples as decoded
    (no loudness normalisation), ``AASIST_SAMPLES`` per window; the voice-activity test and window hop are the
    detector's (from its shipped weights)."""
    base = detector_preprocessing("synthetic_speech")
    keep = ("hop_s", "min_speech_s", "win_length", "hop_length", "n_fft", "vad", "short_audio", "last_window")
    out = {k: base[k] for k in keep if k in base}
    return out | {"features": "raw", "sample_rate": 16000, "window_s": AASIST_SAMPLES / 16000} | published


def _two_class_spoof_head(state: dict[str, Any], key: str, what: str) -> None:
    if head_outputs(state, key, what) != 2:
        raise WeightsError(f"not a {what} checkpoint: {key} must have 2 outputs (spoof, bona fide)")


@converter("aasist")
def aasist(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """AASIST / AASIST-L (clovaai, and the ASVspoof 5 baseline): widths read from the tensors; pool ratios
    and temperatures, which no tensor holds, are those of the authors' config for that width."""
    _two_class_spoof_head(state, "out_layer.weight", "AASIST")
    if "master1" not in state or "HtrgGAT_layer_ST11.att_proj.weight" not in state:
        raise WeightsError("not an AASIST checkpoint: no master1 / HtrgGAT_layer_ST11 tensors")
    convs = [state.get(f"encoder.{i}.0.conv1.weight") for i in range(6)]
    if any(c is None for c in convs):
        raise WeightsError("not an AASIST checkpoint: encoder.N.0.conv1 missing")
    filts = [70, *(int(c.shape[0]) for c in convs[:4])]
    gat = [int(state["master1"].shape[-1]), int(state["HtrgGAT_layer_ST11.att_proj.weight"].shape[0])]
    light = gat[0] == 24  # config/AASIST-L.conf; AASIST.conf otherwise
    args = {
        "filts": filts,
        "gat_dims": gat,
        "pool_ratios": [0.4, 0.5, 0.7] if light else [0.5, 0.7, 0.5],
        "temperatures": [2.0, 2.0, 100.0],
        "n_freq": int(state["pos_S"].shape[1]),
        "num_classes": 2,
        "fake_index": 0,
    }
    pre = raw_speech_preprocessing(
        note="AASIST reads 64,600 raw 16 kHz samples (shorter audio tiled); class 1 = bona fide"
    )
    a = arch("aasist", pre, **args)
    return checked(state, a, "AASIST"), a


@converter("rawgat_st")
def rawgat_st(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """RawGAT-ST (EURECOM), the multiplicative-fusion model: 64,600 raw samples, class 1 = bona fide."""
    _two_class_spoof_head(state, "proj_node.weight", "RawGAT-ST")
    pre = raw_speech_preprocessing(
        note="RawGAT-ST reads 64,600 raw 16 kHz samples (shorter audio tiled); class 1 = bona fide"
    )
    a = arch("rawgat_st", pre, num_classes=2, fake_index=0)
    return checked(state, a, "RawGAT-ST"), a


@converter("tiny_ladeda")
def tiny_ladeda(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tiny-LaDeDa: one logit (sigmoid = P(generated)); the ``right_diag`` gradient of the authors' release."""
    if head_outputs(state, "fc.weight", "Tiny-LaDeDa") != 1 or tuple(state["fc.weight"].shape) != (1, 8):
        raise WeightsError("not a Tiny-LaDeDa checkpoint: its head fc.weight must be [1, 8]")
    pre = detector_preprocessing(
        "gan_fingerprint",
        resize=256,
        mean=zoo.IMAGENET_MEAN,
        std=zoo.IMAGENET_STD,
        note="Tiny-LaDeDa's test protocol: the whole image resized to 256 x 256 (bilinear), ImageNet mean/std;"
        " the network scores every local patch and averages the patch logits",
    )
    a = arch("tiny_ladeda", pre, gradient="right_diag")
    return checked(state, a, "Tiny-LaDeDa"), a


def _keras_index(key: str) -> int:
    """The creation number of a Keras layer (``conv2d_12/kernel:0`` -> 12), which orders the layers."""
    return int(key.split("/", 1)[0].rsplit("_", 1)[1])


def _keras_layers(state: dict[str, Any], kind: str) -> list[str]:
    return sorted({k.split("/", 1)[0] for k in state if k.startswith(kind + "_")}, key=_keras_index)


@converter("mesonet")
def mesonet(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """MesoNet's Keras weights (Meso-4: 4 convolutions; MesoInception-4: 16) mapped onto our modules.

    Layers are matched by their creation order; kernels go from Keras' HWIO to OIHW, dense kernels
    are transposed. The published sigmoid is P(real) (``flow_from_directory`` classes ``df``, ``real``).
    """
    convs, bns, dense = (_keras_layers(state, k) for k in ("conv2d", "batch_normalization", "dense"))
    if len(convs) not in (4, 16) or len(bns) != 4 or len(dense) != 2:
        raise WeightsError(
            f"not a MesoNet checkpoint: {len(convs)} conv, {len(bns)} batch-norm, {len(dense)} dense layers"
            " (Meso-4 has 4/4/2, MesoInception-4 16/4/2)"
        )
    inception = len(convs) == 16
    names = [f"convs.{i}" for i in range(4)]
    if inception:
        names = [
            f"convs.{b}.{branch}" for b in (0, 1) for branch in ("b1", "b2.0", "b2.2", "b3.0", "b3.2", "b4.0", "b4.2")
        ]
        names += ["convs.2", "convs.3"]
    out: dict[str, Any] = {}

    def weight(layer: str, name: str) -> Any:
        key = next((k for k in state if k.startswith(layer + "/") and name in k.rsplit("/", 1)[-1]), None)
        if key is None:
            raise WeightsError(f"not a MesoNet checkpoint: {layer} has no {name}")
        return state[key]

    for layer, ours in zip(convs, names, strict=True):
        out[f"{ours}.weight"] = weight(layer, "kernel").permute(3, 2, 0, 1)
        out[f"{ours}.bias"] = weight(layer, "bias")
    for i, layer in enumerate(bns):
        for keras, torch_name in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                                  ("moving_variance", "running_var")):  # fmt: skip
            out[f"bns.{i}.{torch_name}"] = weight(layer, keras)
    for layer, ours in zip(dense, ("dense1", "dense2"), strict=True):
        out[f"{ours}.weight"] = weight(layer, "kernel").T
        out[f"{ours}.bias"] = weight(layer, "bias")
    pre = detector_preprocessing(
        "face_swap",
        size=256,
        margin=0.15,
        mean=[0.0, 0.0, 0.0],
        std=[1.0, 1.0, 1.0],
        note="MesoNet: aligned 256 x 256 RGB face crops scaled to [0, 1] (the authors' crop side is 1.3 x 2.2 x"
        " the larger of the eye and eye-mouth distances, about the face box with a 15 % margin)",
    )
    a = arch("mesoinception4" if inception else "meso4", pre, real_output=True)
    return checked({k: v.contiguous() for k, v in out.items()}, a, "MesoNet"), a


def read_checkpoint(path: str | os.PathLike[str]) -> Any:
    """A checkpoint's contents as tensors only: torch files with ``torch.load(weights_only=True)`` (no code
    runs), Keras HDF5 weight files (recognised by their signature) through h5py as ``{"layer/weight": tensor}``."""
    import torch

    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic == HDF5_MAGIC:
        return _read_keras_hdf5(Path(path))
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnsafeWeightsError(f"cannot load {path} safely as tensors only: {exc}") from exc


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _read_keras_hdf5(path: Path) -> dict[str, Any]:
    import torch

    try:
        import h5py
    except ImportError as exc:  # a declared dependency; only a broken install lacks it
        raise WeightsError("reading Keras HDF5 weights needs h5py: pip install h5py") from exc
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        root = f.get("model_weights", f)
        for layer in root.attrs.get("layer_names", []):
            group = root[layer.decode() if isinstance(layer, bytes) else layer]
            for w in group.attrs.get("weight_names", []):
                name = w.decode() if isinstance(w, bytes) else w
                out[name] = torch.from_numpy(group[name][()].astype("float32"))
    if not out:
        raise WeightsError(f"{path} is an HDF5 file without Keras layer weights")
    return out


def convert_state_dict(
    obj: Any, *, detector: str, converter: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Unwrap a loaded checkpoint and map it with the named converter (default ``native``).

    ``converter`` may carry options after a colon: ``torchvision:fake_index=0`` reads a 2-logit
    head as (fake, real) instead of the default (real, fake).
    """
    name, _, options = (converter or "native").partition(":")
    if name not in CONVERTERS:
        raise WeightsError(f"unknown converter {name!r}; available: {', '.join(sorted(CONVERTERS))}")
    tensors, architecture = CONVERTERS[name](unwrap_state_dict(obj), detector)
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        if key != "fake_index" or value not in ("0", "1"):
            raise WeightsError(f"unknown converter option {option!r}; the one option is fake_index=0 or fake_index=1")
        if architecture.get("args", {}).get("num_classes") != 2:
            raise WeightsError("fake_index applies to a 2-logit head only")
        architecture["args"]["fake_index"] = int(value)
    return tensors, architecture


def import_checkpoint(
    path: str | os.PathLike[str],
    *,
    detector: str,
    tag: str,
    converter: str | None = None,
    card: dict[str, Any] | None = None,
) -> Path:
    """Convert a pickled checkpoint into safetensors plus card in the user's weights folder.

    The file is read by :func:`read_checkpoint`: tensors only, no code runs.
    ``converter`` names a key-mapping in :data:`CONVERTERS` (default ``native``).
    """
    obj = read_checkpoint(path)
    tensors, arch = convert_state_dict(obj, detector=detector, converter=converter)
    arch = dict(arch)
    base = {
        "name": f"{detector}.{tag}",
        "detector": detector,
        "preprocessing": arch.pop("preprocessing", {}),
        "architecture": arch,
        "calibration": {"temperature": 1.0, "bias": 0.0, "threshold": 0.5, "fpr": None, "note": "uncalibrated import"},
        "training_data": f"imported from {Path(path).name}; see its publisher",
        "metrics": {},
        "licence": "as published by the checkpoint's authors",
        "source_sha256": sha256_file(Path(path)),
    }
    base.update(card or {})
    return save_weights(tensors, base, user_weights_dir())
