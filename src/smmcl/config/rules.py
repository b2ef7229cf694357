"""Value ranges of a loaded config, checked at load time so that a bad value fails before any work, with its key.

Choices are `Literal` types in `smmcl.config` (OmegaConf rejects other values, listing the valid ones);
here are the numeric ranges and the few formats a type cannot say (`train.device`'s cuda:N, a backbone
preset that must belong to the chosen backbone).
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, List, Optional, Tuple

from smmcl.config.presets import backbone_preset_names
from smmcl.errors import ConfigError

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# The images of one sample live apart: (folder key, what it holds) pairs that may not read the same files.
_APART = (("aux", "the auxiliary images", "rgb", "the RGB ones"), ("aux", "the auxiliary images", "label", "the labels"),
          ("label", "the labels", "rgb", "the RGB images"))


def _apart_rows(d) -> list:
    """Rows refusing two of a sample's folders that name the same files (same folder and extension): the RGB
    images read as the auxiliary ones, say. In the packed layout the auxiliary values are inside the RGB files."""
    rows = []
    for role, holds, other, other_holds in _APART:
        folder, ext = getattr(d, f"{role}_dir"), getattr(d, f"{role}_ext")
        other_folder, other_ext = getattr(d, f"{other}_dir"), getattr(d, f"{other}_ext")
        same = folder == other_folder and ext == other_ext and not (role == "aux" and d.layout == "packed")
        # Both keys named, with their values: either may be the one changed (trial 12 #152: data.rgb_dir=Label was
        # said as data.label_dir='Label').
        rows.append((f"data.{other}_dir={other_folder!r} and data.{role}_dir", folder, lambda x, same=same: not same,
                     f"a folder other than data.{other}_dir for data.{role}_dir, as both name {folder}/*{ext}: "
                     f"{holds} are not {other_holds}; set back the one that was changed"))
    return rows


def _rules(cfg) -> List[Tuple[str, Any, Callable[[Any], bool], str]]:
    """(dotted key, value, test, what is allowed) for every ranged value."""
    m, d, lo, t, e = cfg.model, cfg.data, cfg.loss, cfg.train, cfg.eval
    b = m.backbone
    pos_int = (lambda x: isinstance(x, int) and x >= 1, "an integer >= 1")
    nonneg_int = (lambda x: isinstance(x, int) and x >= 0, "an integer >= 0")
    nonneg = (lambda x: _number(x) and x >= 0, "a finite number >= 0")
    positive = (lambda x: _number(x) and x > 0, "a finite number > 0")
    fraction = (lambda x: _number(x) and 0 <= x < 1, "a number in [0, 1)")
    size2 = (lambda x: len(x) == 2 and all(isinstance(v, int) and v >= 1 for v in x), "[height, width], both integers >= 1")
    pos_list = (lambda x: len(x) >= 1 and all(_number(v) and v > 0 for v in x), "a non-empty list of finite numbers > 0")
    int_list = (lambda x: x is None or (len(x) >= 1 and all(isinstance(v, int) and v >= 1 for v in x)),
                "null or a list of integers >= 1")

    def optional(rule):
        test, text = rule
        return (lambda x: x is None or test(x), f"null or {text}")

    rows = [
        ("model.num_classes", m.num_classes, *pos_int),
        # The type admits every backbone's preset names; which ones fit depends on the backbone.
        ("model.backbone.preset", b.preset, lambda x: x is None or x in backbone_preset_names(b.name),
         f"null or one of {', '.join(backbone_preset_names(b.name))} (model.backbone.name={b.name})"),
        ("model.backbone.embed_dims", b.embed_dims, *int_list),
        ("model.backbone.depths", b.depths, *int_list),
        ("model.backbone.drop_path_rate", b.drop_path_rate, *optional(fraction)),
        ("model.decoder.channels", m.decoder.channels, *pos_int),
        # LightHam's GroupNorm splits its channels into 32 groups (SegNeXt).
        ("model.decoder.channels", m.decoder.channels,
         lambda x: m.decoder.name != "lightham" or (isinstance(x, int) and x % 32 == 0),
         "a multiple of 32 for the lightham decoder (its GroupNorm has 32 groups)"),
        ("model.decoder.dropout", m.decoder.dropout, *fraction),
        ("model.decoder.ham_rank", m.decoder.ham_rank, *pos_int),
        ("model.decoder.ham_train_steps", m.decoder.ham_train_steps, *pos_int),
        ("model.decoder.ham_eval_steps", m.decoder.ham_eval_steps, *pos_int),
        ("model.cross_modal.scale", m.cross_modal.scale, _number, "a finite number"),
        ("model.projector.dim", m.projector.dim, *pos_int),
        ("model.projector.stage", m.projector.stage, lambda x: x in (1, 2, 3, 4), "one of 1, 2, 3, 4"),
        ("data.crop_size", d.crop_size, *size2),
        ("data.scales", d.scales, *pos_list),
        ("data.num_workers", d.num_workers, *nonneg_int),
        ("data.aux_max", d.aux_max, *optional(positive)),
        ("data.ignore_index", d.ignore_index, *nonneg_int),
        # One of the class ids would be class and ignore at once (trial 16 #335: every file "has value 255").
        ("data.ignore_index", d.ignore_index, lambda x: not isinstance(x, int) or x >= m.num_classes,
         f"a value outside the class ids 0..{m.num_classes - 1} (model.num_classes={m.num_classes}), e.g. 255"),
        *_apart_rows(d),
        ("data.class_names", d.class_names, lambda x: len(x) in (0, m.num_classes),
         f"no names, or one per class: model.num_classes={m.num_classes}"),
        # Two classes of one name cannot be told apart in a score table, a legend or a report (trial 16 #217).
        ("data.class_names", d.class_names, lambda x: len({str(n) for n in x}) == len(x),
         "a different name for each class (one is given twice)"),
        ("data.palette", d.palette, lambda x: len(x) in (0, m.num_classes) and all(
            len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in x),
         f"no colours, or one [R, G, B] (0..255 each) per class: model.num_classes={m.num_classes}"),
        *_photometric_rows(d),
        ("loss.cm_weight", lo.cm_weight, *nonneg),
        ("loss.vis_weight", lo.vis_weight, *nonneg),
        ("loss.aux_weight", lo.aux_weight, *nonneg),
        ("loss.temperature", lo.temperature, *positive),
        ("loss.cm_temperature", lo.cm_temperature, *positive),
        ("loss.min_views", lo.min_views, *pos_int),
        ("loss.max_views", lo.max_views, *pos_int),
        ("loss.max_total", lo.max_total, *pos_int),
        ("loss.region_memory", lo.region_memory, *pos_int),
        ("loss.region_temperature", lo.region_temperature, *positive),
        ("loss.region_queue", lo.region_queue, *pos_int),
        ("loss.contrast_start", lo.contrast_start, *nonneg_int),
        ("loss.contrast_ramp", lo.contrast_ramp, *nonneg_int),
        ("train.epochs", t.epochs, *pos_int),
        ("train.max_iters", t.max_iters, *optional(pos_int)),
        ("train.batch_size", t.batch_size, *pos_int),
        ("train.accumulate", t.accumulate, *pos_int),
        ("train.paper_batch", t.paper_batch, *optional(pos_int)),
        ("train.ema.decay", t.ema.decay, lambda x: _number(x) and 0 < x < 1, "a number in (0, 1)"),
        ("train.lr", t.lr, *positive),
        ("train.weight_decay", t.weight_decay, *nonneg),
        ("train.betas", t.betas, lambda x: len(x) == 2 and all(_number(v) and 0 <= v < 1 for v in x),
         "two numbers in [0, 1)"),
        ("train.warmup_epochs", t.warmup_epochs, *nonneg),
        ("train.poly_power", t.poly_power, *nonneg),
        ("train.seed", t.seed, *nonneg_int),
        ("train.device", t.device, lambda x: bool(_DEVICE.match(x)), "auto, cpu, mps, cuda or cuda:N"),
        ("train.checkpoint_every", t.checkpoint_every, *nonneg_int),
        ("train.keep_checkpoints", t.keep_checkpoints, *nonneg_int),
        ("train.log_every", t.log_every, *pos_int),
        ("train.grad_probe_every", t.grad_probe_every, *nonneg_int),
        ("train.val_every", t.val_every, *nonneg_int),
        ("train.test_every", t.test_every, *nonneg_int),
        ("eval.batch_size", e.batch_size, *pos_int),
        ("eval.crop_size", e.crop_size, *size2),
        ("eval.stride_rate", e.stride_rate, lambda x: _number(x) and 0 < x <= 1, "a number in (0, 1]"),
        ("eval.scales", e.scales, *pos_list),
        ("eval.exclude_classes", e.exclude_classes, lambda x: all(isinstance(v, int) and 0 <= v < m.num_classes for v in x)
         and len(set(x)) < m.num_classes,
         f"class ids in 0..{m.num_classes - 1} (model.num_classes={m.num_classes}), leaving at least one to score"),
    ]
    return rows


def _range(lo_ok: Callable[[Any], bool], hi_ok: Callable[[Any], bool], text: str):
    """A [low, high] pair: two numbers, low <= high, each within its bounds."""
    return (lambda x: len(x) == 2 and all(_number(v) for v in x) and x[0] <= x[1] and lo_ok(x[0]) and hi_ok(x[1]),
            f"[low, high] with {text} and low <= high")


def _photometric_rows(d) -> List[Tuple[str, Any, Callable[[Any], bool], str]]:
    """`data.photometric`: the ranges, then the auxiliary options against `data.aux_kind`: one meant for another
    modality would silently do nothing, so it is refused while the augmentation is enabled."""
    p, kind = d.photometric, d.aux_kind
    key = "data.photometric."
    gains = _range(lambda v: v > 0, lambda v: True, "both numbers > 0")
    levels = _range(lambda v: v >= 0, lambda v: v <= 1, "both numbers in [0, 1]")

    def only(kinds: Tuple[str, ...], neutral: Callable[[Any], bool], what: str):
        return (lambda x: not p.enabled or kind in kinds or neutral(x),
                f"{what} with data.aux_kind={kind} ({'/'.join(kinds)} only)")

    return [
        (key + "exposure", p.exposure, *gains),
        (key + "gamma", p.gamma, *gains),
        (key + "shot_noise", p.shot_noise, *levels),
        (key + "read_noise", p.read_noise, *levels),
        (key + "aux_holes", p.aux_holes, lambda x: _number(x) and 0 <= x < 1, "a number in [0, 1)"),
        (key + "aux_hole_size", p.aux_hole_size, lambda x: isinstance(x, int) and x >= 1, "an integer >= 1 (pixels)"),
        (key + "aux_noise", p.aux_noise, lambda x: _number(x) and 0 <= x < 1, "a number in [0, 1)"),
        (key + "aux_gain", p.aux_gain, *gains),
        (key + "aux_offset", p.aux_offset, *_range(lambda v: v >= -1, lambda v: v <= 1, "both numbers in [-1, 1]")),
        (key + "aux_holes", p.aux_holes, *only(("depth", "hha"), lambda x: x == 0, "0")),
        (key + "aux_noise", p.aux_noise, *only(("depth",), lambda x: x == 0, "0")),
        (key + "aux_gain", p.aux_gain, *only(("thermal",), lambda x: list(x) == [1, 1], "[1, 1]")),
        (key + "aux_offset", p.aux_offset, *only(("thermal",), lambda x: list(x) == [0, 0], "[0, 0]")),
    ]


def check_values(cfg, origin: Optional[str] = None) -> None:
    """Raise a `ConfigError` for the first value outside its range, naming the key, the value and the range."""
    for key, value, test, allowed in _rules(cfg):
        try:
            ok = test(value)
        except TypeError:
            ok = False
        if not ok:
            where = f"{origin}: " if origin else ""
            raise ConfigError(f"{where}{key}={value!r}: expected {allowed}")
