"""Segmentation model: dual encoder with cross-modal modules, then a decoder on the fusion features."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor, nn


class Segmentor(nn.Module):
    """RGB + auxiliary image -> K-class logits at the input size; projector embeddings for training."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.num_classes = num_classes

    def encode(self, rgb: Tensor, aux: Tensor) -> Tuple[List[Tensor], Optional[Tensor], Optional[Tensor]]:
        """Four fusion features and the projector outputs R_vis, R_aux (B x d x h x w)."""
        return self.encoder(rgb, aux, with_embeddings=True)

    def decode(self, fused: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        """Decoder logits upsampled bilinearly to `size`."""
        logits = self.decoder(fused)
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)

    def forward(self, rgb: Tensor, aux: Tensor, return_embeddings: bool = False):
        """Logits B x K x H x W; with `return_embeddings`, also the projector outputs R_vis, R_aux.

        One entry point for both, so that DistributedDataParallel (which hooks `forward`) sees every call.
        """
        fused, vis_embed, aux_embed = self.encoder(rgb, aux, with_embeddings=return_embeddings)
        logits = self.decode(fused, rgb.shape[-2:])
        return (logits, vis_embed, aux_embed) if return_embeddings else logits

    def forward_train(self, rgb: Tensor, aux: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Logits and both projector outputs in one pass (for the cross-entropy and contrastive losses)."""
        return self(rgb, aux, return_embeddings=True)
