"""MiT, the Mix Transformer encoder of SegFormer (Xie et al., NeurIPS 2021).

Built stage by stage so that a dual encoder can interleave two branches: each stage takes and returns
a B x C x H x W map and works on B x N x C tokens inside. Submodule names inside a stage follow the
official NVlabs SegFormer code (`patch_embed.proj`, `block.N.attn.q` / `.kv` / `.sr` / `.norm` / `.proj`,
`block.N.mlp.fc1` / `.fc2`, `norm`), so the `mit_b*.pth` keys map onto ours by replacing
`patch_embed{i}` / `block{i}` / `norm{i}` with `stages.{i-1}.patch_embed` / `.block` / `.norm`
(and `mlp.dwconv.dwconv` with `mlp.dwconv`); the ImageNet classifier `head.*` has no counterpart.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import DropPath, StagedBackbone, init_weights

# Presets as data (the released mit_b0..b5 configs): only widths and depths differ.
_PRESET_SHAPES = {
    "B0": ([32, 64, 160, 256], [2, 2, 2, 2]),
    "B1": ([64, 128, 320, 512], [2, 2, 2, 2]),
    "B2": ([64, 128, 320, 512], [3, 4, 6, 3]),
    "B3": ([64, 128, 320, 512], [3, 4, 18, 3]),
    "B4": ([64, 128, 320, 512], [3, 8, 27, 3]),
    "B5": ([64, 128, 320, 512], [3, 6, 40, 3]),
}
# Fresh lists per preset, so editing one preset's kwargs cannot leak into another.
MIT_PRESETS: Dict[str, Dict[str, object]] = {
    name: dict(
        embed_dims=list(dims),
        depths=list(depths),
        num_heads=[1, 2, 5, 8],
        mlp_ratios=[4, 4, 4, 4],
        sr_ratios=[8, 4, 2, 1],
        drop_path_rate=0.1,
    )
    for name, (dims, depths) in _PRESET_SHAPES.items()
}

# Norm epsilons of the released code: blocks and stage ends use 1e-6, the patch embedding and the
# spatial-reduction norm keep the nn.LayerNorm default (1e-5); pretrained weights expect exactly these.
BLOCK_NORM_EPS = 1e-6


def _to_map(x: Tensor, h: int, w: int) -> Tensor:
    """B x N x C tokens to a B x C x H x W map."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


def _to_tokens(x: Tensor) -> Tensor:
    """B x C x H x W map to B x N x C tokens, N = H * W in row-major order."""
    return x.flatten(2).transpose(1, 2)


class OverlapPatchEmbed(nn.Module):
    """Strided conv whose kernel overlaps its neighbours (padding k // 2), then LayerNorm on tokens."""

    def __init__(self, in_channels: int, dim: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size, stride=stride, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tuple[Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[2:]
        return self.norm(_to_tokens(x)), h, w


class EfficientSelfAttention(nn.Module):
    """Multi-head self-attention whose keys and values come from a map shrunk `sr_ratio` times per side."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        # Only reducing stages own `sr` / `norm`, so their keys exist exactly where the checkpoint has them.
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        b, n, c = x.shape
        heads, d = self.num_heads, c // self.num_heads
        q = self.q(x).reshape(b, n, heads, d).transpose(1, 2)
        if self.sr_ratio > 1:
            x = self.norm(_to_tokens(self.sr(_to_map(x, h, w))))
        # kv's outputs are [k | v], each split into heads in channel order: (B, M, 2, heads, d).
        k, v = self.kv(x).reshape(b, -1, 2, heads, d).permute(2, 0, 3, 1, 4).unbind(0)
        # The fused kernel's default scale is d^-0.5, the one the checkpoints were trained with.
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class MixFFN(nn.Module):
    """Linear, 3x3 depth-wise conv on the token map (positional cue instead of embeddings), GELU, linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = _to_tokens(self.dwconv(_to_map(self.fc1(x), h, w)))
        return self.fc2(self.act(x))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.attn = EfficientSelfAttention(dim, num_heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.mlp = MixFFN(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x), h, w))


class MiTStage(nn.Module):
    """One encoder stage on B x C x H x W maps: overlapping patch embedding, `depth` blocks, LayerNorm."""

    def __init__(
        self,
        in_channels: int,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        sr_ratio: int,
        drop_paths: Sequence[float],
        first: bool,
    ) -> None:
        super().__init__()
        # Stage 1 downsamples 4x with a 7x7 kernel, later stages 2x with 3x3.
        kernel_size, stride = (7, 4) if first else (3, 2)
        self.patch_embed = OverlapPatchEmbed(in_channels, dim, kernel_size, stride)
        self.block = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, sr_ratio, drop_paths[j]) for j in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)

    def forward(self, x: Tensor) -> Tensor:
        x, h, w = self.patch_embed(x)
        for blk in self.block:
            x = blk(x, h, w)
        # Contiguous so the next stage's conv and the cross-modal modules get a plain NCHW map.
        return _to_map(self.norm(x), h, w).contiguous()


class MiT(StagedBackbone):
    """MiT encoder: four transformer stages at strides 4, 8, 16, 32."""

    def __init__(
        self,
        embed_dims: Sequence[int],
        depths: Sequence[int],
        num_heads: Sequence[int],
        mlp_ratios: Sequence[float],
        sr_ratios: Sequence[int],
        drop_path_rate: float,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        # Ordered as MiTStage's arguments, which the loop below unpacks.
        lists = dict(
            embed_dims=embed_dims,
            depths=depths,
            num_heads=num_heads,
            mlp_ratios=mlp_ratios,
            sr_ratios=sr_ratios,
        )
        if len({len(v) for v in lists.values()}) != 1:
            raise ValueError(
                "embed_dims, depths, num_heads, mlp_ratios and sr_ratios must have the same length, got "
                + ", ".join(f"{k}={list(v)}" for k, v in lists.items())
            )
        # Stochastic depth grows linearly over all blocks of the network, not per stage. Computed on the
        # CPU so that building under a `torch.device(...)` context (e.g. "meta") still yields numbers.
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        stages: List[nn.Module] = []
        prev, start = in_channels, 0
        for i, (dim, depth, heads, ratio, sr) in enumerate(zip(*lists.values())):
            drop_paths = rates[start : start + depth]
            stages.append(MiTStage(prev, dim, depth, heads, ratio, sr, drop_paths, first=i == 0))
            prev, start = dim, start + depth
        self.stages = nn.ModuleList(stages)
        self.in_channels = in_channels
        self.out_channels: List[int] = list(embed_dims)
        self.apply(init_weights)
