"""ResNet backbone tests: presets against torchvision's shapes, counts and keys; norms; composition."""

from __future__ import annotations

import math
import re
from typing import Optional

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smmcl.models.dual_encoder import DualEncoder
from smmcl.models.resnet import RESNET_PRESETS, ResNet

from support import count, stage_outputs
from support.imagenet_files import torchvision_resnet_state_dict

# torchvision's resnet{18,34,50,101,152} parameter totals, and its fc head (512 or 2048 -> 1000, with bias).
TORCHVISION_PARAMS = {
    "18": 11_689_512,
    "34": 21_797_672,
    "50": 25_557_032,
    "101": 44_549_160,
    "152": 60_192_808,
}
FC_PARAMS = {"basic": 512 * 1000 + 1000, "bottleneck": 2048 * 1000 + 1000}
# len(torchvision.models.resnet18().state_dict()) and resnet50's: params plus three BN buffers per norm.
TORCHVISION_KEYS = {"18": 122, "50": 320}

# Odd sizes on purpose: every stride-2 op in torchvision's ResNet rounds up, so stride s gives ceil(H / s).
INPUT_SIZES = [(64, 64), (67, 45)]
STRIDES = [4, 8, 16, 32]


def torchvision_to_ours(key: str) -> Optional[str]:
    """Our key for a torchvision key (None for the classifier), by the rule in resnet.py's docstring."""
    if key.startswith("fc."):
        return None
    if key.startswith(("conv1.", "bn1.")):
        return f"stages.0.stem.{key}"
    m = re.fullmatch(r"layer(\d+)\.(\d+)\.(.+)", key)
    assert m is not None, f"unexpected torchvision key {key}"
    return f"stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.{m.group(3)}"


@pytest.fixture(scope="module", params=list(RESNET_PRESETS))
def preset(request):
    """(name, kwargs, model) for each preset; module scope so each model is built once, in eval mode."""
    torch.manual_seed(0)
    kwargs = RESNET_PRESETS[request.param]
    return request.param, kwargs, ResNet(**kwargs).eval()


def test_stage_shapes(preset):
    name, kwargs, model = preset
    expected_channels = [64, 128, 256, 512] if kwargs["block"] == "basic" else [256, 512, 1024, 2048]
    assert model.out_channels == expected_channels
    assert model.in_channels == 3
    assert len(model.stages) == 4
    for h, w in INPUT_SIZES:
        with torch.no_grad():
            outs = model(torch.randn(2, 3, h, w))
        assert [tuple(o.shape) for o in outs] == [
            (2, c, math.ceil(h / s), math.ceil(w / s)) for c, s in zip(expected_channels, STRIDES)
        ], f"ResNet-{name} at {h}x{w}"


def test_parameter_count_matches_torchvision(preset):
    name, kwargs, model = preset
    assert count(model) == TORCHVISION_PARAMS[name] - FC_PARAMS[kwargs["block"]]


def test_synthetic_state_dict_matches_torchvision_counts():
    # Pins the helper itself to torchvision, so the layout test below compares against the real thing.
    for name, kwargs in RESNET_PRESETS.items():
        sd = torchvision_resnet_state_dict(kwargs["depths"], kwargs["block"])
        buffers = ("running_mean", "running_var", "num_batches_tracked")
        params = sum(v.numel() for k, v in sd.items() if not k.endswith(buffers))
        assert params == TORCHVISION_PARAMS[name], f"ResNet-{name}"
        if name in TORCHVISION_KEYS:
            assert len(sd) == TORCHVISION_KEYS[name]


def test_torchvision_keys_map_onto_ours(preset):
    name, kwargs, model = preset
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped = {}
    for key, value in torchvision_resnet_state_dict(kwargs["depths"], kwargs["block"]).items():
        new = torchvision_to_ours(key)
        if new is None:
            assert key in ("fc.weight", "fc.bias")
            continue
        mapped[new] = tuple(value.shape)
    assert sorted(set(ours) - set(mapped)) == [], f"ResNet-{name}: our keys with no torchvision source"
    assert sorted(set(mapped) - set(ours)) == [], f"ResNet-{name}: torchvision keys we lack"
    assert {k: s for k, s in ours.items() if mapped[k] != s} == {}, f"ResNet-{name}: shape mismatches"


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_mapped_state_dict_loads_strictly(block):
    depths = [1, 2, 1, 1]
    model = ResNet(depths, block=block)
    tv = torchvision_resnet_state_dict(depths, block, seed=1)
    renamed = {torchvision_to_ours(k): v for k, v in tv.items() if torchvision_to_ours(k) is not None}
    model.load_state_dict(renamed, strict=True)
    loaded = model.state_dict()
    for key, value in renamed.items():
        assert torch.equal(loaded[key], value), key
    # A projection shortcut exists exactly where torchvision has one: always from stage 2 on, and in
    # stage 1 only for the bottleneck (64 -> 256 channels at stride 1).
    assert (model.stages[0].blocks[0].downsample is not None) == (block == "bottleneck")
    assert all(model.stages[i].blocks[0].downsample is not None for i in (1, 2, 3))
    assert model.stages[1].blocks[1].downsample is None


@pytest.mark.parametrize("block, norms", [("basic", 1 + 4 * 2 + 3), ("bottleneck", 1 + 4 * 3 + 4)])
def test_sync_batchnorm_everywhere(block, norms):
    model = ResNet([1, 1, 1, 1], block=block, norm_layer=nn.SyncBatchNorm)
    kinds = [type(m) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert kinds == [nn.SyncBatchNorm] * norms
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_stages_compose_to_forward():
    torch.manual_seed(0)
    model = ResNet([1, 2, 1, 1], block="bottleneck").eval()
    x = torch.randn(2, 3, 48, 40)
    x_before = x.clone()
    with torch.no_grad():
        outs = model(x)
    assert all(torch.equal(y, out) for y, out in zip(stage_outputs(model, x), outs, strict=True))
    # The in-place ReLUs and additions act on intermediates only, never on a stage's input.
    assert torch.equal(x, x_before)
    # Only the first stage carries the stem, so stage 0 alone reaches stride 4.
    assert model.stages[0].stem is not None
    assert all(stage.stem is None for stage in model.stages[1:])


def _bn(x: Tensor, norm: nn.BatchNorm2d) -> Tensor:
    """Eval-mode batch norm written out, for the by-hand references."""
    return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps)


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_stem_and_strided_block_by_hand(block):
    # v1.5 puts a bottleneck's stride on its 3x3 conv; v1 (stride on conv1) has the same shapes and
    # parameter counts, so only values tell them apart. Random norm statistics make every norm matter.
    torch.manual_seed(0)
    model = ResNet([1, 1, 1, 1], block=block, widths=(8, 8, 8, 8)).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    x = torch.randn(1, 3, 37, 30)
    stem, blk = model.stages[0].stem, model.stages[1].blocks[0]
    with torch.no_grad():
        s = F.relu(_bn(F.conv2d(x, stem.conv1.weight, stride=2, padding=3), stem.bn1))
        assert torch.allclose(stem(x), F.max_pool2d(s, 3, stride=2, padding=1), atol=1e-6)
        h = torch.randn(1, model.out_channels[0], 10, 8)
        if block == "basic":
            out = F.relu(_bn(F.conv2d(h, blk.conv1.weight, stride=2, padding=1), blk.bn1))
            out = _bn(F.conv2d(out, blk.conv2.weight, padding=1), blk.bn2)
        else:
            out = F.relu(_bn(F.conv2d(h, blk.conv1.weight), blk.bn1))
            out = F.relu(_bn(F.conv2d(out, blk.conv2.weight, stride=2, padding=1), blk.bn2))
            out = _bn(F.conv2d(out, blk.conv3.weight), blk.bn3)
        shortcut = _bn(F.conv2d(h, blk.downsample[0].weight, stride=2), blk.downsample[1])
        assert torch.allclose(blk(h), F.relu(out + shortcut), atol=1e-5)


def test_initialisation_is_torchvisions():
    torch.manual_seed(0)
    model = ResNet([1, 1, 1, 1], block="basic")
    # 256 -> 512 channels at 3x3: fan_out (512 * 9) is twice fan_in, so the std tells the mode apart.
    conv = model.stages[3].blocks[0].conv1
    assert (conv.in_channels, conv.out_channels) == (256, 512)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / (512 * 9)), rel=0.02)
    assert conv.bias is None
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            # torchvision's zero_init_residual is off by default: a branch's last norm starts at 1 too.
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_single_channel_input():
    model = ResNet([1, 1, 1, 1], block="basic", in_channels=1).eval()
    assert model.in_channels == 1
    assert model.stages[0].stem.conv1.weight.shape == (64, 1, 7, 7)
    with torch.no_grad():
        outs = model(torch.randn(1, 1, 32, 32))
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]


def test_dual_encoder_accepts_resnet():
    torch.manual_seed(0)
    encoder = DualEncoder(lambda: ResNet([1, 1, 1, 1], block="basic"), projector_dim=32)
    rgb, depth = torch.randn(2, 3, 64, 64), torch.randn(2, 1, 64, 64)
    fused, vis_embed, aux_embed = encoder(rgb, depth, with_embeddings=True)
    expected = [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2)]
    assert [tuple(f.shape) for f in fused] == expected
    # Backward through both branches: the in-place ReLUs and shortcut additions must not break autograd.
    (sum(f.mean() for f in fused) + vis_embed.mean() + aux_embed.mean()).backward()
    assert encoder.vis.stages[0].stem.conv1.weight.grad is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(depths=[2, 2, 2, 2], block="wide"),
        dict(depths=[2, 2, 2], block="basic"),
        dict(depths=[2, 0, 2, 2], block="basic"),
    ],
)
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ResNet(**kwargs)
