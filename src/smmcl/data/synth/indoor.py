"""Indoor RGB-D scenes: furnished rooms lit by one dim lamp, seen by a dark RGB camera and a
Kinect-like depth sensor, labelled with the LLRGBD-synthetic classes.

Both modalities are made necessary on purpose: class colours are drawn per scene from overlapping
families, so colour alone is a weak cue, and flat wall-mounted classes (painting, tv, window) differ
from the wall by centimetres of depth, while bed, sofa and table have similar heights.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from smmcl.data.classes import LLRGBD_CLASSES
from smmcl.data.synth.raycast import (Camera, Primitive, box, cast, dark_capture, ellipsoid, frustum,
                                      point_light, rotation, smooth_field, value_noise)

L = {name: i for i, name in enumerate(LLRGBD_CLASSES)}
FOV_DEG = 60.0            # about a Kinect's horizontal field of view
MAX_RANGE_MM = 10000      # beyond this the sensor returns nothing (0)
# The depth sensor matches its pattern in 1/8-pixel disparity steps; Kinect v1 has a 580 px focal
# length and a 7.5 cm baseline, so depth comes in steps growing with z^2 (1 cm at 2 m, 5 cm at 4 m).
DISPARITY_FB = 580 * 0.075
DISPARITY_STEP = 1 / 8

# Colour families as (hue, saturation, value) ranges of a linear albedo.
FAMILIES = {
    "white": ((0.0, 1.0), (0.0, 0.08), (0.55, 0.85)),
    "beige": ((0.07, 0.13), (0.15, 0.35), (0.45, 0.75)),
    "grey": ((0.0, 1.0), (0.0, 0.08), (0.15, 0.5)),
    "dark": ((0.0, 1.0), (0.0, 0.3), (0.03, 0.12)),
    "wood_light": ((0.06, 0.1), (0.35, 0.6), (0.4, 0.65)),
    "wood_dark": ((0.03, 0.08), (0.45, 0.75), (0.12, 0.3)),
    "pastel": ((0.0, 1.0), (0.15, 0.35), (0.45, 0.75)),
    "vivid": ((0.0, 1.0), (0.5, 0.9), (0.2, 0.6)),
}
# Family weights per class: they overlap on purpose, so that colour alone says little.
CLASS_FAMILIES = {
    "wall": {"white": 3, "beige": 2, "pastel": 2, "grey": 1},
    "ceiling": {"white": 4, "beige": 1, "grey": 1},
    "floor": {"wood_light": 2, "wood_dark": 2, "grey": 1, "beige": 1},
    "bed": {"white": 2, "beige": 1, "pastel": 2, "vivid": 1, "grey": 1},
    "sofa": {"grey": 2, "beige": 2, "dark": 1, "vivid": 1, "pastel": 1},
    "chair": {"wood_light": 1, "wood_dark": 1, "dark": 1, "white": 1, "vivid": 1},
    "table": {"wood_light": 2, "wood_dark": 2, "white": 1, "dark": 1, "grey": 1},
    "furniture": {"wood_light": 2, "wood_dark": 2, "white": 2, "grey": 1, "dark": 1},
    "books": {"vivid": 3, "pastel": 1, "dark": 1, "white": 1},
    "objects": {"vivid": 2, "white": 1, "dark": 1, "grey": 1, "pastel": 1},
    "painting": {"vivid": 2, "pastel": 3, "white": 2, "dark": 1, "wood_dark": 1},
    "frame": {"wood_light": 1, "wood_dark": 1, "white": 1, "dark": 1},
    "void": {"white": 1, "grey": 1, "dark": 2, "vivid": 1, "wood_dark": 1},
    "window": {"white": 1, "pastel": 2, "beige": 1},  # the night outside: moonlight, street light
}


@dataclass
class Material:
    colour: np.ndarray                 # linear albedo, 3 values
    pattern: str = "plain"             # see _albedo for the procedural patterns
    seed: int = 0
    emission: float = 0.0              # self-luminous radiance relative to the colour (lamp shades, glass)
    extra: dict = field(default_factory=dict)


def _colour(rng: np.random.Generator, cls: str) -> np.ndarray:
    weights = CLASS_FAMILIES[cls]
    names = list(weights)
    p = np.array([weights[n] for n in names], np.float64)
    (h0, h1), (s0, s1), (v0, v1) = FAMILIES[names[rng.choice(len(names), p=p / p.sum())]]
    return np.array(colorsys.hsv_to_rgb(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1)))


def _material(rng: np.random.Generator, cls: str, pattern: str = "plain", **extra) -> Material:
    return Material(_colour(rng, cls), pattern, int(rng.integers(1 << 30)), extra=extra)


@dataclass
class Frame:
    """Where an object stands: a floor point and the yaw of its front (local +z)."""

    pos: np.ndarray
    yaw: float


class Room:
    """Builds one furnished room: primitives, camera pose and lamp, all drawn from `rng`."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int]):
        self.rng = rng
        self.W, self.D, self.H = rng.uniform(3.6, 6.0), rng.uniform(4.0, 6.5), rng.uniform(2.4, 3.0)
        eye = (rng.uniform(0.35, 0.65) * self.W, rng.uniform(1.0, 1.7), rng.uniform(0.2, 0.8))
        self.camera = Camera(size[0], size[1], FOV_DEG, eye, rng.uniform(-0.45, 0.45), -rng.uniform(0.03, 0.28))
        self.prims: list[Primitive] = []
        self.floor_used: list[tuple[float, float, float, float]] = []   # x0, z0, x1, z1
        # The walls the camera can see: floor-level origin, unit direction along the wall, inward normal, length.
        W, D = self.W, self.D
        self.walls = {
            "far": (np.array([0.0, 0.0, D]), np.array([1.0, 0, 0]), np.array([0, 0, -1.0]), W),
            "left": (np.zeros(3), np.array([0, 0, 1.0]), np.array([1.0, 0, 0]), D),
            "right": (np.array([W, 0.0, 0]), np.array([0, 0, 1.0]), np.array([-1.0, 0, 0]), D),
        }
        self.wall_used: dict[str, list[tuple[float, float, float, float]]] = {w: [] for w in self.walls}
        self.tops: list[tuple[Frame, float, float, float]] = []         # frame, half w, half d, height

    # -- placement ----------------------------------------------------------------------------------

    def part(self, frame: Frame, kind: str, center, size, label: int, material: Material,
             tilt: Optional[np.ndarray] = None) -> None:
        """Add a primitive given in the frame of an object (local y up, local +z its front)."""
        rot = rotation(frame.yaw)
        world = frame.pos + rot @ np.asarray(center, np.float64)
        self.prims.append(Primitive(kind, world, size, label, material, rot if tilt is None else rot @ tilt))

    def visible(self, point) -> bool:
        u, v, z = self.camera.project(np.asarray(point, np.float64)[None])
        return bool(z[0] > 0.5 and 0 <= u[0] < self.camera.width and 0 <= v[0] < self.camera.height)

    def place(self, width: float, depth: float, wall: Optional[str] = None, height: float = 0.5,
              tries: int = 30) -> Optional[Frame]:
        """A free, visible floor spot for a width x depth footprint, against `wall` or anywhere
        ("any" picks a wall at random, None stands free); None when nothing fits."""
        rng = self.rng
        for _ in range(tries):
            if wall is None:
                yaw = rng.integers(4) * math.pi / 2 + rng.uniform(-0.3, 0.3)
                pos = np.array([rng.uniform(0, self.W), 0.0, rng.uniform(self.camera.position[2] + 1.0, self.D)])
            else:
                name = rng.choice(list(self.walls)) if wall == "any" else wall
                origin, along, normal, length = self.walls[name]
                if length < width + 0.1:
                    continue
                u = rng.uniform(width / 2 + 0.05, length - width / 2 - 0.05)
                pos = origin + along * u + normal * (depth / 2 + 0.02)
                yaw = math.atan2(normal[0], normal[2])
            c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
            hx, hz = (width * c + depth * s) / 2, (width * s + depth * c) / 2
            rect = (pos[0] - hx, pos[2] - hz, pos[0] + hx, pos[2] + hz)
            if self.fits(rect) and self.visible(pos + [0, height, 0]):
                self.floor_used.append(rect)
                return Frame(pos, yaw)
        return None

    def fits(self, rect) -> bool:
        x0, z0, x1, z1 = rect
        if x0 < 0 or z0 < 0 or x1 > self.W or z1 > self.D:
            return False
        ex, ez = self.camera.position[0], self.camera.position[2]
        if math.hypot(max(x0 - ex, 0, ex - x1), max(z0 - ez, 0, ez - z1)) < 0.9:  # keep the camera free
            return False
        return all(x0 > b[2] + 0.08 or x1 < b[0] - 0.08 or z0 > b[3] + 0.08 or z1 < b[1] - 0.08
                   for b in self.floor_used)

    def on_wall(self, width: float, height: float, bottom: tuple[float, float], label: int, material: Material,
                protrude: float, wall: Optional[str] = None, tries: int = 20) -> Optional[tuple[Frame, float]]:
        """Add a thin box on a wall, its front `protrude` metres off the surface; returns the frame at
        the wall's foot below it and its bottom height, or None when no free visible spot was found."""
        rng = self.rng
        for _ in range(tries):
            name = wall or str(rng.choice(list(self.walls)))
            origin, along, normal, length = self.walls[name]
            if length < width + 0.3:
                continue
            u, v = rng.uniform(width / 2 + 0.1, length - width / 2 - 0.1), rng.uniform(*bottom)
            r = (u - width / 2 - 0.1, v - 0.1, u + width / 2 + 0.1, v + height + 0.1)
            if v + height > self.H - 0.1 or any(r[0] < b[2] and b[0] < r[2] and r[1] < b[3] and b[1] < r[3]
                                                for b in self.wall_used[name]):
                continue
            frame = Frame(origin + along * u, math.atan2(normal[0], normal[2]))
            if not self.visible(frame.pos + normal * protrude + [0, v + height / 2, 0]):
                continue
            self.wall_used[name].append(r)
            # The box reaches 2 cm into the wall so that no gap shows at grazing angles.
            self.part(frame, "box", (0, v + height / 2, protrude / 2 - 0.01),
                      (width / 2, height / 2, protrude / 2 + 0.01), label, material)
            return frame, v
        return None


# ---- furnishing ---------------------------------------------------------------------------------------

def _shell(room: Room, door: Optional[tuple[str, float, float, float]]) -> None:
    """Floor, ceiling and walls as 10 cm slabs around the room; a doorway leads to a dark corridor (void)."""
    rng, W, D, H, t = room.rng, room.W, room.D, room.H, 0.1
    floor_m = _material(rng, "floor", str(rng.choice(["planks", "tiles", "carpet"])),
                        plank=rng.uniform(0.12, 0.22), tile=rng.uniform(0.3, 0.6))
    room.prims.append(box((W / 2, -t / 2, D / 2), (W / 2 + t, t / 2, D / 2 + t), L["floor"], floor_m))
    room.prims.append(box((W / 2, H + t / 2, D / 2), (W / 2 + t, t / 2, D / 2 + t), L["ceiling"],
                          _material(rng, "ceiling")))
    wall_m = _material(rng, "wall")
    walls = dict(room.walls, near=(np.array([W, 0.0, 0]), np.array([-1.0, 0, 0]), np.array([0, 0, 1.0]), W))

    def slab(name, a, b, y0, y1, offset, thick, label, material):
        origin, along, normal, _ = walls[name]
        center = origin + along * (a + b) / 2 + np.array([0, (y0 + y1) / 2, 0]) - normal * (offset + thick / 2)
        half = np.abs(along) * (b - a) / 2 + np.array([0, (y1 - y0) / 2, 0]) + np.abs(normal) * thick / 2
        room.prims.append(box(center, half, label, material))

    for name, (_, _, _, length) in walls.items():
        if door is None or door[0] != name:
            slab(name, -t, length + t, -t, H + t, 0, t, L["wall"], wall_m)
            continue
        _, u0, u1, dh = door
        slab(name, -t, u0, -t, H + t, 0, t, L["wall"], wall_m)
        slab(name, u1, length + t, -t, H + t, 0, t, L["wall"], wall_m)
        slab(name, u0, u1, dh, H + t, 0, t, L["wall"], wall_m)
        # Beyond the doorway: corridor floor, ceiling and back wall, barely reached by the lamp.
        dark = _material(rng, "void", lit=0.12)
        far, uc = rng.uniform(1.2, 3.0), (u0 + u1) / 2
        slab(name, uc - 4, uc + 4, -t, 0, t, far, L["void"], dark)
        slab(name, uc - 4, uc + 4, 2.4, 2.4 + t, t, far, L["void"], dark)
        slab(name, uc - 4, uc + 4, -t, 2.4 + t, t + far, t, L["void"], dark)
        origin, along, normal, _ = walls[name]
        phi = rng.uniform(0.3, 1.4)  # the door leaf swings out into the corridor
        direction = along * math.cos(phi) - normal * math.sin(phi)
        hinge = origin + along * u0 - normal * (t + 0.03)
        room.prims.append(box(hinge + direction * (u1 - u0) / 2 + [0, dh / 2, 0], ((u1 - u0) / 2, dh / 2, 0.02),
                              L["void"], _material(rng, "void", lit=0.4), yaw=math.atan2(-direction[2], direction[0])))


def _door(room: Room) -> Optional[tuple[str, float, float, float]]:
    rng = room.rng
    name = str(rng.choice(list(room.walls)))
    origin, along, normal, length = room.walls[name]
    width, height = rng.uniform(0.8, 1.0), min(rng.uniform(2.0, 2.15), room.H - 0.2)
    for _ in range(10):
        u0 = rng.uniform(0.15, length - width - 0.15)
        if room.visible(origin + along * (u0 + width / 2) + [0, 1.0, 0]):
            room.wall_used[name].append((u0 - 0.1, 0, u0 + width + 0.1, height + 0.1))
            a, b = origin + along * u0, origin + along * (u0 + width) + normal * 0.9  # keep the way in free
            room.floor_used.append((min(a[0], b[0]), min(a[2], b[2]), max(a[0], b[0]), max(a[2], b[2])))
            return name, u0, u0 + width, height
    return None


def _bed(room: Room) -> None:
    rng = room.rng
    width, length = rng.uniform(0.9, 1.8), rng.uniform(1.9, 2.15)
    f = room.place(width, length, "any")
    if f is None:
        return
    wood, cover = _material(rng, "furniture", "wood"), _material(rng, "bed", "fabric")
    base, mattress, head = rng.uniform(0.25, 0.35), rng.uniform(0.15, 0.25), rng.uniform(0.8, 1.2)
    top = base + mattress
    room.part(f, "box", (0, base / 2, 0), (width / 2, base / 2, length / 2), L["bed"], wood)
    room.part(f, "box", (0, base + mattress / 2, 0.02), (width / 2 - 0.03, mattress / 2, length / 2 - 0.03),
              L["bed"], cover)
    room.part(f, "box", (0, head / 2, 0.04 - length / 2), (width / 2 + 0.03, head / 2, 0.04), L["bed"], wood)
    blanket = length * rng.uniform(0.5, 0.75)
    room.part(f, "box", (0, top + 0.02, length / 2 - blanket / 2), (width / 2 + 0.01, 0.035, blanket / 2), L["bed"],
              _material(rng, "bed", "fabric"))
    pillows = 1 if width < 1.2 else 2
    for k in range(pillows):
        x = (k + 0.5) * width / pillows - width / 2
        room.part(f, "ellipsoid", (x, top + 0.06, 0.3 - length / 2), (0.4 * width / pillows, 0.08, 0.2),
                  L["bed"], cover)


def _sofa(room: Room) -> None:
    rng = room.rng
    width, depth = rng.uniform(1.4, 2.4), rng.uniform(0.8, 1.0)
    f = room.place(width, depth, "any" if rng.random() < 0.7 else None)
    if f is None:
        return
    cloth = _material(rng, "sofa", "fabric")
    seat, back = rng.uniform(0.38, 0.46), rng.uniform(0.75, 0.95)
    arm, arm_h = rng.uniform(0.1, 0.22), rng.uniform(0.55, 0.68)
    inner = width / 2 - arm
    room.part(f, "box", (0, (seat - 0.12) / 2, 0), (inner, (seat - 0.12) / 2, depth / 2), L["sofa"], cloth)
    room.part(f, "box", (0, back / 2, 0.1 - depth / 2), (inner, back / 2, 0.1), L["sofa"], cloth)
    for side in (-1, 1):
        room.part(f, "box", (side * (width / 2 - arm / 2), arm_h / 2, 0), (arm / 2, arm_h / 2, depth / 2),
                  L["sofa"], cloth)
    cushions = int(rng.integers(2, 4))
    for k in range(cushions):
        x = -inner + (k + 0.5) * 2 * inner / cushions
        room.part(f, "box", (x, seat - 0.06, 0.1), (inner / cushions - 0.01, 0.06, depth / 2 - 0.1), L["sofa"], cloth)


def _chair(room: Room, f: Frame) -> None:
    rng = room.rng
    seat, height = rng.uniform(0.4, 0.5), rng.uniform(0.42, 0.48)
    back, leg = rng.uniform(0.35, 0.5), rng.uniform(0.015, 0.03)
    m = _material(rng, "chair", str(rng.choice(["wood", "plain"])))
    room.part(f, "box", (0, height - 0.025, 0), (seat / 2, 0.025, seat / 2), L["chair"], m)
    for sx in (-1, 1):
        for sz in (-1, 1):
            room.part(f, "box", (sx * (seat / 2 - leg), (height - 0.05) / 2, sz * (seat / 2 - leg)),
                      (leg, (height - 0.05) / 2, leg), L["chair"], m)
    room.part(f, "box", (0, height + back / 2, 0.02 - seat / 2), (seat / 2, back / 2, 0.02), L["chair"], m)


def _table(room: Room) -> None:
    rng = room.rng
    kind = str(rng.choice(["dining", "coffee", "desk"]))
    width, depth, height = {"dining": (rng.uniform(1.0, 1.8), rng.uniform(0.7, 1.0), rng.uniform(0.72, 0.78)),
                            "coffee": (rng.uniform(0.8, 1.3), rng.uniform(0.45, 0.7), rng.uniform(0.38, 0.5)),
                            "desk": (rng.uniform(1.0, 1.6), rng.uniform(0.55, 0.75), rng.uniform(0.72, 0.76))}[kind]
    f = room.place(width, depth, "any" if kind == "desk" else None)
    if f is None:
        return
    m, top, leg = _material(rng, "table", "wood"), rng.uniform(0.03, 0.06), rng.uniform(0.025, 0.05)
    room.part(f, "box", (0, height - top / 2, 0), (width / 2, top / 2, depth / 2), L["table"], m)
    for sx in (-1, 1):
        for sz in (-1, 1):
            room.part(f, "box", (sx * (width / 2 - leg - 0.03), (height - top) / 2, sz * (depth / 2 - leg - 0.03)),
                      (leg, (height - top) / 2, leg), L["table"], m)
    room.tops.append((f, width / 2, depth / 2, height))
    if kind == "coffee":
        return
    rot = rotation(f.yaw)
    spots = [(0, depth / 2 + 0.35), (0, -depth / 2 - 0.35), (width / 2 + 0.35, 0), (-width / 2 - 0.35, 0)]
    for k in rng.permutation(2 if kind == "desk" else 4)[: int(rng.integers(1, 5))]:
        pos = f.pos + rot @ np.array([spots[k][0], 0.0, spots[k][1]])
        rect = (pos[0] - 0.25, pos[2] - 0.25, pos[0] + 0.25, pos[2] + 0.25)
        if room.fits(rect):
            room.floor_used.append(rect)
            toward = f.pos - pos
            _chair(room, Frame(pos, math.atan2(toward[0], toward[2]) + rng.uniform(-0.3, 0.3)))


def _storage(room: Room, kind: str) -> Optional[tuple[Frame, float, float, float]]:
    """A piece of "furniture" against a wall; returns its frame and width, depth and height."""
    rng = room.rng
    width, depth, height = {"cabinet": (rng.uniform(0.6, 1.6), rng.uniform(0.4, 0.6), rng.uniform(0.5, 1.1)),
                            "shelf": (rng.uniform(0.6, 1.2), rng.uniform(0.28, 0.4), rng.uniform(1.2, 2.0)),
                            "wardrobe": (rng.uniform(0.8, 1.6), rng.uniform(0.55, 0.65), rng.uniform(1.8, 2.2)),
                            "tvstand": (rng.uniform(1.2, 1.9), rng.uniform(0.4, 0.5), rng.uniform(0.4, 0.6))}[kind]
    f = room.place(width, depth, "any", height=height / 2)
    if f is None:
        return None
    look = "wood" if rng.random() < 0.5 else "plain"
    m = _material(rng, "furniture", "cabinet", doors=int(rng.integers(1, 5)), look=look)
    if kind != "shelf":
        room.part(f, "box", (0, height / 2, 0), (width / 2, height / 2, depth / 2), L["furniture"], m)
        if kind != "tvstand":
            room.tops.append((f, width / 2, depth / 2, height))
        return f, width, depth, height
    board, wood = 0.02, _material(rng, "furniture", look)
    for sx in (-1, 1):
        room.part(f, "box", (sx * (width / 2 - board / 2), height / 2, 0), (board / 2, height / 2, depth / 2),
                  L["furniture"], wood)
    room.part(f, "box", (0, height / 2, 0.01 - depth / 2), (width / 2, height / 2, 0.01), L["furniture"], wood)
    levels = max(2, int(height / rng.uniform(0.3, 0.42)))
    gap = height / levels
    for k in range(levels + 1):
        y = min(k * gap, height - board / 2)
        room.part(f, "box", (0, y, 0), (width / 2, board / 2, depth / 2), L["furniture"], wood)
        if k < levels and rng.random() < 0.85:
            _book_row(room, f, -width / 2 + board, width / 2 - board, y + board / 2, depth, gap - board - 0.04)
    return f, width, depth, height


def _book_row(room: Room, f: Frame, x0: float, x1: float, y: float, depth: float, height: float) -> None:
    """Books standing side by side from x0 towards x1 on a board at height y, spines to the front."""
    rng = room.rng
    x, end = x0 + rng.uniform(0, 0.1), x0 + (x1 - x0) * rng.uniform(0.5, 1.0)
    while True:
        t, h, d = rng.uniform(0.02, 0.06), height * rng.uniform(0.7, 1.0), depth * rng.uniform(0.65, 0.9)
        if x + t > end:
            return
        room.part(f, "box", (x + t / 2, y + h / 2, d / 2 - depth / 2 + 0.02), (t / 2, h / 2, d / 2), L["books"],
                  _material(rng, "books", "book"))
        x += t + rng.uniform(0.0, 0.01)


def _on_top(room: Room) -> None:
    """Books (stacks or rows) and small objects on a table or cabinet top, or objects on the floor."""
    rng = room.rng
    if room.tops and rng.random() < 0.8:
        f, hw, hd, height = room.tops[int(rng.integers(len(room.tops)))]
        x, z = rng.uniform(-0.7, 0.7) * hw, rng.uniform(-0.6, 0.6) * hd
        scale = 1.0
    else:
        f = room.place(0.4, 0.4, None, height=0.1)
        if f is None:
            return
        x = z = height = hw = 0.0
        scale = 1.8
    what = rng.random()
    if what < 0.3 and scale == 1.0:
        y = height
        for _ in range(int(rng.integers(2, 6))):
            t = rng.uniform(0.025, 0.06)
            rot = rotation(rng.uniform(-0.3, 0.3))
            room.part(f, "box", (x, y + t / 2, z), (rng.uniform(0.1, 0.15), t / 2, rng.uniform(0.13, 0.2)), L["books"],
                      _material(rng, "books", "book"), tilt=rot)
            y += t
    elif what < 0.45 and scale == 1.0:
        _book_row(room, f, max(x - 0.2, 0.02 - hw), min(x + 0.25, hw - 0.02), height, 0.3, rng.uniform(0.18, 0.28))
    else:
        m, shape = _material(rng, "objects", str(rng.choice(["plain", "fabric"]))), rng.random()
        if shape < 0.35:
            r = rng.uniform(0.06, 0.12) * scale
            room.part(f, "ellipsoid", (x, height + r, z), (r, r, r), L["objects"], m)
        elif shape < 0.7:
            half = rng.uniform(0.05, 0.14, 3) * scale
            room.part(f, "box", (x, height + half[1], z), half, L["objects"], m, tilt=rotation(rng.uniform(0, 3)))
        else:
            r, h = rng.uniform(0.04, 0.1) * scale, rng.uniform(0.06, 0.16) * scale
            room.part(f, "frustum", (x, height + h, z), (r, h, r * rng.uniform(0.5, 1.4)), L["objects"], m)


def _wall_items(room: Room, stand: Optional[tuple]) -> None:
    rng = room.rng
    if stand is not None:
        f, width, depth, height = stand
        tv_w = min(width - 0.1, rng.uniform(0.8, 1.4))
        tv_h = tv_w * rng.uniform(0.56, 0.62)
        screen = _material(rng, "void", "screen", drop=rng.uniform(0, 0.8))
        room.part(f, "box", (0, height + 0.03, -depth / 4), (0.12, 0.03, 0.08), L["tv"], screen)
        room.part(f, "box", (0, height + 0.06 + tv_h / 2, -depth / 4), (tv_w / 2, tv_h / 2, rng.uniform(0.02, 0.04)),
                  L["tv"], screen)
    elif rng.random() < 0.35:
        tv_w = rng.uniform(0.8, 1.4)
        screen = _material(rng, "void", "screen", drop=rng.uniform(0, 0.8))
        room.on_wall(tv_w, tv_w * 0.58, (0.9, 1.3), L["tv"], screen, rng.uniform(0.03, 0.07))
    for _ in range(int(rng.choice([0, 1, 1, 2, 2]))):
        w, h = rng.uniform(0.7, 1.6), rng.uniform(0.9, 1.4)
        glass = Material(np.array([0.04, 0.05, 0.07]) * rng.uniform(0.5, 1.5), "glass", int(rng.integers(1 << 30)),
                         extra={"frame": _colour(rng, "frame"), "sky": _colour(rng, "window"),
                                "glow": rng.uniform(0.0, 0.15),
                                # Bare glass returns nothing; blinds and curtains behind it do.
                                "drop": rng.uniform(0.6, 1.0) if rng.random() < 0.6 else rng.uniform(0.0, 0.2),
                                "cross": bool(rng.random() < 0.5)})
        placed = room.on_wall(w, h, (0.75, 1.0), L["window"], glass, rng.uniform(0.01, 0.03))
        if placed is not None:  # a sill under the window, proud of the wall
            f, v = placed
            out = rng.uniform(0.04, 0.12)
            room.part(f, "box", (0, v - 0.02, out / 2 - 0.01), (w / 2 + 0.05, 0.02, out / 2 + 0.01), L["window"],
                      Material(glass.extra["frame"], "plain", glass.seed))
    for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
        w = rng.uniform(0.35, 1.2)
        h = w * rng.uniform(0.6, 1.3)
        blobs = [(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.2, 0.8), _colour(rng, "painting"))
                 for _ in range(int(rng.integers(2, 7)))]
        art = _material(rng, "painting", "painting", frame=_colour(rng, "frame"), border=rng.uniform(0.03, 0.12),
                        blobs=blobs, horizon=rng.uniform(-0.6, 0.4) if rng.random() < 0.5 else None,
                        ground=_colour(rng, "painting"))
        room.on_wall(w, h, (1.0, 1.6), L["painting"], art, rng.uniform(0.015, 0.04))


def _clutter(room: Room) -> None:
    """Unlabelled things (void): potted plants, bags, boxes."""
    rng = room.rng
    f = room.place(0.5, 0.5, "any" if rng.random() < 0.6 else None, height=0.3)
    if f is None:
        return
    kind = rng.random()
    if kind < 0.4:
        pot = rng.uniform(0.12, 0.2)
        room.part(f, "frustum", (0, pot, 0), (pot * 0.7, pot, pot), L["void"], _material(rng, "void"))
        leaves = rng.uniform(0.2, 0.4)
        room.part(f, "ellipsoid", (0, 2 * pot + leaves, 0), (leaves * 0.8, leaves, leaves * 0.8), L["void"],
                  Material(np.array([0.05, 0.2, 0.06]) * rng.uniform(0.5, 1.5), "fabric", int(rng.integers(1 << 30))))
    elif kind < 0.7:
        axes = rng.uniform(0.12, 0.25, 3)
        room.part(f, "ellipsoid", (0, axes[1], 0), axes, L["void"], _material(rng, "void", "fabric"))
    else:
        y = 0.0
        for _ in range(int(rng.integers(1, 4))):
            half = rng.uniform(0.1, 0.22, 3)
            room.part(f, "box", (0, y + half[1], 0), half, L["void"], _material(rng, "void"),
                      tilt=rotation(rng.uniform(-0.4, 0.4)))
            y += 2 * half[1]


def _lamp(room: Room) -> np.ndarray:
    """The one light: a ceiling fixture or a floor lamp (both void); returns the light position."""
    rng = room.rng
    glow = Material(np.array([1.0, 0.9, 0.75]), "plain", 0, emission=rng.uniform(1.0, 3.0))
    f = room.place(0.4, 0.4, "any" if rng.random() < 0.5 else None, height=1.4) if rng.random() < 0.5 else None
    if f is None:
        pos = np.array([rng.uniform(0.3, 0.7) * room.W, room.H - 0.25, rng.uniform(0.4, 0.8) * room.D])
        room.prims.append(ellipsoid(pos + [0, 0.17, 0], (0.22, 0.08, 0.22), L["void"], glow))
        return pos
    height = rng.uniform(1.3, 1.7)
    room.part(f, "frustum", (0, height / 2, 0), (0.02, height / 2, 0.02), L["void"], _material(rng, "void"))
    room.part(f, "frustum", (0, height + 0.1, 0), (0.2, 0.12, 0.13), L["void"], glow)
    return f.pos + [0, height + 0.05, 0]


def furnish(room: Room) -> np.ndarray:
    """Fill `room` with everything a scene may hold; returns the lamp position."""
    rng = room.rng
    door = _door(room) if rng.random() < 0.55 else None
    _shell(room, door)
    if rng.random() < 0.5:
        _bed(room)
    if rng.random() < 0.55:
        _sofa(room)
    for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
        _table(room)
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        spot = room.place(0.5, 0.5, None, height=0.6)
        if spot is not None:
            _chair(room, spot)
    stand = _storage(room, "tvstand") if rng.random() < 0.45 else None
    for kind in rng.choice(["cabinet", "shelf", "wardrobe", "cabinet", "shelf"], size=int(rng.integers(1, 4))):
        _storage(room, str(kind))
    _wall_items(room, stand)
    for _ in range(int(rng.integers(3, 9))):
        _on_top(room)
    for _ in range(int(rng.integers(0, 3))):
        _clutter(room)
    return _lamp(room)


# ---- appearance ---------------------------------------------------------------------------------------

def _lattice(i: np.ndarray, j: np.ndarray, seed: int) -> np.ndarray:
    """A fixed random value in [0, 1) per integer cell (i, j): value noise read on its lattice."""
    return value_noise(np.stack([i, j, np.zeros_like(i)], 1).astype(np.float64), 1.0, seed)


def _surface(m: Material, local: np.ndarray, world: np.ndarray, size: np.ndarray):
    """Albedo (N, 3), emission (N, 3) and depth-dropout probability (N,) of hits on one primitive."""
    n, c = len(local), m.colour
    tone = np.ones(n)
    albedo = None
    emission = np.zeros((n, 3))
    drop = np.zeros(n)
    # Face coordinates in [-1, 1] across the front of flat wall items (local x, y).
    s, t = local[:, 0] / size[0], local[:, 1] / size[1]
    if m.pattern == "plain":
        tone = 0.9 + 0.2 * value_noise(local, 0.3, m.seed)
    elif m.pattern == "wood" or (m.pattern == "cabinet" and m.extra.get("look") == "wood"):
        ring = np.hypot(local[:, 1], local[:, 2] + 0.5) * 25 + 2 * value_noise(local * [0.2, 1, 1], 0.05, m.seed)
        tone = 0.75 + 0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * ring))
    elif m.pattern in ("fabric", "carpet"):
        tone = 0.8 + 0.25 * value_noise(local, 0.04, m.seed) + 0.1 * value_noise(local, 0.01, m.seed + 1)
    elif m.pattern == "planks":
        width = m.extra["plank"]
        i = np.floor(world[:, 0] / width)
        j = np.floor((world[:, 2] + 1.5 * _lattice(i, i, m.seed)) / 1.5)
        gap = (world[:, 0] / width) % 1.0 < 0.05
        tone = (0.75 + 0.4 * _lattice(i, j, m.seed + 1)) * (0.9 + 0.2 * value_noise(world * [8, 1, 0.5], 0.2, m.seed))
        tone = np.where(gap, 0.45, tone)
    elif m.pattern == "tiles":
        gx, gz = (world[:, 0] / m.extra["tile"]) % 1.0, (world[:, 2] / m.extra["tile"]) % 1.0
        grout = np.minimum(np.minimum(gx, 1 - gx), np.minimum(gz, 1 - gz)) < 0.025
        ij = np.floor(world[:, [0, 2]] / m.extra["tile"])
        tone = np.where(grout, 0.5, 0.9 + 0.2 * _lattice(ij[:, 0], ij[:, 1], m.seed))
    elif m.pattern == "book":
        tone = (0.85 + 0.15 * value_noise(local, 0.05, m.seed)) * np.where(np.abs(t - 0.5) < 0.1, 1.6, 1.0)
    elif m.pattern == "painting":
        albedo = np.repeat(m.colour[None], n, 0)
        if m.extra["horizon"] is not None:
            albedo[t < m.extra["horizon"]] = m.extra["ground"]
        for bx, by, r, colour in m.extra["blobs"]:
            w = np.exp(-((s - bx) ** 2 + (t - by) ** 2) / r**2)[:, None]
            albedo = albedo * (1 - w) + colour * w
        border = m.extra["border"]
        albedo[(np.abs(s) > 1 - border) | (np.abs(t) > 1 - border * size[0] / size[1])] = m.extra["frame"]
    elif m.pattern == "screen":
        inner = (np.abs(s) < 0.96) & (np.abs(t) < 0.94) & (local[:, 2] > 0)
        albedo = np.where(inner[:, None], 0.015 + 0.01 * (1 - t)[:, None] * [0.8, 0.9, 1.0], 0.05 + 0.3 * c)
        drop = inner * m.extra["drop"]
    elif m.pattern == "glass":
        pane = (np.abs(s) < 0.92) & (np.abs(t) < 0.94)
        if m.extra["cross"]:
            pane &= (np.abs(s) > 0.03) & (np.abs(t) > 0.03)
        albedo = np.where(pane[:, None], c, m.extra["frame"])
        emission = pane[:, None] * m.extra["glow"] * (0.6 - 0.4 * t)[:, None] * m.extra["sky"]
        drop = pane * m.extra["drop"]
    if m.pattern == "cabinet":
        front = local[:, 2] > size[2] - 0.005
        seam = np.abs(((s + 1) / 2 * m.extra["doors"] + 0.5) % 1.0 - 0.5) < 0.02 * m.extra["doors"]
        tone = tone * np.where(front & seam & (np.abs(s) < 0.98), 0.35, 1.0)
    if albedo is None:
        albedo = c * tone[:, None]
    if m.emission:
        emission = emission + m.emission * c
    return albedo, emission, drop


def render(room: Room, lamp: np.ndarray, rng: np.random.Generator):
    """Ray-cast the room; returns the dark 8-bit RGB, depth in millimetres (uint16) and the labels."""
    hits = cast(room.camera, room.prims)
    h, w = hits.depth.shape
    albedo, emission = np.zeros((h, w, 3)), np.zeros((h, w, 3))
    drop, lit = np.zeros((h, w)), np.ones((h, w))
    for i, pix in hits.by_primitive():
        prim = room.prims[i]
        a, e, d = _surface(prim.material, hits.local.reshape(-1, 3)[pix], hits.point.reshape(-1, 3)[pix], prim.extent)
        albedo.reshape(-1, 3)[pix], emission.reshape(-1, 3)[pix], drop.reshape(-1)[pix] = a, e, d
        lit.reshape(-1)[pix] = prim.material.extra.get("lit", 1.0)
    warm = np.array([1.0, rng.uniform(0.75, 0.9), rng.uniform(0.5, 0.75)])  # an incandescent lamp
    irradiance = (point_light(hits.point, hits.normal, lamp, 1.0, size=0.4) + rng.uniform(0.02, 0.08)) * lit
    radiance = albedo * irradiance[..., None] * warm + emission
    # A normal, average-metered shot puts the log-average radiance at mid-grey (0.18, lamps saturate);
    # the dark capture then gets only a few percent of that exposure.
    reference = np.exp(np.log(radiance.mean(-1) + 1e-6).mean()) / 0.18
    rgb = dark_capture(radiance / reference, rng, exposure=rng.uniform(0.015, 0.045),
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
