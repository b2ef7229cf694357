"""Dataset presets: the on-disk layout, label coding and scoring of each release, as config layers.

A preset is applied under the user's YAML and overrides (`data.preset: mfnet`), so any of its values can
still be changed. Layouts (SPEC §3):

- `llrgbd`   LLRGBD-synthetic as prepared for the released SMMCL code: `train/` and `test/` folders, each
             with `rgb/`, `depth/` (single-channel PNG) and `label/` and its list (`train.txt`, `test.txt`;
             without a list, every image of the split folder); 14 labels, void (0) trained but not scored.
- `mfnet`    MFNet as released: `images/` holds RGB + thermal as one 4-channel PNG, `labels/` the 9 labels,
             lists `train.txt`, `val.txt`, `test.txt`, `test_day.txt`, `test_night.txt`; names end in D (day)
             or N (night), the subsets `day` / `night`.
- `mfnet-split` the same data as separate `RGB/`, `Thermal/`, `Label/` folders (CMX-style preparation).
- `nyudv2`   NYUDv2 as prepared by CMX: `RGB/*.jpg`, `HHA/*.jpg`, `Label/*.png` with 1..40 and 0 = unlabeled
             (shifted by -1, 0 -> ignore), `train.txt` (795) / `test.txt` (654); list lines may be paths.
- `generic`  any RGB-X set: `RGB/`, `Depth/` (or set `data.aux_dir`), `Label/` PNGs, `train.txt`, `test.txt`.
"""

from __future__ import annotations

from typing import Any, Dict

from smmcl.data.classes import (
    LLRGBD_CLASSES,
    LLRGBD_PALETTE,
    MFNET_CLASSES,
    MFNET_PALETTE,
    NYUDV2_CLASSES,
    NYUDV2_PALETTE,
)


def _palette(colours) -> list:
    return [list(c) for c in colours]


_MFNET_COMMON: Dict[str, Any] = {
    "aux_kind": "thermal",
    "class_names": list(MFNET_CLASSES),
    "palette": _palette(MFNET_PALETTE),
    "subsets": {"day": "D", "night": "N"},
}

DATASET_PRESETS: Dict[str, Dict[str, Any]] = {
    "llrgbd": {
        "data": {
            "rgb_dir": "rgb", "aux_dir": "depth", "label_dir": "label",
            "split_dirs": {"train": "train", "test": "test"},
            "aux_kind": "depth",
            "class_names": list(LLRGBD_CLASSES), "palette": _palette(LLRGBD_PALETTE),
        },
        "model": {"num_classes": len(LLRGBD_CLASSES)},
        "eval": {"exclude_classes": [0]},
    },
    "mfnet": {
        "data": {"layout": "packed", "rgb_dir": "images", "label_dir": "labels", **_MFNET_COMMON},
        "model": {"num_classes": len(MFNET_CLASSES)},
        "eval": {"exclude_classes": []},
    },
    "mfnet-split": {
        "data": {"layout": "split", "rgb_dir": "RGB", "aux_dir": "Thermal", "label_dir": "Label", **_MFNET_COMMON},
        "model": {"num_classes": len(MFNET_CLASSES)},
        "eval": {"exclude_classes": []},
    },
    "nyudv2": {
        "data": {
            "rgb_dir": "RGB", "aux_dir": "HHA", "label_dir": "Label",
            "rgb_ext": ".jpg", "aux_ext": ".jpg", "label_ext": ".png",
            "label_shift": 1, "aux_kind": "hha",
            "class_names": list(NYUDV2_CLASSES), "palette": _palette(NYUDV2_PALETTE),
        },
        "model": {"num_classes": len(NYUDV2_CLASSES)},
        "eval": {"exclude_classes": []},
    },
    "generic": {
        "data": {"rgb_dir": "RGB", "aux_dir": "Depth", "label_dir": "Label", "aux_kind": "depth"},
    },
}


def preset_layer(name: str) -> Dict[str, Any]:
    """The config layer of a preset; an unknown name is an error listing the known ones."""
    if name not in DATASET_PRESETS:
        raise ValueError(f"unknown dataset preset {name!r}; valid: {', '.join(sorted(DATASET_PRESETS))}")
    layer = {section: dict(values) for section, values in DATASET_PRESETS[name].items()}
    layer["data"]["preset"] = name
    return layer
