"""Intermediate cross-modal module (paper Sec. 3.1, Fig. 4, Eq. 1-2) and the fusion conv."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from .layers import init_weights


def _coefficient_mlp(in_channels: int, out_channels: int) -> nn.Sequential:
    """Three 1x1 conv layers [in->in, GELU, in->in, GELU, in->out] and a sigmoid (paper Tab. 1)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 1),
        nn.GELU(),
        nn.Conv2d(in_channels, in_channels, 1),
        nn.GELU(),
        nn.Conv2d(in_channels, out_channels, 1),
        nn.Sigmoid(),
    )


class CrossModalModule(nn.Module):
    """Exchange information between the two modalities with shared coefficients (Eq. 1-2).

    `scale` multiplies the exchanged terms: the paper writes 1, the released code uses 0.5.
    """

    def __init__(self, channels: int, scale: float = 0.5) -> None:
        super().__init__()
        self.scale = scale
        # Released-code layout: `Spatial.encode` -> `spatial`, `Channel.encode` -> `channel`.
        self.spatial = _coefficient_mlp(2 * channels, 1)
        # Input is concat(avg pool, max pool) of the 2c-channel pair, in that order.
        self.channel = _coefficient_mlp(4 * channels, channels)
        self.apply(init_weights)

    def coefficients(self, vis: Tensor, aux: Tensor) -> Tuple[Tensor, Tensor]:
        """Spatial map S (B x 1 x h x w) and channel vector c (B x C x 1 x 1), shared by both directions."""
        pair = torch.cat([vis, aux], dim=1)
        spatial = self.spatial(pair)
        pooled = torch.cat([pair.mean(dim=(2, 3), keepdim=True), pair.amax(dim=(2, 3), keepdim=True)], dim=1)
        return spatial, self.channel(pooled)

    def forward(self, vis: Tensor, aux: Tensor) -> Tuple[Tensor, Tensor]:
        """F_vis' = F_vis + s*S*F_aux + s*c*F_aux and symmetrically for F_aux' (Eq. 1-2)."""
        spatial, channel = self.coefficients(vis, aux)
        weight = self.scale * (spatial + channel)
        return vis + weight * aux, aux + weight * vis

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class FusionConv(nn.Module):
    """Fusion feature F_fus = 1x1 conv(concat(F_vis', F_aux')), 2c -> c with bias, no norm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, channels, 1)
        self.apply(init_weights)

    def forward(self, vis: Tensor, aux: Tensor) -> Tensor:
        return self.conv(torch.cat([vis, aux], dim=1))
