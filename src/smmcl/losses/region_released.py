"""Supervised region contrast of Hu et al. (ICCV 2021) [26] as its released code does it (`loss.contrast=region_released`).

`region` (region_contrast.py) adapts [26] to SMMCL's setting: pixel queries on the projector embeddings of
each modality, ground-truth regions per image. This variant follows the released code instead
(hzhupku/RegionContrast, `pyseg/models/decoder_contrast.py`; the facts are in SPEC.md, section 2):

- features: the decoder head's map right before its final classifier conv, which the model returns on request
  (`Segmentor(..., return_decoder_features=True)`: the features and the head's logits at their resolution);
  the released head ends in its dropout, so these are taken after the head's dropout too;
- regions: per class, the mean of those features over every pixel of the whole batch *predicted* as that
  class (argmax of the head's logits, detached, at the feature resolution as the released code takes it),
  then L2-normalised; a class no pixel is predicted as has no region in this batch;
- memory: one queue of `loss.region_queue` entries per class, initialised with random unit vectors drawn from
  a generator of its own seed (so it is the same on every run), kept as buffers: checkpoints save it with
  the objective's state and a resume restores it;
- loss: each region (query) against every entry of its own class's queue as positives and every entry of
  the other classes' queues as negatives, InfoNCE (`info_nce`, the form of Eq. 4: one term per positive,
  averaged over the positives) at its own temperature `loss.region_temperature` (0.2; `loss.temperature`
  is not read), averaged over the batch's regions;
- after the loss (training mode only), each class's region enters its queue, oldest out (FIFO), detached.

Where the released code departs from what it describes, this follows the description: the code multiplies
query and queue entries element-wise rather than taking dot products, sums the per-class losses (here their
mean, as every other term of this package, so that `loss.vis_weight` does not scale with the number of
predicted classes), and advances a queue's pointer by the batch size while it writes one entry (here by one).

One term, named `vis`, weighted by `loss.vis_weight`. Eq. 7 has weights for `cm`, `vis` and `aux` only; this
contrast is single-modal, on the fused decoder feature from which the visible image's segmentation is
predicted, so it takes the intra-modal slot of the primary (visible) stream. `loss.cm_weight` and
`loss.aux_weight` weigh nothing under this contrast.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .autocast import full_precision
from .contrastive import info_nce, label_masks
from .result import ContrastResult


def predicted_regions(features: Tensor, logits: Tensor, num_classes: int) -> Tuple[Tensor, Tensor]:
    """Per class, the L2-normalised mean of B x C x h x w `features` over the batch's pixels whose argmax of
    B x K x h x w `logits` is that class: K x C regions and which classes have any pixel."""
    if features.dim() != 4 or logits.dim() != 4 or features.shape[0] != logits.shape[0] \
            or features.shape[-2:] != logits.shape[-2:] or logits.shape[1] != num_classes:
        raise ValueError(f"features B x C x h x w and logits B x {num_classes} x h x w expected, got "
                         f"{tuple(features.shape)} and {tuple(logits.shape)}")
    c = features.shape[1]
    pred = logits.detach().argmax(dim=1).reshape(-1)
    rows = features.permute(0, 2, 3, 1).reshape(-1, c)
    sums = rows.new_zeros(num_classes, c).index_add_(0, pred, rows)
    counts = torch.zeros(num_classes, dtype=rows.dtype, device=rows.device)
    counts.index_add_(0, pred, torch.ones_like(pred, dtype=rows.dtype))
    means = sums / counts[:, None].clamp(min=1)
    return F.normalize(means, dim=1), counts > 0


def queue_term(regions: Tensor, present: Tensor, queue: Tensor, tau: float) -> Tensor:
    """InfoNCE of the K x C unit `regions` (rows of absent classes left out) against the K x Q x C `queue`:
    positives are the entries of the region's own class, negatives those of every other class."""
    k, q, c = queue.shape
    classes = torch.arange(k, device=queue.device)
    key_labels = classes.repeat_interleave(q)
    every_key = torch.ones(k * q, dtype=torch.bool, device=queue.device)
    positives, negatives = label_masks(classes, key_labels, present, every_key, exclude_diagonal=False)
    return info_nce(regions, queue.reshape(k * q, c), positives, negatives, present, tau)


class ReleasedRegionContrastLoss(nn.Module):
    """L_vis: the batch's predicted-class regions of the decoder features against a queue of regions per class."""

    terms = ("vis",)
    # What the objective hands over: the decoder head's features and logits, not the projector embeddings.
    source = "decoder"

    def __init__(self, num_classes: int, feature_dim: int, temperature: float = 0.2, queue_size: int = 300,
                 seed: int = 0) -> None:
        super().__init__()
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1 entry per class, got {queue_size}")
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be the decoder's feature width (model.decoder.channels), got {feature_dim}")
        self.num_classes = num_classes
        self.temperature = temperature
        self.queue_size = queue_size
        self.seed = seed
        # Drawn on the CPU in float32 from its own generator: the same queue on every device and run, and
        # no draw from the global stream (dropout, drop path, NMF bases).
        generator = torch.Generator().manual_seed(seed)
        queue = torch.randn(num_classes, queue_size, feature_dim, generator=generator, device="cpu")
        self.register_buffer("queue", F.normalize(queue, dim=2))
        # The slot each class writes next.
        self.register_buffer("queue_ptr", torch.zeros(num_classes, dtype=torch.long))

    @classmethod
    def from_config(cls, loss_cfg, num_classes: int, ignore_index: int,
                    embed_dim: int = 0) -> "ReleasedRegionContrastLoss":
        """`embed_dim`: the width of the features this contrast reads, the decoder's (`build_objective` passes
        its `feature_dim`, `model.decoder.channels`); `loss.region_temperature`, `loss.region_queue`."""
        return cls(num_classes, embed_dim, temperature=loss_cfg.region_temperature, queue_size=loss_cfg.region_queue)

    @torch.no_grad()
    def enqueue(self, regions: Tensor, present: Tensor) -> None:
        """Write each present class's region (detached) over its queue's oldest entry."""
        k, q, c = self.queue.shape
        flat = self.queue.view(k * q, c)
        slots = torch.arange(k, device=flat.device) * q + self.queue_ptr
        # Absent classes rewrite their current entry: no data-dependent shapes, no host sync.
        new = torch.where(present[:, None], regions.detach().to(flat.dtype), flat.index_select(0, slots))
        flat.index_copy_(0, slots, new)
        self.queue_ptr.copy_(torch.where(present, (self.queue_ptr + 1) % q, self.queue_ptr))

    def forward(self, features: Tensor, logits: Tensor, labels: Optional[Tensor] = None, *,
                generator: Optional[torch.Generator] = None) -> ContrastResult:
        """The term of the decoder head's B x C x h x w `features` and B x K x h x w `logits` (`labels` and
        `generator` are not read: the regions follow the predictions, and nothing is sampled); in training
        mode the batch's regions then enter the queues."""
        with full_precision(features.device):
            # At least float32 (half-precision features are cast up; float64 stays float64).
            regions, present = predicted_regions(features.to(torch.promote_types(features.dtype, torch.float32)),
                                                 logits, self.num_classes)
            # A copy: the loss's graph keeps the keys, which the enqueue below overwrites in place.
            term = queue_term(regions, present, self.queue.clone(), self.temperature)
        if self.training:
            self.enqueue(regions, present)
        return ContrastResult({"vis": term}, {"regions": present.sum()})

    def extra_repr(self) -> str:
        k, q, c = self.queue.shape
        return f"num_classes={k}, feature_dim={c}, temperature={self.temperature}, queue_size={q}, seed={self.seed}"
