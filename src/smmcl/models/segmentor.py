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

    def decode(self, fused: Sequence[Tensor], size: Sequence[int], return_features: bool = False):
        """Decoder logits upsampled bilinearly to `size`; with `return_features`, (logits, features, head_logits):
        also the head's pre-classifier features B x C x h x w and its logits B x K x h x w at that resolution."""
        if return_features:
            head_logits, features = self.decoder(fused, return_features=True)
        else:
            head_logits, features = self.decoder(fused), None
        logits = F.interpolate(head_logits, size=tuple(size), mode="bilinear", align_corners=False)
        return (logits, features, head_logits) if return_features else logits

    def forward(self, rgb: Tensor, aux: Tensor, return_embeddings: bool = False, return_decoder_features: bool = False):
        """Logits B x K x H x W; with `return_embeddings`, also the projector outputs R_vis, R_aux; with
        `return_decoder_features`, then also the decoder head's pre-classifier features and its logits at their
        resolution (`decode`), which the region contrast of [26] as released reads (`loss.contrast=region_released`).

        One entry point for all, so that DistributedDataParallel (which hooks `forward`) sees every call.
        """
        fused, vis_embed, aux_embed = self.encoder(rgb, aux, with_embeddings=return_embeddings)
        if not return_decoder_features:
            logits = self.decode(fused, rgb.shape[-2:])
            return (logits, vis_embed, aux_embed) if return_embeddings else logits
        logits, features, head_logits = self.decode(fused, rgb.shape[-2:], return_features=True)
        embeddings = (vis_embed, aux_embed) if return_embeddings else ()
        return (logits, *embeddings, features, head_logits)

    def forward_train(self, rgb: Tensor, aux: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Logits and both projector outputs in one pass (for the cross-entropy and contrastive losses)."""
        return self(rgb, aux, return_embeddings=True)
