"""Indoor RGB-D scenes: furnished rooms lit by one dim lamp, seen by a dark RGB camera and a
Kinect-like depth sensor, labelled with the LLRGBD-synthetic classes.

Both modalities are made necessary on purpose: class colours are drawn per scene from overlapping
families, so colour alone is a weak cue, and flat wall-mounted classes (painting, tv, window) differ
from the wall by centimetres of depth, while bed, sofa and table have similar heights.

The room and its furniture are built in indoor_room and indoor_layout, their appearance is in
indoor_materials; this file renders them and simulates the depth sensor.
"""

from __future__ import annotations

import numpy as np

from smmcl.data.synth.indoor_layout import L, furnish
from smmcl.data.synth.indoor_materials import surface
from smmcl.data.synth.indoor_room import Room
from smmcl.data.synth.raycast import cast
from smmcl.data.synth.sensor import dark_capture, smooth_field
from smmcl.data.synth.shading import point_light

MAX_RANGE_MM = 10000      # beyond this the sensor returns nothing (0)
# The depth sensor matches its pattern in 1/8-pixel disparity steps; Kinect v1 has a 580 px focal
# length and a 7.5 cm baseline, so depth comes in steps growing with z^2 (1 cm at 2 m, 5 cm at 4 m).
DISPARITY_FB = 580 * 0.075
DISPARITY_STEP = 1 / 8


# Share of a normal, average-metered exposure the capture gets: a dark capture (the default) or a lit one.
DARK_EXPOSURE = (0.015, 0.045)
LIT_EXPOSURE = (0.8, 1.2)


def render(room: Room, lamp: np.ndarray, rng: np.random.Generator, exposure: tuple[float, float] = DARK_EXPOSURE):
    """Ray-cast the room; returns the 8-bit RGB (dark by default), depth in millimetres (uint16) and the labels."""
    hits = cast(room.camera, room.prims)
    h, w = hits.depth.shape
    albedo, emission = np.zeros((h, w, 3)), np.zeros((h, w, 3))
    drop, lit = np.zeros((h, w)), np.ones((h, w))
    for i, pix in hits.by_primitive():
        prim = room.prims[i]
        a, e, d = surface(prim.material, hits.local.reshape(-1, 3)[pix], hits.point.reshape(-1, 3)[pix], prim.extent)
        albedo.reshape(-1, 3)[pix], emission.reshape(-1, 3)[pix], drop.reshape(-1)[pix] = a, e, d
        lit.reshape(-1)[pix] = prim.material.extra.get("lit", 1.0)
    warm = np.array([1.0, rng.uniform(0.75, 0.9), rng.uniform(0.5, 0.75)])  # an incandescent lamp
    irradiance = (point_light(hits.point, hits.normal, lamp, 1.0, size=0.4) + rng.uniform(0.02, 0.08)) * lit
    radiance = albedo * irradiance[..., None] * warm + emission
    # A normal, average-metered shot puts the log-average radiance at mid-grey (0.18, lamps saturate);
    # the dark capture then gets only a few percent of that exposure.
    reference = np.exp(np.log(radiance.mean(-1) + 1e-6).mean()) / 0.18
    rgb = dark_capture(radiance / reference, rng, exposure=rng.uniform(*exposure),
                       full_well=rng.uniform(600, 1500), read_noise=rng.uniform(1.0, 3.0))
    # Dark, absorbing surfaces (black screens, dark fabric) send little of the pattern back.
    drop = np.maximum(drop, 0.6 * np.clip(1.0 - albedo.mean(-1) / 0.08, 0.0, 1.0))
    depth = depth_sensor(hits.depth, drop, rng)
    return rgb, depth, hits.labels(room.prims, L["void"])


def depth_sensor(z: np.ndarray, drop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Kinect-like depth in millimetres: axial noise growing with z^2, quantised disparity, and no
    return (0) with probability `drop` (glass, screens, dark surfaces), at random blobs, beyond the
    range and in the shadows beside depth edges."""
    h, w = z.shape
    valid = np.isfinite(z)
    z = np.where(valid, z, 0.0)
    noisy = z + rng.normal(0.0, 1.0, z.shape) * (0.0012 + 0.0019 * (z - 0.4) ** 2)
    disparity = np.round(DISPARITY_FB / np.maximum(noisy, 0.1) / DISPARITY_STEP) * DISPARITY_STEP
    noisy = DISPARITY_FB / np.maximum(disparity, DISPARITY_STEP)
    hole = ~valid | (noisy * 1000 >= MAX_RANGE_MM) | (rng.random(z.shape) < drop)
    hole |= smooth_field(rng, h, w, max(h, w) / rng.uniform(8, 14)) > rng.uniform(0.9, 0.97)
    # The projector sits beside the camera: the background just past a foreground edge gets no pattern.
    far = np.where(valid, z, 1e3)
    shadow = np.zeros_like(hole)
    for axis, p in ((1, rng.uniform(0.5, 0.9)), (0, rng.uniform(0.1, 0.4))):
        a = far[:, :-1] if axis == 1 else far[:-1]
        b = far[:, 1:] if axis == 1 else far[1:]
        jump = np.abs(b - a) > 0.05 * np.minimum(a, b)
        edge = np.zeros_like(hole)
        if axis == 1:
            edge[:, 1:] |= jump & (b > a)
            edge[:, :-1] |= jump & (a > b)
        else:
            edge[1:] |= jump & (b > a)
            edge[:-1] |= jump & (a > b)
        shadow |= edge & (rng.random(z.shape) < p)
    width = max(1, round(w / 160 * rng.uniform(1, 2.5)))
    for k in range(1, width):
        shadow[:, k:] |= shadow[:, :-k] & (rng.random((h, w - k)) < 0.7)
    hole |= shadow
    return np.where(hole, 0, np.clip(np.round(noisy * 1000), 1, MAX_RANGE_MM - 1)).astype(np.uint16)


def render_scene(rng: np.random.Generator, size: tuple[int, int]):
    """One indoor scene: (RGB uint8 (H, W, 3), depth uint16 mm (H, W), labels uint8 (H, W))."""
    room = Room(rng, size)
    lamp = furnish(room)
    return render(room, lamp, rng)


def render_lit_scene(rng: np.random.Generator, size: tuple[int, int]):
    """The same kind of room captured with a normal exposure (e.g. for pretraining on well-lit scenes)."""
    room = Room(rng, size)
    lamp = furnish(room)
    return render(room, lamp, rng, exposure=LIT_EXPOSURE)
