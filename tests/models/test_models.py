"""Model tests: MSCAN presets, cross-modal module, decoders, dual encoder, segmentor and factory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import smmcl.models as models
from smmcl.config import BackboneConfig, Config, ModelConfig
from smmcl.models import (
    MSCAN,
    MSCAN_PRESETS,
    CrossModalModule,
    DualEncoder,
    FusionConv,
    LightHamHead,
    MLPHead,
    Projector,
    Segmentor,
    build_model,
)
from smmcl.models.factory import resolve_backbone

from support import build_tiny_model, count, stage_outputs, tiny_config

# Single-backbone parameter counts (regression values; MSCAN-B is pinned by the dual count below).
MSCAN_PARAMS = {"T": 3_903_584, "S": 13_450_176, "B": 26_277_824, "L": 44_636_864}
# The released SegNeXt-B dual encoder: two MSCAN-B, 4 cross-modal modules, 4 fusion convs, 2 projectors.
DUAL_MSCAN_B_PARAMS = 71_600_516


def mscan_t_config(**overrides) -> dict:
    """MSCAN-T at its preset widths with a narrow decoder: the fastest model of a full preset. Not the tiny test
    model (support's `build_tiny_model`, narrower still): these tests check the preset's own widths."""
    cfg = {"num_classes": 5, "backbone": {"preset": "T"}, "decoder": {"channels": 64}}
    for key, value in overrides.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    return cfg


@pytest.fixture(scope="module")
def mscan_t() -> Segmentor:
    torch.manual_seed(0)
    return build_model(mscan_t_config())


# ---------------------------------------------------------------- MSCAN


@pytest.mark.parametrize("preset", ["T", "S", "B", "L"])
def test_mscan_preset_shapes_and_params(preset):
    spec = MSCAN_PRESETS[preset]
    net = MSCAN(**spec).eval()
    assert count(net) == MSCAN_PARAMS[preset]
    assert net.out_channels == list(spec["embed_dims"])
    assert len(net.stages) == 4
    assert [len(stage.block) for stage in net.stages] == list(spec["depths"])
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = net(x)
    # Stages run one at a time give the same maps (what the dual encoder relies on).
    assert all(torch.equal(y, out) for y, out in zip(stage_outputs(net, x), outs, strict=True))
    for i, (out, dim) in enumerate(zip(outs, spec["embed_dims"])):
        stride = 2 ** (i + 2)
        assert out.shape == (1, dim, 64 // stride, 96 // stride)


def test_mscan_structure_follows_segnext():
    net = MSCAN(**MSCAN_PRESETS["T"])
    names = dict(net.named_parameters())
    for key in [
        "stages.0.patch_embed.proj.0.weight", "stages.0.patch_embed.proj.3.weight",  # stem: conv, BN, GELU, conv, BN
        "stages.1.patch_embed.proj.weight", "stages.1.patch_embed.norm.weight",
        "stages.0.block.0.attn.proj_1.weight", "stages.0.block.0.attn.spatial_gating_unit.conv0.weight",
        "stages.0.block.0.attn.spatial_gating_unit.conv2_2.weight", "stages.0.block.0.mlp.fc1.weight",
        "stages.0.block.0.mlp.dwconv.weight", "stages.0.block.0.layer_scale_1", "stages.3.norm.weight",
    ]:
        assert key in names, key
    gating = net.stages[0].block[0].attn.spatial_gating_unit
    assert gating.conv0.kernel_size == (5, 5)
    assert [getattr(gating, f"conv{i}_1").kernel_size for i in range(3)] == [(1, 7), (1, 11), (1, 21)]
    assert [getattr(gating, f"conv{i}_2").kernel_size for i in range(3)] == [(7, 1), (11, 1), (21, 1)]
    assert isinstance(net.stages[0].norm, nn.LayerNorm)
    # Stochastic depth increases linearly over all blocks, from 0 to drop_path_rate.
    rates = [getattr(b.drop_path, "p", 0.0) for s in net.stages for b in s.block]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.1)
    assert rates == sorted(rates)


def test_layer_scales_are_parameters_and_everything_trains(mscan_t):
    net = mscan_t.encoder.vis
    names = {name for name, _ in net.named_parameters()}
    blocks = [b for s in net.stages for b in s.block]
    for block in blocks:
        for attr in ("layer_scale_1", "layer_scale_2"):
            param = getattr(block, attr)
            assert isinstance(param, nn.Parameter)
            assert torch.allclose(param, torch.full_like(param, 0.01))
    assert sum(name.endswith("layer_scale_1") for name in names) == len(blocks)
    assert all(p.requires_grad for p in mscan_t.parameters())


# ---------------------------------------------------------------- cross-modal module


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_cross_modal_matches_eq_1_2(scale):
    torch.manual_seed(0)
    c = 8
    module = CrossModalModule(c, scale=scale)
    vis, aux = torch.randn(2, c, 5, 7), torch.randn(2, c, 5, 7)

    def mlp(seq, x):
        w = [m for m in seq if isinstance(m, nn.Conv2d)]
        x = F.gelu(F.conv2d(x, w[0].weight, w[0].bias))
        x = F.gelu(F.conv2d(x, w[1].weight, w[1].bias))
        return torch.sigmoid(F.conv2d(x, w[2].weight, w[2].bias))

    pair = torch.cat([vis, aux], dim=1)
    spatial = mlp(module.spatial, pair)  # B x 1 x h x w
    pooled = torch.cat([pair.mean((2, 3), keepdim=True), pair.amax((2, 3), keepdim=True)], dim=1)
    channel = mlp(module.channel, pooled)  # B x c x 1 x 1
    assert spatial.shape == (2, 1, 5, 7) and channel.shape == (2, c, 1, 1)

    expect_vis = vis + scale * spatial * aux + scale * channel * aux
    expect_aux = aux + scale * spatial * vis + scale * channel * vis
    out_vis, out_aux = module(vis, aux)
    torch.testing.assert_close(out_vis, expect_vis, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out_aux, expect_aux, rtol=1e-5, atol=1e-6)

    got_s, got_c = module.coefficients(vis, aux)
    torch.testing.assert_close(got_s, spatial)
    torch.testing.assert_close(got_c, channel)


def test_cross_modal_layer_shapes_and_fusion_conv():
    c = 16
    module = CrossModalModule(c)
    convs = [m for m in module.spatial if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(2 * c, 2 * c), (2 * c, 2 * c), (2 * c, 1)]
    convs = [m for m in module.channel if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(4 * c, 4 * c), (4 * c, 4 * c), (4 * c, c)]
    assert all(m.bias is not None for m in module.modules() if isinstance(m, nn.Conv2d))
    fusion = FusionConv(c)
    assert fusion.conv.in_channels == 2 * c and fusion.conv.out_channels == c and fusion.conv.bias is not None
    assert not any(isinstance(m, nn.modules.batchnorm._NormBase) for m in fusion.modules())
    vis, aux = torch.randn(1, c, 3, 3), torch.randn(1, c, 3, 3)
    expect = F.conv2d(torch.cat([vis, aux], 1), fusion.conv.weight, fusion.conv.bias)
    torch.testing.assert_close(fusion(vis, aux), expect)


def test_projector_layout():
    proj = Projector(32, dim=16)
    kinds = [type(m) for m in proj.project]
    assert kinds == [nn.Conv2d, nn.GELU, nn.BatchNorm2d, nn.Conv2d, nn.GELU, nn.BatchNorm2d, nn.Conv2d]
    assert proj(torch.randn(2, 32, 3, 4)).shape == (2, 16, 3, 4)


# ---------------------------------------------------------------- decoders


def _features(batch=2, channels=(32, 64, 160, 256), size=(32, 48)):
    h, w = size
    return [torch.rand(batch, c, -(-h // 2**i), -(-w // 2**i)) for i, c in enumerate(channels)]


def test_lightham_eval_is_deterministic_and_batch_independent():
    torch.manual_seed(0)
    head = LightHamHead([32, 64, 160, 256], num_classes=5, channels=64).eval()
    feats = _features(batch=3)
    with torch.no_grad():
        first = head(feats)
        torch.manual_seed(123)  # the global RNG must not matter in eval mode
        state = torch.get_rng_state()
        second = head(feats)
        assert torch.equal(torch.get_rng_state(), state)
        alone = head([f[1:2] for f in feats])
    assert first.shape == (3, 5, 16, 24)  # stage-2 resolution
    assert torch.equal(first, second)
    torch.testing.assert_close(alone, first[1:2], rtol=0, atol=1e-6)


def test_lightham_train_mode_uses_random_bases():
    torch.manual_seed(0)
    head = LightHamHead([32, 64, 160, 256], num_classes=5, channels=64, dropout=0.0).train()
    feats = _features(batch=2)
    a, b = head(feats), head(feats)
    assert not torch.allclose(a, b)
    torch.manual_seed(7)
    c = head(feats)
    torch.manual_seed(7)
    assert torch.equal(c, head(feats))  # reproducible for a fixed seed


def test_lightham_structure():
    head = LightHamHead([32, 64, 160, 256], num_classes=5, channels=64)
    names = dict(head.named_parameters())
    for key in [
        "squeeze.conv.weight", "squeeze.gn.weight", "hamburger.ham_in.conv.weight", "hamburger.ham_in.conv.bias",
        "hamburger.ham_out.conv.weight", "hamburger.ham_out.gn.weight", "align.conv.weight", "align.gn.weight",
        "conv_seg.weight", "conv_seg.bias",
    ]:
        assert key in names, key
    assert head.squeeze.conv.in_channels == 64 + 160 + 256  # stages 2-4 only
    assert head.hamburger.ham.rank == 64
    assert (head.hamburger.ham.train_steps, head.hamburger.ham.eval_steps) == (6, 7)
    # Released SMMCL layout: the Hamburger output conv has a bias and no GroupNorm.
    released = LightHamHead([32, 64, 160, 256], num_classes=5, channels=64, ham_out_norm=False)
    assert released.hamburger.ham_out.gn is None and released.hamburger.ham_out.conv.bias is not None


def test_nmf_gradient_flows():
    torch.manual_seed(0)
    head = LightHamHead([32, 64, 160, 256], num_classes=5, channels=64).train()
    feats = [f.requires_grad_() for f in _features(batch=2)]
    head(feats).sum().backward()
    assert all(p.grad is not None for p in head.parameters())
    assert feats[0].grad is None or feats[0].grad.abs().sum() == 0  # stage 1 is not an input
    assert feats[1].grad.abs().sum() > 0


def test_nmf_one_step_gradient_same_forward():
    x = torch.rand(2, 64, 6, 8, requires_grad=True)
    grads = []
    for one_step in (False, True):
        head = LightHamHead([8, 64, 8, 8], num_classes=2, channels=64, in_index=(1,), one_step_grad=one_step)
        torch.manual_seed(0)
        out = head.hamburger.ham.train()(x)
        grads.append(torch.autograd.grad(out.sum(), x)[0])
        torch.manual_seed(0)
        torch.testing.assert_close(out, head.hamburger.ham(x))
    assert not torch.allclose(grads[0], grads[1])


def test_mlp_head_shapes_and_order():
    torch.manual_seed(0)
    head = MLPHead([32, 64, 160, 256], num_classes=5, channels=16).eval()
    feats = _features(batch=2)
    out = head(feats)
    assert out.shape == (2, 5, 32, 48)  # stage-1 resolution
    assert head.linear_fuse[0].in_channels == 4 * 16 and head.linear_fuse[0].bias is None
    # Concat order is [c4, c3, c2, c1]: zeroing the fuse weights of the first block removes stage 4.
    with torch.no_grad():
        head.linear_fuse[0].weight[:, :16].zero_()
        changed = [f.clone() for f in feats]
        changed[3] = torch.rand_like(changed[3])
        torch.testing.assert_close(head(changed), head(feats))


# ---------------------------------------------------------------- dual encoder and segmentor


def test_dual_mscan_b_parameter_count():
    encoder = DualEncoder(lambda: MSCAN(**MSCAN_PRESETS["B"]), scale=0.5, projector_dim=256, norm_layer=nn.BatchNorm2d)
    assert count(encoder) == DUAL_MSCAN_B_PARAMS


def test_encode_shapes(mscan_t):
    mscan_t.eval()
    rgb, aux = torch.randn(2, 3, 64, 96), torch.randn(2, 1, 64, 96)
    with torch.no_grad():
        fused, vis_embed, aux_embed = mscan_t.encode(rgb, aux)
    channels = MSCAN_PRESETS["T"]["embed_dims"]
    assert len(fused) == 4
    for i, (feat, c) in enumerate(zip(fused, channels)):
        assert feat.shape == (2, c, 64 // 2 ** (i + 2), 96 // 2 ** (i + 2))
    assert vis_embed.shape == aux_embed.shape == (2, 256, 2, 3)


@pytest.mark.parametrize("decoder", ["lightham", "mlp"])
def test_logits_at_input_size_for_odd_sizes(decoder):
    torch.manual_seed(0)
    model = build_model(mscan_t_config(decoder={"name": decoder})).eval()
    rgb, aux = torch.randn(1, 3, 100, 130), torch.randn(1, 1, 100, 130)
    with torch.no_grad():
        out = model(rgb, aux)
    assert out.shape == (1, 5, 100, 130)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("decoder", ["lightham", "mlp"])
def test_forward_train_and_every_parameter_gets_a_gradient(decoder):
    torch.manual_seed(0)
    model = build_model(mscan_t_config(decoder={"name": decoder})).train()
    rgb, aux = torch.randn(2, 3, 64, 64), torch.randn(2, 1, 64, 64)
    model.zero_grad()
    logits, vis_embed, aux_embed = model.forward_train(rgb, aux)
    assert logits.shape == (2, 5, 64, 64) and vis_embed.shape == (2, 256, 2, 2)
    (logits.mean() + vis_embed.mean() + aux_embed.mean()).backward()
    missing = {n for n, p in model.named_parameters() if p.grad is None}
    # LightHam reads stages 2-4 only, so the stage-1 fusion conv is unused (as in the released model).
    unused = {"encoder.fusions.0.conv.weight", "encoder.fusions.0.conv.bias"} if decoder == "lightham" else set()
    assert missing == unused


@pytest.mark.parametrize("decoder", ["lightham", "mlp"])
def test_decoder_features_on_request_leave_the_outputs_alone(decoder):
    """`return_decoder_features` adds the head's pre-classifier map and its logits at that resolution; the other
    outputs stay the same to the bit, random draws (drop path, dropout, NMF bases) included."""
    model = build_tiny_model(tiny_config(f"model.decoder.name={decoder}"), seed=0).train()
    rgb, aux = torch.randn(2, 3, 64, 80), torch.randn(2, 1, 64, 80)
    torch.manual_seed(1)
    plain, vis_embed, _ = model(rgb, aux, return_embeddings=True)
    torch.manual_seed(1)
    logits, vis_again, _, features, head_logits = model(rgb, aux, return_embeddings=True, return_decoder_features=True)
    assert torch.equal(plain, logits) and torch.equal(vis_embed, vis_again)
    classifier = model.decoder.conv_seg if decoder == "lightham" else model.decoder.linear_pred
    assert features.shape == (2, 32, *head_logits.shape[-2:]) and torch.equal(head_logits, classifier(features))
    assert torch.equal(logits, F.interpolate(head_logits, size=(64, 80), mode="bilinear", align_corners=False))
    assert len(model(rgb, aux, return_decoder_features=True)) == 3


def test_projectors_see_stage4_before_module4(mscan_t):
    mscan_t.eval()
    enc = mscan_t.encoder
    rgb, aux = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _, vis_embed, aux_embed = enc(rgb, aux, with_embeddings=True)
        v, a = rgb, aux
        for m in range(4):
            v, a = enc.vis.stages[m](v), enc.aux.stages[m](a)
            if m == 3:
                torch.testing.assert_close(vis_embed, enc.projector_vis(v))
                torch.testing.assert_close(aux_embed, enc.projector_aux(a))
            v, a = enc.cross_modal[m](v, a)


def test_forward_skips_projectors_and_repeats_single_channel_aux(mscan_t):
    mscan_t.eval()
    calls = []
    hook = mscan_t.encoder.projector_vis.register_forward_hook(lambda *args: calls.append(1))
    rgb, aux = torch.randn(1, 3, 64, 64), torch.randn(1, 1, 64, 64)
    try:
        with torch.no_grad():
            one = mscan_t(rgb, aux)
            three = mscan_t(rgb, aux.repeat(1, 3, 1, 1))
    finally:
        hook.remove()
    assert not calls
    assert torch.equal(one, three)


def test_same_seed_same_model():
    torch.manual_seed(3)
    a = build_model(mscan_t_config()).state_dict()
    torch.manual_seed(3)
    b = build_model(mscan_t_config()).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- factory


def test_build_model_accepts_dict_yaml_and_config(tmp_path: Path):
    path = tmp_path / "model.yaml"
    path.write_text("model:\n  num_classes: 7\n  backbone: {preset: T}\n  decoder: {name: mlp, channels: 32}\n")
    from_yaml = build_model(path)
    assert from_yaml.num_classes == 7 and isinstance(from_yaml.decoder, MLPHead)
    assert build_model(str(path)).num_classes == 7
    from_dict = build_model({"num_classes": 3, "decoder": {"channels": 32}})
    assert from_dict.num_classes == 3 and isinstance(from_dict.decoder, LightHamHead)
    cfg = Config()
    cfg.model.num_classes = 4
    cfg.model.decoder.channels = 32
    assert build_model(cfg).num_classes == 4
    assert build_model(ModelConfig(num_classes=2, decoder=cfg.model.decoder)).num_classes == 2


def test_resolve_backbone_presets_and_overrides():
    assert resolve_backbone(BackboneConfig(preset="B")) == MSCAN_PRESETS["B"]
    resolved = resolve_backbone({"backbone": {"preset": "S", "depths": [1, 1, 1, 1], "drop_path_rate": 0.0}})
    assert resolved["depths"] == [1, 1, 1, 1] and resolved["drop_path_rate"] == 0.0
    assert resolved["embed_dims"] == MSCAN_PRESETS["S"]["embed_dims"]
    full = dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 1, 1], mlp_ratios=[2, 2, 2, 2], drop_path_rate=0.0)
    assert resolve_backbone(BackboneConfig(preset=None, **full)) == full
    with pytest.raises(ValueError, match="depths"):
        resolve_backbone(BackboneConfig(preset=None, embed_dims=[16, 32, 64, 128]))
    # The preset table is not mutated by overrides.
    assert MSCAN_PRESETS["S"]["depths"] == [2, 2, 4, 2]


@pytest.mark.parametrize(
    "override, bad",
    [
        ({"backbone": {"name": "vgg16"}}, "vgg16"),
        ({"backbone": {"preset": "XL"}}, "XL"),
        ({"decoder": {"name": "aspp"}}, "aspp"),
        ({"norm": "groupnorm"}, "groupnorm"),
    ],
)
def test_unknown_names_raise(override, bad):
    """Named with the valid choices: by the config's typed choices at load, or by the factory's tables."""
    with pytest.raises(ValueError, match=bad) as info:
        build_model(mscan_t_config(**override))
    assert "valid:" in str(info.value) or "expected one of" in str(info.value)


def test_syncbn_is_really_applied():
    model = build_model(mscan_t_config(norm="syncbn", decoder={"name": "mlp", "channels": 32}))
    enc = model.encoder
    for part in (enc.vis, enc.aux, enc.projector_vis, enc.projector_aux, model.decoder):
        norms = [m for m in part.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert norms and all(type(m) is nn.SyncBatchNorm for m in norms)
    # Without a process group SyncBatchNorm behaves as BatchNorm, so single-process runs still work.
    logits, _, _ = model.train().forward_train(torch.randn(2, 3, 64, 64), torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, 5, 64, 64)


def test_no_cuda_calls_in_model_sources():
    root = Path(models.__file__).parent
    for path in root.glob("*.py"):
        assert ".cuda(" not in path.read_text(), path


@pytest.mark.parametrize(
    "backbone, decoder, channels",
    [
        ({"name": "mit", "preset": "B0"}, "mlp", [32, 64, 160, 256]),
        ({"name": "resnet", "preset": "18"}, "mlp", [64, 128, 256, 512]),
        ({"name": "resnet", "preset": "50", "depths": [1, 1, 1, 1]}, "mlp", [256, 512, 1024, 2048]),
        ({"name": "mscan", "preset": "T"}, "lightham", [32, 64, 160, 256]),
    ],
)
@pytest.mark.parametrize("size", [(64, 64), (72, 104)])
def test_every_family_builds_with_its_paper_decoder(backbone, decoder, channels, size):
    model = build_model({"num_classes": 6, "backbone": backbone, "decoder": {"channels": 32}, "projector": {"dim": 8}})
    assert model.encoder.out_channels == channels
    assert isinstance(model.decoder, MLPHead if decoder == "mlp" else LightHamHead)
    # Cross-modal modules, fusions and projectors take their widths from the backbone.
    assert [m.conv.out_channels for m in model.encoder.fusions] == channels
    assert model.encoder.cross_modal[3].channel[4].out_channels == channels[3]
    assert model.encoder.projector_vis.project[0].in_channels == channels[3]
    model.eval()
    with torch.no_grad():
        fused, r_vis, r_aux = model.encode(torch.randn(2, 3, *size), torch.randn(2, 1, *size))
        logits = model(torch.randn(2, 3, *size), torch.randn(2, 3, *size))
    assert logits.shape == (2, 6, *size)
    assert [f.shape[1] for f in fused] == channels
    assert r_vis.shape[:2] == r_aux.shape[:2] == (2, 8)


def test_any_backbone_with_any_decoder_and_injected_norm():
    model = build_model({"num_classes": 4, "norm": "syncbn", "backbone": {"name": "resnet", "preset": "18"},
                         "decoder": {"name": "lightham", "channels": 32, "ham_rank": 8}, "projector": {"dim": 8}})
    assert isinstance(model.decoder, LightHamHead)
    kinds = {type(m) for m in model.encoder.vis.modules()}
    assert nn.SyncBatchNorm in kinds and nn.BatchNorm2d not in kinds
    mit = build_model({"num_classes": 4, "backbone": {"name": "mit", "preset": "B0"},
                       "decoder": {"name": "lightham", "channels": 32, "ham_rank": 8}})
    assert isinstance(mit.decoder, LightHamHead)


def test_auto_preset_is_the_papers_backbone():
    assert resolve_backbone(BackboneConfig(name="mscan")) == MSCAN_PRESETS["B"]
    assert resolve_backbone(BackboneConfig(name="mit"))["depths"] == [3, 4, 6, 3]
    assert resolve_backbone(BackboneConfig(name="resnet"))["depths"] == [3, 4, 23, 3]
    with pytest.raises(ValueError, match="B0, B1"):
        resolve_backbone(BackboneConfig(name="mit", preset="T"))
    with pytest.raises(ValueError, match="does not take 'num_heads'"):
        resolve_backbone(BackboneConfig(name="resnet", preset="18", num_heads=[1, 2, 4, 8]))
