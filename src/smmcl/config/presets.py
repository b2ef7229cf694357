"""The named presets a config can ask for, as plain data: dataset presets (whole config layers) and the
backbone preset names.

This module is the bottom layer with `smmcl.config`: it imports nothing from `smmcl`, so the config can
apply a dataset preset at load without reaching up into `smmcl.data`. A dataset preset's class names and
palette are config values, so the class tables live here too; `smmcl.data.classes` re-exports them beside
the drawing helpers.

A dataset preset is applied under every config file (its bases included) and the overrides
(`data.preset: mfnet`), so any of its values can still be changed. Layouts (docs/configuration.md, "Data layout"):

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

Label ids are list positions: `LLRGBD_CLASSES[3]` is the class stored as 3 in a label PNG.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

# --- class tables ---------------------------------------------------------------------------------

# LLRGBD-synthetic (docs/configuration.md, "Data layout"): 14 labels, 0 is void, which is trained but left
# out of the reported mIoU.
LLRGBD_CLASSES = [
    "void", "bed", "books", "ceiling", "chair", "floor", "furniture",
    "objects", "painting", "sofa", "table", "tv", "wall", "window",
]
LLRGBD_PALETTE = [
    (0, 0, 0),        # void
    (220, 120, 160),  # bed
    (250, 210, 40),   # books
    (150, 220, 240),  # ceiling
    (240, 100, 30),   # chair
    (130, 90, 50),    # floor
    (70, 160, 70),    # furniture
    (200, 40, 200),   # objects
    (255, 150, 110),  # painting
    (90, 60, 200),    # sofa
    (0, 110, 110),    # table
    (30, 90, 255),    # tv
    (170, 170, 170),  # wall
    (40, 220, 200),   # window
]

# MFNet (docs/configuration.md, "Data layout"): 9 labels, all scored. The palette is the one MFNet-based
# works usually draw with.
MFNET_CLASSES = [
    "unlabeled", "car", "person", "bike", "curve", "car_stop", "guardrail", "color_cone", "bump",
]
MFNET_PALETTE = [
    (0, 0, 0),        # unlabeled
    (64, 0, 128),     # car
    (64, 64, 0),      # person
    (0, 128, 192),    # bike
    (0, 0, 192),      # curve
    (128, 128, 0),    # car_stop
    (64, 64, 128),    # guardrail
    (192, 128, 128),  # color_cone
    (192, 64, 0),     # bump
]

# NYUDv2 40-class labelling (Gupta et al. 2013), ids after the -1 shift of the released label PNGs.
NYUDV2_CLASSES = [
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat",
    "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel", "shower curtain", "box",
    "whiteboard", "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure",
    "otherfurniture", "otherprop",
]


def bit_palette(n: int) -> list[tuple[int, int, int]]:
    """n distinct colours by spreading the bits of the class id over R, G and B (PASCAL VOC's scheme)."""
    colours = []
    for k in range(n):
        r = g = b = 0
        c = k
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return colours


# Id 0 (wall) would be black in the VOC scheme, which reads as "ignored": start from id 1's colour.
NYUDV2_PALETTE = bit_palette(len(NYUDV2_CLASSES) + 1)[1:]


# --- dataset presets ------------------------------------------------------------------------------

def _palette(colours) -> list:
    return [list(c) for c in colours]


_MFNET_COMMON: Dict[str, Any] = {
    "aux_kind": "thermal",
    "class_names": list(MFNET_CLASSES),
    "palette": _palette(MFNET_PALETTE),
    "subsets": {"day": "D", "night": "N"},
}

# The batch the paper trained every dataset with (Sec. 4.1; docs/configuration.md): the paper datasets' presets
# state it as `train.paper_batch`, which `smmcl train --dry-run` checks batch_size x accumulate against (a
# warning, never a change to training). The presets carry it so that configs/paper/* need not.
PAPER_BATCH = 16

# Keys are the values `data.preset` accepts (its `Literal` in smmcl.config lists the same names; a test
# keeps the two equal).
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
        "train": {"paper_batch": PAPER_BATCH},
    },
    "mfnet": {
        "data": {"layout": "packed", "rgb_dir": "images", "label_dir": "labels", **_MFNET_COMMON},
        "model": {"num_classes": len(MFNET_CLASSES)},
        "eval": {"exclude_classes": []},
        "train": {"paper_batch": PAPER_BATCH},
    },
    "mfnet-split": {
        "data": {"layout": "split", "rgb_dir": "RGB", "aux_dir": "Thermal", "label_dir": "Label", **_MFNET_COMMON},
        "model": {"num_classes": len(MFNET_CLASSES)},
        "eval": {"exclude_classes": []},
        "train": {"paper_batch": PAPER_BATCH},
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
        "train": {"paper_batch": PAPER_BATCH},
    },
    "generic": {
        "data": {"rgb_dir": "RGB", "aux_dir": "Depth", "label_dir": "Label", "aux_kind": "depth"},
    },
}


def preset_layer(name: str) -> Dict[str, Any]:
    """The config layer of a dataset preset; an unknown name is an error listing the known ones."""
    if name not in DATASET_PRESETS:
        raise ValueError(f"unknown dataset preset {name!r}; valid: {', '.join(sorted(DATASET_PRESETS))}")
    layer = {section: dict(values) for section, values in DATASET_PRESETS[name].items()}
    layer["data"]["preset"] = name
    return layer


# --- backbone presets -----------------------------------------------------------------------------

# The preset names of each backbone (`model.backbone.preset`); their values (depths, widths, ...) live with
# the models (MSCAN_PRESETS, MIT_PRESETS, RESNET_PRESETS), and a test keeps the names equal. "auto" is the
# paper's choice for each (MSCAN-B, MiT-B2, ResNet-101, the backbones of its Tables 2-4).
BACKBONE_PRESETS: Dict[str, Tuple[str, ...]] = {
    "mscan": ("T", "S", "B", "L"),
    "mit": ("B0", "B1", "B2", "B3", "B4", "B5"),
    "resnet": ("18", "34", "50", "101", "152"),
}


def backbone_preset_names(backbone: str) -> List[str]:
    """The values `model.backbone.preset` may take with this backbone (besides null)."""
    return ["auto", *BACKBONE_PRESETS.get(backbone, ())]
