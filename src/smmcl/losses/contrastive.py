"""Supervised contrastive terms on sampled visible / auxiliary embeddings (paper Eq. 3-6)."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def label_masks(
    anchor_labels: Tensor,
    key_labels: Tensor,
    anchor_valid: Tensor,
    key_valid: Tensor,
    exclude_diagonal: bool,
) -> Tuple[Tensor, Tensor]:
    """Positive and negative sets as N x M masks (row = anchor): same label / other label, both rows valid.

    With `exclude_diagonal` the key at the anchor's own index is no positive (the "j != i" of Eq. 3-6,
    where anchors and keys are the same N sampled positions).
    """
    both_valid = anchor_valid[:, None] & key_valid[None, :]
    same = anchor_labels[:, None] == key_labels[None, :]
    positives = same & both_valid
    if exclude_diagonal:
        n, m = positives.shape
        positives = positives & ~torch.eye(n, m, dtype=torch.bool, device=positives.device)
    # Row i's own key shares its label, so "j != i" needs no extra term for the negatives.
    return positives, ~same & both_valid


def info_nce(anchors: Tensor, keys: Tensor, positives: Tensor, negatives: Tensor, anchor_valid: Tensor, tau: float) -> Tensor:
    """Eq. 4 summed over each anchor's positives and averaged over them (Eq. 3 / 5), then over valid anchors.

    `anchors` N x d and `keys` M x d are L2-normalised rows, `positives` / `negatives` N x M masks. An
    anchor without positives contributes 0 and still counts in the 1/|V| of Eq. 3; with no valid
    anchor the result is 0, still attached to the graph.
    """
    return info_nce_from_logits(similarities(anchors, keys, tau), positives, negatives, anchor_valid)


def similarities(anchors: Tensor, keys: Tensor, tau: float) -> Tensor:
    """The N x M logits of `info_nce`: dot products of the rows divided by the temperature."""
    # Scaling the N x d anchors rather than the N x M product saves a full pass over the matrix.
    return (anchors / tau) @ keys.T


def info_nce_from_logits(logits: Tensor, positives: Tensor, negatives: Tensor, anchor_valid: Tensor) -> Tensor:
    """`info_nce` from its N x M logits (`similarities`), for a caller that also reads them."""
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
    per_anchor = pos_sum / num_pos.clamp(min=1).to(per_pair.dtype)
    weight = anchor_valid.to(per_pair.dtype)
    # Kept as a tensor so the mean needs no host sync; clamped so "no valid anchor" gives 0.
    return (per_anchor * weight).sum() / weight.sum().clamp(min=1)


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
    # One label set for V and A: row i of both is sampled for the same (image, class) pair.
    positives, negatives = label_masks(y, y, valid, valid, exclude_diagonal=True)
    return {
        "cm": info_nce(vn, an, positives, negatives, valid, cm_temperature),
        "vis": info_nce(vn, vn, positives, negatives, valid, temperature),
        "aux": info_nce(an, an, positives, negatives, valid, temperature),
    }
