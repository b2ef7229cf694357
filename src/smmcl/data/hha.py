"""HHA encoding of depth images (Gupta et al., "Learning Rich Features from RGB-D Images", ECCV 2014).

Three 8-bit channels per pixel, in RGB order:

- R, horizontal disparity: ``31000 / max(Z, 100)`` with Z the depth in centimetres;
- G, height above the floor in centimetres: the point projected on the estimated up direction, minus
  the floor level (see "floor" below);
- B, angle between the surface normal and up, in degrees, stored as ``angle + 128 - 90`` (horizontal
  floor 38, vertical wall 128, ceiling 218).

Values are rounded to nearest and clipped to 0..255; pixels without depth are 0 in all three channels.
The constants, the channel order and the gravity estimate (iterative normal voting, thresholds 45 then 15
degrees, 5 rounds each) follow the encoding behind the HHA images shipped with NYUDv2 releases (Gupta's
MATLAB release, and its Python port Depth2HHA-python). Every convention that differs from those:

- normals: the cloud is averaged over a box (only the points with depth; a box needs depth at half its
  pixels) and the normal is the cross product of the differences of those averages, where the release
  fits a least-squares plane per window; exact on planes either way;
- the angle channel's support: a box of radius 1 + round(min(H, W) / 160) (4 at 480 x 640, a 9 x 9 box),
  chosen by measured error on noisy depth (NORMAL_PIXELS_PER_RADIUS); the release uses a 7 x 7 window at
  every size. `normal_radius` sets it;
- gravity: normals of a wider box (radius min(H, W) / 120, 4 at 480 x 640; the release: 21 x 21), and
  only locally planar normals vote, which keeps crease normals from tilting the estimate;
- floor: the 1st percentile of the heights (the release: the minimum), so a few outliers below the floor
  do not lift every height; when even that is less than 90 cm below the camera, no floor is in view and
  the floor is taken 130 cm below the camera, as the release does. `camera_height` (cm) replaces both
  with the camera's known height;
- pixel coordinates: pixel centres at integer coordinates (0-based, the OpenCV / NYUDv2-toolbox
  intrinsics convention); the Python port uses 1-based pixel indices with the same intrinsics;
- missing depth: left at 0 in every channel; the release fills holes (colorization inpainting) before
  encoding, and the port sets undefined angles to 180;
- normals near holes and image borders, where no support fits, are grown from their neighbours.

Camera coordinates are X right, Y down (image rows), Z forward; everything is vectorised numpy
(0.1-0.3 s per 480 x 640 frame on one core, `benchmarks/hha.py`). A folder of depth images is encoded by
`smmcl.data.hha_folder`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = [
    "backproject",
    "surface_normals",
    "estimate_up",
    "depth_to_hha",
    "parse_intrinsics",
]

Intrinsics = tuple[float, float, float, float]

# Camera-frame up for a level camera: image rows grow downwards, so up is -Y.
CAMERA_UP = (0.0, -1.0, 0.0)
# Half-width of the box filter applied to the point cloud before differentiating, for the angle channel:
# a 3 x 3 box keeps fine detail and leaves at most a 2-pixel border around holes.
ANGLE_RADIUS = 1
# The angle channel smooths the cloud over a box of radius 1 + round(min(H, W) / 160): 2 at 120 x 160, 3 at
# 240 x 320, 4 at 480 x 640. Chosen by the error against exact normals on a noisy room frame with 2%
# dropouts (`python benchmarks/hha.py --accuracy`; mean degrees at 0.3% depth noise / Kinect-like noise):
#   480 x 640: radius 1: 11.2 / 19.2, 2: 4.6 / 8.5, 3: 3.2 / 5.2, 4: 2.9 / 4.1, 5: 2.9 / 3.7
#   240 x 320: radius 1: 6.5 / 11.8, 2: 3.7 / 5.7, 3: 3.6 / 4.6, 4: 3.9 / 4.5
#   120 x 160: radius 1: 4.7 / 7.7, 2: 4.4 / 5.4, 3: 5.3 / 5.8
# Wider boxes trade noise for blurred creases; on clean depth radius 1 is best (0.8 degrees at 480 x 640).
NORMAL_PIXELS_PER_RADIUS = 160
# Share of a box's pixels that must have depth for its average to count.
MIN_SUPPORT = 0.5
# Rounds of growing normals into pixels with depth but no full support (near holes and image borders).
FILL_STEPS = 4 * (ANGLE_RADIUS + 1)
# The normals that vote on gravity use a box growing with the image (1 at 120 x 160, 4 at 480 x 640), so
# that depth noise barely moves the estimate; only normals agreeing with their neighbours one support
# away (within the first of these angles that keeps enough of them) vote, which drops the blended
# normals along creases and occlusion edges that would otherwise tilt the estimate by a few tenths of a
# degree.
GRAVITY_PIXELS_PER_RADIUS = 120
PLANAR_ANGLES = (5.0, 15.0)
PLANAR_MIN_FRACTION = 0.05
# Percentile of the heights taken as the floor level; a low percentile rather than the minimum, so a few
# outlier points below the floor do not lift every height.
FLOOR_PERCENTILE = 1.0
# No floor in view: if even the lowest points are less than NO_FLOOR_BELOW cm below the camera, the floor
# is taken NO_FLOOR_CAMERA_HEIGHT cm below it (Gupta's release makes the same assumption, 90 and 130 cm).
NO_FLOOR_BELOW = 90.0
NO_FLOOR_CAMERA_HEIGHT = 130.0


def _check_intrinsics(intrinsics: Sequence[float]) -> Intrinsics:
    """The four intrinsics as floats, with positive finite focal lengths."""
    values = tuple(float(v) for v in intrinsics)
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[0] <= 0 or values[1] <= 0:
        raise ValueError(
            f"intrinsics must be four finite numbers (fx, fy, cx, cy) with fx, fy > 0, got {intrinsics!r}"
        )
    return values  # type: ignore[return-value]


# Internally the clouds and normals are 3 x H x W (channels first): box sums, shifts and dot products
# then run over contiguous rows, several times faster than on H x W x 3.


def _cloud(depth: np.ndarray, intrinsics: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """3 x H x W points (unit of `depth`, 0 where missing) and the H x W mask of depths > 0 and finite."""
    fx, fy, cx, cy = _check_intrinsics(intrinsics)
    z = np.asarray(depth, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"depth must be a single-channel H x W array, got shape {z.shape}")
    valid = np.isfinite(z) & (z > 0)
    z = np.where(valid, z, 0.0)
    h, w = z.shape
    # Pixel centres are at integer coordinates, the convention of the NYUDv2 / OpenCV intrinsics.
    x = (np.arange(w, dtype=np.float64) - cx) / fx
    y = (np.arange(h, dtype=np.float64) - cy) / fy
    points = np.empty((3, h, w), dtype=np.float64)
    np.multiply(x[None, :], z, out=points[0])
    np.multiply(y[:, None], z, out=points[1])
    points[2] = z
    return points, valid


def backproject(depth: np.ndarray, intrinsics: Sequence[float]) -> np.ndarray:
    """H x W x 3 camera-frame points (unit of `depth`) of a Z-depth map; NaN where depth is <= 0 or not finite."""
    points, valid = _cloud(depth, intrinsics)
    points[:, ~valid] = np.nan
    return np.moveaxis(points, 0, -1)


def _box_sum(a: np.ndarray, radius: int) -> np.ndarray:
    """Sum of `a` (... x H x W) over the (2r+1) x (2r+1) window around each pixel, zero outside the image."""
    h, w = a.shape[-2:]
    k = 2 * radius + 1
    p = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(radius, radius), (radius, radius)])
    rows = p[..., :h, :].copy()
    for i in range(1, k):
        rows += p[..., i : i + h, :]
    out = rows[..., :w].copy()
    for i in range(1, k):
        out += rows[..., i : i + w]
    return out


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel dot product of two 3 x H x W fields."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _normals(points: np.ndarray, valid: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """3 x H x W unit normals and their mask, from 3 x H x W points that are 0 where not `valid`."""
    h, w = valid.shape
    normals = np.zeros((3, h, w), dtype=np.float64)
    ok = np.zeros((h, w), dtype=bool)
    s = max(radius, 1)
    if h <= 2 * s or w <= 2 * s:
        return normals, ok
    area = (2 * radius + 1) ** 2
    # Each box averages the points it has: dropouts inside it only thin the average (a plane's points
    # still average onto the plane), so a wide box survives the scattered holes of real sensors.
    count = _box_sum(valid.astype(np.float64), radius)
    enough = count >= MIN_SUPPORT * area
    smooth = _box_sum(points, radius) / np.maximum(count, 1.0)
    du = smooth[:, s:-s, 2 * s :] - smooth[:, s:-s, : -2 * s]
    dv = smooth[:, 2 * s :, s:-s] - smooth[:, : -2 * s, s:-s]
    n = np.stack(
        [
            du[1] * dv[2] - du[2] * dv[1],
            du[2] * dv[0] - du[0] * dv[2],
            du[0] * dv[1] - du[1] * dv[0],
        ]
    )
    norm = np.sqrt(_dot(n, n))
    inner = (enough[s:-s, 2 * s :] & enough[s:-s, : -2 * s] & enough[2 * s :, s:-s] & enough[: -2 * s, s:-s]
             & valid[s:-s, s:-s] & (norm > 0))
    # Face the camera (at the origin): the normal must point against the viewing ray to the point.
    sign = np.where(_dot(n, smooth[:, s:-s, s:-s]) > 0, -1.0, 1.0)
    normals[:, s:-s, s:-s] = n * np.where(inner, sign / np.where(inner, norm, 1.0), 0.0)
    ok[s:-s, s:-s] = inner
    return normals, ok


def surface_normals(
    points: np.ndarray, valid: np.ndarray, radius: int = ANGLE_RADIUS
) -> tuple[np.ndarray, np.ndarray]:
    """H x W x 3 unit normals facing the camera, and the H x W mask where they are defined.

    The points with depth are averaged over a (2r+1) x (2r+1) box, then the normal is the cross product
    of the differences of those averages `r` pixels right and left, and `r` pixels below and above (1
    for r = 0). Averages and differences of points of a plane lie in that plane, so the normal is exact
    on planar regions. A normal is defined where the pixel has depth, each of the four boxes has depth
    at MIN_SUPPORT of its pixels at least, and the support lies inside the image.
    """
    valid = np.asarray(valid, dtype=bool)
    chw = np.where(valid, np.moveaxis(np.asarray(points, dtype=np.float64), -1, 0), 0.0)
    normals, ok = _normals(chw, valid, radius)
    return np.moveaxis(normals, 0, -1), ok


def estimate_up(
    normals: np.ndarray,
    valid: np.ndarray,
    thresholds: Sequence[float] = (45.0, 15.0),
    iterations: int = 5,
    initial: Sequence[float] = CAMERA_UP,
) -> np.ndarray:
    """Unit up vector (against gravity) in camera coordinates from ... x 3 normals, by Gupta's iterative voting.

    For each threshold t (degrees), repeated `iterations` times: normals within t of +-up vote for being
    parallel to it, normals within t of perpendicular vote for being perpendicular, and the new up is the
    eigenvector of sum_perp n n^T - sum_par n n^T with the smallest eigenvalue, which minimises
    sum_par sin^2 + sum_perp cos^2 of the angles to up. Its sign follows the previous estimate.
    """
    up = np.asarray(initial, dtype=np.float64)
    up = up / np.linalg.norm(up)
    n = np.asarray(normals, dtype=np.float64)[np.asarray(valid, dtype=bool)]
    if len(n) == 0:
        return up
    # A vanishing pull towards the previous estimate breaks ties when the votes leave a direction free
    # (e.g. a single wall and no floor), instead of letting the eigensolver pick an arbitrary axis.
    tie = 1e-6 * len(n)
    for threshold in thresholds:
        cos_t, sin_t = math.cos(math.radians(threshold)), math.sin(math.radians(threshold))
        for _ in range(iterations):
            d = np.abs(n @ up)
            weight = (d < sin_t).astype(np.float64) - (d > cos_t)
            a = (n * weight[:, None]).T @ n - tie * np.outer(up, up)
            _, vectors = np.linalg.eigh(a)
            new = vectors[:, 0]
            new = new if new @ up >= 0 else -new
            done = new @ up > 1 - 1e-12
            up = new / np.linalg.norm(new)
            if done:
                break
    return up


def _shifted(a: np.ndarray, dy: int, dx: int, fill: float | bool) -> np.ndarray:
    """`a` (... x H x W) moved so that out[..., y, x] = a[..., y + dy, x + dx], `fill` where that is outside."""
    out = np.full_like(a, fill)
    h, w = a.shape[-2:]
    out[..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)] = a[
        ..., max(dy, 0) : h - max(-dy, 0), max(dx, 0) : w - max(-dx, 0)
    ]
    return out


def _planar(normals: np.ndarray, ok: np.ndarray, offset: int, max_angle: float) -> np.ndarray:
    """Pixels whose normal is within `max_angle` degrees of the normals `offset` pixels away in all 4 directions."""
    cos_max = math.cos(math.radians(max_angle))
    keep = ok.copy()
    for dy, dx in ((0, offset), (0, -offset), (offset, 0), (-offset, 0)):
        keep &= _shifted(ok, dy, dx, False) & (_dot(normals, _shifted(normals, dy, dx, 0.0)) > cos_max)
    return keep


def _gravity(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Up vector of a 3 x H x W cloud: `estimate_up` on the wide-support normals of its planar regions."""
    radius = max(1, round(min(valid.shape) / GRAVITY_PIXELS_PER_RADIUS))
    normals, ok = _normals(points, valid, radius)
    if ok.sum() < 3:
        # Too small or too broken for the wide support: vote with the fine normals instead.
        radius = ANGLE_RADIUS
        normals, ok = _normals(points, valid, radius)
    voters = ok
    for max_angle in PLANAR_ANGLES:
        planar = _planar(normals, ok, 2 * radius, max_angle)
        if planar.sum() >= max(3, PLANAR_MIN_FRACTION * ok.sum()):
            voters = planar
            break
    return estimate_up(np.moveaxis(normals, 0, -1), voters)


def _fill_normals(
    normals: np.ndarray, ok: np.ndarray, target: np.ndarray, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Grow normals into `target` pixels lacking one, from the mean of their defined 3 x 3 neighbours, up to `steps` times."""
    for _ in range(steps):
        missing = target & ~ok
        if not missing.any():
            break
        total = _box_sum(normals, 1)  # normals are 0 where not ok
        norm = np.sqrt(_dot(total, total))
        grow = missing & (norm > 1e-6)
        normals = normals + total * np.where(grow, 1.0 / np.where(grow, norm, 1.0), 0.0)
        ok = ok | grow
    return normals, ok


def _to_uint8(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Round to nearest, clip to 0..255, uint8, and 0 outside `valid`."""
    out = np.clip(np.rint(np.where(valid, values, 0.0)), 0, 255)
    return out.astype(np.uint8)


def default_normal_radius(shape: Sequence[int]) -> int:
    """The angle channel's smoothing radius for an image of `shape` (see NORMAL_PIXELS_PER_RADIUS)."""
    return 1 + round(min(shape[:2]) / NORMAL_PIXELS_PER_RADIUS)


def depth_to_hha(depth: np.ndarray, intrinsics: Sequence[float], depth_scale: float = 0.001,
                 normal_radius: int | None = None, camera_height: float | None = None) -> np.ndarray:
    """H x W x 3 uint8 HHA image of a raw depth map (`depth` * `depth_scale` = metres; 0 = no depth).

    `normal_radius`: half-width of the box over which the cloud is smoothed for the angle channel
    (default `default_normal_radius`). `camera_height`: the camera's height above the floor in cm; when
    given, heights are measured from that floor; by default from the floor seen in the image, or, when
    no floor is in view, from one `NO_FLOOR_CAMERA_HEIGHT` cm below the camera (see the module docstring).
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a single-channel H x W array, got shape {depth.shape}")
    if not (math.isfinite(depth_scale) and depth_scale > 0):
        raise ValueError(f"depth_scale must be a positive number, got {depth_scale!r}")
    radius = default_normal_radius(depth.shape) if normal_radius is None else normal_radius
    if not (isinstance(radius, (int, np.integer)) and radius >= 1):
        raise ValueError(f"normal_radius must be an integer >= 1, got {normal_radius!r}")
    if camera_height is not None and not (math.isfinite(camera_height) and camera_height > 0):
        raise ValueError(f"camera_height must be a positive number of centimetres, got {camera_height!r}")
    points, valid = _cloud(depth.astype(np.float64) * (depth_scale * 100.0), intrinsics)  # centimetres
    hha = np.zeros((*depth.shape, 3), dtype=np.uint8)
    if not valid.any():
        return hha

    up = _gravity(points, valid)
    normals, has_normal = _normals(points, valid, radius)
    # Pixels with depth near holes or the image border lack a full support; their neighbours' normals
    # are the best guess. Clustered holes can leave pockets wider than one support, hence a few rounds;
    # only pixels still without a normal after those (isolated specks of depth) keep angle 0.
    normals, has_normal = _fill_normals(normals, has_normal, valid, 4 * (radius + 1))

    disparity = 31000.0 / np.maximum(points[2], 100.0)
    lift = up[0] * points[0] + up[1] * points[1] + up[2] * points[2]  # cm above the camera
    height = lift + floor_depth(lift[valid], camera_height)
    cos_up = up[0] * normals[0] + up[1] * normals[1] + up[2] * normals[2]
    angle = np.degrees(np.arccos(np.clip(cos_up, -1.0, 1.0))) + (128.0 - 90.0)

    hha[..., 0] = _to_uint8(disparity, valid)
    hha[..., 1] = _to_uint8(height, valid)
    hha[..., 2] = _to_uint8(angle, valid & has_normal)
    return hha


def floor_depth(lift: np.ndarray, camera_height: float | None = None) -> float:
    """How far below the camera the floor lies (cm), from the heights `lift` of the valid points relative
    to the camera: `camera_height` when given; else the FLOOR_PERCENTILE-th percentile of the points, unless
    even that is less than NO_FLOOR_BELOW cm below the camera (no floor in view), then NO_FLOOR_CAMERA_HEIGHT."""
    if camera_height is not None:
        return float(camera_height)
    lowest = float(np.percentile(lift, FLOOR_PERCENTILE))
    return -lowest if lowest <= -NO_FLOOR_BELOW else NO_FLOOR_CAMERA_HEIGHT


def parse_intrinsics(text: str) -> Intrinsics:
    """(fx, fy, cx, cy) from a "fx,fy,cx,cy" string such as "518.8,519.5,325.6,253.7"."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
        if len(values) != 4:
            raise ValueError
        return _check_intrinsics(values)
    except ValueError:
        raise ValueError(
            f"invalid intrinsics {text!r}: expected four comma-separated numbers 'fx,fy,cx,cy' "
            "with fx, fy > 0, e.g. '518.8,519.5,325.6,253.7'"
        ) from None
