"""Depth reprojected into the colour camera (smmcl.recordings.align), on synthetic planes whose every aligned
pixel is known: a pure sideways shift moves a plane at depth z by fx * tx / z pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smmcl.recordings.align import Intrinsics, Rigid, align_depth_to_color

H, W = 24, 32
DEPTH = Intrinsics(W, H, fx=40.0, fy=40.0, cx=15.5, cy=11.5)


def shift(tx: float) -> Rigid:
    return Rigid(np.eye(3), np.array([tx, 0.0, 0.0]))


def test_a_plane_moves_by_the_baseline_and_the_principal_points():
    depth = np.full((H, W), 2000, dtype=np.uint16)  # 2 m in millimetres
    depth[5, 5] = 0  # no measurement
    color = Intrinsics(W, H, fx=40.0, fy=40.0, cx=16.5, cy=11.5)  # principal point one pixel further right
    out = align_depth_to_color(depth, DEPTH, color, shift(0.1), metres_per_unit=0.001)
    # 40 px * 0.1 m / 2 m = 2 pixels from the baseline, 1 from the principal point.
    expected = np.zeros((H, W), dtype=np.uint16)
    expected[:, 3:] = 2000
    expected[5, 8] = 0  # the hole moves with its row's pixels and stays a hole
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, expected)


def test_the_nearest_surface_hides_what_is_behind_it():
    depth = np.full((H, W), 2000, dtype=np.uint16)
    depth[8:12, 10:14] = 1000  # a box at 1 m in front of a wall at 2 m
    out = align_depth_to_color(depth, DEPTH, DEPTH, shift(0.1), metres_per_unit=0.001)
    expected = np.zeros((H, W), dtype=np.uint16)
    expected[:, 2:] = 2000  # the wall moves 2 px (40 * 0.1 / 2)
    rows = slice(8, 12)
    expected[rows, 12:14] = 0  # wall the box hid from the depth camera: seen by no depth pixel
    expected[rows, 14:18] = 1000  # the box moves 4 px (40 * 0.1 / 1) and covers the wall behind it
    np.testing.assert_array_equal(out, expected)


def test_colour_at_twice_the_resolution_is_filled_without_holes():
    depth = np.full((H, W), 1500, dtype=np.uint16)
    # The same lens at twice the pixels: pixel centres at whole coordinates put the principal point at 2c + 0.5.
    color = Intrinsics(2 * W, 2 * H, fx=80.0, fy=80.0, cx=2 * 15.5 + 0.5, cy=2 * 11.5 + 0.5)
    out = align_depth_to_color(depth, DEPTH, color, Rigid.identity(), metres_per_unit=0.001)
    np.testing.assert_array_equal(out, np.full((2 * H, 2 * W), 1500, dtype=np.uint16))


def test_float_metres_keep_their_type_and_values():
    depth = np.full((H, W), 2.0, dtype=np.float32)
    depth[0, 0] = np.nan  # no measurement, as float depth marks it
    out = align_depth_to_color(depth, DEPTH, DEPTH, shift(-0.1), metres_per_unit=1.0)
    expected = np.zeros((H, W), dtype=np.float32)
    expected[:, : W - 2] = 2.0  # a shift the other way: 2 px left
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_depth_units_other_than_millimetres():
    depth = np.full((H, W), 20000, dtype=np.uint16)  # 2 m in units of 0.1 mm
    out = align_depth_to_color(depth, DEPTH, DEPTH, shift(0.1), metres_per_unit=0.0001)
    assert (out[:, 2:] == 20000).all() and (out[:, :2] == 0).all()


def test_transforms():
    half = math.sqrt(0.5)
    turn = Rigid.from_quaternion(0.0, 0.0, half, half, (1.0, 2.0, 3.0))  # 90 degrees about z
    # sin/cos of 45 degrees squared are 0.5 only to rounding: compare to 1e-12.
    np.testing.assert_allclose(turn.rotation, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(turn.after(turn.inverse()).rotation, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(turn.after(turn.inverse()).translation, np.zeros(3), atol=1e-12)
    # librealsense's column-major rotation: the same turn written as rs2_extrinsics stores it.
    column_major = Rigid.from_column_major([0, 1, 0, -1, 0, 0, 0, 0, 1], [1, 2, 3])
    np.testing.assert_array_equal(column_major.rotation, [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    intrinsics = Intrinsics.from_matrix([600, 0, 320, 0, 610, 240, 0, 0, 1], 640, 480)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (600, 610, 320, 240)
    assert intrinsics.valid and not Intrinsics.from_matrix([0] * 9, 640, 480).valid


def test_only_depth_pixels_land():
    out = align_depth_to_color(np.zeros((H, W), dtype=np.uint16), DEPTH, DEPTH, shift(0.05), 0.001)
    assert out.shape == (H, W) and not out.any()


@pytest.mark.parametrize("tx", [0.0, 0.1])
def test_a_tilted_plane_keeps_its_depth_along_the_colour_axis(tx):
    # A rotation about the optical axis keeps every point's z: the values stay those of the input plane.
    depth = np.full((H, W), 1000, dtype=np.uint16)
    turn = Rigid.from_quaternion(0.0, 0.0, math.sin(0.05), math.cos(0.05), (tx, 0.0, 0.0))
    out = align_depth_to_color(depth, DEPTH, DEPTH, turn, 0.001)
    assert set(np.unique(out)) <= {0, 1000} and (out == 1000).mean() > 0.7


def test_a_turned_camera_at_a_higher_resolution_leaves_no_holes_in_a_surface():
    # Colour at 1.5x the pixels, turned slightly about x and y: footprints become slanted quads; the boxes around
    # their corners must still tile the surface (holes only at the image border, where the depth view ends).
    depth = np.full((H, W), 2000, dtype=np.uint16)
    color = Intrinsics(48, 36, fx=60.0, fy=60.0, cx=23.75, cy=17.75)
    turn = Rigid.from_quaternion(0.01, 0.008, 0.0, 1.0, (0.02, 0.0, 0.0))
    out = align_depth_to_color(depth, DEPTH, color, turn, 0.001)
    assert (out[4:-4, 4:-4] > 0).all()
    # The colour camera's depth of a turned plane varies by a few millimetres across it, never by more.
    assert 1900 < out[out > 0].min() and out.max() < 2100
