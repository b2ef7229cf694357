"""Key conversion for outside checkpoint formats: the one place that knows other releases' names.

A mapper takes a key of the outside file and returns our key, `IGNORED` for entries that have no
place in a segmentation model (ImageNet classifiers), or `None` for keys it does not recognise.

- SegNeXt `mscan_*.pth` and SegFormer `mit_b*.pth` share one layout: `patch_embed{i}.*`,
  `block{i}.{j}.*`, `norm{i}.*` for stage i, with the Mix-FFN depth-wise conv wrapped once more
  (`mlp.dwconv.dwconv`); ours is `stages.{i-1}.patch_embed.*` / `.block.{j}.*` / `.norm.*` and
  `mlp.dwconv`. The classifier `head.*` is ignored.
- torchvision `resnet*.pth`: `conv1`, `bn1` (stem) and `layer{i}.*`; ours is `stages.0.stem.*` and
  `stages.{i-1}.blocks.*`. The classifier `fc.*` is ignored.
- Released SMMCL checkpoints (palmdong/SMMCL): the encoder under `backbone.` with the auxiliary
  branch as `patch_embed_other{i}` / `block_other{i}` / `norm_other{i}`, cross-modal modules
  `module{i}.Spatial.encode.*` / `module{i}.Channel.encode.*`, fusion convs
  `fconv{i}.fusion_conv.0.*`, projectors `projector_color.project.*` / `projector_other.project.*`,
  and the decoder under `decode_head.` (mmcv ConvModule names, which our LightHam head keeps).
"""

from __future__ import annotations

import re
from typing import Callable, Dict, Optional

IGNORED = "<ignored>"

KeyMapper = Callable[[str], Optional[str]]

_STAGED = re.compile(r"^(patch_embed|block|norm)(\d+)\.(.+)$")
_STAGED_NAMES = {"patch_embed": "patch_embed", "block": "block", "norm": "norm"}
_RESNET_LAYER = re.compile(r"^layer(\d+)\.(.+)$")


def staged_backbone_key(key: str) -> Optional[str]:
    """SegNeXt / SegFormer ImageNet key -> our MSCAN / MiT key."""
    if key.startswith("head."):
        return IGNORED
    m = _STAGED.match(key)
    if m is None:
        return None
    part, stage, rest = m.group(1), int(m.group(2)), m.group(3)
    rest = rest.replace("mlp.dwconv.dwconv.", "mlp.dwconv.")
    return f"stages.{stage - 1}.{_STAGED_NAMES[part]}.{rest}"


def torchvision_resnet_key(key: str) -> Optional[str]:
    """torchvision ResNet key -> our ResNet key."""
    if key.startswith("fc."):
        return IGNORED
    if key.startswith(("conv1.", "bn1.")):
        return f"stages.0.stem.{key}"
    m = _RESNET_LAYER.match(key)
    if m is None:
        return None
    return f"stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}"


# Backbone name -> the mapper for the ImageNet files of that backbone's own release.
BACKBONE_FORMATS: Dict[str, KeyMapper] = {
    "mscan": staged_backbone_key,
    "mit": staged_backbone_key,
    "resnet": torchvision_resnet_key,
}

# What users call the files of each backbone format, for messages.
FORMAT_FILES: Dict[str, str] = {
    "mscan": "SegNeXt mscan_*.pth",
    "mit": "SegFormer mit_b*.pth",
    "resnet": "torchvision resnet*.pth",
}

_BRANCH = re.compile(r"^([a-z_]+?)_other(\d*)(\..+)$")
_MODULE = re.compile(r"^module(\d+)\.(Spatial|Channel)\.encode\.(.+)$")
_FCONV = re.compile(r"^fconv(\d+)\.fusion_conv\.0\.(.+)$")
_PROJECTOR = {"projector_color.": "encoder.projector_vis.", "projector_other.": "encoder.projector_aux."}
_MLP_DECODER = re.compile(r"^linear_c(\d+)\.(.+)$")
_MLP_FUSE = {"linear_fuse.conv.": "linear_fuse.0.", "linear_fuse.bn.": "linear_fuse.1."}


def official_encoder_key(key: str, backbone_key: KeyMapper) -> Optional[str]:
    """Released SMMCL encoder key (without `backbone.`) -> our Segmentor key."""
    m = _MODULE.match(key)
    if m:
        part = "spatial" if m.group(2) == "Spatial" else "channel"
        return f"encoder.cross_modal.{int(m.group(1)) - 1}.{part}.{m.group(3)}"
    m = _FCONV.match(key)
    if m:
        return f"encoder.fusions.{int(m.group(1)) - 1}.conv.{m.group(2)}"
    for theirs, ours in _PROJECTOR.items():
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    branch = "vis"
    m = _BRANCH.match(key)
    if m:
        # `block_other2.0.x` is the auxiliary copy of `block2.0.x`.
        branch, key = "aux", f"{m.group(1)}{m.group(2)}{m.group(3)}"
    inner = backbone_key(key)
    if inner is None or inner == IGNORED:
        return inner
    return f"encoder.{branch}.{inner}"


def official_decoder_key(key: str) -> str:
    """Released decoder key (without `decode_head.`) -> our decoder key (LightHam names match as is)."""
    m = _MLP_DECODER.match(key)
    if m:
        return f"decoder.linear_c.{int(m.group(1)) - 1}.{m.group(2)}"
    for theirs, ours in _MLP_FUSE.items():
        if key.startswith(theirs):
            return "decoder." + ours + key[len(theirs):]
    return "decoder." + key


def official_smmcl_key(key: str, backbone_key: KeyMapper) -> Optional[str]:
    """Released SMMCL checkpoint key (with `backbone.` / `decode_head.`) -> our Segmentor key."""
    if key.startswith("decode_head."):
        return official_decoder_key(key[len("decode_head."):])
    if key.startswith("backbone."):
        key = key[len("backbone."):]
    return official_encoder_key(key, backbone_key)


def looks_official_smmcl(keys) -> bool:
    """True for a released SMMCL state dict (whole model or encoder only)."""
    return any(_MODULE.match(k.removeprefix("backbone.")) or k.startswith("decode_head.") for k in keys)


def looks_smmcl(keys) -> bool:
    """True for a state dict of our own Segmentor."""
    return any(k.startswith(("encoder.vis.", "encoder.aux.")) for k in keys)
