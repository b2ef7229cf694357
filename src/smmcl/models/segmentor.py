"""Segmentation model: dual encoder with cross-modal modules, then a decoder on the fusion features."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_inputs(rgb: object, aux: object) -> None:
    """Both inputs as the model takes them (B x 3 x H x W float tensors of one batch and size), or a TypeError /
    ValueError that says so, rather than an error from deep inside a convolution."""
    for name, x in (("rgb", rgb), ("aux", aux)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch tensor (B x 3 x H x W, preprocessed), got {type(x).__name__}; "
                            f"for image arrays use smmcl.Predictor")
        if not x.is_floating_point():
            raise TypeError(f"{name} is a {x.dtype} tensor; the model takes preprocessed float input (normalised as "
                            f"smmcl.data.preprocess.Preprocessing does), e.g. from smmcl.Predictor")
        channels = (3,) if name == "rgb" else (1, 3)  # a single-channel auxiliary input is repeated to three
        if x.ndim != 4 or x.shape[1] not in channels:
            raise ValueError(f"{name} has shape {tuple(x.shape)}; expected B x {' or '.join(map(str, channels))} x H x W")
    if rgb.shape[0] != aux.shape[0] or rgb.shape[-2:] != aux.shape[-2:]:  # type: ignore[union-attr]
        raise ValueError(f"rgb {tuple(rgb.shape)} and aux {tuple(aux.shape)} must share batch size, height and width "  # type: ignore[union-attr]
                         f"(the two images of an observation are registered pixel to pixel)")


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
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            check_inputs(rgb, aux)
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
