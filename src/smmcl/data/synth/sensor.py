"""Image-space sensor models shared by the scene kinds: smooth random fields, blur and a dark 8-bit capture."""

from __future__ import annotations

import math

import numpy as np


def smooth_field(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """(H, W) smooth random field in [0, 1]: uniform noise on a grid `cell` pixels apart, interpolated."""
    gh, gw = int(height / cell) + 2, int(width / cell) + 2
    coarse = rng.random((gh, gw))
    y = (np.arange(height) + 0.5) / cell
    x = (np.arange(width) + 0.5) / cell
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the first two axes, edges replicated."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    out = np.asarray(image, np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        out = sum(wk * np.take(padded, np.arange(j, j + n), axis=axis) for j, wk in enumerate(k))
    return out


def sensor_readout(signal: np.ndarray, rng: np.random.Generator, full_well: float, read_noise: float) -> np.ndarray:
    """A signal (1.0 = full scale, `full_well` photo-electrons) as the sensor reads it out, in [0, 1].

    The electron count is Poisson (shot noise: relative noise grows as the light falls) plus Gaussian
    read noise of `read_noise` electrons; the readout saturates at full scale. Shared by the synthetic
    captures below and the photometric training augmentation (`smmcl.data.photometric`).
    """
    electrons = rng.poisson(np.clip(signal, 0.0, None) * full_well).astype(np.float64)
    electrons += rng.normal(0.0, read_noise, electrons.shape)
    return np.clip(electrons / full_well, 0.0, 1.0)


def tone_8bit(signal: np.ndarray, exponent: float) -> np.ndarray:
    """A [0, 1] signal through the tone curve signal ** exponent, quantised to 8 bits."""
    return np.round(255.0 * signal ** exponent).astype(np.uint8)


def dark_capture(linear: np.ndarray, rng: np.random.Generator, exposure: float, full_well: float,
                 read_noise: float, gamma: float = 2.2) -> np.ndarray:
    """Simulate an under-exposed 8-bit capture of a linear image whose normal exposure peaks near 1.

    Cutting the exposure leaves few photo-electrons per pixel, so Poisson shot noise dominates the
    bright parts and Gaussian read noise (in electrons) the dark ones; the camera's tone curve then
    lifts the shadows a little before the 8-bit quantisation.
    """
    return tone_8bit(sensor_readout(np.clip(linear, 0.0, None) * exposure, rng, full_well, read_noise), 1.0 / gamma)
