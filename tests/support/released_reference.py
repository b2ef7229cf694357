"""Independent, functional re-implementation of the released SMMCL model (palmdong/SMMCL, SMMCL_LLRGBD).

It exists only to check our modules against the released code. Two parts:

* `released_state_dict` makes a random state dict with the key names and shapes of the released
  `EncoderDecoder` (dual MSCAN encoder `MMSegNext` under `backbone.`, `LightHamHead` under `decode_head.`).
* `reference_encoder` / `reference_decoder` run the released eval-mode forward pass with plain
  `torch.nn.functional` ops, reading every tensor from that dict by its released name.

Nothing here imports a model class from `smmcl`; the slow, explicit code is the point.
"""

from __future__ import annotations

import math
import time
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-5  # BatchNorm2d, LayerNorm and GroupNorm all keep PyTorch's default eps in the released code
MIX = 0.5  # CrossModu s = c = 0.5
NMF_RANK = 64  # MD_R default; NMF2D sets inv_t = 1
LKA = (("conv0", (5, 5)), ("conv0_1", (1, 7)), ("conv0_2", (7, 1)), ("conv1_1", (1, 11)),
       ("conv1_2", (11, 1)), ("conv2_1", (1, 21)), ("conv2_2", (21, 1)))  # depthwise convs of AttentionModule

Spec = Tuple[str, Tuple[int, ...], str]  # (key, shape, kind)

# ----------------------------------------------------------------------------- released key list


def _k_conv(p: str, cout: int, cin: int, k=(1, 1), groups: int = 1, bias: bool = True) -> List[Spec]:
    out = [(f"{p}.weight", (cout, cin // groups, *k), "w")]
    return out + [(f"{p}.bias", (cout,), "b")] if bias else out


def _k_bn(p: str, c: int) -> List[Spec]:
    return [(f"{p}.weight", (c,), "g"), (f"{p}.bias", (c,), "b"), (f"{p}.running_mean", (c,), "rm"),
            (f"{p}.running_var", (c,), "rv"), (f"{p}.num_batches_tracked", (), "nbt")]


def _k_affine(p: str, c: int) -> List[Spec]:  # LayerNorm / GroupNorm
    return [(f"{p}.weight", (c,), "g"), (f"{p}.bias", (c,), "b")]


def _k_block(p: str, c: int, ratio: float) -> List[Spec]:
    h, g = int(c * ratio), f"{p}.attn.spatial_gating_unit"
    s = [(f"{p}.layer_scale_1", (c,), "ls"), (f"{p}.layer_scale_2", (c,), "ls")]  # own params come first
    s += _k_bn(f"{p}.norm1", c) + _k_conv(f"{p}.attn.proj_1", c, c)
    for name, k in LKA:
        s += _k_conv(f"{g}.{name}", c, c, k, groups=c)
    s += _k_conv(f"{g}.conv3", c, c) + _k_conv(f"{p}.attn.proj_2", c, c) + _k_bn(f"{p}.norm2", c)
    s += _k_conv(f"{p}.mlp.fc1", h, c) + _k_conv(f"{p}.mlp.dwconv.dwconv", h, h, (3, 3), groups=h)
    return s + _k_conv(f"{p}.mlp.fc2", c, h)


def _backbone_specs(dims, depths, ratios, proj_dim) -> List[Spec]:
    s: List[Spec] = []
    for i, c in enumerate(dims):
        n = i + 1
        for pe in (f"patch_embed{n}", f"patch_embed_other{n}"):
            if i == 0:  # StemConv: proj.{0 conv, 1 BN, 2 GELU, 3 conv, 4 BN}
                s += _k_conv(f"{pe}.proj.0", c // 2, 3, (3, 3)) + _k_bn(f"{pe}.proj.1", c // 2)
                s += _k_conv(f"{pe}.proj.3", c, c // 2, (3, 3)) + _k_bn(f"{pe}.proj.4", c)
            else:  # OverlapPatchEmbed: 3x3 stride-2 conv + BN
                s += _k_conv(f"{pe}.proj", c, dims[i - 1], (3, 3)) + _k_bn(f"{pe}.norm", c)
        for blk in (f"block{n}", f"block_other{n}"):
            for j in range(depths[i]):
                s += _k_block(f"{blk}.{j}", c, ratios[i])
        s += _k_affine(f"norm{n}", c) + _k_affine(f"norm_other{n}", c)
        m = f"module{n}"
        s += _k_conv(f"{m}.Spatial.encode.0", 2 * c, 2 * c) + _k_conv(f"{m}.Spatial.encode.2", 2 * c, 2 * c)
        s += _k_conv(f"{m}.Spatial.encode.4", 1, 2 * c)
        s += _k_conv(f"{m}.Channel.encode.0", 4 * c, 4 * c) + _k_conv(f"{m}.Channel.encode.2", 4 * c, 4 * c)
        s += _k_conv(f"{m}.Channel.encode.4", c, 4 * c) + _k_conv(f"fconv{n}.fusion_conv.0", c, 2 * c)
    d = dims[3]
    for pr in ("projector_color", "projector_other"):  # project.{0 conv, 1 GELU, 2 BN, 3 conv, 4 GELU, 5 BN, 6 conv}
        s += _k_conv(f"{pr}.project.0", d, d) + _k_bn(f"{pr}.project.2", d)
        s += _k_conv(f"{pr}.project.3", d, d) + _k_bn(f"{pr}.project.5", d) + _k_conv(f"{pr}.project.6", proj_dim, d)
    return [("backbone." + k, shape, kind) for k, shape, kind in s]


def _decoder_specs(dims, num_classes, ch, ham_out_norm) -> List[Spec]:
    s = _k_conv("conv_seg", num_classes, ch)  # built by BaseDecodeHead before the LightHamHead parts
    s += _k_conv("squeeze.conv", ch, sum(dims[1:]), bias=False) + _k_affine("squeeze.gn", ch)
    s += _k_conv("hamburger.ham_in.conv", ch, ch)
    s += _k_conv("hamburger.ham_out.conv", ch, ch, bias=not ham_out_norm)
    s += _k_affine("hamburger.ham_out.gn", ch) if ham_out_norm else []
    s += _k_conv("align.conv", ch, ch, bias=False) + _k_affine("align.gn", ch)
    return [("decode_head." + k, shape, kind) for k, shape, kind in s]


def _random(shape, kind: str, g: torch.Generator) -> Tensor:
    """Eval BN uses fixed random running stats, so it does not renormalise, and the gating `attn * u` is
    quadratic: with larger weights or layer scales the 12 stage-3 blocks overflow. These values keep every
    MSCAN-B residual stream below std ~10 while each block still changes it by ~25%."""
    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=g)
    if kind == "w":  # LeCun-normal, fan_in = (cin / groups) * kh * kw; He-normal (x2) blows up the stacks, see below
        return torch.randn(shape, generator=g) * math.sqrt(1.0 / math.prod(shape[1:]))
    if kind == "nbt":
        return torch.randint(1, 100_000, (), generator=g, dtype=torch.int64)
    return {"b": lambda: 0.05 * torch.randn(shape, generator=g), "g": lambda: u(0.8, 1.2),
            "rm": lambda: 0.1 * torch.randn(shape, generator=g), "rv": lambda: u(0.5, 1.5),
            "ls": lambda: u(0.1, 0.2)}[kind]()


def released_state_dict(embed_dims=(64, 128, 320, 512), depths=(3, 3, 12, 3), mlp_ratios=(8, 8, 4, 4),
                        num_classes=14, decoder_channels=512, projector_dim=256, seed=0,
                        ham_out_norm=False) -> Dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    specs = _backbone_specs(embed_dims, depths, mlp_ratios, projector_dim)
    specs += _decoder_specs(embed_dims, num_classes, decoder_channels, ham_out_norm)
    return {key: _random(shape, kind, g) for key, shape, kind in specs}


def _check_counts() -> int:
    """The released MSCAN-B dual encoder (+ projectors, cross-modal modules, fusions) has 71,600,516 parameters."""
    specs = _backbone_specs((64, 128, 320, 512), (3, 3, 12, 3), (8, 8, 4, 4), 256)
    n = sum(math.prod(shape) for _, shape, kind in specs if kind not in ("rm", "rv", "nbt"))
    assert n == 71_600_516, n
    assert len({k for k, _, _ in specs}) == len(specs)
    return n

# ----------------------------------------------------------------------------- functional forward


def _conv(sd, p: str, x: Tensor, stride: int = 1, groups: int = 1) -> Tensor:
    w = sd[f"{p}.weight"]  # every released conv pads kernel // 2 on each axis
    return F.conv2d(x, w, sd.get(f"{p}.bias"), stride, (w.shape[2] // 2, w.shape[3] // 2), 1, groups)


def _bn(sd, p: str, x: Tensor) -> Tensor:
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"],
                        sd[f"{p}.bias"], training=False, eps=EPS)


def _tokens(x: Tensor) -> Tuple[Tensor, int, int]:  # B x C x H x W -> B x N x C
    return x.flatten(2).transpose(1, 2), x.shape[2], x.shape[3]


def stem(sd, p: str, x: Tensor):
    x = F.gelu(_bn(sd, f"{p}.proj.1", _conv(sd, f"{p}.proj.0", x, stride=2)))
    return _tokens(_bn(sd, f"{p}.proj.4", _conv(sd, f"{p}.proj.3", x, stride=2)))


def patch_embed(sd, p: str, x: Tensor):
    return _tokens(_bn(sd, f"{p}.norm", _conv(sd, f"{p}.proj", x, stride=2)))


def attention_module(sd, p: str, x: Tensor) -> Tensor:
    c = x.shape[1]
    attn = _conv(sd, f"{p}.conv0", x, groups=c)
    branches = [_conv(sd, f"{p}.conv{k}_2", _conv(sd, f"{p}.conv{k}_1", attn, groups=c), groups=c) for k in range(3)]
    attn = attn + branches[0] + branches[1] + branches[2]
    return _conv(sd, f"{p}.conv3", attn) * x


def spatial_attention(sd, p: str, x: Tensor) -> Tensor:
    y = F.gelu(_conv(sd, f"{p}.proj_1", x))
    return _conv(sd, f"{p}.proj_2", attention_module(sd, f"{p}.spatial_gating_unit", y)) + x


def mlp(sd, p: str, x: Tensor) -> Tensor:
    h = _conv(sd, f"{p}.fc1", x)
    return _conv(sd, f"{p}.fc2", F.gelu(_conv(sd, f"{p}.dwconv.dwconv", h, groups=h.shape[1])))


def mscan_block(sd, p: str, tokens: Tensor, H: int, W: int) -> Tensor:
    B, N, C = tokens.shape
    x = tokens.permute(0, 2, 1).reshape(B, C, H, W)
    x = x + sd[f"{p}.layer_scale_1"].view(1, C, 1, 1) * spatial_attention(sd, f"{p}.attn", _bn(sd, f"{p}.norm1", x))
    x = x + sd[f"{p}.layer_scale_2"].view(1, C, 1, 1) * mlp(sd, f"{p}.mlp", _bn(sd, f"{p}.norm2", x))
    return x.reshape(B, C, N).permute(0, 2, 1)


def _coef_mlp(sd, p: str, x: Tensor) -> Tensor:  # encode.{0 conv, 1 GELU, 2 conv, 3 GELU, 4 conv, 5 Sigmoid}
    x = F.gelu(_conv(sd, f"{p}.encode.2", F.gelu(_conv(sd, f"{p}.encode.0", x))))
    return torch.sigmoid(_conv(sd, f"{p}.encode.4", x))


def cross_modal(sd, p: str, color: Tensor, other: Tensor) -> Tuple[Tensor, Tensor]:
    both = torch.cat([color, other], dim=1)
    spa = _coef_mlp(sd, f"{p}.Spatial", both)  # B x 1 x H x W
    pooled = torch.cat([F.adaptive_avg_pool2d(both, 1), F.adaptive_max_pool2d(both, 1)], dim=1)  # avg first
    cha = _coef_mlp(sd, f"{p}.Channel", pooled)  # B x C x 1 x 1
    color_out = color + other * spa * MIX + other * cha * MIX
    other_out = other + color * spa * MIX + color * cha * MIX
    return color_out, other_out


def fusion(sd, p: str, color: Tensor, other: Tensor) -> Tensor:
    return _conv(sd, f"{p}.fusion_conv.0", torch.cat([color, other], dim=1))


def projector(sd, p: str, x: Tensor) -> Tensor:  # conv -> GELU -> BN (BN after the activation), twice, conv
    x = _bn(sd, f"{p}.project.2", F.gelu(_conv(sd, f"{p}.project.0", x)))
    x = _bn(sd, f"{p}.project.5", F.gelu(_conv(sd, f"{p}.project.3", x)))
    return _conv(sd, f"{p}.project.6", x)


def reference_encoder(sd, rgb: Tensor, other: Tensor, embed_dims: Sequence[int], depths: Sequence[int]):
    """Eval-mode `MMSegNext.forward`: returns (four fused maps, projected colour, projected other)."""
    sd = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    color, fusions = rgb, []
    for i, c in enumerate(embed_dims):
        n, embed = i + 1, (stem if i == 0 else patch_embed)
        color, H, W = embed(sd, f"patch_embed{n}", color)
        other, _, _ = embed(sd, f"patch_embed_other{n}", other)
        for j in range(depths[i]):
            color = mscan_block(sd, f"block{n}.{j}", color, H, W)
        for j in range(depths[i]):
            other = mscan_block(sd, f"block_other{n}.{j}", other, H, W)
        color = F.layer_norm(color, (c,), sd[f"norm{n}.weight"], sd[f"norm{n}.bias"], EPS)
        other = F.layer_norm(other, (c,), sd[f"norm_other{n}.weight"], sd[f"norm_other{n}.bias"], EPS)
        color = color.reshape(color.shape[0], H, W, c).permute(0, 3, 1, 2)
        other = other.reshape(other.shape[0], H, W, c).permute(0, 3, 1, 2)
        if i == 3:  # the projectors tap the normed stage-4 maps, before module4
            color_fea, other_fea = projector(sd, "projector_color", color), projector(sd, "projector_other", other)
        color, other = cross_modal(sd, f"module{n}", color, other)
        fusions.append(fusion(sd, f"fconv{n}", color, other))
    return fusions, color_fea, other_fea


def _conv_module(sd, p: str, x: Tensor, relu: bool = True) -> Tensor:  # mmcv ConvModule: conv -> [GN(32)] -> [ReLU]
    x = _conv(sd, f"{p}.conv", x)
    if f"{p}.gn.weight" in sd:
        x = F.group_norm(x, 32, sd[f"{p}.gn.weight"], sd[f"{p}.gn.bias"], EPS)
    return F.relu(x) if relu else x


def nmf(x: Tensor, bases: Tensor, steps: int) -> Tensor:
    B, C, H, W = x.shape
    x = x.reshape(B, C, H * W)  # S = 1: D = C, N = H * W

    def coef_step(bases, coef):
        return coef * torch.bmm(x.transpose(1, 2), bases) / (coef.bmm(bases.transpose(1, 2).bmm(bases)) + 1e-6)

    coef = F.softmax(1.0 * torch.bmm(x.transpose(1, 2), bases), dim=-1)  # inv_t = 1
    for _ in range(steps):
        coef = coef_step(bases, coef)
        bases = bases * torch.bmm(x, coef) / (bases.bmm(coef.transpose(1, 2).bmm(coef)) + 1e-6)
    coef = coef_step(bases, coef)
    return torch.bmm(bases, coef.transpose(1, 2)).reshape(B, C, H, W)


def hamburger(sd, p: str, x: Tensor, bases: Tensor, steps: int) -> Tensor:
    enjoy = nmf(F.relu(_conv_module(sd, f"{p}.ham_in", x, relu=False)), bases, steps)
    return F.relu(x + _conv_module(sd, f"{p}.ham_out", enjoy, relu=False))


def reference_decoder(sd, fusions: Sequence[Tensor], bases: Tensor, eval_steps: int = 7,
                      ham_out_norm: bool = False) -> Tensor:
    """Eval-mode `LightHamHead.forward` with given NMF bases (B x C x 64); logits at stage-2 size."""
    sd = {k[len("decode_head."):]: v for k, v in sd.items() if k.startswith("decode_head.")}
    assert ("hamburger.ham_out.gn.weight" in sd) == ham_out_norm, "state dict and ham_out_norm disagree"
    feats = [fusions[i] for i in (1, 2, 3)]
    feats = [F.interpolate(f, size=feats[0].shape[2:], mode="bilinear", align_corners=False) for f in feats]
    x = _conv_module(sd, "squeeze", torch.cat(feats, dim=1))
    x = _conv_module(sd, "align", hamburger(sd, "hamburger", x, bases, eval_steps))
    return _conv(sd, "conv_seg", x)  # Dropout2d is off in eval


def random_bases(batch: int, channels: int, seed: int = 0) -> Tensor:
    """NMF2D._build_bases: uniform [0, 1), then L2-normalised over dim 1."""
    return F.normalize(torch.rand(batch, channels, NMF_RANK, generator=torch.Generator().manual_seed(seed)), dim=1)


def _self_test() -> None:
    dims, depths, ch = (8, 16, 32, 64), (1, 1, 2, 1), 32
    for ham_out_norm in (False, True):
        sd = released_state_dict(dims, depths, num_classes=14, decoder_channels=ch, projector_dim=16,
                                 seed=1, ham_out_norm=ham_out_norm)
        g = torch.Generator().manual_seed(2)
        rgb, dep = torch.randn(2, 3, 64, 96, generator=g), torch.randn(2, 3, 64, 96, generator=g)
        with torch.no_grad():
            fusions, cf, of = reference_encoder(sd, rgb, dep, dims, depths)
            logits = reference_decoder(sd, fusions, random_bases(2, ch), ham_out_norm=ham_out_norm)
        assert [tuple(f.shape) for f in fusions] == [(2, c, 64 >> s, 96 >> s) for c, s in zip(dims, (2, 3, 4, 5))]
        assert cf.shape == of.shape == (2, 16, 2, 3) and logits.shape == (2, 14, 8, 12)
        assert all(torch.isfinite(t).all() for t in [*fusions, cf, of, logits])


if __name__ == "__main__":
    t0 = time.perf_counter()
    print("backbone parameters:", _check_counts())
    _self_test()
    print(f"self-test passed in {time.perf_counter() - t0:.2f} s")
