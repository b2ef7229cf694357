"""Photometric augmentation for dark scenes (`data.photometric`): not in the paper, off by default.

The paper trains with flips, scales and crops only (Sec. 4.1). This adds what a darker or noisier
capture of the same scene would look like, on the raw images before normalisation, in training only:

- RGB: one exposure gain (log-uniform in `exposure`) on the stored intensities, the readout of the
  shared sensor model (`smmcl.data.synth.sensor.sensor_readout`: Poisson shot noise, Gaussian read
  noise, saturation at full scale), a gamma (log-uniform in `gamma`, out = in ** gamma) and 8-bit
  requantisation (`tone_8bit`), so the result is an image the camera could have written.
- auxiliary, by `data.aux_kind`: depth gets holes (`aux_holes` of the pixels set to 0, the value the
  dataset reads as "no measurement") and relative Gaussian noise (`aux_noise`); HHA gets holes (its
  encoder writes 0 in all three channels where depth is missing, `smmcl.data.hha`); thermal gets a
  gain and an offset (`aux_gain`, `aux_offset`, the offset a fraction of the value mapped to 1.0).
  Integer images are rounded and clipped to their type; the label is never touched.

Every draw comes from `photometric_rng(seed)`, a child of the sample's augmentation seed: the same
(seed, sample) always gives the same images, and the geometric stream `default_rng(seed)` that
`TrainAugment` draws from is not consumed, so turning this off gives the training of before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from smmcl.data.synth.sensor import sensor_readout, smooth_field, tone_8bit
from smmcl.data.transforms import aux_full_scale

# Below this shot-noise level (std at full scale: a 40th of an 8-bit step) the sensor is simulated at
# this level, which keeps the photo-electron count finite and is invisible after requantisation.
MIN_SHOT_NOISE = 1e-4


def photometric_rng(seed: Optional[int]) -> np.random.Generator:
    """The photometric generator of a sample: the first child (NumPy `SeedSequence.spawn`) of its
    augmentation seed, independent of the geometric generator `default_rng(seed)`, which it leaves
    unconsumed. None (no seed given) draws fresh entropy, as the geometric generator then does."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])


def _log_uniform(u: float, lo: float, hi: float) -> float:
    """A log-uniform value in [lo, hi] from a uniform draw u; exactly lo when lo == hi."""
    return lo * (hi / lo) ** u


def _uniform(u: float, lo: float, hi: float) -> float:
    return lo + (hi - lo) * u


@dataclass(frozen=True)
class PhotometricParams:
    """The per-sample values drawn from the configured ranges."""

    exposure: float
    gamma: float
    shot_noise: float
    read_noise: float
    aux_gain: float
    aux_offset: float


@dataclass(frozen=True)
class PhotometricAugment:
    """Callable on raw arrays: (RGB H x W x 3 uint8, auxiliary H x W [x C], generator) -> new arrays.

    The inputs are never written to (the dataset may cache them).
    """

    exposure: Sequence[float] = (1.0, 1.0)
    gamma: Sequence[float] = (1.0, 1.0)
    shot_noise: Sequence[float] = (0.0, 0.0)
    read_noise: Sequence[float] = (0.0, 0.0)
    aux_holes: float = 0.0
    aux_hole_size: int = 1
    aux_noise: float = 0.0
    aux_gain: Sequence[float] = (1.0, 1.0)
    aux_offset: Sequence[float] = (0.0, 0.0)
    aux_kind: str = "depth"
    aux_max: Optional[float] = None

    @classmethod
    def from_config(cls, cfg, aux_kind: str, aux_max: Optional[float]) -> "PhotometricAugment":
        """From a `PhotometricConfig` (`data.photometric`) and the data section's `aux_kind`, `aux_max`."""
        return cls(tuple(cfg.exposure), tuple(cfg.gamma), tuple(cfg.shot_noise), tuple(cfg.read_noise),
                   cfg.aux_holes, cfg.aux_hole_size, cfg.aux_noise, tuple(cfg.aux_gain), tuple(cfg.aux_offset),
                   aux_kind, aux_max)

    def draw(self, rng: np.random.Generator) -> PhotometricParams:
        """The sample's scalar values: always six uniform draws, in this order, whatever the ranges."""
        u = rng.random(6)
        return PhotometricParams(
            exposure=_log_uniform(u[0], *self.exposure),
            gamma=_log_uniform(u[1], *self.gamma),
            shot_noise=_uniform(u[2], *self.shot_noise),
            read_noise=_uniform(u[3], *self.read_noise),
            aux_gain=_log_uniform(u[4], *self.aux_gain),
            aux_offset=_uniform(u[5], *self.aux_offset),
        )

    def __call__(self, rgb: np.ndarray, aux: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.draw(rng)
        return self.rgb(rgb, p, rng), self.aux(aux, p, rng)

    def rgb(self, rgb: np.ndarray, p: PhotometricParams, rng: np.random.Generator) -> np.ndarray:
        """Gain, sensor readout (when a noise level is set), gamma, 8-bit requantisation."""
        signal = np.asarray(rgb, np.float64) / 255.0 * p.exposure
        if p.shot_noise > 0 or p.read_noise > 0:
            # Shot noise of std s at full scale is a Poisson count of 1 / s^2 electrons there (std s * sqrt(x)
            # at signal x); the read noise, given in full-scale units, becomes electrons at that count.
            full_well = 1.0 / max(p.shot_noise, MIN_SHOT_NOISE) ** 2
            signal = sensor_readout(signal, rng, full_well, p.read_noise * full_well)
        else:
            signal = np.clip(signal, 0.0, 1.0)
        return tone_8bit(signal, p.gamma)

    def aux(self, aux: np.ndarray, p: PhotometricParams, rng: np.random.Generator) -> np.ndarray:
        """The operations of `aux_kind`: holes and noise (depth), holes (HHA), gain and offset (thermal)."""
        if self.aux_kind == "thermal":
            if p.aux_gain == 1.0 and p.aux_offset == 0.0:
                return aux
            out = aux.astype(np.float64) * p.aux_gain + p.aux_offset * aux_full_scale(aux.dtype, self.aux_max)
            return _as_dtype(out, aux.dtype)
        out = aux
        if self.aux_kind == "depth" and self.aux_noise > 0:
            valid = aux > 0
            noisy = aux.astype(np.float64) * (1.0 + self.aux_noise * rng.standard_normal(aux.shape))
            # Noise moves a measurement; it never creates a hole (a hole is aux_holes' doing) nor a negative depth.
            smallest = 1 if np.issubdtype(aux.dtype, np.integer) else np.finfo(aux.dtype).tiny
            out = np.where(valid, _as_dtype(np.maximum(noisy, smallest), aux.dtype), aux)
        if self.aux_holes > 0:
            hole = self.hole_mask(aux.shape[:2], rng)
            out = np.where(hole if out.ndim == 2 else hole[..., None], np.zeros((), aux.dtype), out)
        return out

    def hole_mask(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """`aux_holes` of the pixels: independent pixels (`aux_hole_size` 1), else blobs of about that
        many pixels across, the lowest values of a smooth random field (the synthetic depth sensor's
        holes are made the same way, `smmcl.data.synth.indoor.depth_sensor`)."""
        h, w = shape
        if self.aux_hole_size <= 1:
            return rng.random((h, w)) < self.aux_holes
        field = smooth_field(rng, h, w, float(self.aux_hole_size))
        return field < np.quantile(field, self.aux_holes)


def _as_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float values in the image's own type: rounded and clipped to an integer type's range."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)

