"""SegFormer all-MLP decoder (Xie et al., NeurIPS 2021), as used by CMX-style RGB-X models."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .lightham_head import init_decoder_weights


class LinearEmbed(nn.Module):
    """Per-pixel linear map C -> E (a 1x1 conv kept as nn.Linear, named `proj` as in SegFormer)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MLPHead(nn.Module):
    """Embed every stage to `channels`, upsample to stage-1 size, concat (deepest first), fuse, classify.

    Returns logits at stage-1 resolution; with `return_features`, (logits, features), the features being the
    map the classifier reads (after dropout, as the region contrast [26]'s released code takes them).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 512,
        dropout: float = 0.1,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        # linear_c[i] embeds stage i + 1 (SegFormer's linear_c{i + 1}).
        self.linear_c = nn.ModuleList(LinearEmbed(c, channels) for c in in_channels)
        self.linear_fuse = nn.Sequential(
            nn.Conv2d(len(in_channels) * channels, channels, 1, bias=False),
            norm_layer(channels),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout2d(dropout)
        self.linear_pred = nn.Conv2d(channels, num_classes, 1)
        self.apply(init_decoder_weights)

    def forward(self, features: Sequence[Tensor], return_features: bool = False):
        size = features[0].shape[-2:]
        embedded = []
        for embed, feat in zip(self.linear_c, features):
            x = embed(feat)
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            embedded.append(x)
        # SegFormer concatenates the deepest stage first: [c4, c3, c2, c1].
        x = self.dropout(self.linear_fuse(torch.cat(embedded[::-1], dim=1)))
        logits = self.linear_pred(x)
        return (logits, x) if return_features else logits
