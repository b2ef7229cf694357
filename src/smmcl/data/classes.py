"""Class names and colour palettes of the supported datasets, with the drawing helpers.

The tables are plain data in `smmcl.config.presets` (a dataset preset carries its classes and palette, and the
config layer must not import from `smmcl.data`); they are re-exported here, where pictures use them.
Label ids are list positions: `LLRGBD_CLASSES[3]` is the class stored as 3 in a label PNG.
Label value 255 is the ignore label everywhere in the toolkit.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from smmcl.config.presets import (  # noqa: F401  (re-exported)
    LLRGBD_CLASSES,
    LLRGBD_PALETTE,
    MFNET_CLASSES,
    MFNET_PALETTE,
    NYUDV2_CLASSES,
    NYUDV2_PALETTE,
    bit_palette,
)

IGNORE_INDEX = 255


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


def class_names(config) -> list[str]:
    """The one rule for a config's class names: `data.class_names` (which the config checks holds none or one per
    class), else the class ids 0..K-1 as text."""
    return list(config.data.class_names) or [str(k) for k in range(config.model.num_classes)]


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
