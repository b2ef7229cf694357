"""Where a study's setting departs from the paper's, computed from its resolved configs.

The paper (Sec. 3.2, 4.1) trains ImageNet-pretrained encoders (MSCAN-B, MiT-B2 or ResNet-101) with each
backbone's own decoder, projectors of width 256 on the stage-4 features, crops of 480x640, batch 16, AdamW at
6e-5 for hundreds of epochs, and contrastive weights 0.2 (low light) or 0.05 (night, normal light). A study on
the built-in data departs from several of these on purpose; every table, chart and headline it writes names
them (`non_paper_options`), so a reader never takes a small-model, from-scratch number for the paper's.
"""

from __future__ import annotations

from typing import Iterable, List, Mapping, Optional

from smmcl.config import Config
from smmcl.models.factory import BACKBONES, decoder_name, resolve_backbone

# The paper's setting, as far as a config can depart from it (the values of configs/paper/bases/paper.yaml).
PAPER_PROJECTOR_STAGE = 4
PAPER_PROJECTOR_DIM = 256
PAPER_CROP = [480, 640]
PAPER_BATCH = 16
PAPER_LR = 6e-5
PAPER_WEIGHTS = (0.0, 0.05, 0.2)  # 0: the paper's Base; 0.2 low light; 0.05 night and normal light


def _size(values: Iterable[int]) -> str:
    return "x".join(str(v) for v in values)


def _encoder(cfg: Config) -> Optional[str]:
    name = cfg.model.backbone.name
    entry = BACKBONES[name]
    mine = resolve_backbone(cfg.model.backbone)
    paper = resolve_backbone(type(cfg.model.backbone)(name=name, preset=entry.paper_preset))
    if mine == paper:
        return None
    dims = mine.get("embed_dims")
    depths = mine.get("depths")
    shape = ", ".join(s for s in (f"widths {dims}" if dims else "", f"depths {depths}" if depths else "") if s)
    return f"encoder {name} {cfg.model.backbone.preset or ''} with {shape} (paper: {name} {entry.paper_preset})".replace("  ", " ")


def _initialisation(cfg: Config, described: Optional[str]) -> Optional[str]:
    if described:
        return f"{described} (paper: ImageNet encoders)"
    if not cfg.model.pretrained:
        return "encoders trained from scratch (paper: ImageNet-pretrained)"
    return None  # a pretrained file of the user's: the study cannot tell what it was trained on


def setting_departures(cfg: Config, initialisation: Optional[str] = None) -> List[str]:
    """What one resolved config does that the paper's setting does not, in short phrases."""
    out: List[str] = []
    m, d, t = cfg.model, cfg.data, cfg.train
    if (enc := _encoder(cfg)) is not None:
        out.append(enc)
    if (init := _initialisation(cfg, initialisation)) is not None:
        out.append(init)
    paper_decoder = BACKBONES[m.backbone.name].paper_decoder
    if decoder_name(m) != paper_decoder:
        out.append(f"{decoder_name(m)} decoder (paper: {paper_decoder} for {m.backbone.name})")
    if m.projector.stage != PAPER_PROJECTOR_STAGE:
        out.append(f"projectors on stage {m.projector.stage} (paper: stage {PAPER_PROJECTOR_STAGE})")
    if m.projector.dim != PAPER_PROJECTOR_DIM:
        out.append(f"projector width {m.projector.dim} (paper: {PAPER_PROJECTOR_DIM})")
    if list(d.crop_size) != PAPER_CROP:
        out.append(f"{_size(d.crop_size)} crops (paper: {_size(PAPER_CROP)})")
    batch = t.batch_size * t.accumulate
    if batch != PAPER_BATCH:
        out.append(f"batch {batch} (paper: {PAPER_BATCH})")
    if t.lr != PAPER_LR:
        out.append(f"lr {t.lr:g} (paper: {PAPER_LR:g})")
    if t.max_iters:
        out.append(f"{t.max_iters} iterations (paper: 300-600 epochs)")
    if d.photometric.enabled:
        out.append("photometric augmentation (not in the paper)")
    if t.ema.enabled:
        out.append("an average of weights (not in the paper)")
    return out


def variant_departures(cfg: Config) -> List[str]:
    """Departures that belong to one variant: contrastive weights the paper never used, a delayed start."""
    loss = cfg.loss
    out = []
    weights = {"cm": loss.cm_weight, "vis": loss.vis_weight, "aux": loss.aux_weight}
    odd = {k: w for k, w in weights.items() if w not in PAPER_WEIGHTS}
    if odd:
        out.append("weights " + ", ".join(f"{k} {w:g}" for k, w in odd.items()) + " (paper: 0.2 or 0.05)")
    if loss.contrast == "region":
        out.append(f"[26] adapted, unlike its released code: temperature {loss.temperature:g} (released: 0.2), "
                   f"a memory of {loss.region_memory} regions per class (released: the training-set size), "
                   "ground-truth regions per image (released: predicted regions over the batch), pixel queries on "
                   "projector features (released: region queries on decoder features)")
    if loss.contrast == "region_released":
        out.append(f"[26] as released, but: a queue of {loss.region_queue} regions per class (released: 2975, "
                   "the Cityscapes training-set size), per-class terms averaged (released: summed)")
    if loss.contrast_start or loss.contrast_ramp:
        out.append(f"contrast from iteration {loss.contrast_start}, ramped over {loss.contrast_ramp} (not in the paper)")
    return out


def non_paper_options(reference: Config, variants: Mapping[str, Config],
                      initialisation: Optional[str] = None) -> dict:
    """The study's departures from the paper: `setting` (shared by every run, from the reference's config) and
    `variants` (name -> what that variant adds), and `headline`, the one line every title carries."""
    setting = setting_departures(reference, initialisation)
    per_variant = {name: v for name, cfg in variants.items() if (v := variant_departures(cfg))}
    return {"setting": setting, "variants": per_variant,
            "headline": "Not the paper's setting: " + "; ".join(setting) if setting else "The paper's setting"}
