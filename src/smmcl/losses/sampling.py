"""Class-balanced embedding sampling for the contrastive loss (paper Sec. 3.2, "Embedding Generation")."""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

SAMPLING_MODES = ("paired", "independent")


class SampleStats(NamedTuple):
    """What one draw admitted (0-dim long tensors, no host sync): sampled rows, qualifying
    (image, class) pairs, and distinct classes among them."""

    rows: Tensor
    pairs: Tensor
    classes: Tensor


def downscale_labels(labels: Tensor, size: Tuple[int, int], device: torch.device) -> Tensor:
    """B x H x W labels to B x h x w by nearest neighbour (paper Sec. 3.2), on `device`."""
    # Float round trip is exact for label values (< 2^24); interpolate has no integer kernel.
    return F.interpolate(labels[:, None].to(device).float(), size=size, mode="nearest")[:, 0].long()


def pair_groups(flat_labels: Tensor, batch: int, num_classes: int, ignore_index: int) -> Tensor:
    """Per pixel of B*h*w flat labels, the id image * K + class of its (image, class) pair; ignored
    pixels (and labels outside 0..K-1) get the sentinel id B*K."""
    # Out-of-range labels are treated like ignore_index: rejecting them would need a host sync.
    known = (flat_labels != ignore_index) & (flat_labels >= 0) & (flat_labels < num_classes)
    image = torch.arange(batch, device=flat_labels.device).repeat_interleave(flat_labels.numel() // batch)
    return torch.where(known, image * num_classes + flat_labels, torch.full_like(flat_labels, batch * num_classes))


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
    return_stats: bool = False,
):
    """Sample n embeddings per present (image, class) pair for Eq. 3-6; returns (v, a, y, valid), and
    a `SampleStats` fifth when `return_stats`."""
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

    flat_labels = downscale_labels(labels, (h, w), device).reshape(num_pixels)
    group = pair_groups(flat_labels, b, num_classes, ignore_index)

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
    if not return_stats:
        return v, a, y, valid
    # A class qualifies when any image holds a qualifying pair of it.
    classes = present[:num_groups].view(b, num_classes).any(dim=0).sum()
    return v, a, y, valid, SampleStats(valid.sum(), num_present, classes)
