"""Supervised contrastive terms on sampled visible / auxiliary embeddings (paper Eq. 3-6)."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _pair_masks(y: Tensor, valid: Tensor) -> Tuple[Tensor, Tensor]:
    """Positive and negative sets P', N' of Eq. 3-6 as N x N masks (row = anchor)."""
    n = y.shape[0]
    both_valid = valid[:, None] & valid[None, :]
    same = y[:, None] == y[None, :]
    not_self = ~torch.eye(n, dtype=torch.bool, device=y.device)
    positives = same & not_self & both_valid
    # The anchor always shares its own label, so "j != i" needs no extra term here.
    negatives = ~same & both_valid
    return positives, negatives


def _info_nce(
    anchors: Tensor,
    others: Tensor,
    positives: Tensor,
    negatives: Tensor,
    anchor_weight: Tensor,
    anchor_count: Tensor,
    tau: float,
) -> Tensor:
    """Eq. 3-4 (or 5-6): InfoNCE averaged over each anchor's positives, then over anchors."""
    # Scaling the N x d anchors rather than the N x N product saves a full pass over the matrix.
    logits = (anchors / tau) @ others.T
    # A finite floor rather than -inf: an anchor without negatives then gets a finite
    # log-sum-exp, so neither the value nor its gradient can become inf - inf = NaN.
    floor = torch.finfo(logits.dtype).min
    neg_lse = logits.masked_fill(~negatives, floor).logsumexp(dim=1, keepdim=True)
    # -log(e^s / (e^s + sum_n e^n)) = log(1 + e^(lse_n - s)) = softplus(lse_n - s): nothing large
    # is ever exponentiated, and with no negatives it is softplus(~-inf) = 0 as Eq. 4 gives.
    per_pair = F.softplus(neg_lse - logits)
    num_pos = positives.sum(dim=1)
    # where() rather than a product keeps the masked entries out of the gradient altogether.
    pos_sum = torch.where(positives, per_pair, per_pair.new_zeros(())).sum(dim=1)
    # An anchor without positives contributes 0 but still counts in |V| (Eq. 3).
    per_anchor = pos_sum / num_pos.clamp(min=1).to(per_pair.dtype)
    return (per_anchor * anchor_weight).sum() / anchor_count


def contrastive_terms(
    v: Tensor,
    a: Tensor,
    y: Tensor,
    temperature: float = 0.1,
    cm_temperature: float = 0.1,
    valid: Optional[Tensor] = None,
) -> Dict[str, Tensor]:
    """Cross-modal L_cm (Eq. 3-4) and intra-modal L_vis, L_aux (Eq. 5-6) for paired N x d rows."""
    if v.shape != a.shape or v.dim() != 2:
        raise ValueError(f"v and a must both be N x d, got {tuple(v.shape)} and {tuple(a.shape)}")
    if y.shape != v.shape[:1]:
        raise ValueError(f"y must hold one label per row ({v.shape[0]}), got shape {tuple(y.shape)}")
    if valid is None:
        valid = torch.ones_like(y, dtype=torch.bool)
    elif valid.shape != y.shape:
        raise ValueError(f"valid must match y's shape {tuple(y.shape)}, got {tuple(valid.shape)}")
    valid = valid.to(torch.bool)

    vn = F.normalize(v, dim=1)
    an = F.normalize(a, dim=1)
    positives, negatives = _pair_masks(y, valid)
    weight = valid.to(vn.dtype)
    # Kept as a tensor so the mean needs no host sync; clamped so "no valid anchor" gives 0,
    # still attached to the graph through the (zero-weighted) anchors.
    count = weight.sum().clamp(min=1)
    return {
        "cm": _info_nce(vn, an, positives, negatives, weight, count, cm_temperature),
        "vis": _info_nce(vn, vn, positives, negatives, weight, count, temperature),
        "aux": _info_nce(an, an, positives, negatives, weight, count, temperature),
    }
