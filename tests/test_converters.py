"""Converters of published checkpoints: published key layouts in, one faithful logit per input out."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch.nn import functional as F

from forensics import weights as W
from forensics.errors import WeightsError
from forensics.nn import zoo
from forensics.weights import published
from forensics.weights.convert import CONVERTERS, convert_state_dict, efficientnet_pytorch_key_map, suggest_converter

pytestmark = pytest.mark.usefixtures("one_thread")


def randomise(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights and BatchNorm statistics large enough that every layer moves the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, v in net.state_dict().items():
            if not v.is_floating_point():
                continue
            if k.endswith("running_var"):
                v.copy_(torch.rand(v.shape, generator=g) * 1.5 + 0.5)
            elif k.endswith("running_mean") or (v.ndim == 1 and not k.endswith("weight")):
                v.copy_(torch.randn(v.shape, generator=g) * 0.1)
            elif v.ndim == 1:
                v.copy_(torch.rand(v.shape, generator=g) * 0.4 + 0.8)
            else:
                v.copy_(torch.randn(v.shape, generator=g) * 1.2 / math.sqrt(v[0].numel()))
    return net.eval()


def imported(obj: Any, converter: str, detector: str = "gan_fingerprint") -> tuple[torch.nn.Module, dict[str, Any]]:
    tensors, arch = convert_state_dict(obj, detector=detector, converter=converter)
    net = zoo.build_network(arch)
    assert net is not None
    net.load_state_dict(tensors, strict=True)
    return net, arch


@pytest.fixture(scope="module")
def cnndetection_pth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A checkpoint in CNNDetection's published layout (``{"model": resnet50 state dict}``) and its network."""
    ref = randomise(torchvision.models.resnet50(num_classes=1), 0)
    ckpt = tmp_path_factory.mktemp("cnndetection") / "blur_jpg_prob0.5.pth"
    torch.save({"model": ref.state_dict(), "total_steps": 1000}, ckpt)
    return ckpt, ref


def test_cnndetection_checkpoint_scores_like_the_original(cnndetection_pth: tuple[Path, torch.nn.Module]) -> None:
    ckpt, ref = cnndetection_pth
    net, arch = imported(torch.load(ckpt, weights_only=True), "cnndetection")
    assert arch["name"] == "torchvision.resnet50" and arch["args"] == {"num_classes": 1}
    assert arch["preprocessing"]["mean"] == zoo.IMAGENET_MEAN and arch["preprocessing"]["input_size"] == 224
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        want, got = ref(x)[:, 0], net(x)
    assert got.shape == (2,) and torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got[0], got[1])  # the inputs matter: not a constant network
    assert set(net.state_dict()) == set(ref.state_dict())  # published key names kept, no wrapper prefix


@pytest.mark.parametrize(
    ("name", "outputs", "kwargs"),
    [("resnet18", 2, {}), ("efficientnet_b0", 1, {}), ("googlenet", 1, {"aux_logits": False, "init_weights": False})],
)
def test_torchvision_classifier_is_inferred_from_keys_and_shapes(name: str, outputs: int, kwargs: dict) -> None:
    ref = randomise(torchvision.models.get_model(name, num_classes=outputs, **kwargs), 1)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}
    net, arch = imported(wrapped, "torchvision")
    assert arch["name"] == f"torchvision.{name}" and arch["args"]["num_classes"] == outputs
    assert arch["args"].get("aux_logits", True) == kwargs.get("aux_logits", True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = ref(x)
        got = net(x)
    want = out[:, 1] - out[:, 0] if outputs == 2 else out[:, 0]  # 2 logits: log-odds of softmax[:, fake=1]
    assert got.shape == (2,) and torch.allclose(got, want, atol=1e-5)


# -- efficientnet_pytorch / Self-Blended Images --------------------------------------------------

B_STAGES = ((1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1))  # (repeats, stride) of EfficientNet-B0


def reference_efficientnet(sd: dict[str, torch.Tensor], x: torch.Tensor, depth: float, image_size: int) -> torch.Tensor:
    """efficientnet_pytorch's forward written from its source, on its own key names (independent of torchvision)."""

    def conv(name: str, h: torch.Tensor, stride: int, size: int, groups: int = 1) -> torch.Tensor:
        w = sd[f"{name}.weight"]
        k = w.shape[-1]
        total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)  # static TF "SAME" for `size`
        h = F.pad(h, (total // 2, total - total // 2, total // 2, total - total // 2))
        return F.conv2d(h, w, sd.get(f"{name}.bias"), stride, 0, 1, groups)

    def bn(name: str, h: torch.Tensor) -> torch.Tensor:
        p = [sd[f"{name}.{s}"] for s in ("running_mean", "running_var", "weight", "bias")]
        return F.batch_norm(h, *p, training=False, eps=1e-3)

    size = image_size
    h = F.silu(bn("_bn0", conv("_conv_stem", x, 2, size)))
    size = math.ceil(size / 2)
    i = 0
    for repeats, stage_stride in B_STAGES:
        for r in range(math.ceil(repeats * depth)):
            b, stride = f"_blocks.{i}", stage_stride if r == 0 else 1
            inp = h
            if f"{b}._expand_conv.weight" in sd:
                h = F.silu(bn(f"{b}._bn0", conv(f"{b}._expand_conv", h, 1, size)))
            h = F.silu(bn(f"{b}._bn1", conv(f"{b}._depthwise_conv", h, stride, size, groups=h.shape[1])))
            size = math.ceil(size / stride)
            s = F.adaptive_avg_pool2d(h, 1)
            s = conv(f"{b}._se_expand", F.silu(conv(f"{b}._se_reduce", s, 1, 1)), 1, 1)
            h = bn(f"{b}._bn2", conv(f"{b}._project_conv", torch.sigmoid(s) * h, 1, size))
            if stride == 1 and inp.shape == h.shape:
                h = h + inp
            i += 1
    h = F.silu(bn("_bn1", conv("_conv_head", h, 1, size)))
    return F.linear(F.adaptive_avg_pool2d(h, 1).flatten(1), sd["_fc.weight"], sd["_fc.bias"])


def sbi_checkpoint(seed: int, outputs: int = 2) -> dict[str, Any]:
    """An SBI ``weights/*.tar`` layout: {"model": {"net._conv_stem.weight": ...}, "optimizer": ...}."""
    ours = randomise(zoo.efficientnet_pytorch("efficientnet_b4", outputs), seed).state_dict()
    theirs = {f"net.{ep}": ours[tv] for ep, tv in efficientnet_pytorch_key_map("efficientnet_b4", outputs).items()}
    return {"model": theirs, "optimizer": {"state": {}, "param_groups": []}, "epoch": 99}


def test_sbi_efficientnet_b4_matches_the_published_network() -> None:
    ckpt = sbi_checkpoint(2)
    assert "net._blocks.31._project_conv.weight" in ckpt["model"]  # B4: 32 blocks
    assert tuple(ckpt["model"]["net._fc.weight"].shape) == (2, 1792)
    net, arch = imported(ckpt, "sbi_efficientnet_b4", detector="face_swap")
    assert arch["name"] == "efficientnet_pytorch.efficientnet_b4"
    assert arch["args"] == {"num_classes": 2, "image_size": 380, "fake_index": 1}
    pre = arch["preprocessing"]
    assert pre["input_size"] == 380 and pre["mean"] == [0.0] * 3 and pre["std"] == [1.0] * 3
    sd = {k[4:]: v for k, v in ckpt["model"].items()}
    x = torch.rand(1, 3, 128, 128)  # any input gets the padding computed for 380, as in efficientnet_pytorch
    with torch.no_grad():
        out = reference_efficientnet(sd, x, 1.8, 380)
        got = net(x)
        tensors, _ = convert_state_dict(ckpt, detector="face_swap", converter="sbi_efficientnet_b4")
        plain = torchvision.models.efficientnet_b4(num_classes=2).eval()
        plain.load_state_dict(tensors)  # same keys, but symmetric padding and BatchNorm eps 1e-5
        naive = plain(x)
    assert torch.allclose(got, out[:, 1] - out[:, 0], atol=1e-4)
    assert not torch.allclose(naive[:, 1] - naive[:, 0], got, atol=1e-3)  # the faithful details matter


def test_efficientnet_pytorch_variant_is_inferred() -> None:
    ours = randomise(zoo.efficientnet_pytorch("efficientnet_b0", 1), 3).state_dict()
    sd = {ep: ours[tv] for ep, tv in efficientnet_pytorch_key_map("efficientnet_b0", 1).items()}
    net, arch = imported(sd, "efficientnet_pytorch")
    assert arch["name"] == "efficientnet_pytorch.efficientnet_b0" and arch["args"]["num_classes"] == 1
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(net(x), reference_efficientnet(sd, x, 1.0, 224)[:, 0], atol=1e-4)
    for variant in ("efficientnet_b5", "efficientnet_b7"):  # torchvision builds these with its own norm_layer
        with torch.device("meta"):
            big = zoo.build_network({"name": f"efficientnet_pytorch.{variant}", "args": {"num_classes": 1}})
        assert big is not None and {m.eps for m in big.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}


def test_against_efficientnet_pytorch_package_when_installed() -> None:
    ep = pytest.importorskip("efficientnet_pytorch")
    ref = randomise(ep.EfficientNet.from_name("efficientnet-b4", num_classes=2, image_size=380), 4)
    net, _ = imported({"model": {f"net.{k}": v for k, v in ref.state_dict().items()}}, "sbi_efficientnet_b4")
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        out = ref(x)
        assert torch.allclose(net(x), out[:, 1] - out[:, 0], atol=1e-4)


# -- refusals ----------------------------------------------------------------------------------


def test_wrong_keys_and_shapes_are_refused_with_the_reason() -> None:
    sd = torchvision.models.resnet50(num_classes=1).state_dict()
    bad_shape = dict(sd, **{"layer1.0.conv1.weight": torch.zeros(3, 3, 1, 1)})
    with pytest.raises(WeightsError, match=r"layer1\.0\.conv1\.weight has shape \[3, 3, 1, 1\], expected \[64, 64"):
        convert_state_dict(bad_shape, detector="gan_fingerprint", converter="cnndetection")
    renamed = {k.replace("layer4", "stage4"): v for k, v in sd.items()}
    with pytest.raises(WeightsError, match=r"missing \d+ keys \(layer4.*unexpected \d+ keys \(stage4"):
        convert_state_dict(renamed, detector="gan_fingerprint", converter="cnndetection")
    imagenet = torchvision.models.resnet18().state_dict()
    with pytest.raises(WeightsError, match="1000 outputs"):
        convert_state_dict(imagenet, detector="gan_fingerprint", converter="torchvision")
    with pytest.raises(WeightsError, match="fc has 1 output"):
        convert_state_dict(
            torchvision.models.resnet50(num_classes=2).state_dict(), detector="x", converter="cnndetection"
        )
    with pytest.raises(WeightsError, match="no torchvision classifier"):
        convert_state_dict(
            {"fc.weight": torch.zeros(1, 7), "fc.bias": torch.zeros(1)}, detector="x", converter="torchvision"
        )
    with pytest.raises(WeightsError, match=r"net\._fc\.weight must be \[2, 1792\]"):
        convert_state_dict(
            {"model": {"net._fc.weight": torch.zeros(1000, 1792)}}, detector="x", converter="sbi_efficientnet_b4"
        )
    with pytest.raises(WeightsError, match=r"EfficientNet-B0\.\.B7"):
        convert_state_dict(
            {"_blocks.0.x": torch.zeros(1), "_fc.weight": torch.zeros(1, 8)},
            detector="x",
            converter="efficientnet_pytorch",
        )
    with pytest.raises(WeightsError, match=r"must be \[2, 1792\]"):
        convert_state_dict({"other.weight": torch.zeros(2, 3)}, detector="x", converter="sbi_efficientnet_b4")
    with pytest.raises(WeightsError, match="unknown converter 'nope'"):
        convert_state_dict(sd, detector="x", converter="nope")


def test_build_network_contract() -> None:
    assert zoo.build_network({"name": "ResidualFingerprintNet", "args": {}}) is None  # our own: the detector builds it
    with pytest.raises(WeightsError, match="1- or 2-logit"):
        zoo.build_network({"name": "torchvision.resnet18", "args": {"num_classes": 1000}})
    with pytest.raises(WeightsError, match="fake_index"):
        zoo.build_network({"name": "torchvision.resnet18", "args": {"num_classes": 2}})
    with pytest.raises(WeightsError, match="no classifier 'resnet_9000'"):
        zoo.build_network({"name": "torchvision.resnet_9000", "args": {"num_classes": 1}})
    net = zoo.build_network({"name": "torchvision.resnet18", "args": {"num_classes": 2, "fake_index": 0}})
    assert net is not None and not net.training
    with torch.no_grad():
        out = net.net(x := torch.rand(1, 3, 32, 32))
        assert torch.allclose(net(x), out[:, 0] - out[:, 1])


# -- the CLI and the registry --------------------------------------------------------------------


def test_cli_import_writes_safetensors_and_card(
    weights_home: Path, cnndetection_pth: tuple[Path, torch.nn.Module]
) -> None:
    from forensics.cli import main

    ckpt, ref = cnndetection_pth
    argv = ["weights", "import", str(ckpt), "--detector", "gan_fingerprint", "--tag", "cnndet"]
    assert main([*argv, "--converter", "cnndetection"]) == 0
    lw = W.load_weights("gan_fingerprint.cnndet")
    assert lw.path.parent == W.user_weights_dir() and lw.path.suffix == ".safetensors"
    assert lw.card["source_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert lw.card["architecture"]["name"] == "torchvision.resnet50"
    net = zoo.build_network(lw.card["architecture"])
    assert net is not None
    net.load_state_dict(lw.tensors, strict=True)
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(net(x), ref(x)[:, 0], atol=1e-5)


def test_published_entries_register_only_with_a_sha256(weights_home: Path) -> None:
    assert all(p.converter in CONVERTERS and p.name.count(".") >= 1 for p in published.PUBLISHED.values())
    assert all(p.sha256 is None or len(p.sha256) == 64 for p in published.PUBLISHED.values())
    try:
        assert published.register_published() == [p.name for p in published.PUBLISHED.values() if p.sha256]
        name = "gan_fingerprint.cnndetection_blur_jpg_prob0.5"
        assert name in published.register_published({name: "ab" * 32})
        entry = W.registry()[name]
        assert entry.source == "remote" and entry.sha256 == "ab" * 32 and entry.card["converter"] == "cnndetection"
        with pytest.raises(WeightsError, match="no published checkpoint named"):
            published.register_published({"face_swap.nope": "ab" * 32})
        with pytest.raises(WeightsError, match="64-hex"):
            published.register_published({name: "abc"})
    finally:
        W._REMOTE.clear()


def test_fake_index_option_and_converter_hints(cnndetection_pth: tuple[Path, torch.nn.Module]) -> None:
    ref = randomise(torchvision.models.resnet18(num_classes=2), 6)
    net, arch = imported(ref.state_dict(), "torchvision:fake_index=0")
    assert arch["args"]["fake_index"] == 0
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        out = ref(x)
        assert torch.allclose(net(x), out[:, 0] - out[:, 1], atol=1e-5)
    with pytest.raises(WeightsError, match="unknown converter option"):
        convert_state_dict(ref.state_dict(), detector="x", converter="torchvision:fake=0")
    sd = torch.load(cnndetection_pth[0], weights_only=True)["model"]
    with pytest.raises(WeightsError, match="2-logit head only"):
        convert_state_dict(sd, detector="x", converter="cnndetection:fake_index=0")
    assert suggest_converter(sd) == "cnndetection"
    assert suggest_converter(ref.state_dict()) == "torchvision"
    assert suggest_converter(sbi_checkpoint(7)["model"]) == "sbi_efficientnet_b4"
    assert suggest_converter({"conv.weight": torch.zeros(8, 3, 3, 3)}) is None


def test_native_import_of_a_published_checkpoint_says_which_converter(
    weights_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiny_detector import TinyDetector

    from forensics import detectors

    monkeypatch.setitem(detectors._REGISTRY, "tiny_test", TinyDetector)  # a detector with no weights anywhere
    ckpt = tmp_path / "sbi.tar"
    torch.save(sbi_checkpoint(8), ckpt)
    with pytest.raises(WeightsError, match="try --converter sbi_efficientnet_b4"):
        W.import_checkpoint(ckpt, detector="tiny_test", tag="sbi")


def test_import_published_checks_the_sha256_and_fills_the_card(
    weights_home: Path, cnndetection_pth: tuple[Path, torch.nn.Module]
) -> None:
    from forensics.errors import ChecksumMismatchError

    ckpt = cnndetection_pth[0]
    name = "gan_fingerprint.cnndetection_blur_jpg_prob0.1"
    with pytest.raises(ChecksumMismatchError, match="expected 000000000000"):
        published.import_published(name, ckpt, sha256="0" * 64)
    published.import_published(name, ckpt, sha256=hashlib.sha256(ckpt.read_bytes()).hexdigest())
    lw = W.load_weights(name)
    assert "CC BY-NC-SA" in lw.card["licence"] and "ProGAN" in lw.card["training_data"]
    assert lw.card["source_url"] == published.PUBLISHED[name].url
    with pytest.raises(WeightsError, match="no published checkpoint"):
        published.import_published("gan_fingerprint.nope", ckpt)
