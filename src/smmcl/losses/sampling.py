"""Class-balanced embedding sampling for the contrastive loss (paper Sec. 3.2, "Embedding Generation")."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

SAMPLING_MODES = ("paired", "independent")


def _grouped_order(group: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Pixel indices sorted by group id, in random order within each group."""
    perm = torch.randperm(group.numel(), generator=generator, device=group.device)
    # A stable sort by group keeps the random order of the shuffle inside every group.
    return perm[torch.argsort(group[perm], stable=True)]


def sample_embeddings(
    vis: Tensor,
    aux: Tensor,
    labels: Tensor,
    num_classes: int,
    min_views: int = 5,
    max_views: int = 300,
    max_total: int = 4800,
    mode: str = "paired",
    ignore_index: int = 255,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sample n embeddings per present (image, class) pair for Eq. 3-6; returns (v, a, y, valid)."""
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; expected one of {SAMPLING_MODES}")
    if vis.shape != aux.shape or vis.dim() != 4:
        raise ValueError(f"vis and aux must both be B x d x h x w, got {tuple(vis.shape)} and {tuple(aux.shape)}")
    if labels.dim() != 3 or labels.shape[0] != vis.shape[0]:
        raise ValueError(f"labels must be B x H x W with B = {vis.shape[0]}, got {tuple(labels.shape)}")
    b, d, h, w = vis.shape
    device = vis.device
    num_pixels = b * h * w
    num_groups = b * num_classes
    # Static bound on the sampled rows: n * pairs <= max_total by construction, and no pixel
    # is drawn twice, so a fixed-size output needs no data-dependent shape (no host sync).
    # Rows past the sampled ones are padding: valid False, label ignore_index, and an
    # arbitrary (unsampled) embedding, which the masked loss never reads.
    m = min(max_total, num_pixels)

    # Float round trip is exact for label values (< 2^24); interpolate has no integer kernel.
    small = F.interpolate(labels[:, None].to(device).float(), size=(h, w), mode="nearest")[:, 0].long()
    flat_labels = small.reshape(num_pixels)
    # Labels outside 0..K-1 are treated like ignore_index: rejecting them would need a host sync.
    known = (flat_labels != ignore_index) & (flat_labels >= 0) & (flat_labels < num_classes)
    image = torch.arange(b, device=device).repeat_interleave(h * w)
    # One id per (image, class); ignored pixels share the sentinel id num_groups, sorted last.
    group = torch.where(known, image * num_classes + flat_labels, torch.full_like(flat_labels, num_groups))

    counts = torch.zeros(num_groups + 1, dtype=torch.long, device=device)
    counts.scatter_add_(0, group, torch.ones_like(group))
    is_pair = torch.arange(num_groups + 1, device=device) < num_groups
    # At least one pixel even if min_views < 1, or an absent class would force n = 0.
    present = is_pair & (counts >= max(min_views, 1))
    num_present = present.sum()
    # Filling the non-present entries with max_views applies that cap in the same min.
    smallest = torch.where(present, counts, torch.full_like(counts, max_views)).amin()
    n = torch.minimum(smallest, max_total // num_present.clamp(min=1))

    order_v = _grouped_order(group, generator)
    sorted_group = group[order_v]
    # Rank of each sorted pixel within its group: position minus the group's start offset.
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(num_pixels, device=device) - start[sorted_group]
    selected = present[sorted_group] & (rank < n)
    # Selected rows first, keeping their (image, class) grouping; padding after them.
    keep = torch.argsort((~selected).to(torch.uint8), stable=True)[:m]
    valid = selected[keep]

    rows_v = order_v[keep]
    if mode == "paired":
        rows_a = rows_v
    else:
        # Another shuffle has the same sorted group sequence, so row i keeps its label in A.
        rows_a = _grouped_order(group, generator)[keep]

    flat_vis = vis.permute(0, 2, 3, 1).reshape(num_pixels, d)
    flat_aux = aux.permute(0, 2, 3, 1).reshape(num_pixels, d)
    v = flat_vis.index_select(0, rows_v)
    a = flat_aux.index_select(0, rows_a)
    y = torch.where(valid, flat_labels[rows_v], torch.full_like(rows_v, ignore_index))
    return v, a, y, valid
