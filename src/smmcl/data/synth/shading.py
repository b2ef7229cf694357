"""Shading helpers shared by the scene kinds: point-light irradiance and procedural solid noise."""

from __future__ import annotations

import numpy as np


def point_light(points: np.ndarray, normals: np.ndarray, position, power: float, size: float = 0.0) -> np.ndarray:
    """Lambertian irradiance from a point light with inverse-square falloff (no shadows). A light of
    `size` metres (a lamp shade) softens the falloff close to it: power / (d^2 + size^2)."""
    v = np.asarray(position, np.float64) - points
    dist2 = np.maximum((v * v).sum(-1), 1e-4)
    cos = (normals * v).sum(-1) / np.sqrt(dist2)
    return power * np.maximum(cos, 0.0) / (dist2 + size * size)


_M1, _M2, _M3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _hash01(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer lattice point (splitmix-style mixing)."""
    off = 1 << 20  # lattice indices are small and may be negative: shift them positive before hashing
    h = ((ix + off).astype(np.uint64) * _M1) ^ ((iy + off).astype(np.uint64) * _M2)
    h ^= (iz + off).astype(np.uint64) * _M3 ^ np.uint64(seed & 0xFFFFFFFF)
    h ^= h >> np.uint64(30)
    h *= _M2
    h ^= h >> np.uint64(27)
    h *= _M3
    h ^= h >> np.uint64(31)
    return (h >> np.uint64(40)).astype(np.float64) / float(1 << 24)


_CUBE = np.array([[cx, cy, cz] for cx in (0, 1) for cy in (0, 1) for cz in (0, 1)], np.int64)


def value_noise(points: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth solid noise in [0, 1) at (N, 3) points with features about `cell` metres across."""
    g = np.asarray(points, np.float64) / cell
    i = np.floor(g)
    f = g - i
    f = f * f * (3.0 - 2.0 * f)  # smoothstep hides the lattice
    corner = i.astype(np.int64)[None] + _CUBE[:, None]  # (8, N, 3): all corners hashed at once
    v = _hash01(corner[..., 0], corner[..., 1], corner[..., 2], seed)
    fx, fy, fz = f.T
    v = v[:4] * (1.0 - fx) + v[4:] * fx  # trilinear: along x, then y, then z
    v = v[:2] * (1.0 - fy) + v[2:] * fy
    return v[0] * (1.0 - fz) + v[1] * fz

