"""Night-street materials: what each surface looks like to the RGB camera and how warm it is to the
thermal camera, with the procedural pattern of every kind of surface."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from smmcl.data.synth.shading import value_noise


@dataclass
class Material:
    colour: np.ndarray                 # linear albedo
    temp: float                        # degrees Celsius seen by the thermal camera
    pattern: str = "plain"
    seed: int = 0
    emission: float = 0.0              # self-luminous radiance relative to the colour
    extra: dict = field(default_factory=dict)


def hsv(rng: np.random.Generator, h, s, v) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.uniform(*h), rng.uniform(*s), rng.uniform(*v)))


def paint_colour(rng: np.random.Generator) -> np.ndarray:
    """Car paint, clothing and other man-made colours: any hue, often grey, white or black."""
    kind = rng.random()
    if kind < 0.5:
        return hsv(rng, (0, 1), (0, 0.1), (0.03, 0.8))
    return hsv(rng, (0, 1), (0.4, 0.9), (0.1, 0.6))


def surface(m: Material, local: np.ndarray, world: np.ndarray, size: np.ndarray):
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
