"""Projector mapping final encoder features to contrastive representations R (paper Sec. 3.1, 4.1)."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from .layers import init_weights


class Projector(nn.Module):
    """Two-layer MLP on c4 channels and a linear map to `dim`: conv, GELU, norm, conv, GELU, norm, conv."""

    def __init__(
        self, in_channels: int, dim: int = 256, norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d
    ) -> None:
        super().__init__()
        # Named `project` like the released code (`projector_color.project.N.*`).
        self.project = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 1),
            nn.GELU(),
            norm_layer(in_channels),
            nn.Conv2d(in_channels, in_channels, 1),
            nn.GELU(),
            norm_layer(in_channels),
            nn.Conv2d(in_channels, dim, 1),
        )
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(x)
