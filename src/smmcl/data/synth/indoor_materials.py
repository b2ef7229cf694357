"""Indoor materials: per-class colour families and the procedural appearance of every surface pattern."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from smmcl.data.synth.shading import value_noise

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
    pattern: str = "plain"             # see surface() for the procedural patterns
    seed: int = 0
    emission: float = 0.0              # self-luminous radiance relative to the colour (lamp shades, glass)
    extra: dict = field(default_factory=dict)


def class_colour(rng: np.random.Generator, cls: str) -> np.ndarray:
    weights = CLASS_FAMILIES[cls]
    names = list(weights)
    p = np.array([weights[n] for n in names], np.float64)
    (h0, h1), (s0, s1), (v0, v1) = FAMILIES[names[rng.choice(len(names), p=p / p.sum())]]
    return np.array(colorsys.hsv_to_rgb(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1)))


def class_material(rng: np.random.Generator, cls: str, pattern: str = "plain", **extra) -> Material:
    return Material(class_colour(rng, cls), pattern, int(rng.integers(1 << 30)), extra=extra)


def _lattice(i: np.ndarray, j: np.ndarray, seed: int) -> np.ndarray:
    """A fixed random value in [0, 1) per integer cell (i, j): value noise read on its lattice."""
    return value_noise(np.stack([i, j, np.zeros_like(i)], 1).astype(np.float64), 1.0, seed)


def surface(m: Material, local: np.ndarray, world: np.ndarray, size: np.ndarray):
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
