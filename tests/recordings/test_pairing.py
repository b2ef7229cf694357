"""Pairing RGB and auxiliary frames by time (smmcl.recordings.pairing): jitter, drops, unequal rates, order."""

from __future__ import annotations

import numpy as np
import pytest

from smmcl.recordings.pairing import dropped_frames, median_interval, pair_by_index, pair_by_time

FPS = 30.0
DT = 1.0 / FPS


def jittered(n: int, offset: float, jitter: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 + offset + np.arange(n) * DT + rng.uniform(-jitter, jitter, n)


def test_jittered_streams_pair_frame_for_frame():
    rgb = jittered(10, 0.0, 0.003, seed=1)
    aux = jittered(10, 0.005, 0.003, seed=2)  # another sensor: 5 ms late, +-3 ms jitter
    pairing = pair_by_time(rgb, aux)
    assert pairing.pairs == [(k, k) for k in range(10)]
    assert pairing.unpaired_rgb == [] and pairing.unpaired_aux == []
    assert pairing.rgb.dropped == 0 and pairing.aux.dropped == 0
    # Half the slower stream's median interval; the times are sums of floats, so equal to rounding only.
    assert pairing.tolerance == pytest.approx(max(median_interval(rgb), median_interval(aux)) / 2, rel=1e-12)
    assert 0.3 * DT < pairing.tolerance < 0.7 * DT


def test_dropped_frames_leave_their_partners_unpaired_and_are_counted():
    rgb = np.delete(jittered(10, 0.0, 0.002, seed=3), [3, 4])  # rgb frames 3 and 4 lost
    aux = np.delete(jittered(10, 0.004, 0.002, seed=4), [7])  # aux frame 7 lost
    pairing = pair_by_time(rgb, aux)
    # rgb positions after the deletion: 0 1 2 | 5 6 7 8 9 -> 3 4 5 6 7; aux: 0..6 | 8 9 -> 7 8
    rgb_frame = [0, 1, 2, 5, 6, 7, 8, 9]
    aux_frame = [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert [(rgb_frame[r], aux_frame[a]) for r, a in pairing.pairs] == [(k, k) for k in (0, 1, 2, 5, 6, 8, 9)]
    assert [aux_frame[a] for a in pairing.unpaired_aux] == [3, 4]
    assert [rgb_frame[r] for r in pairing.unpaired_rgb] == [7]
    assert pairing.rgb.dropped == 2 and pairing.aux.dropped == 1
    assert "7 pairs" in pairing.summary() and "dropped (gaps > 1.5x the median interval): 2 rgb, 1 aux" \
        in pairing.summary()


def test_a_faster_stream_pairs_each_slow_frame_with_its_nearest():
    rgb = 5.0 + np.arange(6) * 2 * DT  # 15 fps
    aux = 5.0 + 0.002 + np.arange(12) * DT  # 30 fps, 2 ms late
    pairing = pair_by_time(rgb, aux)
    assert pairing.pairs == [(k, 2 * k) for k in range(6)]
    assert pairing.unpaired_aux == [2 * k + 1 for k in range(6)]
    assert pairing.tolerance == pytest.approx(DT, rel=1e-9)  # half of 2 * DT; float sums again


def test_tolerance_parameter_bounds_the_offset():
    rgb = np.arange(8) * DT
    aux = rgb + 0.012
    assert len(pair_by_time(rgb, aux).pairs) == 8  # default: half of 33.3 ms
    assert pair_by_time(rgb, aux, tolerance=0.010).pairs == []
    assert len(pair_by_time(rgb, aux, tolerance=0.015).pairs) == 8


def test_each_frame_is_used_once_and_pairs_stay_in_order():
    # Two RGB frames both nearest to one aux frame: only the nearer one gets it.
    pairing = pair_by_time([0.000, 0.012], [0.005], tolerance=0.010)
    assert pairing.pairs == [(0, 0)] and pairing.unpaired_rgb == [1]
    # Unsorted input: indices refer to the input order, pairs come in time order.
    pairing = pair_by_time([0.2, 0.0, 0.1], [0.101, 0.001, 0.201])
    assert pairing.pairs == [(1, 1), (2, 0), (0, 2)]
    rgb_used = [r for r, _ in pairing.pairs]
    aux_used = [a for _, a in pairing.pairs]
    assert len(set(rgb_used)) == len(rgb_used) and len(set(aux_used)) == len(aux_used)


def test_single_frames_need_a_tolerance():
    with pytest.raises(ValueError, match="give the tolerance"):
        pair_by_time([1.0], [1.001])
    assert pair_by_time([1.0], [1.001], tolerance=0.01).pairs == [(0, 0)]
    with pytest.raises(ValueError, match=">= 0"):
        pair_by_time([0.0, 1.0], [0.0, 1.0], tolerance=-1)
    empty = pair_by_time([], [0.0, 0.1])
    assert empty.pairs == [] and empty.unpaired_aux == [0, 1]


def test_dropped_frames_count_each_missing_interval():
    times = [0.0, 0.1, 0.2, 0.5, 0.6, 0.8]  # 0.2 -> 0.5 hides 2 frames, 0.6 -> 0.8 hides 1
    assert dropped_frames(times) == 3
    assert dropped_frames([0.0, 0.1, 0.21, 0.3]) == 0  # jitter under 1.5 intervals is no drop
    assert dropped_frames([1.0]) == 0


def test_pairing_by_index():
    pairing = pair_by_index(5, 3)
    assert pairing.pairs == [(0, 0), (1, 1), (2, 2)] and pairing.unpaired_rgb == [3, 4]
    assert "by frame index" in pairing.summary()
