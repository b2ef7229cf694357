"""The training objective of Eq. 7: L = L_ce + l_cm L_cm + l_vis L_vis + l_aux L_aux, with a pluggable contrast.

`loss.contrast` picks the auxiliary objective whose terms the weights apply to:

    smmcl              the paper's SMMCL (Sec. 3.2): terms cm, vis, aux (Table 5: cross-only, intra-only, both)
    cross_modal_pixel  unsupervised same-position cross-modal contrast of [36] (Table 6): term cm
    region             supervised single-modal region contrast of [26] (Table 6): terms vis, aux
    region_released    [26] as its released code does it, on the decoder head's features: term vis

All three weights 0 (or weights only on terms the contrast does not have) is the paper's Base: the
projectors are not run at all. A contrast reads the projector embeddings unless its class says
`source = "decoder"`: it then reads the decoder head's pre-classifier features and its logits at their
resolution (`Segmentor(..., return_decoder_features=True)`), and the projectors are not run either.
"""

from __future__ import annotations

from typing import Callable, Dict, Mapping, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .pixel_contrast import CrossModalPixelLoss
from .region_contrast import RegionContrastLoss
from .region_released import ReleasedRegionContrastLoss
from .smmcl import SMMCLLoss

# Name -> class; each has `terms` and `from_config(loss_cfg, num_classes, ignore_index, embed_dim)`, and
# `source = "decoder"` when it reads the decoder head's features (embed_dim is then their width).
CONTRASTS: Dict[str, Callable[..., nn.Module]] = {
    "smmcl": SMMCLLoss,
    "cross_modal_pixel": CrossModalPixelLoss,
    "region": RegionContrastLoss,
    "region_released": ReleasedRegionContrastLoss,
}


def reads_decoder(contrast) -> bool:
    """Whether a contrast (class or module) reads the decoder head's features rather than the projectors'."""
    return getattr(contrast, "source", "projectors") == "decoder"


class ObjectiveOutput(NamedTuple):
    """`total` = `ce` + `contrast` (the weighted auxiliary sum, 0 for Base); `terms` every unweighted
    term (ce included); `stats` 0-dim tensors for the logs (sampling counts, `contrast_zero`)."""

    total: Tensor
    ce: Tensor
    contrast: Tensor
    terms: Dict[str, Tensor]
    stats: Dict[str, Tensor]


def contrast_scale(step: int, start: int = 0, ramp: int = 0) -> float:
    """Factor on the contrastive weights at iteration `step` (0-based): 0 before `start`, then a linear
    ramp to 1 over `ramp` iterations. Not in the paper: (0, 0), always 1, is the paper's schedule."""
    if step < start:
        return 0.0
    if ramp <= 0:
        return 1.0
    return min(1.0, (step - start + 1) / ramp)


class Objective(nn.Module):
    """Eq. 7 over the logits and, when a contrast is active, the projector embeddings."""

    def __init__(self, contrast: Optional[nn.Module], weights: Mapping[str, float], ignore_index: int = 255) -> None:
        super().__init__()
        unknown = set(weights) - {"cm", "vis", "aux"}
        if unknown:
            raise ValueError(f"unknown loss weights {sorted(unknown)}; valid: cm, vis, aux")
        self.ignore_index = ignore_index
        # Only the contrast's own terms with a non-zero weight enter Eq. 7.
        terms = getattr(contrast, "terms", ()) if contrast is not None else ()
        self.weights = {k: float(weights.get(k, 0.0)) for k in terms if float(weights.get(k, 0.0)) != 0.0}
        self.contrast = contrast if self.weights else None

    @property
    def needs_embeddings(self) -> bool:
        """Whether the step must run the projectors (False for Base and for a contrast on the decoder)."""
        return self.contrast is not None and not reads_decoder(self.contrast)

    @property
    def needs_decoder_features(self) -> bool:
        """Whether the step must pass the decoder head's features and logits (`return_decoder_features`)."""
        return self.contrast is not None and reads_decoder(self.contrast)

    def forward(self, logits: Tensor, labels: Tensor, vis_embed: Optional[Tensor] = None,
                aux_embed: Optional[Tensor] = None, *, generator: Optional[torch.Generator] = None,
                scale: float = 1.0, decoder_features: Optional[Tensor] = None,
                head_logits: Optional[Tensor] = None) -> ObjectiveOutput:
        """L of Eq. 7; `scale` multiplies the contrastive weights (see `contrast_scale`). `decoder_features` and
        `head_logits` (the decoder head's pre-classifier map and logits at its resolution) are what a contrast
        that `needs_decoder_features` reads instead of the projector embeddings."""
        # The mean over labelled pixels, 0 for a batch with none (a crop of unlabelled pixels): PyTorch's mean is 0/0
        # = NaN there, which the backward pass spreads into every weight (trial 17: a run trained to a NaN loss).
        labelled = (labels != self.ignore_index).sum().clamp(min=1)
        ce = F.cross_entropy(logits.float(), labels, ignore_index=self.ignore_index, reduction="sum") / labelled
        terms: Dict[str, Tensor] = {"ce": ce}
        stats: Dict[str, Tensor] = {}
        contrast = ce.new_zeros(())
        if self.contrast is not None and scale != 0.0:
            if reads_decoder(self.contrast):
                if decoder_features is None or head_logits is None:
                    raise ValueError("this objective's contrast reads the decoder: pass decoder_features and head_logits")
                result = self.contrast(decoder_features, head_logits, labels, generator=generator)
            elif vis_embed is None or aux_embed is None:
                raise ValueError("this objective has contrastive terms: pass the projector embeddings")
            else:
                result = self.contrast(vis_embed, aux_embed, labels, generator=generator)
            terms.update(result.terms)
            stats.update(result.stats)
            for name, weight in self.weights.items():
                contrast = contrast + (scale * weight) * result.terms[name]
            # 1.0 on a step whose weighted terms are exactly 0 (e.g. one qualifying class: no negatives).
            stats["contrast_zero"] = (contrast.detach() == 0).float()
        return ObjectiveOutput(ce + contrast, ce, contrast, terms, stats)

    def formula(self) -> str:
        """Eq. 7 as configured, e.g. `L_ce + 0.2 L_cm + 0.2 L_vis + 0.2 L_aux`."""
        return " + ".join(["L_ce", *(f"{w:g} L_{k}" for k, w in self.weights.items())])

    def extra_repr(self) -> str:
        return f"{self.formula()}, ignore_index={self.ignore_index}"


def build_objective(loss_cfg, num_classes: int, ignore_index: int = 255, embed_dim: int = 256,
                    feature_dim: Optional[int] = None) -> Objective:
    """The objective of a `LossConfig`: `loss.contrast` from `CONTRASTS`, `loss.{cm,vis,aux}_weight`.

    `embed_dim` is the projectors' output width (`model.projector.dim`), which the region memory needs;
    `feature_dim` the decoder's feature width (`model.decoder.channels`), which a contrast on the decoder
    (`region_released`'s queues) needs instead.
    """
    try:
        make = CONTRASTS[loss_cfg.contrast]
    except KeyError:
        raise ValueError(f"loss.contrast={loss_cfg.contrast!r}: unknown; valid: {', '.join(CONTRASTS)}") from None
    weights = {"cm": loss_cfg.cm_weight, "vis": loss_cfg.vis_weight, "aux": loss_cfg.aux_weight}
    if reads_decoder(make):
        if feature_dim is None:
            raise ValueError(f"loss.contrast={loss_cfg.contrast} reads the decoder's features: pass feature_dim "
                             f"(model.decoder.channels)")
        embed_dim = feature_dim
    contrast = make.from_config(loss_cfg, num_classes, ignore_index, embed_dim)
    return Objective(contrast, weights, ignore_index)
