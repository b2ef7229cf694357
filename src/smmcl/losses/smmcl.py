"""The supervised multi-modal contrastive loss module: sampling plus Eq. 3-6 terms."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from smmcl import collectives

from .autocast import full_precision
from .contrastive import contrastive_terms
from .result import ContrastResult
from .sampling import SAMPLING_MODES, sample_embeddings


class SMMCLLoss(nn.Module):
    """L_cm, L_vis, L_aux of Eq. 3-6 on projector outputs; Eq. 7 weighting is `smmcl.losses.Objective`'s.

    Under DDP each rank samples embeddings from its own images. With `gather=False` (the released
    code) it contrasts them among themselves. With `gather=True` every rank all-gathers the sampled
    rows of all ranks and computes the terms on their concatenation: the same loss on every rank,
    with W times the negatives; gradients reach each rank's own rows, and DDP's averaging then gives
    exactly the gradient of that one global loss (see `smmcl.collectives.gather_with_grad`).
    Outside a process group of several ranks the option changes nothing.
    """

    terms = ("cm", "vis", "aux")

    def __init__(
        self,
        num_classes: int,
        temperature: float = 0.1,
        cm_temperature: float = 0.1,
        sampling: str = "paired",
        min_views: int = 5,
        max_views: int = 300,
        max_total: int = 4800,
        ignore_index: int = 255,
        gather: bool = False,
    ) -> None:
        super().__init__()
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling mode {sampling!r}; expected one of {SAMPLING_MODES}")
        self.num_classes = num_classes
        self.temperature = temperature
        self.cm_temperature = cm_temperature
        self.sampling = sampling
        self.min_views = min_views
        self.max_views = max_views
        self.max_total = max_total
        self.ignore_index = ignore_index
        self.gather = gather

    @classmethod
    def from_config(cls, loss_cfg, num_classes: int, ignore_index: int, embed_dim: int = 0) -> "SMMCLLoss":
        """Build from a `smmcl.config.LossConfig` (its weights are applied by the objective)."""
        return cls(
            num_classes=num_classes,
            temperature=loss_cfg.temperature,
            cm_temperature=loss_cfg.cm_temperature,
            sampling=loss_cfg.sampling,
            min_views=loss_cfg.min_views,
            max_views=loss_cfg.max_views,
            max_total=loss_cfg.max_total,
            ignore_index=ignore_index,
            gather=loss_cfg.gather_embeddings,
        )

    def forward(
        self,
        vis_embed: Tensor,
        aux_embed: Tensor,
        labels: Tensor,
        *,
        generator: Optional[torch.Generator] = None,
    ) -> ContrastResult:
        """L_cm, L_vis, L_aux (Eq. 3-6) of B x d x h x w embeddings against B x H x W labels, and the
        sampling's row, pair and class counts (per rank, before any gathering)."""
        v, a, y, valid, stats = sample_embeddings(
            vis_embed,
            aux_embed,
            labels,
            self.num_classes,
            min_views=self.min_views,
            max_views=self.max_views,
            max_total=self.max_total,
            mode=self.sampling,
            ignore_index=self.ignore_index,
            generator=generator,
            return_stats=True,
        )
        v, a = v.float(), a.float()
        if self.gather and collectives.is_distributed():
            # The padded layout has min(max_total, B*h*w) rows on every rank (same per-rank batch and
            # crop), so the shapes the collectives need agree; padding rows stay masked by `valid`.
            # Memory: the terms are (W*rows)^2, W^2 times the per-rank ones.
            v, a = collectives.gather_with_grad(v), collectives.gather_with_grad(a)
            y, valid = collectives.gather(y), collectives.gather(valid)
        # exp(s / tau) with tau = 0.1 and N x N sums are too coarse in half precision, so the
        # terms run in float32 even when the network runs under autocast.
        with full_precision(vis_embed.device):
            terms = contrastive_terms(
                v,
                a,
                y,
                temperature=self.temperature,
                cm_temperature=self.cm_temperature,
                valid=valid,
            )
        return ContrastResult(terms, stats._asdict())

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, temperature={self.temperature}, "
            f"cm_temperature={self.cm_temperature}, sampling={self.sampling!r}, "
            f"min_views={self.min_views}, max_views={self.max_views}, max_total={self.max_total}, "
            f"gather={self.gather}"
        )
