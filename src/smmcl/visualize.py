"""Pictures for people: colour label maps, brightened dark RGB, colourised depth, side-by-side panels."""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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
    if rgb.dtype == np.uint8 and rgb.size:
        # A video's every frame: the same numbers from a histogram and a 256-entry table, 4x faster at 480x640.
        hi = max(percentile_u8(rgb, percentile), 1.0)
        table = (np.clip(np.arange(256, dtype=np.float64) / hi, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
        return table[rgb]
    x = rgb.astype(np.float64)
    hi = max(np.percentile(x, percentile), 1.0)
    return (np.clip(x / hi, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)


def percentile_u8(x: np.ndarray, percentile: float) -> float:
    """`np.percentile(x, percentile)` (its default linear method, to the last bit) of a uint8 array, from its
    histogram instead of a partial sort."""
    ends = np.cumsum(np.bincount(x.reshape(-1), minlength=256))
    n = int(ends[-1])
    position = (n - 1) * (np.float64(percentile) / 100)
    i = int(np.floor(position))
    g = position - i
    a, b = (float(np.searchsorted(ends, k, side="right")) for k in (i, min(i + 1, n - 1)))
    # numpy's lerp, in its own order of operations: exact at both ends.
    return a + (b - a) * g if g < 0.5 else b - (b - a) * (1 - g)


def font(size: int = 13) -> ImageFont.ImageFont:
    """Pillow's bundled scalable font: readable titles without depending on system fonts."""
    return ImageFont.load_default(size=size)


def colorbar(lo: float, hi: float, height: int, unit: str = "", width: int = 64) -> Image.Image:
    """A vertical bar of the `colorize_scalar` ramp, `hi` at the top, labelled at its ends and middle."""
    bar_w, pad = 12, 4
    canvas = Image.new("RGB", (width, height), "white")
    ramp = colorize_scalar(np.linspace(1.0, 0.0, height)[:, None].repeat(bar_w, 1))
    canvas.paste(Image.fromarray(ramp), (pad, 0))
    draw, f = ImageDraw.Draw(canvas), font(11)
    for frac, value in ((0.0, hi), (0.5, (lo + hi) / 2), (1.0, lo)):
        y = min(max(int(frac * (height - 1)) - 6, 0), height - 13)
        draw.text((pad + bar_w + 3, y), f"{value:.3g}{unit}", fill="black", font=f)
    return canvas


def scalar_tile(x: np.ndarray, valid: np.ndarray | None, scale: int = 2, unit: str = "",
                factor: float = 1.0) -> Image.Image:
    """A scalar map (depth, thermal) coloured as `colorize_scalar` does, with its colour bar beside it;
    bar labels are values x `factor` (e.g. 1e-3 for millimetres shown in metres)."""
    x = x.astype(np.float64)
    ok = np.isfinite(x) if valid is None else valid & np.isfinite(x)
    lo, hi = np.percentile(x[ok], [1, 99]) if ok.any() else (0.0, 0.0)
    h, w = x.shape
    tile = Image.fromarray(colorize_scalar(x, valid)).resize((w * scale, h * scale), Image.NEAREST)
    canvas = Image.new("RGB", (tile.width + 64, tile.height), "white")
    canvas.paste(tile, (0, 0))
    canvas.paste(colorbar(lo * factor, hi * factor, tile.height, unit), (tile.width, 0))
    return canvas


def panel(images: Sequence[np.ndarray | Image.Image], titles: Sequence[str], scale: int = 2) -> Image.Image:
    """One row of tiles with a title above each: arrays are H x W x 3 images enlarged `scale` times,
    PIL images (e.g. a `scalar_tile` with its colour bar) are placed as they are."""
    tiles = [im if isinstance(im, Image.Image) else
             Image.fromarray(im).resize((im.shape[1] * scale, im.shape[0] * scale), Image.NEAREST) for im in images]
    strip, f = 18, font(13)
    canvas = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles) + strip), "white")
    draw, x = ImageDraw.Draw(canvas), 0
    for tile, title in zip(tiles, titles):
        canvas.paste(tile, (x, strip))
        draw.text((x + 3, 1), title, fill="black", font=f)
        x += tile.width
    return canvas


def legend(class_names: Sequence[str], palette: Sequence[Sequence[int]]) -> Image.Image:
    """Colour swatches with class names, one per row (drawn once per names and colours: a video's every frame
    shows the same one; a copy, so a caller may draw on it)."""
    return _legend(tuple(class_names), tuple(tuple(int(c) for c in colour) for colour in palette[: len(class_names)])).copy()


@functools.lru_cache(maxsize=16)
def _legend(class_names: tuple, palette: tuple) -> Image.Image:
    row, f = 18, font(12)
    width = 28 + max((int(f.getlength(n)) for n in class_names), default=40)
    canvas = Image.new("RGB", (width + 4, row * len(class_names) + 4), "white")
    draw = ImageDraw.Draw(canvas)
    for k, name in enumerate(class_names):
        draw.rectangle([3, k * row + 4, 19, k * row + 16], fill=palette[k], outline="black")
        draw.text((25, k * row + 3), name, fill="black", font=f)
    return canvas


def beside(left: Image.Image, right: Image.Image) -> Image.Image:
    """`right` to the right of `left`, tops aligned, on white."""
    canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return canvas
