"""Label maps given as photos: an "RGB" image that holds as few colours as a label map, flat in regions, is one.
One rule and one message for predict, training, eval and `smmcl data check` (`smmcl.data.modality` checks what an
array must be; this, what a valid RGB array may secretly be)."""

from __future__ import annotations

from typing import Optional

import numpy as np


# A label map holds one colour per class present (rarely over 30 in one image); a photo, even a dark one, holds
# thousands (sensor noise: 2500+ in a 48 x 64 synthetic frame), a palette photo up to 256. At or below this many, an
# "RGB" image is a label map whatever the model's class count: a dataset's 9 ids given to a 4-class model passed the
# class-count rule alone (trial 14 #203).
LABEL_MAP_COLOURS = 32
# The least share of pixels that are their right neighbour's colour in a label map: its regions span many pixels, so
# only their borders differ (over 80% alike in a 24 x 32 map of 4 x 4 blocks); noise keeps a photo's share far lower
# (about 10% for a grey night photo with a noise of 3 levels).
FLAT_NEIGHBOURS = 0.6


def colour_count(rgb: np.ndarray, limit: int) -> Optional[int]:
    """The number of distinct colours of an H x W x 3 image when at most `limit` (or LABEL_MAP_COLOURS, the larger)
    and the image is flat in regions (FLAT_NEIGHBOURS), else None. A photo, even a dark one, has sensor noise and so
    hundreds of colours; a label map (ids read as grey, or its palette's colours) has one per class. Counted on
    every 4th pixel each way (a label map's classes span many pixels), on every pixel of a small image, and not at all below 16 x 16 pixels (too few to tell; trial 7 #197: a
    7 x 5 photo)."""
    limit = max(limit, LABEL_MAP_COLOURS)
    if rgb.shape[0] * rgb.shape[1] < 256:
        return None
    step = 4 if min(rgb.shape[:2]) >= 64 else 1
    sample = np.ascontiguousarray(rgb[::step, ::step]).reshape(-1, 3).astype(np.int32)
    count = len(np.unique(sample[:, 0] << 16 | sample[:, 1] << 8 | sample[:, 2]))
    if count > limit:
        return None
    # A label map is flat in regions: most pixels are their right neighbour's colour. A dark grey photo has as few
    # grey levels, but its noise sets neighbours apart (trial 15 F3b: night photos from a grey camera were called
    # label maps).
    same = np.all(rgb[:, 1:] == rgb[:, :-1], axis=-1)
    return count if float(same.mean()) >= FLAT_NEIGHBOURS else None


def flat_rgb_problem(flat: list, total: int, where: str = "") -> str:
    """What predict, training, eval and `data check` say of the `flat` (path, colour count) of `total` RGB images
    that `colour_count` found as flat as label maps; the caller adds what that means for its output. In the same
    words everywhere (trial 12 #153-155: only predict said it). `where`: " sampled from the train split"."""
    return (f"{len(flat)} of the {total} RGB images{where} hold as few distinct colours as label maps do "
            f"(e.g. {flat[0][0]}: {flat[0][1]}), where a photo has hundreds: label images given as "
            f"the RGB ones?")
