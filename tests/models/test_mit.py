"""MiT (SegFormer) backbone tests: shapes, parameter counts, attention, checkpoint key layout, determinism."""

from __future__ import annotations

import math
import re
from typing import Dict, List, Sequence, Tuple

import pytest
import torch
from torch import Tensor, nn

from smmcl.models.dual_encoder import DualEncoder
from smmcl.models.mit import MIT_PRESETS, Block, MiT

from support import count
from support.imagenet_files import official_mit_state_dict

# Regression values from the closed-form count below (backbone only; the released ImageNet `mit_b*.pth`
# add a 1000-way head, dims[-1] * 1000 + 1000 more: 3,576,392 for B0 and 24,709,288 for B2).
MIT_B0_PARAMS = 3_319_392
MIT_B2_PARAMS = 24_196_288
# Encoder sizes in millions as the SegFormer paper reports them (MiT-B0..B5): a sanity check to within 0.1M,
# since the paper's rounding is loose (B0's 3.32M is listed as 3.4M).
PAPER_ENCODER_MPARAMS = {"B0": 3.4, "B1": 13.1, "B2": 24.2, "B3": 44.0, "B4": 60.8, "B5": 81.4}


def meta_mit(preset: str) -> MiT:
    """A preset without allocating or initialising weights: enough for counts, keys and shapes."""
    with torch.device("meta"):
        return MiT(**MIT_PRESETS[preset])


def expected_params(
    embed_dims: Sequence[int],
    depths: Sequence[int],
    sr_ratios: Sequence[int],
    mlp_ratios: Sequence[float],
    in_channels: int = 3,
) -> int:
    """Parameter count of the architecture as described in the SegFormer paper and code."""
    total, prev = 0, in_channels
    for i, (c, depth, sr, ratio) in enumerate(zip(embed_dims, depths, sr_ratios, mlp_ratios)):
        k = 7 if i == 0 else 3
        total += k * k * prev * c + c + 2 * c  # patch-embed conv (with bias) and its LayerNorm
        hidden = int(c * ratio)
        block = 2 * 2 * c  # norm1, norm2
        block += (c * c + c) + (c * 2 * c + 2 * c) + (c * c + c)  # q, kv, proj
        if sr > 1:
            block += sr * sr * c * c + c + 2 * c  # spatial-reduction conv and its LayerNorm
        block += (c * hidden + hidden) + (9 * hidden + hidden) + (hidden * c + c)  # fc1, dwconv, fc2
        total += depth * block + 2 * c  # blocks and the stage-end LayerNorm
        prev = c
    return total


def official_for(preset: str) -> Dict[str, Tensor]:
    """`official_mit_state_dict` for one of our presets."""
    p = MIT_PRESETS[preset]
    return official_mit_state_dict(p["embed_dims"], p["depths"], p["num_heads"], p["sr_ratios"], p["mlp_ratios"])


def rename_official(key: str) -> str:
    """The documented mapping from official MiT keys onto ours (the ImageNet `head.*` is left as is)."""
    key = re.sub(r"^(patch_embed|block|norm)(\d+)\.", lambda m: f"stages.{int(m[2]) - 1}.{m[1]}.", key)
    return key.replace("mlp.dwconv.dwconv.", "mlp.dwconv.")


def stage_sizes(h: int, w: int) -> List[Tuple[int, int]]:
    """Spatial sizes by conv arithmetic: 7x7/s4/p3, then three 3x3/s2/p1."""

    def conv(n: int, k: int, s: int, p: int) -> int:
        return (n + 2 * p - k) // s + 1

    sizes = [(conv(h, 7, 4, 3), conv(w, 7, 4, 3))]
    for _ in range(3):
        sizes.append((conv(sizes[-1][0], 3, 2, 1), conv(sizes[-1][1], 3, 2, 1)))
    return sizes


def test_stage_sizes_helper():
    # Multiples of 32 land exactly on strides 4, 8, 16, 32; other sizes round up.
    assert stage_sizes(64, 96) == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert stage_sizes(97, 130) == [(25, 33), (13, 17), (7, 9), (4, 5)]


@pytest.mark.parametrize("preset", sorted(MIT_PRESETS))
def test_preset_outputs(preset):
    torch.manual_seed(0)
    model = MiT(**MIT_PRESETS[preset]).eval()
    dims = MIT_PRESETS[preset]["embed_dims"]
    assert model.in_channels == 3 and model.out_channels == dims and len(model.stages) == 4
    with torch.no_grad():
        for h, w in [(64, 64), (97, 130)]:
            outs = model(torch.randn(1, 3, h, w))
            assert [tuple(o.shape) for o in outs] == [(1, c, *s) for c, s in zip(dims, stage_sizes(h, w))]
            assert all(o.is_contiguous() and torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("preset", sorted(MIT_PRESETS))
def test_param_counts_match_architecture(preset):
    p = MIT_PRESETS[preset]
    expected = expected_params(p["embed_dims"], p["depths"], p["sr_ratios"], p["mlp_ratios"])
    assert count(meta_mit(preset)) == expected


def test_param_counts_pinned():
    assert count(meta_mit("B0")) == MIT_B0_PARAMS
    assert count(meta_mit("B2")) == MIT_B2_PARAMS
    for preset, millions in PAPER_ENCODER_MPARAMS.items():
        assert abs(count(meta_mit(preset)) / 1e6 - millions) <= 0.1, preset


@pytest.mark.parametrize("preset", sorted(MIT_PRESETS))
def test_official_keys_cover_state_dict(preset):
    renamed = {rename_official(k): v for k, v in official_for(preset).items()}
    ours = meta_mit(preset).state_dict()
    assert sorted(set(renamed) - set(ours)) == ["head.bias", "head.weight"]
    assert sorted(set(ours) - set(renamed)) == []
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(renamed[k].shape) for k in ours}


def test_official_weights_load_and_change_output():
    p = MIT_PRESETS["B0"]
    official = official_for("B0")
    renamed = {rename_official(k): v * 0.05 for k, v in official.items() if not k.startswith("head.")}
    torch.manual_seed(0)
    model = MiT(**p).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[-1]
        model.load_state_dict(renamed, strict=True)
        after = model(x)[-1]
    assert torch.equal(model.stages[0].block[1].mlp.dwconv.weight, renamed["stages.0.block.1.mlp.dwconv.weight"])
    assert not torch.allclose(before, after)


def layer_norm(x: Tensor, norm: nn.LayerNorm, eps: float) -> Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * norm.weight + norm.bias


def reference_attention(attn: nn.Module, x: Tensor, h: int, w: int, heads: int, sr: int) -> Tensor:
    """Efficient self-attention of one sample's tokens (N x C) by explicit loops and plain matmuls."""
    n, c = x.shape
    d = c // heads
    q = x @ attn.q.weight.T + attn.q.bias
    # Spatial reduction: each non-overlapping sr x sr patch becomes one token (conv kernel = stride = sr).
    grid = x.T.reshape(c, h, w)
    reduced = []
    for i in range(h // sr):
        for j in range(w // sr):
            patch = grid[:, i * sr : (i + 1) * sr, j * sr : (j + 1) * sr]
            reduced.append((attn.sr.weight * patch).sum(dim=(1, 2, 3)) + attn.sr.bias)
    kv_in = layer_norm(torch.stack(reduced), attn.norm, eps=1e-5)
    kv = kv_in @ attn.kv.weight.T + attn.kv.bias
    k, v = kv[:, :c], kv[:, c:]
    outs = []
    for head in range(heads):
        sl = slice(head * d, (head + 1) * d)
        scores = q[:, sl] @ k[:, sl].T / math.sqrt(d)
        outs.append(torch.softmax(scores, dim=-1) @ v[:, sl])
    return torch.cat(outs, dim=1) @ attn.proj.weight.T + attn.proj.bias


def reference_mix_ffn(mlp: nn.Module, x: Tensor, h: int, w: int) -> Tensor:
    """Mix-FFN of one sample's tokens: the 3x3 depth-wise conv as a sum of nine shifted, scaled copies."""
    hidden = x @ mlp.fc1.weight.T + mlp.fc1.bias
    grid = torch.zeros(hidden.shape[1], h + 2, w + 2)
    grid[:, 1:-1, 1:-1] = hidden.T.reshape(-1, h, w)
    conv = mlp.dwconv.bias[:, None, None].expand(-1, h, w).clone()
    for di in range(3):
        for dj in range(3):
            conv = conv + mlp.dwconv.weight[:, 0, di, dj, None, None] * grid[:, di : di + h, dj : dj + w]
    t = conv.reshape(-1, h * w).T
    gelu = 0.5 * t * (1 + torch.erf(t / math.sqrt(2)))
    return gelu @ mlp.fc2.weight.T + mlp.fc2.bias


def test_block_matches_explicit_reference():
    torch.manual_seed(0)
    dim, heads, sr, h, w = 8, 2, 2, 4, 6
    block = Block(dim, num_heads=heads, mlp_ratio=4, sr_ratio=sr, drop_path=0.0).eval()
    # Random biases and norm affines too, so a mixed-up k/v split or head order cannot hide behind zeros.
    with torch.no_grad():
        for param in block.parameters():
            param.copy_(torch.randn_like(param) * 0.5)
    x = torch.randn(2, h * w, dim)
    with torch.no_grad():
        attn_out = block.attn(x, h, w)
        block_out = block(x, h, w)
        for b in range(x.shape[0]):
            ref_attn = reference_attention(block.attn, x[b], h, w, heads, sr)
            torch.testing.assert_close(attn_out[b], ref_attn, atol=1e-5, rtol=1e-5)
            y = x[b] + reference_attention(block.attn, layer_norm(x[b], block.norm1, 1e-6), h, w, heads, sr)
            y = y + reference_mix_ffn(block.mlp, layer_norm(y, block.norm2, 1e-6), h, w)
            torch.testing.assert_close(block_out[b], y, atol=1e-5, rtol=1e-5)


def test_norm_epsilons_and_drop_path_schedule():
    model = meta_mit("B2")
    stage = model.stages[0]
    assert stage.patch_embed.norm.eps == 1e-5 and stage.norm.eps == 1e-6
    assert stage.block[0].norm1.eps == 1e-6 and stage.block[0].norm2.eps == 1e-6
    assert stage.block[0].attn.norm.eps == 1e-5
    assert not hasattr(model.stages[3].block[0].attn, "sr")
    rates = [getattr(blk.drop_path, "p", 0.0) for s in model.stages for blk in s.block]
    assert rates == pytest.approx(torch.linspace(0, 0.1, 16).tolist())
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.1)


def test_deterministic_under_seed():
    x = torch.randn(2, 3, 64, 64)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MiT(**MIT_PRESETS["B0"]).eval()
        with torch.no_grad():
            outs.append(model(x))
    for a, b in zip(*outs):
        assert torch.equal(a, b)


def test_mismatched_lengths_and_heads_rejected():
    p = dict(MIT_PRESETS["B0"], depths=[2, 2, 2])
    with pytest.raises(ValueError, match="same length"):
        MiT(**p)
    with pytest.raises(ValueError, match="divisible"):
        MiT(**dict(MIT_PRESETS["B0"], num_heads=[3, 2, 5, 8]))


def test_in_dual_encoder_with_single_channel_aux():
    torch.manual_seed(0)
    encoder = DualEncoder(lambda: MiT(**MIT_PRESETS["B0"]), projector_dim=32).eval()
    with torch.no_grad():
        fused, r_vis, r_aux = encoder(torch.randn(1, 3, 64, 64), torch.randn(1, 1, 64, 64), with_embeddings=True)
    assert [tuple(f.shape) for f in fused] == [(1, c, s, s) for c, s in zip([32, 64, 160, 256], [16, 8, 4, 2])]
    assert r_vis is not None and r_aux is not None
