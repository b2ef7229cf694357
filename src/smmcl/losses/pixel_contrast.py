"""Unsupervised cross-modal pixel contrast of Meyer et al. (IROS 2020), the "Base + [36]" row of Table 6.

No labels: the positive of a visible pixel embedding is the auxiliary embedding at the same position,
and the auxiliary embeddings at every other sampled position are its negatives. As for the paper's own
L_cm (Sec. 3.2), the relation is symmetric, so there is one term, from the visible side.

Logged beside it: `retrieval_top1`, the share of anchors whose positive scores strictly higher than every one
of its negatives (top-1 retrieval of the same position in the other modality), read from the very
similarities the loss uses, detached; it draws nothing from any generator.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .autocast import full_precision
from .contrastive import info_nce_from_logits, similarities
from .result import ContrastResult


def sample_positions(num_pixels: int, max_total: int, device: torch.device,
                     generator: Optional[torch.Generator] = None) -> Tensor:
    """min(max_total, num_pixels) distinct flat pixel indices drawn uniformly (no labels involved)."""
    perm = torch.randperm(num_pixels, generator=generator, device=device)
    return perm[: min(max_total, num_pixels)]


def cross_modal_pixel_term(v: Tensor, a: Tensor, tau: float,
                           return_top1: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """InfoNCE of each row of `v` against the rows of `a`: row i of `a` is its positive, the rest negatives.

    With `return_top1`, also the fraction of rows whose positive outscores all their negatives (detached).
    """
    vn, an = F.normalize(v, dim=1), F.normalize(a, dim=1)
    n = vn.shape[0]
    # Each position is its own class: the only positive is the same-position key.
    positives = torch.eye(n, dtype=torch.bool, device=vn.device)
    logits = similarities(vn, an, tau)
    term = info_nce_from_logits(logits, positives, ~positives, torch.ones(n, dtype=torch.bool, device=vn.device))
    if not return_top1:
        return term
    return term, retrieval_top1(logits.detach(), positives)


def retrieval_top1(logits: Tensor, positives: Tensor) -> Tensor:
    """Share of the rows of N x N `logits` whose diagonal (`positives`, the identity) exceeds every other entry
    (a tie is a miss; a row without negatives counts as a hit)."""
    best_negative = logits.masked_fill(positives, float("-inf")).amax(dim=1)
    return (logits.diagonal() > best_negative).to(logits.dtype).mean()


class CrossModalPixelLoss(nn.Module):
    """Same-position visible / auxiliary projector embeddings as positives, other positions as negatives."""

    terms = ("cm",)

    def __init__(self, temperature: float = 0.1, max_total: int = 4800) -> None:
        super().__init__()
        self.temperature = temperature
        self.max_total = max_total

    @classmethod
    def from_config(cls, loss_cfg, num_classes: int, ignore_index: int, embed_dim: int = 0) -> "CrossModalPixelLoss":
        """`loss.cm_temperature` and `loss.max_total` (positions per batch); labels are never read."""
        return cls(temperature=loss_cfg.cm_temperature, max_total=loss_cfg.max_total)

    def forward(self, vis_embed: Tensor, aux_embed: Tensor, labels: Optional[Tensor] = None, *,
                generator: Optional[torch.Generator] = None) -> ContrastResult:
        """The term of B x d x h x w embeddings at up to `max_total` random positions of the batch."""
        if vis_embed.shape != aux_embed.shape or vis_embed.dim() != 4:
            raise ValueError(f"vis and aux must both be B x d x h x w, got {tuple(vis_embed.shape)} and {tuple(aux_embed.shape)}")
        b, d, h, w = vis_embed.shape
        rows = sample_positions(b * h * w, self.max_total, vis_embed.device, generator)
        v = vis_embed.permute(0, 2, 3, 1).reshape(-1, d).index_select(0, rows).float()
        a = aux_embed.permute(0, 2, 3, 1).reshape(-1, d).index_select(0, rows).float()
        with full_precision(vis_embed.device):
            term, top1 = cross_modal_pixel_term(v, a, self.temperature, return_top1=True)
        stats = {"rows": torch.tensor(rows.numel(), device=vis_embed.device), "retrieval_top1": top1}
        return ContrastResult({"cm": term}, stats)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, max_total={self.max_total}"
