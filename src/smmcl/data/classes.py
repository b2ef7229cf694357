"""Class names and colour palettes of the supported datasets, kept as plain data.

Label ids are list positions: `LLRGBD_CLASSES[3]` is the class stored as 3 in a label PNG.
Label value 255 is the ignore label everywhere in the toolkit.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

IGNORE_INDEX = 255

# LLRGBD-synthetic (SPEC §3): 14 labels, 0 is void, which is trained but left out of the reported mIoU.
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

# MFNet (SPEC §3): 9 labels, all scored. The palette is the one MFNet-based works usually draw with.
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


def colorize(label: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """(H, W) uint8 label ids -> (H, W, 3) uint8 colours; the ignore label 255 is drawn black.

    Ids beyond the palette (other than 255) raise ValueError: they mean the label and the palette
    belong to different datasets, which a picture would silently hide.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"colorize expects an (H, W) label map, got shape {label.shape}")
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8)
    values = np.unique(label)
    bad = values[((values >= len(palette)) & (values != IGNORE_INDEX)) | (values < 0)]
    if bad.size:
        raise ValueError(f"label ids {bad.tolist()} are outside the {len(palette)}-colour palette")
    return lut[label.astype(np.intp)]


def dataset_palette(class_names: Sequence[str], palette: Sequence[Sequence[int]], num_classes: int) -> list[tuple[int, int, int]]:
    """Colours per class: the dataset's own `palette`, else the built-in palette of its classes (LLRGBD,
    MFNet), else a generated one."""
    if len(palette) >= num_classes:
        return [tuple(int(v) for v in c) for c in palette[:num_classes]]  # type: ignore[misc]
    if list(class_names) == list(LLRGBD_CLASSES):
        return list(LLRGBD_PALETTE)
    if list(class_names) == list(MFNET_CLASSES):
        return list(MFNET_PALETTE)
    return bit_palette(num_classes)
