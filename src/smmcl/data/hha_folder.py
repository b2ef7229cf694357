"""`smmcl data hha`: a folder of depth images encoded as HHA (`smmcl.data.hha`), each frame's units checked against
the range a depth camera sees, the folder's written under the one output check (`smmcl.outputs`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from smmcl.data.hha import _check_intrinsics, depth_to_hha
from smmcl.data.io import IMAGE_SUFFIXES, read_image, write_image
from smmcl.data.modality import RangeWatch
from smmcl.data.names import check_folder_kind
from smmcl.errors import AuxUnitsWarning, DatasetError, InputWarning
from smmcl.outputs import Confirmer, unique_outputs, writing
from smmcl.progress import track


# The range a depth camera sees, in metres: a frame whose farthest point lies outside it is in other units than
# --depth-scale says (metres read as millimetres: all within 1 cm; 8-bit values as millimetres: within 25 cm).
PLAUSIBLE_FARTHEST_M = (0.5, 100.0)


# A folder whose farthest point stays under this in every frame is noted (not refused: a close-range rig may be so):
# centimetres read as millimetres put a 5 m room at 0.5 m (trial 8 #101).
NEAR_FOLDER_M = 1.0


def _check_depth_units(depth: np.ndarray, depth_scale: float, path: Path) -> float:
    """The frame's farthest point in metres; a `DatasetError` when it lies outside PLAUSIBLE_FARTHEST_M."""
    if np.issubdtype(depth.dtype, np.integer) and depth.dtype.itemsize > 1:
        marked = int(np.count_nonzero(depth == np.iinfo(depth.dtype).max))
        if marked:  # trial 15 H9: encoded as real points 65.5 m away, where predict and training refuse them
            top = np.iinfo(depth.dtype).max
            raise DatasetError(f"{path}: {marked} pixels hold {top}, the largest {depth.dtype} value: a sensor's "
                               f"no-reading or saturation marker, which HHA would encode as points {top * depth_scale:.3g} "
                               f"m away: set such pixels to 0 in the files (smmcl reads 0 as no measurement)")
    finite = depth[np.isfinite(depth)] if np.issubdtype(depth.dtype, np.floating) else depth
    farthest = float(finite.max()) * depth_scale if finite.size else 0.0
    low, high = PLAUSIBLE_FARTHEST_M
    if farthest > high and finite.size:
        bulk = float(np.percentile(finite, 99)) * depth_scale
        if low <= bulk <= high:  # the units fit; a few stray values do not (trial 17 H06: "--depth-scale 1" advised)
            stray = int(np.count_nonzero(finite * depth_scale > high))
            raise DatasetError(f"{path}: {stray} pixels lie beyond {high:g} m (up to {farthest:g} m) while 99% are within "
                               f"{bulk:.3g} m: stray far values (a stereo mismatch, a marker?) that HHA would encode as "
                               f"real points: set them to 0 (no measurement) in the files")
    if farthest > 0 and not low <= farthest <= high:
        hint = (" Float depth is usually in metres: --depth-scale 1." if np.issubdtype(depth.dtype, np.floating)
                and depth_scale != 1 else "" if np.issubdtype(depth.dtype, np.floating) else
                " 8-bit depth is no metric depth: HHA needs the camera's depth in known units." if depth.dtype == np.uint8
                else "")
        raise DatasetError(f"{path}: {depth.dtype} depth up to {float(finite.max()):g} x --depth-scale {depth_scale:g} "
                           f"puts its farthest point at {farthest:g} m, outside the {low:g}-{high:g} m a depth camera "
                           f"sees: give --depth-scale as the metres per stored unit.{hint}")
    return farthest


def convert_folder(
    depth_dir: Path,
    out_dir: Path,
    intrinsics: Sequence[float],
    depth_scale: float = 0.001,
    progress: bool = True,
    normal_radius: int | None = None,
    camera_height: float | None = None,
    overwrite: bool = False,
) -> int:
    """Write the HHA of every depth image (png/jpg/tif) in `depth_dir` as `out_dir`/<name>.png; returns the count.
    `normal_radius` and `camera_height` as in `depth_to_hha`. An earlier HHA in `out_dir` is replaced (whole) only
    with `overwrite`."""
    depth_dir, out_dir = Path(depth_dir), Path(out_dir)
    intrinsics = _check_intrinsics(intrinsics)
    if not depth_dir.is_dir():
        raise DatasetError(f"--depth {depth_dir} is a file; give the folder of depth images" if depth_dir.is_file()
                           else f"depth folder not found: {depth_dir}")
    check_folder_kind(depth_dir, "depth", "smmcl data hha encodes depth images", "give it the folder of depth images")
    files = sorted(p for p in depth_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"no depth images in {depth_dir} (expected {', '.join(IMAGE_SUFFIXES)} files)")
    # Before anything is written: a.png and a.tif would both become a.png; the output is apart from the depth.
    planned = unique_outputs(((f"{path.stem}.png", path) for path in files), f"--out folder {out_dir}")
    with writing(out_dir, "hha", "--out", inputs=[depth_dir], names=planned, overwrite=overwrite):

        farthest, where, listed, watch, beyond = 0.0, None, Confirmer(out_dir), RangeWatch(None), set()
        for path in track(files, desc="hha", unit="image", enabled=progress):
            depth = read_image(path)
            if depth.ndim != 2:
                raise DatasetError(f"{path}: expected a single-channel depth image, got shape {depth.shape}")
            h, w = depth.shape
            cx, cy = intrinsics[2], intrinsics[3]
            if cx < 0 or cy < 0:  # trial 10 #30: the four values in another order
                raise DatasetError(f"{path}: the principal point (cx, cy) = ({cx:g}, {cy:g}) lies outside the {w}x{h} "
                                   f"image; --intrinsics are fx,fy,cx,cy in pixels of this image")
            if (cx > w or cy > h) and (w, h) not in beyond:
                # A crop's principal point may lie beyond it, so said, not refused; a larger image's intrinsics (a
                # 640x480 camera's for 64x48 frames: trial 17 H04) put every point in the wrong place.
                beyond.add((w, h))
                warnings.warn(f"{path}: the principal point (cx, cy) = ({cx:g}, {cy:g}) lies beyond the {w}x{h} image: "
                              f"--intrinsics of a larger image (a {2 * cx:g}x{2 * cy:g} camera's? then scale all four by "
                              f"{w / (2 * cx):.3g}), or of the uncropped frame? --intrinsics are fx,fy,cx,cy in pixels "
                              f"of this image; encoded as given", InputWarning, stacklevel=2)
            far = _check_depth_units(depth, depth_scale, path)
            watch.see(depth, path)
            if far > farthest:
                farthest, where = far, path
            write_image(out_dir / f"{path.stem}.png", depth_to_hha(depth, intrinsics, depth_scale, normal_radius, camera_height))
            listed.add(f"{path.stem}.png")
        empty = watch.problem(unit="depth images")  # with no scale, said only of a folder with no measurement at all
        if empty is not None:
            warnings.warn(f"{empty}; the HHA in {out_dir} were written as given", AuxUnitsWarning, stacklevel=2)
        if 0 < farthest < NEAR_FOLDER_M:
            warnings.warn(f"the farthest point in all {len(files)} depth images is {farthest:.3g} m (in {where}) with "
                          f"--depth-scale {depth_scale:g}: depth in centimetres read as millimetres (then --depth-scale "
                          f"{depth_scale * 10:g})? a scene this near is encoded as it is; the HHA in {out_dir} were "
                          f"written as given", AuxUnitsWarning, stacklevel=2)
        return len(files)
