"""A small vectorised ray caster for the synthetic scenes: pinhole camera, solid primitives and their hits.

World frame: x right, y up, z forward, in metres. Each primitive is defined centred and axis-aligned
in its own local frame; `rotation` maps local directions to world directions. Rays leave one pinhole
camera with directions scaled so that their camera-frame z component is 1: the ray parameter t of a
hit is then the z-depth along the optical axis, which is what a depth sensor reports.

A primitive is only tested against the rays inside the image rectangle that bounds its projected
bounding sphere, so small parts cost little and a room of 60-100 parts renders in a few milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

EPS = 1e-6
KINDS = ("box", "ellipsoid", "frustum")


def rotation(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Local-to-world rotation: roll about z, then pitch about x (positive tilts +z up), then yaw about y."""
    cy, sy, cp, sp, cr, sr = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return ry @ rx @ rz


@dataclass
class Primitive:
    """One solid. `size` is the half extents (box), the semi-axes (ellipsoid) or
    (bottom radius, half height, top radius) of a frustum around the local y axis (cylinders and cones).
    `material` is opaque here: the scene kinds' shaders read it."""

    kind: str
    center: np.ndarray
    size: np.ndarray
    label: int
    material: Any = None
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown primitive kind '{self.kind}'; expected one of {KINDS}")
        self.center = np.asarray(self.center, np.float64)
        self.size = np.asarray(self.size, np.float64)
        self.rotation = np.asarray(self.rotation, np.float64)

    @property
    def extent(self) -> np.ndarray:
        """Half extents of a local axis-aligned box that contains the primitive."""
        if self.kind == "frustum":
            r = max(self.size[0], self.size[2])
            return np.array([r, self.size[1], r])
        return self.size


def box(center, half, label: int, material: Any = None, yaw: float = 0.0,
        rot: Optional[np.ndarray] = None) -> Primitive:
    return Primitive("box", center, half, label, material, rotation(yaw) if rot is None else rot)


def ellipsoid(center, axes, label: int, material: Any = None, yaw: float = 0.0,
              rot: Optional[np.ndarray] = None) -> Primitive:
    return Primitive("ellipsoid", center, axes, label, material, rotation(yaw) if rot is None else rot)


def sphere(center, radius: float, label: int, material: Any = None) -> Primitive:
    return Primitive("ellipsoid", center, (radius, radius, radius), label, material)


def frustum(center, r_bottom: float, half_height: float, r_top: float, label: int, material: Any = None,
            rot: Optional[np.ndarray] = None) -> Primitive:
    """A cylinder (equal radii) or a truncated cone; upright unless `rot` turns it."""
    return Primitive("frustum", center, (r_bottom, half_height, r_top), label, material,
                     np.eye(3) if rot is None else rot)


@dataclass
class Camera:
    """Pinhole camera with a horizontal field of view, the principal point at the image centre."""

    height: int
    width: int
    fov_deg: float
    position: np.ndarray
    yaw: float = 0.0
    pitch: float = 0.0

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, np.float64)
        self.focal = 0.5 * self.width / math.tan(math.radians(self.fov_deg) / 2)
        self.rotation = rotation(self.yaw, self.pitch)

    def directions(self) -> np.ndarray:
        """(H, W, 3) world ray directions through pixel centres, camera-frame z component 1."""
        x = (np.arange(self.width) + 0.5 - self.width / 2) / self.focal
        y = -(np.arange(self.height) + 0.5 - self.height / 2) / self.focal
        cam = np.stack(np.broadcast_arrays(x[None, :], y[:, None], np.ones((1, 1))), -1)
        return cam @ self.rotation.T

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel column u, row v (continuous, pixel centres at +0.5) and z-depth."""
        cam = (np.asarray(points, np.float64) - self.position) @ self.rotation
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.focal * cam[:, 0] / z + self.width / 2
            v = self.height / 2 - self.focal * cam[:, 1] / z
        return u, v, z

    def screen_rects(self, primitives: Sequence[Primitive]) -> np.ndarray:
        """(P, 4) rows r0, r1 and columns c0, c1 (exclusive) whose rays may meet each primitive;
        empty ranges for primitives off screen. A convex solid projects inside the hull of the
        projected corners of its bounding box."""
        if not primitives:
            return np.zeros((0, 4), np.int64)
        centers = np.stack([p.center for p in primitives])
        rots = np.stack([p.rotation for p in primitives])
        extents = np.stack([p.extent for p in primitives])
        corners = np.einsum("pkj,pij->pki", _CORNERS[None] * extents[:, None], rots) + centers[:, None]
        cam = (corners - self.position) @ self.rotation
        z = cam[..., 2]
        zs = np.maximum(z, 1e-3)
        x, y = cam[..., 0] / zs, cam[..., 1] / zs
        f, h2, w2 = self.focal, self.height / 2, self.width / 2
        rects = np.stack([
            np.floor(h2 - 0.5 - y.max(1) * f), np.ceil(h2 - 0.5 - y.min(1) * f) + 1,
            np.floor(x.min(1) * f + w2 - 0.5), np.ceil(x.max(1) * f + w2 - 0.5) + 1,
        ], 1)
        rects = np.clip(rects, 0, [self.height, self.height, self.width, self.width]).astype(np.int64)
        # A box reaching the camera plane has no finite projection: test every ray. One fully behind: none.
        rects[z.min(1) <= 1e-3] = (0, self.height, 0, self.width)
        rects[z.max(1) <= 0] = 0
        return rects


_CORNERS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)


@dataclass
class Hits:
    """Nearest hit per pixel. `index` is -1 and `depth` inf where no primitive was hit; `normal` (world,
    unit, turned towards the camera), `point` (world) and `local` (the hit in its primitive's frame)."""

    depth: np.ndarray
    index: np.ndarray
    normal: np.ndarray
    point: np.ndarray
    local: np.ndarray

    def by_primitive(self) -> list[tuple[int, np.ndarray]]:
        """(primitive index, flat pixel indices) for every primitive seen in the image."""
        flat = self.index.reshape(-1)
        order = np.argsort(flat, kind="stable")
        ids, starts = np.unique(flat[order], return_index=True)
        ends = np.append(starts[1:], len(flat))
        return [(int(i), order[s:e]) for i, s, e in zip(ids, starts, ends) if i >= 0]

    def labels(self, primitives: Sequence[Primitive], background: int) -> np.ndarray:
        lut = np.array([p.label for p in primitives] + [background], np.uint8)
        return lut[self.index]  # index -1 picks the background entry at the end


# Ray parameters of the nearest hit in front of the origin (inf for a miss); o: (3,) and d: (3, M), local.
# Components are kept as separate rows so that every step is an elementwise operation on long arrays.

def _t_box(o: np.ndarray, d: np.ndarray, half: np.ndarray) -> np.ndarray:
    t_near = np.full(d.shape[1], -np.inf)
    t_far = np.full(d.shape[1], np.inf)
    for a in range(3):
        inv = 1.0 / np.where(d[a] == 0.0, 1e-12, d[a])  # keeps the slab arithmetic free of 0 * inf
        t1 = (-half[a] - o[a]) * inv
        t2 = (half[a] - o[a]) * inv
        np.maximum(t_near, np.minimum(t1, t2), out=t_near)
        np.minimum(t_far, np.maximum(t1, t2), out=t_far)
    # From inside a box (a room) the visible surface is the far one.
    t = np.where(t_near > EPS, t_near, t_far)
    return np.where((t_far >= t_near) & (t > EPS), t, np.inf)


def _t_ellipsoid(o: np.ndarray, d: np.ndarray, axes: np.ndarray) -> np.ndarray:
    p, q = o / axes, d / axes[:, None]  # a unit sphere in scaled coordinates; t is unchanged by the scaling
    a = q[0] * q[0] + q[1] * q[1] + q[2] * q[2]
    b = 2.0 * (p[0] * q[0] + p[1] * q[1] + p[2] * q[2])
    c = p @ p - 1.0
    disc = b * b - 4.0 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = (-b - sq) / (2 * a), (-b + sq) / (2 * a)
    t = np.where(t0 > EPS, t0, t1)
    return np.where((disc >= 0) & (t > EPS), t, np.inf)


def _t_frustum(o: np.ndarray, d: np.ndarray, size: np.ndarray) -> np.ndarray:
    r0, h, r1 = size
    k = (r1 - r0) / (2 * h)  # radius(y) = k * y + m on the side surface
    m = r0 + k * h
    dx, dy, dz = d
    a = dx * dx + dz * dz - k * k * dy * dy
    a = np.where(np.abs(a) < 1e-12, 1e-12, a)
    b = 2.0 * (o[0] * dx + o[2] * dz - k * dy * (k * o[1] + m))
    c = o[0] ** 2 + o[2] ** 2 - (k * o[1] + m) ** 2
    disc = b * b - 4.0 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    best = np.full(len(dx), np.inf)
    for t in ((-b - sq) / (2 * a), (-b + sq) / (2 * a)):
        ok = (disc >= 0) & (t > EPS) & (np.abs(o[1] + t * dy) <= h)  # |y| <= h also drops the mirror cone
        best = np.where(ok & (t < best), t, best)
    dy = np.where(dy == 0.0, 1e-12, dy)
    for y_cap, r_cap in ((-h, r0), (h, r1)):
        t = (y_cap - o[1]) / dy
        ok = (t > EPS) & ((o[0] + t * dx) ** 2 + (o[2] + t * dz) ** 2 <= r_cap * r_cap)
        best = np.where(ok & (t < best), t, best)
    return best


# Outward normals (not yet unit length) at local hit points p: (N, 3).

def _n_box(p: np.ndarray, half: np.ndarray) -> np.ndarray:
    axis = (np.abs(p) / half).argmax(1)  # the face whose plane the point lies on
    n = np.zeros_like(p)
    rows = np.arange(len(p))
    n[rows, axis] = np.sign(p[rows, axis])
    return n


def _n_ellipsoid(p: np.ndarray, axes: np.ndarray) -> np.ndarray:
    return p / axes**2


def _n_frustum(p: np.ndarray, size: np.ndarray) -> np.ndarray:
    r0, h, r1 = size
    k = (r1 - r0) / (2 * h)
    side = np.stack([p[:, 0], -k * (k * p[:, 1] + r0 + k * h), p[:, 2]], 1)
    cap = np.zeros_like(p)
    cap[:, 1] = np.sign(p[:, 1])
    on_cap = np.abs(p[:, 1]) >= h * (1 - 1e-9)
    return np.where(on_cap[:, None], cap, side)


_HIT = {"box": (_t_box, _n_box), "ellipsoid": (_t_ellipsoid, _n_ellipsoid), "frustum": (_t_frustum, _n_frustum)}


def cast(camera: Camera, primitives: Sequence[Primitive]) -> Hits:
    """Nearest hit of every pixel's ray among `primitives`."""
    h, w = camera.height, camera.width
    dirs = camera.directions()
    rows = np.ascontiguousarray(dirs.transpose(2, 0, 1))  # (3, H, W): slices stay cheap to flatten
    depth = np.full((h, w), np.inf)
    index = np.full((h, w), -1, np.int32)
    rects = camera.screen_rects(primitives)
    # Visibility first; normals and local points are then computed once per pixel, for the winner only.
    for i, prim in enumerate(primitives):
        r0, r1, c0, c1 = rects[i]
        if r0 >= r1 or c0 >= c1:
            continue
        rot = prim.rotation
        o = (camera.position - prim.center) @ rot
        d = rot.T @ rows[:, r0:r1, c0:c1].reshape(3, -1)
        t = _HIT[prim.kind][0](o, d, prim.size).reshape(r1 - r0, c1 - c0)
        block = depth[r0:r1, c0:c1]
        closer = t < block
        block[closer] = t[closer]
        index[r0:r1, c0:c1][closer] = i
    normal = np.zeros((h, w, 3))
    local = np.zeros((h, w, 3))
    flat = index.reshape(-1)
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(len(primitives) + 1))
    d_all = dirs.reshape(-1, 3)
    t_all = depth.reshape(-1)
    for i, prim in enumerate(primitives):
        pix = order[starts[i]:starts[i + 1]]
        if len(pix) == 0:
            continue
        rot = prim.rotation
        p = (camera.position - prim.center + t_all[pix, None] * d_all[pix]) @ rot
        n = _HIT[prim.kind][1](p, prim.size) @ rot.T
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        n[(n * d_all[pix]).sum(1) > 0] *= -1.0  # shade the side the camera sees
        normal.reshape(-1, 3)[pix] = n
        local.reshape(-1, 3)[pix] = p
    point = camera.position + np.where(np.isfinite(depth), depth, 0.0)[..., None] * dirs
    return Hits(depth, index, normal, point, local)
