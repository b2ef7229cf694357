"""MSCAN, the multi-scale convolutional attention encoder of SegNeXt (Guo et al., NeurIPS 2022).

Built stage by stage so that a dual encoder can interleave two branches. Submodule names inside
a stage follow the official SegNeXt code (`patch_embed.proj`, `block.N.attn.spatial_gating_unit.conv0`,
`block.N.mlp.fc1`, `block.N.layer_scale_1`, `norm`), so its checkpoint keys map onto ours by
replacing `patch_embed{i}` / `block{i}` / `norm{i}` with `stages.{i-1}.patch_embed` / `.block` / `.norm`
(and `mlp.dwconv.dwconv` with `mlp.dwconv`).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import torch
from torch import Tensor, nn

from .layers import ChannelLayerNorm, DropPath, StagedBackbone, init_weights

NormLayer = Callable[[int], nn.Module]

# Presets as data: embed dims / depths / MLP ratios / stochastic depth (SegNeXt Table 1).
MSCAN_PRESETS: Dict[str, Dict[str, object]] = {
    "T": dict(embed_dims=[32, 64, 160, 256], depths=[3, 3, 5, 2], mlp_ratios=[8, 8, 4, 4], drop_path_rate=0.1),
    "S": dict(embed_dims=[64, 128, 320, 512], depths=[2, 2, 4, 2], mlp_ratios=[8, 8, 4, 4], drop_path_rate=0.1),
    "B": dict(embed_dims=[64, 128, 320, 512], depths=[3, 3, 12, 3], mlp_ratios=[8, 8, 4, 4], drop_path_rate=0.2),
    "L": dict(embed_dims=[64, 128, 320, 512], depths=[3, 5, 27, 3], mlp_ratios=[8, 8, 4, 4], drop_path_rate=0.3),
}

LAYER_SCALE_INIT = 1e-2


class StemConv(nn.Module):
    """Stage-1 embedding: two 3x3 stride-2 convs (overall stride 4)."""

    def __init__(self, in_channels: int, out_channels: int, norm_layer: NormLayer) -> None:
        super().__init__()
        mid = out_channels // 2
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, mid, 3, stride=2, padding=1),
            norm_layer(mid),
            nn.GELU(),
            nn.Conv2d(mid, out_channels, 3, stride=2, padding=1),
            norm_layer(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class PatchEmbed(nn.Module):
    """Stage-2..4 embedding: one 3x3 stride-2 conv and a norm."""

    def __init__(self, in_channels: int, out_channels: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)
        self.norm = norm_layer(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x))


class MSCA(nn.Module):
    """Multi-scale convolutional attention: a 5x5 depth-wise conv plus strip branches, gating the input."""

    def __init__(self, dim: int, strip_sizes: Sequence[int] = (7, 11, 21)) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        # Branch i is conv{i}_1 (1 x k) then conv{i}_2 (k x 1), named as in SegNeXt's checkpoints.
        for i, k in enumerate(strip_sizes):
            setattr(self, f"conv{i}_1", nn.Conv2d(dim, dim, (1, k), padding=(0, k // 2), groups=dim))
            setattr(self, f"conv{i}_2", nn.Conv2d(dim, dim, (k, 1), padding=(k // 2, 0), groups=dim))
        self.conv3 = nn.Conv2d(dim, dim, 1)
        self.num_branches = len(strip_sizes)

    def forward(self, x: Tensor) -> Tensor:
        attn = self.conv0(x)
        total = attn
        for i in range(self.num_branches):
            total = total + getattr(self, f"conv{i}_2")(getattr(self, f"conv{i}_1")(attn))
        return self.conv3(total) * x


class SpatialAttention(nn.Module):
    """1x1 conv, GELU, MSCA, 1x1 conv, with its own inner shortcut (as in SegNeXt)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = MSCA(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x)))) + x


class Mlp(nn.Module):
    """Convolutional feed-forward: 1x1, 3x3 depth-wise, GELU, 1x1."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x))))


class Block(nn.Module):
    """MSCAN block: x + ls1 * attn(norm1(x)), then x + ls2 * mlp(norm2(x))."""

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float, norm_layer: NormLayer) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = SpatialAttention(dim)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


class MSCANStage(nn.Module):
    """One encoder stage: patch embedding, `depth` blocks, LayerNorm."""

    def __init__(
        self,
        in_channels: int,
        dim: int,
        depth: int,
        mlp_ratio: float,
        drop_paths: Sequence[float],
        norm_layer: NormLayer,
        stem: bool,
    ) -> None:
        super().__init__()
        embed = StemConv if stem else PatchEmbed
        self.patch_embed = embed(in_channels, dim, norm_layer)
        self.block = nn.ModuleList(Block(dim, mlp_ratio, drop_paths[j], norm_layer) for j in range(depth))
        self.norm = ChannelLayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return self.norm(x)


class MSCAN(StagedBackbone):
    """MSCAN encoder: four stages at strides 4, 8, 16, 32."""

    def __init__(
        self,
        embed_dims: Sequence[int],
        depths: Sequence[int],
        mlp_ratios: Sequence[float],
        drop_path_rate: float,
        in_channels: int = 3,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if not (len(embed_dims) == len(depths) == len(mlp_ratios)):
            raise ValueError(
                f"embed_dims, depths and mlp_ratios must have the same length, got "
                f"{list(embed_dims)}, {list(depths)}, {list(mlp_ratios)}"
            )
        # Stochastic depth grows linearly over all blocks of the network, not per stage.
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        stages: List[nn.Module] = []
        prev, start = in_channels, 0
        for i, (dim, depth, ratio) in enumerate(zip(embed_dims, depths, mlp_ratios)):
            stages.append(
                MSCANStage(prev, dim, depth, ratio, rates[start : start + depth], norm_layer, stem=i == 0)
            )
            prev, start = dim, start + depth
        self.stages = nn.ModuleList(stages)
        self.in_channels = in_channels
        self.out_channels: List[int] = list(embed_dims)
        self.apply(init_weights)
