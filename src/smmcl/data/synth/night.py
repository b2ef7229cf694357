"""Night street scenes (RGB-thermal) labelled with the MFNet classes.

Streets seen from a car: road, sidewalks, buildings and sky are "unlabeled"; cars, people, bikes,
curbs, wheel stoppers, guardrails, traffic cones and speed bumps are placed along and across the
road. The RGB camera sees a dark street lit by lamps and headlights, with glare around every light;
the thermal camera sees temperatures (people and running engines warm, the sky cold) through
automatic gain, noise and a little blur.

The street is built in night_street and night_layout, its appearance and temperatures are in
night_materials; this file renders it and simulates the two cameras.
"""

from __future__ import annotations

import numpy as np

from smmcl.data.synth.night_layout import L, furnish
from smmcl.data.synth.night_materials import surface
from smmcl.data.synth.night_street import Street
from smmcl.data.synth.raycast import cast, rotation
from smmcl.data.synth.sensor import blur, dark_capture, smooth_field
from smmcl.data.synth.shading import point_light


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
        a, e, t = surface(prim.material, hits.local.reshape(-1, 3)[pix], hits.point.reshape(-1, 3)[pix], prim.extent)
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
    furnish(st)
    return render(st, rng)
