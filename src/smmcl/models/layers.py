"""Building blocks shared by the backbones, the cross-modal modules and the decoders."""

from __future__ import annotations

import math
from typing import List

from torch import Tensor, nn


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample with probability `p`."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        # Rescale so the expected output equals the input, as at test time.
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a B x C x H x W map (the end-of-stage norm)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


def init_weights(m: nn.Module) -> None:
    """SegNeXt initialisation: conv ~ N(0, 2 / fan_out), linear ~ TN(0.02), norms 1/0, zero biases."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)) and m.weight is not None:
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class StagedBackbone(nn.Module):
    """A backbone as a sequence of stages (`self.stages`), each returning one feature map; the dual encoder runs
    the stages one at a time with the cross-modal modules between them (Sec. 3.1), so `forward` must be exactly
    the stages in order. Subclasses set `stages`, `in_channels` and `out_channels`."""

    stages: nn.ModuleList

    def forward(self, x: Tensor) -> List[Tensor]:
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs
