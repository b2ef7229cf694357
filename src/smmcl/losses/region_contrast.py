"""Supervised single-modal region contrast of Hu et al. (ICCV 2021), the "Base + [26]" row of Table 6.

Within each modality separately, a region is the set of pixels of one class in one image; its embedding
is their mean. Pixel embeddings (drawn by the class-balanced sampler of Sec. 3.2, so every contrast sees
the same anchors) are pulled towards same-class regions and pushed from other-class regions, over the
regions of the current batch and a memory of regions from earlier batches (a FIFO queue per class, as
[26] keeps). Memory slots not yet filled take no part, rather than holding random vectors.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .autocast import full_precision
from .contrastive import info_nce, label_masks
from .result import ContrastResult
from .sampling import downscale_labels, pair_groups, sample_embeddings


def region_means(embed: Tensor, labels: Tensor, num_classes: int, ignore_index: int = 255,
                 min_views: int = 5) -> Tuple[Tensor, Tensor]:
    """Mean embedding of every (image, class) pair of B x d x h x w `embed` under B x H x W `labels`
    (downscaled by nearest neighbour): B*K x d means (row image * K + class) and which pairs have at
    least `min_views` pixels."""
    b, d, h, w = embed.shape
    flat_labels = downscale_labels(labels, (h, w), embed.device).reshape(-1)
    group = pair_groups(flat_labels, b, num_classes, ignore_index)
    rows = embed.permute(0, 2, 3, 1).reshape(-1, d)
    sums = rows.new_zeros(b * num_classes + 1, d).index_add_(0, group, rows)
    counts = torch.zeros(b * num_classes + 1, dtype=rows.dtype, device=rows.device)
    counts.index_add_(0, group, torch.ones_like(group, dtype=rows.dtype))
    means = sums[:-1] / counts[:-1, None].clamp(min=1)
    return means, counts[:-1] >= max(min_views, 1)


def region_term(anchors: Tensor, anchor_labels: Tensor, anchor_valid: Tensor, keys: Tensor, key_labels: Tensor,
                key_valid: Tensor, tau: float) -> Tensor:
    """Pixel-to-region InfoNCE: positives are the valid same-class region keys, negatives the other-class ones."""
    positives, negatives = label_masks(anchor_labels, key_labels, anchor_valid, key_valid, exclude_diagonal=False)
    return info_nce(F.normalize(anchors, dim=1), F.normalize(keys, dim=1), positives, negatives, anchor_valid, tau)


class RegionContrastLoss(nn.Module):
    """L_vis, L_aux of [26]: each modality's pixel embeddings against its own region embeddings."""

    terms = ("vis", "aux")

    def __init__(self, num_classes: int, embed_dim: int, temperature: float = 0.1, memory_size: int = 256,
                 min_views: int = 5, max_views: int = 300, max_total: int = 4800, ignore_index: int = 255) -> None:
        super().__init__()
        if memory_size < 1:
            raise ValueError(f"memory_size must be at least 1 region per class, got {memory_size}")
        self.num_classes = num_classes
        self.temperature = temperature
        self.memory_size = memory_size
        self.min_views = min_views
        self.max_views = max_views
        self.max_total = max_total
        self.ignore_index = ignore_index
        # Saved with the checkpoint, so a resumed run contrasts against the same memory.
        self.register_buffer("memory_vis", torch.zeros(num_classes, memory_size, embed_dim))
        self.register_buffer("memory_aux", torch.zeros(num_classes, memory_size, embed_dim))
        # Next slot to write and slots filled so far, per class (both modalities hold the same regions).
        self.register_buffer("memory_ptr", torch.zeros(num_classes, dtype=torch.long))
        self.register_buffer("memory_filled", torch.zeros(num_classes, dtype=torch.long))

    @classmethod
    def from_config(cls, loss_cfg, num_classes: int, ignore_index: int, embed_dim: int = 0) -> "RegionContrastLoss":
        return cls(num_classes, embed_dim, temperature=loss_cfg.temperature, memory_size=loss_cfg.region_memory,
                   min_views=loss_cfg.min_views, max_views=loss_cfg.max_views, max_total=loss_cfg.max_total,
                   ignore_index=ignore_index)

    def memory_keys(self) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Memory as keys: vis K*Q x d, aux K*Q x d, their class labels and which slots are filled."""
        k, q, d = self.memory_vis.shape
        labels = torch.arange(k, device=self.memory_vis.device).repeat_interleave(q)
        filled = (torch.arange(q, device=labels.device)[None, :] < self.memory_filled[:, None]).reshape(-1)
        return self.memory_vis.reshape(k * q, d), self.memory_aux.reshape(k * q, d), labels, filled

    @torch.no_grad()
    def enqueue(self, vis_means: Tensor, aux_means: Tensor, present: Tensor) -> None:
        """Write the present regions (normalised, detached) into their classes' queues, oldest out first."""
        k, q, d = self.memory_vis.shape
        present = present.view(-1, k)
        # Rank of each region among its class's regions in this batch decides its slot.
        rank = present.long().cumsum(dim=0) - 1
        slot = (self.memory_ptr[None, :] + rank) % q
        keep = present & (rank < q)
        classes = torch.arange(k, device=present.device)[None, :]
        # Regions that are not written go to one scratch row past the end (no data-dependent shapes).
        index = torch.where(keep, classes * q + slot, torch.full_like(slot, k * q)).reshape(-1)
        for memory, means in ((self.memory_vis, vis_means), (self.memory_aux, aux_means)):
            flat = torch.cat([memory.reshape(k * q, d), memory.new_zeros(1, d)])
            flat.index_copy_(0, index, F.normalize(means.detach().float(), dim=1))
            memory.copy_(flat[: k * q].view(k, q, d))
        added = keep.sum(dim=0)
        self.memory_ptr.copy_((self.memory_ptr + added) % q)
        self.memory_filled.copy_((self.memory_filled + added).clamp(max=q))

    def forward(self, vis_embed: Tensor, aux_embed: Tensor, labels: Tensor, *,
                generator: Optional[torch.Generator] = None) -> ContrastResult:
        """Both modalities' terms for B x d x h x w embeddings; in training mode the batch's regions then
        join the memory."""
        v, a, y, valid, stats = sample_embeddings(
            vis_embed, aux_embed, labels, self.num_classes, min_views=self.min_views, max_views=self.max_views,
            max_total=self.max_total, mode="paired", ignore_index=self.ignore_index, generator=generator,
            return_stats=True,
        )
        with full_precision(vis_embed.device):
            vis_means, present = region_means(vis_embed.float(), labels, self.num_classes, self.ignore_index, self.min_views)
            aux_means, _ = region_means(aux_embed.float(), labels, self.num_classes, self.ignore_index, self.min_views)
            region_labels = torch.arange(present.numel(), device=present.device) % self.num_classes
            mem_vis, mem_aux, mem_labels, mem_filled = self.memory_keys()
            key_labels = torch.cat([region_labels, mem_labels])
            key_valid = torch.cat([present, mem_filled])
            terms = {
                "vis": region_term(v.float(), y, valid, torch.cat([vis_means, mem_vis]), key_labels, key_valid, self.temperature),
                "aux": region_term(a.float(), y, valid, torch.cat([aux_means, mem_aux]), key_labels, key_valid, self.temperature),
            }
        if self.training:
            self.enqueue(vis_means, aux_means, present)
        return ContrastResult(terms, {**stats._asdict(), "memory": mem_filled.sum()})

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, temperature={self.temperature}, memory_size={self.memory_size}, "
                f"min_views={self.min_views}, max_views={self.max_views}, max_total={self.max_total}")
