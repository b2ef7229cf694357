"""Night street scenes (RGB-thermal) labelled with the MFNet classes.

Streets seen from a car: road, sidewalks, buildings and sky are "unlabeled"; cars, people, bikes,
curbs, wheel stoppers, guardrails, traffic cones and speed bumps are placed along and across the
road. The RGB camera sees a dark street lit by lamps and headlights, with glare around every light;
the thermal camera sees temperatures (people and running engines warm, the sky cold) through
automatic gain, noise and a little blur.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np

from smmcl.data.classes import MFNET_CLASSES
from smmcl.data.synth.raycast import Camera, Primitive, cast, rotation
from smmcl.data.synth.sensor import blur, dark_capture, smooth_field
from smmcl.data.synth.shading import point_light, value_noise

L = {name: i for i, name in enumerate(MFNET_CLASSES)}
FOV_DEG = 55.0
FAR_Z = 160.0                       # the street's length ahead of the camera
WHEEL = rotation(roll=math.pi / 2)  # turns a frustum's axis from local y to local x


@dataclass
class Material:
    colour: np.ndarray                 # linear albedo
    temp: float                        # degrees Celsius seen by the thermal camera
    pattern: str = "plain"
    seed: int = 0
    emission: float = 0.0              # self-luminous radiance relative to the colour
    extra: dict = field(default_factory=dict)


@dataclass
class Light:
    pos: np.ndarray
    power: float                       # point-light power, also sets the glare in the image
    colour: np.ndarray
    illuminates: bool = True           # headlights of other cars only glare


def _hsv(rng: np.random.Generator, h, s, v) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.uniform(*h), rng.uniform(*s), rng.uniform(*v)))


def _paint(rng: np.random.Generator) -> np.ndarray:
    """Car paint, clothing and other man-made colours: any hue, often grey, white or black."""
    kind = rng.random()
    if kind < 0.5:
        return _hsv(rng, (0, 1), (0, 0.1), (0.03, 0.8))
    return _hsv(rng, (0, 1), (0.4, 0.9), (0.1, 0.6))


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


# ---- street furniture and road users -------------------------------------------------------------------

def _ground(st: Street) -> dict:
    """Road, curbs, sidewalks and buildings; returns per side (-1 left, +1 right) the sidewalk's inner
    and outer x and the height of its top (0 where that side has no curb)."""
    rng, sides = st.rng, {}
    asphalt = st.mat(np.full(3, rng.uniform(0.05, 0.12)), rng.uniform(2.0, 8.0), "asphalt", lane=st.lane,
                     left=st.left, right=st.right, dashed=bool(rng.random() < 0.7))
    mid = (st.left + st.right) / 2
    st.put("box", (mid, -0.1, FAR_Z / 2), ((st.right - st.left) / 2 + 0.01, 0.1, FAR_Z / 2 + 5),
           L["unlabeled"], asphalt)
    for side in (-1, 1):
        edge = st.right if side > 0 else st.left
        curb_h = rng.uniform(0.1, 0.2) if rng.random() < 0.85 else 0.0
        width, walk = rng.uniform(0.15, 0.3), rng.uniform(2.0, 4.5)
        if curb_h:
            curb = st.mat(np.full(3, rng.uniform(0.15, 0.45)), rng.uniform(0.0, 5.0), "plain")
            st.put("box", (edge + side * width / 2, curb_h / 2 - 0.05, FAR_Z / 2),
                   (width / 2, curb_h / 2 + 0.05, FAR_Z / 2 + 5), L["curve"], curb)
        else:
            width = 0.0
        pavement = st.mat(np.full(3, rng.uniform(0.08, 0.3)), rng.uniform(0.0, 5.0), "pavement")
        x0 = edge + side * width
        top = max(curb_h - 0.01, 0.0)
        st.put("box", (x0 + side * walk / 2, top / 2 - 0.1, FAR_Z / 2),
               (walk / 2, top / 2 + 0.1, FAR_Z / 2 + 5), L["unlabeled"], pavement)
        sides[side] = (x0, x0 + side * walk, top)
        z = rng.uniform(-5, 10)
        while z < FAR_Z:  # a row of buildings, lit windows here and there
            length, height, gap = rng.uniform(8, 25), rng.uniform(4, 20), rng.uniform(0, 6) * (rng.random() < 0.4)
            back = rng.uniform(0, 3)
            facade = st.mat(_hsv(rng, (0.05, 0.15), (0, 0.3), (0.1, 0.5)), rng.uniform(-2.0, 3.0), "facade",
                            lit=rng.uniform(0.05, 0.4), floor=rng.uniform(2.8, 3.5), bay=rng.uniform(2.0, 3.5))
            st.put("box", (x0 + side * (walk + back + 5), height / 2, z + length / 2),
                   (5, height / 2, length / 2), L["unlabeled"], facade)
            z += length + gap
    return sides


def _lamps(st: Street, sides: dict) -> None:
    rng = st.rng
    for side in (-1, 1):
        if rng.random() < 0.25:
            continue
        x, height, arm = sides[side][0] + side * 0.4, rng.uniform(5.0, 8.0), rng.uniform(0.8, 2.0)
        pole = st.mat(np.full(3, 0.2), -1.0)
        head = st.mat(np.array([1.0, 0.8, 0.5]), 20.0, emission=rng.uniform(20, 60))
        z = rng.uniform(2, 25)
        while z < 110:
            st.add("frustum", (x, 0, z), 0, (0, height / 2, 0), (0.08, height / 2, 0.06), L["unlabeled"], pole)
            st.put("box", (x - side * arm / 2, height, z), (arm / 2 + 0.1, 0.06, 0.15), L["unlabeled"], head)
            st.lights.append(Light(np.array([x - side * arm / 2, height - 0.1, z]), rng.uniform(15, 40),
                                   np.array([1.0, rng.uniform(0.7, 0.9), rng.uniform(0.4, 0.7)])))
            z += rng.uniform(20, 35)


def _car(st: Street, x: float, z: float, yaw: float, running: bool) -> None:
    rng = st.rng
    length, width = rng.uniform(3.8, 4.9), rng.uniform(1.65, 1.9)
    body_h, cabin_h = rng.uniform(0.55, 0.8) * (1.4 if rng.random() < 0.15 else 1.0), rng.uniform(0.42, 0.6)
    paint = st.mat(_paint(rng), 1.0, "car", hot=rng.uniform(15, 35) if running else rng.uniform(0, 3))
    glass = st.mat(np.full(3, 0.03), -4.0)
    pos = (x, 0, z)
    st.add("box", pos, yaw, (0, 0.3 + body_h / 2, 0), (width / 2, body_h / 2, length / 2), L["car"], paint)
    st.add("box", pos, yaw, (0, 0.3 + body_h + cabin_h / 2, -0.1 * length),
           (width / 2 - 0.08, cabin_h / 2, length * 0.27), L["car"], glass)
    tyre = st.mat(np.full(3, 0.02), rng.uniform(15, 30) if running else 1.0)
    for sx in (-1, 1):
        for sz in (-1, 1):
            st.add("frustum", pos, yaw, (sx * (width / 2 - 0.08), 0.32, sz * length * 0.33), (0.32, 0.1, 0.32),
                   L["car"], tyre, tilt=WHEEL)
    front, rear = rotation(yaw) @ np.array([0, 0, 1.0]), rotation(yaw) @ np.array([0, 0, -1.0])
    lamp_on = running or rng.random() < 0.2
    for sx in (-1, 1):
        for end, colour, glow in ((front, np.array([1.0, 0.95, 0.85]), 40.0), (rear, np.array([1.0, 0.05, 0.02]), 8.0)):
            c = np.array(pos) + rotation(yaw) @ [sx * (width / 2 - 0.22), 0.3 + 0.7 * body_h, 0] + end * length / 2
            st.prims.append(Primitive("box", c, (0.12, 0.05, 0.03), L["car"],
                                      st.mat(colour, 20.0 if lamp_on else 0.0, emission=glow if lamp_on else 0.0),
                                      rotation(yaw)))
            if lamp_on:
                st.lights.append(Light(c + end * 0.05, glow / 8, colour, illuminates=False))


def _person(st: Street, x: float, z: float, yaw: float, seat: float = 0.0, base: float = 0.0) -> None:
    """A standing or walking person; with `seat` > 0, a rider sitting that high (legs bent to pedals)."""
    rng = st.rng
    tall = rng.uniform(1.55, 1.9)
    legs, torso = 0.47 * tall, 0.3 * tall
    clothes = st.mat(_paint(rng), rng.uniform(8.0, 14.0) + 0.3 * (20 - st.air), "fabric")
    trousers = st.mat(_paint(rng), rng.uniform(6.0, 12.0) + 0.3 * (20 - st.air), "fabric")
    skin = st.mat(_hsv(rng, (0.03, 0.1), (0.2, 0.6), (0.15, 0.7)), 0.0, "plain")
    skin.temp = rng.uniform(31.0, 35.0)  # faces show the body temperature whatever the night
    hip = seat if seat else legs
    stride = rng.uniform(-0.35, 0.35)
    for side in (-1, 1):
        if seat:  # thighs forward to the handlebar side, shins down to the pedals
            st.add("frustum", (x, base, z), yaw, (side * 0.1, hip - 0.05, 0.2), (0.07, 0.22, 0.08), L["person"],
                   trousers, tilt=rotation(pitch=-1.3))
            st.add("frustum", (x, base, z), yaw, (side * 0.1, (hip + 0.1) / 2, 0.42), (0.05, (hip - 0.2) / 2, 0.06),
                   L["person"], trousers)
        else:
            st.add("frustum", (x, base, z), yaw, (side * 0.1, legs / 2, 0), (0.06, legs / 2, 0.08), L["person"],
                   trousers, tilt=rotation(pitch=side * stride))
    lean = rotation(pitch=-0.35) if seat else np.eye(3)
    st.add("ellipsoid", (x, base, z), yaw, (0, hip + torso / 2, 0.1 if seat else 0), (0.2, torso / 2 + 0.04, 0.13),
           L["person"], clothes, tilt=lean)
    for side in (-1, 1):
        st.add("frustum", (x, base, z), yaw, (side * 0.24, hip + torso * 0.45, 0.15 if seat else 0),
               (0.04, torso * 0.45, 0.05), L["person"], clothes, tilt=rotation(pitch=-0.9) if seat else np.eye(3))
    r = 0.085 + 0.01 * tall
    st.add("ellipsoid", (x, base, z), yaw, (0, hip + torso + r + 0.04, 0.2 if seat else 0), (r, r * 1.15, r * 1.05),
           L["person"], skin)


def _bike(st: Street, x: float, z: float, yaw: float, rider: bool, base: float = 0.0) -> None:
    rng = st.rng
    r = rng.uniform(0.3, 0.35)
    frame = st.mat(_paint(rng), 0.0)
    tyre = st.mat(np.full(3, 0.03), rng.uniform(2.0, 8.0) if rider else 0.0)
    for sz in (-0.55, 0.55):
        st.add("frustum", (x, base, z), yaw, (0, r, sz), (r, 0.025, r), L["bike"], tyre, tilt=WHEEL)
    # Tubes as thin boxes in the bike's plane: down tube, top tube, seat post, fork, bar and saddle.
    tubes = (((r + 0.2, 0.1), 0.62, 0.9), ((r + 0.42, 0.0), 0.55, 1.5), ((r + 0.25, -0.25), 0.55, 0.3),
             ((r + 0.25, 0.5), 0.55, -0.3))
    for (cy, cz), length, angle in tubes:
        st.add("box", (x, base, z), yaw, (0, cy, cz), (0.02, length / 2, 0.02), L["bike"], frame,
               tilt=rotation(pitch=angle))
    st.add("box", (x, base, z), yaw, (0, r + 0.55, 0.45), (0.25, 0.02, 0.02), L["bike"], frame)
    st.add("box", (x, base, z), yaw, (0, r + 0.53, -0.3), (0.08, 0.03, 0.12), L["bike"], frame)
    if rider:
        saddle = rotation(yaw) @ np.array([0, 0, -0.3])
        _person(st, x + saddle[0], z + saddle[2], yaw, seat=r + 0.56, base=base)


class _Lot:
    """Floor rectangles already taken, so that road users do not stand inside each other."""

    def __init__(self):
        self.used: list[tuple[float, float, float, float]] = []

    def claim(self, x: float, z: float, hx: float, hz: float) -> bool:
        r = (x - hx, z - hz, x + hx, z + hz)
        if any(r[0] < b[2] and b[0] < r[2] and r[1] < b[3] and b[1] < r[3] for b in self.used):
            return False
        self.used.append(r)
        return True


def populate(st: Street, sides: dict) -> None:
    """Road users and the small labelled street furniture."""
    rng, lot = st.rng, _Lot()
    lot.claim(st.camera.position[0], 0.0, 1.2, 3.0)  # the ego car
    lanes = np.arange(st.left + st.lane / 2, st.right, st.lane)
    for c in lanes:  # traffic: oncoming in the lanes left of ours
        for _ in range(int(rng.choice([0, 1, 1, 2]))):
            x, z = c + rng.uniform(-0.3, 0.3), rng.uniform(8.0, 60.0)
            if lot.claim(x, z, 1.2, 3.0):
                _car(st, x, z, (math.pi if c < -0.1 else 0.0) + rng.uniform(-0.05, 0.05), running=True)
    for side in (-1, 1):  # parked along the curb
        for _ in range(int(rng.choice([0, 0, 1, 2, 3]))):
            x, z = (st.right if side > 0 else st.left) - side * 1.1, rng.uniform(5.0, 50.0)
            if lot.claim(x, z, 1.1, 2.8):
                _car(st, x, z, rng.choice([0.0, math.pi]) + rng.uniform(-0.05, 0.05), running=rng.random() < 0.2)

    def spot(on_walk: bool, z_range: tuple[float, float], half: float):
        for _ in range(10):
            if on_walk:
                side = int(rng.choice([-1, 1]))
                x0, x1, top = sides[side]
                x = rng.uniform(min(x0, x1) + 0.4, max(x0, x1) - 0.4)
            else:
                x, top = rng.uniform(st.left + 0.5, st.right - 0.5), 0.0
            z = rng.uniform(*z_range)
            if st.visible((x, top + 1.0, z)) and lot.claim(x, z, half, half):
                return x, top, z
        return None

    for _ in range(int(rng.choice([0, 1, 2, 2, 3, 4, 5]))):
        where = spot(rng.random() < 0.6, (4.0, 30.0), 0.35)
        if where:
            x, top, z = where
            _person(st, x, z, rng.uniform(-math.pi, math.pi), base=top)
    for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
        riding = rng.random() < 0.55
        where = spot(not riding, (5.0, 28.0), 0.9)
        if where:
            x, top, z = where
            yaw = rng.choice([0.0, math.pi]) if riding else rng.choice([-1, 1]) * math.pi / 2
            _bike(st, x, z, yaw + rng.uniform(-0.2, 0.2), rider=riding, base=top)
    if rng.random() < 0.55:  # a row of wheel stoppers on one side, across the strip beside the road
        side = int(rng.choice([-1, 1]))
        x0, x1, top = sides[side]
        stop = st.mat(_hsv(rng, (0.1, 0.16), (0, 0.8), (0.2, 0.6)), rng.uniform(-1.0, 3.0), "plain")
        z, length, x = rng.uniform(4.0, 10.0), rng.uniform(1.4, 1.8), x0 + side * rng.uniform(0.6, 1.2)
        h, d = rng.uniform(0.1, 0.15), rng.uniform(0.12, 0.2)
        for _ in range(int(rng.integers(2, 7))):
            st.put("box", (x + side * length / 2, top + h / 2, z), (length / 2, h / 2, d / 2), L["car_stop"], stop)
            z += rng.uniform(2.4, 2.8)
    if rng.random() < 0.5:  # a guardrail along one side: a rail on posts
        side = int(rng.choice([-1, 1]))
        x, _, top = sides[side]
        x += side * 0.3
        metal = st.mat(np.full(3, rng.uniform(0.25, 0.6)), -rng.uniform(2.0, 6.0), "plain")
        z0, z1 = rng.uniform(0.0, 8.0), rng.uniform(30.0, 90.0)
        rail_y, rail_h = rng.uniform(0.55, 0.75), rng.uniform(0.14, 0.18)
        st.put("box", (x, top + rail_y, (z0 + z1) / 2), (0.03, rail_h, (z1 - z0) / 2), L["guardrail"], metal)
        for z in np.arange(z0 + 0.5, z1, rng.uniform(2.0, 4.0)):
            st.put("box", (x + side * 0.08, top + rail_y / 2, z), (0.04, rail_y / 2, 0.05), L["guardrail"], metal)
    if rng.random() < 0.6:  # traffic cones in a row along a lane line or the road edge
        bounds = [st.left + k * st.lane for k in range(1, len(lanes))] + [st.left + 0.5, st.right - 0.5]
        x, z = float(rng.choice(bounds)), rng.uniform(5.0, 12.0)
        orange = np.array([1.0, rng.uniform(0.2, 0.45), rng.uniform(0.0, 0.1)]) * rng.uniform(0.5, 0.9)
        cone = st.mat(orange, rng.uniform(0.0, 2.0), "cone")
        for _ in range(int(rng.integers(2, 8))):
            h = rng.uniform(0.25, 0.38)
            st.put("frustum", (x, 0.02 + h, z), (rng.uniform(0.13, 0.17), h, 0.025), L["color_cone"], cone)
            st.add("box", (x, 0, z), rng.uniform(0, 1), (0, 0.02, 0), (0.2, 0.02, 0.2), L["color_cone"], cone)
            z += rng.uniform(1.5, 4.0)
    if rng.random() < 0.5:  # a speed bump across the road
        z, depth, h = rng.uniform(5.0, 14.0), rng.uniform(0.2, 0.45), rng.uniform(0.05, 0.1)
        bump = st.mat(np.array([0.6, 0.5, 0.05]) * rng.uniform(0.4, 1.0), rng.uniform(1.0, 7.0), "stripes",
                      period=rng.uniform(0.4, 0.8))
        st.put("box", ((st.left + st.right) / 2, h / 2, z), ((st.right - st.left) / 2, h / 2, depth),
               L["bump"], bump)


# ---- appearance --------------------------------------------------------------------------------------

def _surface(m: Material, local: np.ndarray, world: np.ndarray, size: np.ndarray):
    """Albedo (N, 3), emission (N, 3) and temperature (N,) of hits on one primitive."""
    n = len(local)
    tone = 0.9 + 0.2 * value_noise(local, 0.3, m.seed)
    temp = np.full(n, m.temp) + 0.8 * (value_noise(local, 0.5, m.seed + 1) - 0.5)
    albedo = None
    emission = np.repeat(m.emission * m.colour[None], n, 0)
    if m.pattern == "asphalt":
        tone = 0.6 + 0.8 * value_noise(world, 0.04, m.seed) * value_noise(world, 0.7, m.seed + 2)
        x, z = world[:, 0], world[:, 2]
        lines = [m.extra["left"] + 0.25, m.extra["right"] - 0.25]
        paint = np.zeros(n, bool)
        for x_line in lines:
            paint |= np.abs(x - x_line) < 0.07
        for x_line in np.arange(m.extra["left"] + m.extra["lane"], m.extra["right"] - 0.1, m.extra["lane"]):
            paint |= (np.abs(x - x_line) < 0.07) & ((z % 9.0 < 3.0) | (not m.extra["dashed"]))
        albedo = np.where(paint[:, None], 0.45, m.colour * tone[:, None])
        temp = temp + 1.5 * (value_noise(world, 2.0, m.seed + 3) - 0.5) - 1.0 * paint
    elif m.pattern == "pavement":
        g = (world[:, [0, 2]] / 0.5) % 1.0
        tone = np.where((np.minimum(g, 1 - g) < 0.04).any(1), 0.6, tone)
    elif m.pattern == "facade":
        along, up = (local[:, 2] + size[2]) / m.extra["bay"], world[:, 1] / m.extra["floor"]
        window = ((up % 1.0) > 0.35) & ((up % 1.0) < 0.8) & ((along % 1.0) > 0.25) & ((along % 1.0) < 0.75) & (up > 1)
        cell = np.stack([np.floor(along), np.floor(up), np.zeros(n)], 1)
        lit = window & (value_noise(cell, 1.0, m.seed) < m.extra["lit"])
        albedo = np.where(window[:, None], 0.03, m.colour * tone[:, None])
        emission = lit[:, None] * np.array([1.0, 0.8, 0.55]) * (1.0 + 2.0 * value_noise(cell, 1.0, m.seed + 5))[:, None]
        temp = temp - 3.0 * window + 2.0 * lit  # glass mirrors the cold sky; lit rooms are warm
    elif m.pattern == "car":
        front = np.clip(local[:, 2] / size[2], 0.0, 1.0)
        temp = temp + m.extra["hot"] * front**2  # the engine bay
    elif m.pattern == "cone":
        band = (local[:, 1] / size[1] + 1) / 2
        albedo = np.where((((band > 0.35) & (band < 0.5)) | ((band > 0.65) & (band < 0.78)))[:, None], 0.7, m.colour)
    elif m.pattern == "stripes":
        albedo = np.where(((world[:, 0] / m.extra["period"]) % 1.0 < 0.5)[:, None], m.colour, 0.03)
    elif m.pattern == "fabric":
        tone = 0.8 + 0.4 * value_noise(local, 0.05, m.seed)
    if albedo is None:
        albedo = m.colour * tone[:, None]
    return albedo, emission, temp


def _glare(h: int, w: int, u: float, v: float, strength: float, scale: float) -> np.ndarray:
    """Veiling glare around a light in the image: a bright core and a wide, slowly falling halo."""
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = (xx + 0.5 - u) ** 2 + (yy + 0.5 - v) ** 2
    core, halo = (1.2 * scale) ** 2, (6.0 * scale) ** 2
    return strength * (np.exp(-r2 / (2 * core)) + 0.08 * (1.0 + r2 / halo) ** -1.5)


def render(st: Street, rng: np.random.Generator):
    """Ray-cast the street; returns the dark 8-bit RGB, the 8-bit thermal image and the labels."""
    cam = st.camera
    hits = cast(cam, st.prims)
    h, w = hits.depth.shape
    albedo, emission = np.zeros((h, w, 3)), np.zeros((h, w, 3))
    sky = hits.index < 0
    temp = np.full((h, w), st.air - rng.uniform(20.0, 35.0))  # clear night sky: far below the air
    for i, pix in hits.by_primitive():
        prim = st.prims[i]
        a, e, t = _surface(prim.material, hits.local.reshape(-1, 3)[pix], hits.point.reshape(-1, 3)[pix], prim.extent)
        albedo.reshape(-1, 3)[pix], emission.reshape(-1, 3)[pix], temp.reshape(-1)[pix] = a, e, t
    # Light: street lamps, our own low beams (a spot aimed a little down the road) and faint sky glow.
    irradiance = np.zeros((h, w, 3)) + rng.uniform(0.002, 0.01)
    for light in st.lights:
        if light.illuminates:
            irradiance += point_light(hits.point, hits.normal, light.pos, light.power)[..., None] * light.colour
    beam_at = cam.position + [0.0, -0.6, 0.3]
    axis = rotation(cam.yaw, -0.05) @ np.array([0, 0, 1.0])
    to_point = hits.point - beam_at
    cos_axis = (to_point @ axis) / np.maximum(np.linalg.norm(to_point, axis=-1), 1e-6)
    beam = point_light(hits.point, hits.normal, beam_at, rng.uniform(20, 60)) * np.clip(cos_axis, 0, 1) ** 40
    irradiance += beam[..., None] * np.array([1.0, 0.95, 0.85])
    radiance = albedo * irradiance + emission
    glow = np.linspace(0.0, 1.0, h)[:, None, None] * np.array([0.5, 0.35, 0.2]) * rng.uniform(0.005, 0.03)
    radiance = np.where(sky[..., None], glow + 0.002, radiance)  # city glow low on the horizon
    surface_level = max(np.percentile(radiance.mean(-1), 97), 1e-6)
    scale = w / 160
    for light in st.lights:
        u, v, z = cam.project(light.pos[None])
        if z[0] > 0.5 and -20 * scale < u[0] < w + 20 * scale and -20 * scale < v[0] < h + 20 * scale:
            r, c = int(np.clip(v[0], 0, h - 1)), int(np.clip(u[0], 0, w - 1))
            if hits.depth[r, c] > z[0] - 0.5:  # not hidden behind something nearer
                strength = surface_level * light.power * 2.0 / max(z[0], 3.0) ** 0.5
                radiance += _glare(h, w, u[0], v[0], strength, scale)[..., None] * light.colour
    rgb = dark_capture(radiance / surface_level, rng, exposure=rng.uniform(0.03, 0.08),
                       full_well=rng.uniform(500, 1500), read_noise=rng.uniform(1.0, 3.0))
    return rgb, thermal_camera(temp, st.air, rng), hits.labels(st.prims, L["unlabeled"])


def thermal_camera(temp: np.ndarray, air: float, rng: np.random.Generator) -> np.ndarray:
    """8-bit thermal image: automatic gain over the scene's temperature range, optics blur,
    temporal noise and column fixed-pattern noise."""
    h, w = temp.shape
    # The gain spans from a little below the air temperature to the warmest few pixels (hot engines
    # and lamps saturate), so the street keeps its contrast and the cold sky falls off the bottom.
    hi = min(np.percentile(temp, 99.5), 36.0)
    lo = max(np.percentile(temp, 0.5), min(air - rng.uniform(2.0, 6.0), hi - 8.0))
    x = (temp - lo) / max(hi - lo, 1.0)
    x = blur(x, rng.uniform(0.6, 1.0) * w / 160) + 0.04 * (smooth_field(rng, h, w, w / 3) - 0.5)
    x += rng.normal(0.0, rng.uniform(0.01, 0.025), x.shape) + rng.normal(0.0, 0.008, (1, w))
    return np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)


def render_scene(rng: np.random.Generator, size: tuple[int, int]):
    """One night street: (RGB uint8 (H, W, 3), thermal uint8 (H, W), labels uint8 (H, W))."""
    st = Street(rng, size)
    sides = _ground(st)
    _lamps(st, sides)
    populate(st, sides)
    return render(st, rng)
