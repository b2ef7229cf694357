"""Night-street layout: the road, curbs, sidewalks and buildings, the street lamps, and the road users
and small labelled furniture (cars, people, bikes, wheel stoppers, guardrails, cones, speed bumps)."""

from __future__ import annotations

import math

import numpy as np

from smmcl.data.classes import MFNET_CLASSES
from smmcl.data.synth.night_materials import hsv, paint_colour
from smmcl.data.synth.night_street import Light, Street
from smmcl.data.synth.raycast import Primitive, rotation

L = {name: i for i, name in enumerate(MFNET_CLASSES)}
FAR_Z = 160.0                       # the street's length ahead of the camera
WHEEL = rotation(roll=math.pi / 2)  # turns a frustum's axis from local y to local x


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
            facade = st.mat(hsv(rng, (0.05, 0.15), (0, 0.3), (0.1, 0.5)), rng.uniform(-2.0, 3.0), "facade",
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
    paint = st.mat(paint_colour(rng), 1.0, "car", hot=rng.uniform(15, 35) if running else rng.uniform(0, 3))
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
    clothes = st.mat(paint_colour(rng), rng.uniform(8.0, 14.0) + 0.3 * (20 - st.air), "fabric")
    trousers = st.mat(paint_colour(rng), rng.uniform(6.0, 12.0) + 0.3 * (20 - st.air), "fabric")
    skin = st.mat(hsv(rng, (0.03, 0.1), (0.2, 0.6), (0.15, 0.7)), 0.0, "plain")
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
    frame = st.mat(paint_colour(rng), 0.0)
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
        stop = st.mat(hsv(rng, (0.1, 0.16), (0, 0.8), (0.2, 0.6)), rng.uniform(-1.0, 3.0), "plain")
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


def furnish(st: Street) -> None:
    """Lays out the whole street: ground and buildings, then lamps, then road users and furniture."""
    sides = _ground(st)
    _lamps(st, sides)
    populate(st, sides)
