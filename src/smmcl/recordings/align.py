"""Depth registered to the colour camera by reprojection, for recordings that keep depth in its own sensor's frame.

A model reads RGB and depth pixel for pixel; a RealSense's depth comes from a different lens (offset by a few
centimetres, often another resolution), so unaligned depth would put every edge beside its colour edge.

Each depth pixel is treated as a small square, not a point: its corners are back-projected at its depth, moved
into the colour camera and projected, and every colour pixel whose centre falls in that footprint takes the
depth. A point-only projection leaves a grid of holes wherever colour has more pixels than depth
(848x480 depth to 1280x720 colour). Where footprints overlap the nearest surface wins (a z-buffer), since it
hides what lies behind it; colour pixels no depth pixel reaches (no measurement, or hidden from the depth lens)
stay 0, the value sensors write for "no measurement". The value written is the depth along the colour camera's
axis, in the input's units and type. Lens distortion is not applied: RealSense depth streams are rectified
(zero coefficients) and their colour streams' coefficients are small; a strongly distorted colour lens would
be off by a pixel or more at the image edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

# The widest footprint filled, in colour pixels per axis: wider ones only come from depth nearly at the lens,
# which sensors do not measure; the limit keeps one bad value from costing a pass per covered pixel.
MAX_SPAN = 8


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera: focal lengths and principal point in pixels (pixel centres at whole coordinates, as in
    ROS CameraInfo and librealsense), and the image size."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_matrix(cls, k: Sequence[float], width: int, height: int) -> "Intrinsics":
        """From a row-major 3 x 3 camera matrix (CameraInfo's K)."""
        k = [float(v) for v in k]
        return cls(int(width), int(height), k[0], k[4], k[2], k[5])

    @property
    def valid(self) -> bool:
        """An uncalibrated camera publishes a zero matrix: no focal length, nothing to project with."""
        return self.fx > 0 and self.fy > 0 and self.width > 0 and self.height > 0


@dataclass(frozen=True)
class Rigid:
    """A rigid transform in metres: p_to = rotation @ p_from + translation."""

    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def identity(cls) -> "Rigid":
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_quaternion(cls, x: float, y: float, z: float, w: float, translation: Sequence[float]) -> "Rigid":
        """From geometry_msgs/Transform's unit quaternion (x, y, z, w) and translation."""
        q = np.array([x, y, z, w], dtype=np.float64)
        norm = np.linalg.norm(q)
        x, y, z, w = q / norm if norm > 0 else (0.0, 0.0, 0.0, 1.0)
        rotation = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])
        return cls(rotation, np.asarray(translation, dtype=np.float64).reshape(3))

    @classmethod
    def from_column_major(cls, rotation: Sequence[float], translation: Sequence[float]) -> "Rigid":
        """From librealsense's rs2_extrinsics layout (a 9-value column-major rotation), as realsense-ros's
        Extrinsics messages carry it."""
        return cls(np.asarray(rotation, dtype=np.float64).reshape(3, 3).T,
                   np.asarray(translation, dtype=np.float64).reshape(3))

    def inverse(self) -> "Rigid":
        return Rigid(self.rotation.T, -self.rotation.T @ self.translation)

    def after(self, first: "Rigid") -> "Rigid":
        """`first`, then this transform."""
        return Rigid(self.rotation @ first.rotation, self.rotation @ first.translation + self.translation)


def _project_corners(us: np.ndarray, vs: np.ndarray, z: np.ndarray, depth: Intrinsics, color: Intrinsics,
                     to_color: Rigid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour-image coordinates of pixel positions (us, vs) of the depth image at depths z (metres), and the
    colour camera's depth of each point."""
    points = np.stack([(us - depth.cx) / depth.fx * z, (vs - depth.cy) / depth.fy * z, z])
    moved = to_color.rotation @ points + to_color.translation[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = moved[0] / moved[2] * color.fx + color.cx
        y = moved[1] / moved[2] * color.fy + color.cy
    return x, y, moved[2]


def align_depth_to_color(depth_image: np.ndarray, depth: Intrinsics, color: Intrinsics, depth_to_color: Rigid,
                         metres_per_unit: float) -> np.ndarray:
    """`depth_image` (H x W, integer units of `metres_per_unit`, or float) as seen by the colour camera: an array
    of the colour image's size and the input's type, 0 where no depth lands."""
    v, u = np.nonzero(np.isfinite(depth_image) & (depth_image > 0))
    z = depth_image[v, u].astype(np.float64) * metres_per_unit
    u = u.astype(np.float64)
    v = v.astype(np.float64)

    _, _, z_color = _project_corners(u, v, z, depth, color, depth_to_color)
    corners = [_project_corners(u + du, v + dv, z, depth, color, depth_to_color)[:2]
               for du in (-0.5, 0.5) for dv in (-0.5, 0.5)]
    # The box around all four projected corners: under rotation a footprint is a slanted quad, and boxes around
    # two opposite corners alone leave slivers between neighbours (overlaps cost nothing: the z-buffer decides).
    x_lo, x_hi = np.min([c[0] for c in corners], axis=0), np.max([c[0] for c in corners], axis=0)
    y_lo, y_hi = np.min([c[1] for c in corners], axis=0), np.max([c[1] for c in corners], axis=0)
    # Colour pixels whose centre lies in [lo, hi) on each axis: half-open, so footprints that share an edge do not
    # both claim the pixel on it, and a footprint one pixel wide fills exactly one pixel.
    ok = (z_color > 0) & np.isfinite(x_lo) & np.isfinite(x_hi) & np.isfinite(y_lo) & np.isfinite(y_hi)
    xs, ys = np.ceil(x_lo[ok]), np.ceil(y_lo[ok])
    nx = np.minimum(np.ceil(x_hi[ok]) - xs, MAX_SPAN)
    ny = np.minimum(np.ceil(y_hi[ok]) - ys, MAX_SPAN)
    z_color = z_color[ok]

    nearest = np.full(color.height * color.width, np.inf)
    for dy in range(int(ny.max(initial=0))):
        for dx in range(int(nx.max(initial=0))):
            cols, rows = xs + dx, ys + dy
            hit = (dx < nx) & (dy < ny) & (cols >= 0) & (cols < color.width) & (rows >= 0) & (rows < color.height)
            flat = rows[hit].astype(np.intp) * color.width + cols[hit].astype(np.intp)
            np.minimum.at(nearest, flat, z_color[hit])

    nearest = nearest.reshape(color.height, color.width)
    found = np.isfinite(nearest)
    units = np.where(found, nearest / metres_per_unit, 0.0)
    if np.issubdtype(depth_image.dtype, np.integer):
        top = np.iinfo(depth_image.dtype).max
        return np.clip(np.rint(units), 0, top).astype(depth_image.dtype)
    return units.astype(depth_image.dtype)
