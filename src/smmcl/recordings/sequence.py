"""A folder of auxiliary images beside a video: their order, and their times where the file names are numbers.

Names that are numbers but count 0, 1, 2 ... (frame numbers) pair by index like any other names; frame numbers with
gaps (dropped frames) pair by number. Other numeric
names are timestamps in an unknown unit (seconds, milliseconds, nanoseconds ...): the unit is the power of 1000
that makes their median step the video's median frame interval, and is refused when none comes within a factor
of 2, rather than guessed. Both streams' times then count from their own first frame, since a video keeps no
clock the names could be compared with: a sequence that started before the video pairs off by that head start.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from smmcl.data.io import IMAGE_SUFFIXES
from smmcl.errors import DatasetError, InputWarning
from smmcl.recordings.pairing import median_interval

# The unit of numeric names must come within this factor of a power of 1000 to be taken.
UNIT_SLACK = 2.0


def _number(stem: str) -> Optional[float]:
    try:
        value = float(stem)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _natural(path: Path) -> list:
    """frame_2 before frame_10: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> tuple[list[Path], Optional[list[float]]]:
    """The folder's images in order, and their file-name numbers where every name is a number that is not a
    frame count (None otherwise)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DatasetError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    numbers = [_number(p.stem) for p in files]
    if any(n is None for n in numbers):
        return sorted(files, key=_natural), None
    order = sorted(range(len(files)), key=lambda k: numbers[k])
    files = [files[k] for k in order]
    values = [numbers[k] for k in order]
    if len(values) < 2 or all(b - a == 1 for a, b in zip(values, values[1:])):
        return files, None
    return files, values


def name_times(folder: Path, names: Sequence[float], video_times: Sequence[float]) -> list[float]:
    """File-name numbers as seconds from the first image, in the unit that fits the video's frame interval. Whole
    numbers mostly 1 apart are frame numbers with gaps (dropped frames): frame n lies n video frames after the
    first (trial 14 #299: refused with the advice to name them by frame number, which they were)."""
    step, interval = median_interval(names), median_interval(video_times)
    if not step or not interval:
        raise DatasetError(f"{folder}: the file-name timestamps or the video's frames are too few to pair by time")
    first = names[0]
    if step == 1 and all(float(n).is_integer() for n in names):
        return [float((n - first) * interval) for n in names]
    exponent = round(math.log10(step / interval) / 3) * 3
    if abs(math.log10(step / interval) - exponent) > math.log10(UNIT_SLACK):
        raise DatasetError(
            f"{folder}: file names are numbers {step:g} apart, the video's frames {interval:g} s apart: no unit "
            "(s, ms, us, ns) fits; name the images by frame number (0, 1, 2 ..., gaps where frames were dropped) to "
            "pair them by number")
    times = [float((n - first) * 10.0 ** -exponent) for n in names]
    span, video_span = times[-1], max(video_times) - min(video_times)
    if abs(span - video_span) > 3 * interval + 0.02 * video_span:  # a frame or two dropped at an end says nothing
        # Times count from each stream's first frame (a video keeps no clock): one that started or stopped apart
        # from the other pairs off by the difference, which only the user can know (trial 14 #186).
        warnings.warn(f"{folder}: its file-name times span {span:.3g} s, the video {video_span:.3g} s; times are "
                      f"counted from each one's first frame, so if one started later than the other, every pair is "
                      f"off by that head start: trim the longer one to the shared stretch, or name the images by "
                      f"frame number of the video", InputWarning, stacklevel=3)
    return times


def relative(times: Sequence[float]) -> list[float]:
    """Times from the first one: two clocks that only share their start."""
    array = np.asarray(times, dtype=np.float64)
    return (array - array.min()).tolist() if array.size else []
