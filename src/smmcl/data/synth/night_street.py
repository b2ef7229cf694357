"""A night street under construction: the camera on a car, the night's air temperature, the lanes, and
the primitives and lights placed so far."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smmcl.data.synth.night_materials import Material
from smmcl.data.synth.raycast import Camera, Primitive, rotation

FOV_DEG = 55.0


@dataclass
class Light:
    pos: np.ndarray
    power: float                       # point-light power, also sets the glare in the image
    colour: np.ndarray
    illuminates: bool = True           # headlights of other cars only glare


class Street:
    """Builds one street: primitives, lights and camera pose, all drawn from `rng`."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int]):
        self.rng = rng
        self.air = rng.uniform(3.0, 22.0)   # the night's air temperature; most things sit near it
        self.lane = rng.uniform(3.0, 3.6)
        self.left = -self.lane / 2 - int(rng.integers(0, 3)) * self.lane
        self.right = self.lane / 2 + int(rng.integers(0, 2)) * self.lane
        eye = (rng.uniform(-0.5, 0.5), rng.uniform(1.2, 1.7), 0.0)
        self.camera = Camera(size[0], size[1], FOV_DEG, eye, rng.uniform(-0.12, 0.12), rng.uniform(-0.1, 0.02))
        self.prims: list[Primitive] = []
        self.lights: list[Light] = []

    def mat(self, colour, dt: float, pattern: str = "plain", emission: float = 0.0, **extra) -> Material:
        return Material(np.asarray(colour, np.float64), self.air + dt, pattern, int(self.rng.integers(1 << 30)),
                        emission, extra)

    def add(self, kind: str, pos, yaw: float, center, size, label: int, material: Material, tilt=None) -> None:
        """A primitive given in the frame of an object standing at `pos` with its front along yaw."""
        rot = rotation(yaw)
        world = np.asarray(pos, np.float64) + rot @ np.asarray(center, np.float64)
        self.prims.append(Primitive(kind, world, size, label, material, rot if tilt is None else rot @ tilt))

    def put(self, kind: str, center, size, label: int, material: Material) -> None:
        """A primitive aligned with the street (x across, z along it)."""
        self.prims.append(Primitive(kind, center, size, label, material))

    def visible(self, point) -> bool:
        u, v, z = self.camera.project(np.asarray(point, np.float64)[None])
        return bool(z[0] > 1.0 and -5 <= u[0] < self.camera.width + 5 and 0 <= v[0] < self.camera.height)
