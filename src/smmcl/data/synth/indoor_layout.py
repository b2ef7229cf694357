"""Indoor furnishing: the room's shell and door, furniture, books, objects, wall items and the lamp."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from smmcl.data.classes import LLRGBD_CLASSES
from smmcl.data.synth.indoor_materials import Material, class_colour, class_material
from smmcl.data.synth.indoor_room import Frame, Room
from smmcl.data.synth.raycast import box, ellipsoid, rotation

L = {name: i for i, name in enumerate(LLRGBD_CLASSES)}


def _shell(room: Room, door: Optional[tuple[str, float, float, float]]) -> None:
    """Floor, ceiling and walls as 10 cm slabs around the room; a doorway leads to a dark corridor (void)."""
    rng, W, D, H, t = room.rng, room.W, room.D, room.H, 0.1
    floor_m = class_material(rng, "floor", str(rng.choice(["planks", "tiles", "carpet"])),
                             plank=rng.uniform(0.12, 0.22), tile=rng.uniform(0.3, 0.6))
    room.prims.append(box((W / 2, -t / 2, D / 2), (W / 2 + t, t / 2, D / 2 + t), L["floor"], floor_m))
    room.prims.append(box((W / 2, H + t / 2, D / 2), (W / 2 + t, t / 2, D / 2 + t), L["ceiling"],
                          class_material(rng, "ceiling")))
    wall_m = class_material(rng, "wall")
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
        dark = class_material(rng, "void", lit=0.12)
        far, uc = rng.uniform(1.2, 3.0), (u0 + u1) / 2
        slab(name, uc - 4, uc + 4, -t, 0, t, far, L["void"], dark)
        slab(name, uc - 4, uc + 4, 2.4, 2.4 + t, t, far, L["void"], dark)
        slab(name, uc - 4, uc + 4, -t, 2.4 + t, t + far, t, L["void"], dark)
        origin, along, normal, _ = walls[name]
        phi = rng.uniform(0.3, 1.4)  # the door leaf swings out into the corridor
        direction = along * math.cos(phi) - normal * math.sin(phi)
        hinge = origin + along * u0 - normal * (t + 0.03)
        room.prims.append(box(hinge + direction * (u1 - u0) / 2 + [0, dh / 2, 0], ((u1 - u0) / 2, dh / 2, 0.02),
                              L["void"], class_material(rng, "void", lit=0.4),
                              yaw=math.atan2(-direction[2], direction[0])))


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
    wood, cover = class_material(rng, "furniture", "wood"), class_material(rng, "bed", "fabric")
    base, mattress, head = rng.uniform(0.25, 0.35), rng.uniform(0.15, 0.25), rng.uniform(0.8, 1.2)
    top = base + mattress
    room.part(f, "box", (0, base / 2, 0), (width / 2, base / 2, length / 2), L["bed"], wood)
    room.part(f, "box", (0, base + mattress / 2, 0.02), (width / 2 - 0.03, mattress / 2, length / 2 - 0.03),
              L["bed"], cover)
    room.part(f, "box", (0, head / 2, 0.04 - length / 2), (width / 2 + 0.03, head / 2, 0.04), L["bed"], wood)
    blanket = length * rng.uniform(0.5, 0.75)
    room.part(f, "box", (0, top + 0.02, length / 2 - blanket / 2), (width / 2 + 0.01, 0.035, blanket / 2), L["bed"],
              class_material(rng, "bed", "fabric"))
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
    cloth = class_material(rng, "sofa", "fabric")
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
    m = class_material(rng, "chair", str(rng.choice(["wood", "plain"])))
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
    m, top, leg = class_material(rng, "table", "wood"), rng.uniform(0.03, 0.06), rng.uniform(0.025, 0.05)
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
    m = class_material(rng, "furniture", "cabinet", doors=int(rng.integers(1, 5)), look=look)
    if kind != "shelf":
        room.part(f, "box", (0, height / 2, 0), (width / 2, height / 2, depth / 2), L["furniture"], m)
        if kind != "tvstand":
            room.tops.append((f, width / 2, depth / 2, height))
        return f, width, depth, height
    board, wood = 0.02, class_material(rng, "furniture", look)
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
                  class_material(rng, "books", "book"))
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
                      class_material(rng, "books", "book"), tilt=rot)
            y += t
    elif what < 0.45 and scale == 1.0:
        _book_row(room, f, max(x - 0.2, 0.02 - hw), min(x + 0.25, hw - 0.02), height, 0.3, rng.uniform(0.18, 0.28))
    else:
        m, shape = class_material(rng, "objects", str(rng.choice(["plain", "fabric"]))), rng.random()
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
        screen = class_material(rng, "void", "screen", drop=rng.uniform(0, 0.8))
        room.part(f, "box", (0, height + 0.03, -depth / 4), (0.12, 0.03, 0.08), L["tv"], screen)
        room.part(f, "box", (0, height + 0.06 + tv_h / 2, -depth / 4), (tv_w / 2, tv_h / 2, rng.uniform(0.02, 0.04)),
                  L["tv"], screen)
    elif rng.random() < 0.35:
        tv_w = rng.uniform(0.8, 1.4)
        screen = class_material(rng, "void", "screen", drop=rng.uniform(0, 0.8))
        room.on_wall(tv_w, tv_w * 0.58, (0.9, 1.3), L["tv"], screen, rng.uniform(0.03, 0.07))
    for _ in range(int(rng.choice([0, 1, 1, 2, 2]))):
        w, h = rng.uniform(0.7, 1.6), rng.uniform(0.9, 1.4)
        glass = Material(np.array([0.04, 0.05, 0.07]) * rng.uniform(0.5, 1.5), "glass", int(rng.integers(1 << 30)),
                         extra={"frame": class_colour(rng, "frame"), "sky": class_colour(rng, "window"),
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
        blobs = [(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.2, 0.8), class_colour(rng, "painting"))
                 for _ in range(int(rng.integers(2, 7)))]
        art = class_material(rng, "painting", "painting", frame=class_colour(rng, "frame"),
                             border=rng.uniform(0.03, 0.12), blobs=blobs,
                             horizon=rng.uniform(-0.6, 0.4) if rng.random() < 0.5 else None,
                             ground=class_colour(rng, "painting"))
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
        room.part(f, "frustum", (0, pot, 0), (pot * 0.7, pot, pot), L["void"], class_material(rng, "void"))
        leaves = rng.uniform(0.2, 0.4)
        room.part(f, "ellipsoid", (0, 2 * pot + leaves, 0), (leaves * 0.8, leaves, leaves * 0.8), L["void"],
                  Material(np.array([0.05, 0.2, 0.06]) * rng.uniform(0.5, 1.5), "fabric", int(rng.integers(1 << 30))))
    elif kind < 0.7:
        axes = rng.uniform(0.12, 0.25, 3)
        room.part(f, "ellipsoid", (0, axes[1], 0), axes, L["void"], class_material(rng, "void", "fabric"))
    else:
        y = 0.0
        for _ in range(int(rng.integers(1, 4))):
            half = rng.uniform(0.1, 0.22, 3)
            room.part(f, "box", (0, y + half[1], 0), half, L["void"], class_material(rng, "void"),
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
    room.part(f, "frustum", (0, height / 2, 0), (0.02, height / 2, 0.02), L["void"], class_material(rng, "void"))
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
