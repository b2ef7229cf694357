"""Time `depth_to_hha` on a synthetic 480 x 640 room frame (NYUDv2 intrinsics) and print the median per frame;
with `--accuracy`, measure the angle channel against the exact normals for several smoothing radii.

The target is at most 1 s per frame on one core; measure it single-threaded:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/hha.py
    python benchmarks/hha.py --accuracy      # the table behind smmcl.data.hha.NORMAL_PIXELS_PER_RADIUS

The frame is rendered analytically: a box-shaped room (floor, ceiling, three walls) holding a box, seen
by a camera 1.4 m up, pitched down 15 degrees and rolled 2 degrees, with Kinect-like depth noise,
millimetre quantisation and missing pixels (random dropouts and a shadow strip beside the box).
"""

from __future__ import annotations

import os

# Before numpy loads, so that BLAS honours them; taskset alone leaves BLAS threads fighting for one core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from smmcl.data.hha import _cloud, _gravity, depth_to_hha  # noqa: E402

NYU = (518.8579, 519.4696, 325.5824, 253.7362)
ROOM = (np.array([-220.0, 0.0, -50.0]), np.array([260.0, 270.0, 520.0]))  # x right, y up, z forward (cm)
BOX = (np.array([-70.0, 0.0, 230.0]), np.array([50.0, 85.0, 320.0]))
CAMERA = np.array([0.0, 140.0, 0.0])


def _camera_axes(pitch: float, roll: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World directions of the camera's right, down (image rows) and forward axes."""
    t, r = math.radians(pitch), math.radians(roll)
    right = np.array([1.0, 0.0, 0.0])
    down = np.array([0.0, -math.cos(t), -math.sin(t)])
    fwd = np.array([0.0, -math.sin(t), math.cos(t)])
    return math.cos(r) * right + math.sin(r) * down, -math.sin(r) * right + math.cos(r) * down, fwd


def render_room(
    size: tuple[int, int], pitch: float = 15.0, roll: float = 2.0, seed: int = 0, relative_noise: float | None = None,
    exact: bool = False,
):
    """uint16 millimetre depth of the room scene, and the true up vector in camera coordinates; with `exact`,
    also the true angle between each pixel's surface normal and up (degrees: 0 floor and box top, 90 walls
    and box sides, 180 ceiling). `relative_noise`: Gaussian depth noise of that fraction of the depth
    instead of the Kinect-like model."""
    h, w = size
    fx, fy, cx, cy = NYU[0] * w / 640, NYU[1] * h / 480, NYU[2] * w / 640, NYU[3] * h / 480
    right, down, fwd = _camera_axes(pitch, roll)
    x = (np.arange(w) - cx) / fx
    y = (np.arange(h) - cy) / fy
    d = x[None, :, None] * right + y[:, None, None] * down + fwd  # camera Z component 1: t is the depth
    with np.errstate(divide="ignore", invalid="ignore"):
        # Inside the room the ray leaves through the nearest far slab; the box is entered at its far-most near slab.
        t0, t1 = (ROOM[0] - CAMERA) / d, (ROOM[1] - CAMERA) / d
        room_exit = np.maximum(t0, t1).min(-1)
        b0, b1 = (BOX[0] - CAMERA) / d, (BOX[1] - CAMERA) / d
        enter, leave = np.minimum(b0, b1).max(-1), np.maximum(b0, b1).min(-1)
    box_hit = (enter <= leave) & (enter > 0)
    on_box = box_hit & (enter <= room_exit)
    z = np.where(on_box, enter, room_exit) / 100.0  # metres
    # The face hit: the axis of the slab that limits the ray (its exit from the room, its entry into the box).
    axis = np.where(on_box, np.minimum(b0, b1).argmax(-1), np.maximum(t0, t1).argmin(-1))
    going_up = d[..., 1] > 0
    angle = np.where(axis == 1, np.where(on_box | ~going_up, 0.0, 180.0), 90.0)

    rng = np.random.default_rng(seed)
    if relative_noise is None:
        # Axial noise of a structured-light sensor grows roughly with the square of the distance.
        z = z + rng.normal(size=z.shape) * (0.0012 + 0.0019 * (z - 0.4) ** 2)
    else:
        z = z * (1 + relative_noise * rng.normal(size=z.shape))
    depth = np.rint(z * 1000).clip(0, 65535).astype(np.uint16)
    depth[rng.random(z.shape) < 0.02] = 0
    cols = np.nonzero(box_hit.any(0))[0]
    if len(cols):
        depth[:, cols[-1] + 1 : cols[-1] + 1 + w // 40][box_hit.any(1)] = 0  # shadow strip right of the box
    up = np.array([right[1], down[1], fwd[1]])
    return (depth, up, angle) if exact else (depth, up)


def angle_error(size: tuple[int, int], radius: int, relative_noise: float | None, seed: int = 0) -> tuple[float, float]:
    """Mean and 90th percentile of |angle channel - exact| (degrees) over the pixels that have depth."""
    intrinsics = (NYU[0] * size[1] / 640, NYU[1] * size[0] / 480, NYU[2] * size[1] / 640, NYU[3] * size[0] / 480)
    depth, _, exact = render_room(size, seed=seed, relative_noise=relative_noise, exact=True)
    hha = depth_to_hha(depth, intrinsics, normal_radius=radius)
    valid = depth > 0
    err = np.abs(hha[..., 2].astype(float) - (exact + 38.0))[valid]
    return float(err.mean()), float(np.percentile(err, 90))


def accuracy_table(radii=(1, 2, 3, 4, 5)) -> None:
    """The angle channel's error for each radius, at two resolutions and three noise levels."""
    noises = {"no noise": 0.0, "0.3% noise": 0.003, "Kinect-like": None}
    print("angle channel error vs exact normals, degrees (mean / 90th percentile over pixels with depth);"
          " 2% dropouts and a shadow strip in every frame")
    for size in ((480, 640), (240, 320), (120, 160)):
        print(f"{size[0]}x{size[1]}   " + "  ".join(f"{name:>17}" for name in noises))
        for r in radii:
            cells = [angle_error(size, r, n) for n in noises.values()]
            print(f"  radius {r} ({2 * r + 1}x{2 * r + 1})" + "".join(f"  {m:7.2f} / {p:6.2f}" for m, p in cells))


def main() -> None:
    """Render, warm up, time `frames` conversions and print the median and spread."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=15, help="timed conversions (after one warm-up)")
    parser.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    parser.add_argument("--accuracy", action="store_true", help="print the angle error per smoothing radius instead")
    args = parser.parse_args()
    if args.accuracy:
        accuracy_table()
        return
    size = tuple(args.size)
    intrinsics = (NYU[0] * size[1] / 640, NYU[1] * size[0] / 480, NYU[2] * size[1] / 640, NYU[3] * size[0] / 480)
    depth, up = render_room(size)

    est = _gravity(*_cloud(depth * 0.1, intrinsics))
    err = math.degrees(math.acos(min(1.0, float(est @ up))))
    print(f"frame {size[0]}x{size[1]}: {np.mean(depth == 0):.1%} missing, gravity error {err:.3f} deg")

    depth_to_hha(depth, intrinsics)
    times = []
    for _ in range(args.frames):
        t0 = time.perf_counter()
        depth_to_hha(depth, intrinsics)
        times.append(time.perf_counter() - t0)
    threads = os.environ.get("OMP_NUM_THREADS"), os.environ.get("OPENBLAS_NUM_THREADS")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"depth_to_hha: median {statistics.median(times) * 1000:.1f} ms, min {min(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms over {len(times)} frames "
          f"(cpus {cpus}, OMP/OPENBLAS threads {threads[0]}/{threads[1]})")


if __name__ == "__main__":
    main()
