"""Image reading and writing with Pillow, keeping bit depth (8-bit RGB, 16-bit depth, 8-bit labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from smmcl.errors import DatasetError

# The image files every reader takes (folders of frames, datasets, depth for HHA), by suffix, any case.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


def read_image(path: Path) -> np.ndarray:
    """Array of an image file: H x W (single channel, its own dtype) or H x W x C uint8."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L"):
                return np.array(img, dtype=np.uint16)
            if img.mode == "I":
                return np.array(img, dtype=np.int32)
            if img.mode == "F":
                return np.array(img, dtype=np.float32)
            if img.mode == "P":
                # Palette PNGs (label releases) store the label id as the palette index.
                return np.array(img)
            if img.mode in ("L", "RGB", "RGBA"):
                return np.array(img)
            return np.array(img.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"missing file: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"unreadable image {path}: {exc}") from None


def write_image(path: Path, array: np.ndarray) -> None:
    """Write an H x W (uint8/uint16) or H x W x 3 uint8 array as PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)


def split_packed(image: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """RGB and auxiliary channels of one packed image (MFNet: R, G, B, thermal)."""
    if image.ndim != 3 or image.shape[2] < 4:
        raise DatasetError(f"{path} has shape {image.shape}; the packed layout expects RGB + auxiliary channels (H x W x 4)")
    aux = image[..., 3:]
    return image[..., :3], aux[..., 0] if aux.shape[2] == 1 else aux
