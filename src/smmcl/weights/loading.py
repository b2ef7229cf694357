"""Load outside weights into a Segmentor: ImageNet backbones into both branches, released SMMCL models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from smmcl.errors import CheckpointError

from .formats import (
    BACKBONE_FORMATS,
    FORMAT_FILES,
    IGNORED,
    KeyMapper,
    looks_official_smmcl,
    looks_smmcl,
    official_smmcl_key,
)
from .reading import StateDict, WeightSource, read_state_dict

# Older files (torchvision's 2017 ResNets) predate this BN buffer; it only matters for BN with
# momentum=None, so a file without it is complete.
_OPTIONAL_SUFFIX = ".num_batches_tracked"


def _clip(keys: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


@dataclass
class LoadReport:
    """What a load did: tensors copied, our keys left untouched, file keys unused or deliberately ignored."""

    source: str
    format: str
    loaded: int = 0
    missing_keys: List[str] = field(default_factory=list)
    unexpected_keys: List[str] = field(default_factory=list)
    ignored_keys: List[str] = field(default_factory=list)
    # File keys outside the parts asked for (`model.pretrained_parts`): left out by choice, not for want of a place.
    not_asked: List[str] = field(default_factory=list)
    parts: str = "all"

    def summary(self) -> str:
        lines = [f"loaded {self.loaded} tensors from {self.source} ({self.format})"]
        if self.ignored_keys:
            lines.append(f"  ignored (no place in a segmentation model): {_clip(self.ignored_keys)}")
        if self.not_asked:
            lines.append(f"  not loaded (model.pretrained_parts={self.parts}): {len(self.not_asked)}: "
                         f"{_clip(self.not_asked)}")
        lines.append(
            f"  missing in the file, kept as initialised: {len(self.missing_keys)}"
            + (f": {_clip(self.missing_keys)}" if self.missing_keys else "")
        )
        lines.append(
            f"  unexpected in the file, not used: {len(self.unexpected_keys)}"
            + (f": {_clip(self.unexpected_keys)}" if self.unexpected_keys else "")
        )
        return "\n".join(lines)

    __str__ = summary


def load_state_strict(model: nn.Module, state: Mapping[str, torch.Tensor], origin: str, what: str = "the model") -> None:
    """Load every tensor of `state` into `model`, strictly, turning PyTorch's long key report into one readable
    error naming `origin` and `what` it was checked against (the one strict load: checkpoints, smmcl weights)."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"{origin} does not match {what}: {str(exc).splitlines()[-1].strip()}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{origin} does not match {what}: {len(result.missing_keys)} missing keys "
            f"(e.g. {result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected "
            f"(e.g. {result.unexpected_keys[:3]}); was it trained with another config?"
        )


def _copy_into(model: nn.Module, pairs: Mapping[str, tuple], source: str) -> int:
    """Copy (file key, tensor) into our keys, checking every shape before touching the model."""
    ours = model.state_dict()
    for our_key, (their_key, value) in pairs.items():
        target = ours[our_key]
        if tuple(target.shape) != tuple(value.shape):
            raise CheckpointError(
                f"{source}: '{their_key}' has shape {list(value.shape)} in the file but the model's "
                f"'{our_key}' has shape {list(target.shape)}; was the model built with the matching config?"
            )
    with torch.no_grad():
        for our_key, (_, value) in pairs.items():
            ours[our_key].copy_(value.to(dtype=ours[our_key].dtype))
    return len(pairs)


def _apply(
    model: nn.Module, state: StateDict, mapper, source: str, fmt: str, scope: Sequence[str]
) -> LoadReport:
    """Map every file key with `mapper` (-> list of our keys), copy, and report against `scope` prefixes."""
    ours = model.state_dict()
    report = LoadReport(source, fmt)
    pairs: Dict[str, tuple] = {}
    for key, value in state.items():
        targets = mapper(key)
        if targets == IGNORED:
            report.ignored_keys.append(key)
            continue
        targets = [t for t in (targets or []) if t in ours]
        if not targets:
            report.unexpected_keys.append(key)
        for target in targets:
            pairs[target] = (key, value)
    report.loaded = _copy_into(model, pairs, source)
    report.missing_keys = [
        k for k in ours if k.startswith(tuple(scope)) and k not in pairs and not k.endswith(_OPTIONAL_SUFFIX)
    ]
    return report


def _backbone_mapper(model: nn.Module) -> KeyMapper:
    name = backbone_name(model)
    if name not in BACKBONE_FORMATS:
        raise CheckpointError(f"no outside weight format is known for backbone {name!r}")
    return BACKBONE_FORMATS[name]


def backbone_name(model: nn.Module) -> str:
    """The factory name of the model's backbone family (`mscan`, `mit`, `resnet`)."""
    from smmcl.models.factory import BACKBONES

    for name, entry in BACKBONES.items():
        if isinstance(model.encoder.vis, entry.build):  # type: ignore[arg-type]
            return name
    raise CheckpointError(f"unknown backbone class {type(model.encoder.vis).__name__}")


def load_backbone_weights(model: nn.Module, source: WeightSource, strict: bool = False) -> LoadReport:
    """Load an ImageNet file of the backbone's own release into BOTH encoder branches.

    Accepts SegNeXt `mscan_*.pth`, SegFormer `mit_b*.pth` or torchvision `resnet*.pth` (with or without
    a `state_dict` wrapper), as a path or a loaded mapping. `strict=True` raises if any backbone key is
    missing from the file or any file key is unused.
    """
    state, origin, _ = read_state_dict(source)
    return _load_backbone(model, state, origin, strict)


def _load_backbone(model: nn.Module, state: StateDict, origin: str, strict: bool) -> LoadReport:
    name = backbone_name(model)
    mapper = _backbone_mapper(model)
    if all(k.startswith("backbone.") for k in state):
        state = {k[len("backbone."):]: v for k, v in state.items()}

    def both(key: str):
        inner = mapper(key)
        if inner is None or inner == IGNORED:
            return inner
        return [f"encoder.vis.{inner}", f"encoder.aux.{inner}"]

    report = _apply(model, state, both, origin, FORMAT_FILES[name], ("encoder.vis.", "encoder.aux."))
    if report.loaded == 0:
        raise CheckpointError(
            f"{origin}: none of its {len(state)} keys (e.g. {_clip(list(state), 3)}) is a {FORMAT_FILES[name]} "
            f"key for the {name} backbone; is it the right file for this config?"
        )
    _check_strict(report, strict)
    return report


def load_official_smmcl(model: nn.Module, source: WeightSource, strict: bool = True) -> LoadReport:
    """Load a released SMMCL checkpoint (palmdong/SMMCL) into a model built with the matching config.

    `source` is the whole `epoch-*.pth` file (a dict with `model`), its bare state dict, or an
    encoder-only state dict without the `backbone.` prefix, as a path or a mapping. Strict loading
    requires every key of the parts the file holds (the encoder, and the decoder when present) to be
    filled and every file key to be used. Returns the report with `missing_keys` / `unexpected_keys`.
    """
    state, origin, _ = read_state_dict(source)
    return _load_official(model, state, origin, strict)


def _load_official(model: nn.Module, state: StateDict, origin: str, strict: bool) -> LoadReport:
    mapper = _backbone_mapper(model)
    report = _apply(
        model, state, lambda k: _as_list(official_smmcl_key(k, mapper)), origin, "released SMMCL checkpoint",
        ("encoder.", "decoder."),
    )
    # An encoder-only file leaves the decoder as initialised: reported, but not a strict failure.
    has_decoder = any(k.startswith("decode_head.") for k in state)
    _check_strict(report, strict, hint=_ham_out_hint(model, state), scope=None if has_decoder else "encoder.")
    return report


def _as_list(key: Optional[str]):
    return key if key in (None, IGNORED) else [key]


def _ham_out_hint(model: nn.Module, state: StateDict) -> str:
    ours = model.state_dict()
    theirs_has_gn = any(k.endswith("hamburger.ham_out.gn.weight") for k in state)
    theirs_has_bias = any(k.endswith("hamburger.ham_out.conv.bias") for k in state)
    if theirs_has_bias and not theirs_has_gn and "decoder.hamburger.ham_out.gn.weight" in ours:
        return (
            " The file's Hamburger output conv has a bias and no GroupNorm (the released SMMCL code): "
            "build the model with model.decoder.ham_out_norm=false."
        )
    if theirs_has_gn and "decoder.hamburger.ham_out.conv.bias" in ours:
        return " The file's Hamburger output has a GroupNorm: build with model.decoder.ham_out_norm=true."
    return ""


def _check_strict(report: LoadReport, strict: bool, hint: str = "", scope: Optional[str] = None) -> None:
    missing = [k for k in report.missing_keys if scope is None or k.startswith(scope)]
    if strict and (missing or report.unexpected_keys):
        raise CheckpointError(
            f"{report.source} does not match the model ({report.format}):\n{report.summary()}\n{hint}".rstrip()
        )


# `model.pretrained_parts`: the model keys a load may fill. `branches` is the paper's start (Sec. 4.1: ImageNet
# encoders): both encoder branches only; cross-modal modules, fusion, projectors and decoder stay as initialised.
PRETRAINED_PARTS = {"all": ("encoder.", "decoder."), "branches": ("encoder.vis.", "encoder.aux.")}


def load_weights(model: nn.Module, source: WeightSource, parts: str = "all") -> LoadReport:
    """`model.pretrained`: detect the file kind (smmcl weights, released SMMCL, ImageNet backbone) and load it;
    `parts` (`model.pretrained_parts`): every part the file holds, or only the two encoder branches."""
    if parts not in PRETRAINED_PARTS:
        raise CheckpointError(f"model.pretrained_parts={parts!r}: unknown; valid: {', '.join(PRETRAINED_PARTS)}")
    scope = PRETRAINED_PARTS[parts]
    state, origin, _ = read_state_dict(source)
    if looks_smmcl(state):
        kept = {k: v for k, v in state.items() if k.startswith(scope)}
        try:
            report = _apply(model, kept, lambda k: [k], origin, "smmcl weights", scope)
        except CheckpointError as exc:
            if parts == "branches":
                raise
            # Most often a model of other classes fine-tuned from these weights (trial 6 C92, C94).
            raise CheckpointError(f"{exc}; to start a model of other classes (or decoder) from these weights, load "
                                  f"the encoder branches alone: model.pretrained_parts=branches") from None
        report.not_asked, report.parts = [k for k in state if k not in kept], parts
        _check_strict(report, True)
        return report
    if looks_official_smmcl(state):
        if parts != "all":
            raise CheckpointError(f"{origin}: a released SMMCL checkpoint loads whole (model.pretrained_parts=all); "
                                  f"for its branches alone, convert it to smmcl weights first (smmcl convert)")
        return _load_official(model, state, origin, strict=True)
    return _load_backbone(model, state, origin, strict=False)  # an ImageNet file holds the branches only
