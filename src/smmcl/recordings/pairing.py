"""Pairing two camera streams by time: which RGB frame goes with which auxiliary frame.

Two sensors never fire together: their stamps jitter, one may run faster, and either drops frames under load.
`pair_by_time` pairs mutual nearest neighbours within a tolerance. Mutual (each frame is the other's nearest)
rather than greedy, so a frame that lost its partner to a drop is not pushed onto a neighbour's partner: each
frame is used at most once and, on a line, mutual nearest pairs cannot cross, so the pairs come out in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

# A gap longer than this many median intervals is counted as dropped frames rather than jitter.
DROP_FACTOR = 1.5


@dataclass(frozen=True)
class StreamStats:
    """One stream's timing: frames, their median interval (None under 2 frames) and frames lost in gaps."""

    frames: int
    median_interval: Optional[float]
    dropped: int


@dataclass(frozen=True)
class Pairing:
    """`pairs`: (rgb index, aux index) in time order; the unpaired indices of each stream; the tolerance used."""

    pairs: list[tuple[int, int]]
    unpaired_rgb: list[int]
    unpaired_aux: list[int]
    tolerance: float
    rgb: StreamStats
    aux: StreamStats
    rule: str = "by time"

    def summary(self) -> str:
        """One line for a log: pairs, unpaired and dropped frames of each stream, and the rule used."""
        how = f"{self.rule}, tolerance {self.tolerance * 1000:.3g} ms" if self.rule == "by time" else self.rule
        return (f"{len(self.pairs)} pairs ({how}); "
                f"unpaired: {len(self.unpaired_rgb)} rgb, {len(self.unpaired_aux)} aux; "
                f"dropped (gaps > {DROP_FACTOR}x the median interval): {self.rgb.dropped} rgb, {self.aux.dropped} aux")


def median_interval(times: Sequence[float]) -> Optional[float]:
    """The median step between consecutive (sorted) times, or None under 2 distinct times."""
    steps = np.diff(np.sort(np.asarray(times, dtype=np.float64)))
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else None


def dropped_frames(times: Sequence[float], interval: Optional[float] = None) -> int:
    """Frames missing from a stream: each gap over DROP_FACTOR x the median interval hides round(gap / median) - 1."""
    interval = median_interval(times) if interval is None else interval
    if not interval:
        return 0
    steps = np.diff(np.sort(np.asarray(times, dtype=np.float64)))
    gaps = steps[steps > DROP_FACTOR * interval]
    return int(np.maximum(np.rint(gaps / interval) - 1, 1).sum())


def _stats(times: np.ndarray) -> StreamStats:
    interval = median_interval(times)
    return StreamStats(len(times), interval, dropped_frames(times, interval))


def _nearest(sorted_times: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index into `sorted_times` of each query's nearest value; a tie goes to the earlier one."""
    right = np.clip(np.searchsorted(sorted_times, queries), 1, len(sorted_times) - 1)
    left = right - 1
    return np.where(np.abs(queries - sorted_times[left]) <= np.abs(sorted_times[right] - queries), left, right)


def pair_by_time(rgb_times: Sequence[float], aux_times: Sequence[float],
                 tolerance: Optional[float] = None) -> Pairing:
    """Pair RGB and auxiliary frames by time (seconds): mutual nearest neighbours at most `tolerance` apart.

    `tolerance` defaults to half the slower stream's median frame interval: any wider and a frame could pair
    with its partner's neighbour. Indices refer to the sequences as given (which need not be sorted); pairs
    come in time order. A ValueError when neither stream has two frames to measure an interval from and no
    tolerance is given, or when the tolerance is negative."""
    rgb = np.asarray(rgb_times, dtype=np.float64).reshape(-1)
    aux = np.asarray(aux_times, dtype=np.float64).reshape(-1)
    rgb_stats, aux_stats = _stats(rgb), _stats(aux)
    if tolerance is None:
        intervals = [s.median_interval for s in (rgb_stats, aux_stats) if s.median_interval]
        if not intervals:
            raise ValueError("cannot derive a pairing tolerance: neither stream has two frames at different times; "
                             "give the tolerance in seconds")
        tolerance = max(intervals) / 2
    if not (tolerance >= 0):
        raise ValueError(f"the pairing tolerance must be a number of seconds >= 0, got {tolerance!r}")
    if rgb.size == 0 or aux.size == 0:
        return Pairing([], list(range(rgb.size)), list(range(aux.size)), float(tolerance), rgb_stats, aux_stats)

    # Stable sorts keep recorded order among equal stamps, so equal times pair first with first.
    rgb_order = np.argsort(rgb, kind="stable")
    aux_order = np.argsort(aux, kind="stable")
    rgb_sorted, aux_sorted = rgb[rgb_order], aux[aux_order]
    if aux.size == 1:
        rgb_to_aux = np.zeros(rgb.size, dtype=np.intp)
    else:
        rgb_to_aux = _nearest(aux_sorted, rgb_sorted)
    if rgb.size == 1:
        aux_to_rgb = np.zeros(aux.size, dtype=np.intp)
    else:
        aux_to_rgb = _nearest(rgb_sorted, aux_sorted)

    i = np.arange(rgb.size)
    mutual = (aux_to_rgb[rgb_to_aux] == i) & (np.abs(aux_sorted[rgb_to_aux] - rgb_sorted) <= tolerance)
    pairs = [(int(rgb_order[k]), int(aux_order[rgb_to_aux[k]])) for k in i[mutual]]
    used_rgb = {p[0] for p in pairs}
    used_aux = {p[1] for p in pairs}
    return Pairing(pairs,
                   [int(k) for k in rgb_order if int(k) not in used_rgb],
                   [int(k) for k in aux_order if int(k) not in used_aux],
                   float(tolerance), rgb_stats, aux_stats)


def pair_by_index(rgb_count: int, aux_count: int, rgb_times: Optional[Sequence[float]] = None) -> Pairing:
    """Frame k with frame k (streams with no usable times, e.g. two videos cut from one recording). `rgb_times`:
    the RGB stream's own times where it has them (a video's), which keep its frame rate (an output video's)."""
    n = min(rgb_count, aux_count)
    rate = median_interval(rgb_times) if rgb_times else None
    return Pairing([(k, k) for k in range(n)], list(range(n, rgb_count)), list(range(n, aux_count)), 0.0,
                   StreamStats(rgb_count, rate, 0), StreamStats(aux_count, None, 0), rule="by frame index")
