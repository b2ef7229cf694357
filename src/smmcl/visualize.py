"""Pictures for people: colour label maps, brightened dark RGB, colourised depth, side-by-side panels."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

# Anchor colours of a perceptually ordered ramp (dark blue -> cyan -> yellow -> red), interpolated.
_RAMP = np.array([[48, 18, 59], [40, 120, 230], [30, 210, 200], [160, 250, 80], [250, 190, 40], [200, 40, 10]], float)


def colorize_scalar(x: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """H x W scalar map -> H x W x 3 uint8 on a colour ramp scaled to its 1st-99th percentile; invalid = black."""
    x = x.astype(np.float64)
    valid = np.isfinite(x) if valid is None else valid & np.isfinite(x)
    out = np.zeros((*x.shape, 3), np.uint8)
    if not valid.any():
        return out
    lo, hi = np.percentile(x[valid], [1, 99])
    t = np.clip((x - lo) / max(hi - lo, 1e-9), 0, 1) * (len(_RAMP) - 1)
    i = np.minimum(t.astype(int), len(_RAMP) - 2)
    f = (t - i)[..., None]
    rgb = _RAMP[i] * (1 - f) + _RAMP[i + 1] * f
    out[valid] = rgb[valid].astype(np.uint8)
    return out


def brighten(rgb: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """Auto-exposure for viewing a dark capture: scale so the given percentile maps to white, gamma 1/2.2."""
    x = rgb.astype(np.float64)
    hi = max(np.percentile(x, percentile), 1.0)
    return (np.clip(x / hi, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)


def panel(images: Sequence[np.ndarray], titles: Sequence[str], scale: int = 2) -> Image.Image:
    """One row of equally sized H x W x 3 images with a title strip above each."""
    h, w = images[0].shape[:2]
    h2, w2, strip = h * scale, w * scale, 14
    canvas = Image.new("RGB", (w2 * len(images), h2 + strip), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (img, title) in enumerate(zip(images, titles)):
        tile = Image.fromarray(img).resize((w2, h2), Image.NEAREST)
        canvas.paste(tile, (k * w2, strip))
        draw.text((k * w2 + 3, 1), title, fill="black")
    return canvas


def legend(class_names: Sequence[str], palette: Sequence[Sequence[int]]) -> Image.Image:
    row = 14
    canvas = Image.new("RGB", (140, row * len(class_names)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, name in enumerate(class_names):
        draw.rectangle([2, k * row + 2, 14, k * row + 12], fill=tuple(int(c) for c in palette[k]))
        draw.text((20, k * row + 1), name, fill="black")
    return canvas
