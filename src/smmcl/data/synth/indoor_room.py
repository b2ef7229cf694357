"""An indoor room: its size, the camera in it, and free floor and wall spots for the furniture."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from smmcl.data.synth.indoor_materials import Material
from smmcl.data.synth.raycast import Camera, Primitive, rotation

FOV_DEG = 60.0            # about a Kinect's horizontal field of view


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
