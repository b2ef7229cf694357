"""Image reading and writing with Pillow, keeping bit depth (8-bit RGB, 16-bit depth, 8-bit labels)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from smmcl.errors import DatasetError

# The image files every reader takes (folders of frames, datasets, depth for HHA), by suffix, any case.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


# Formats whose compression changes pixel values: never a label file.
LOSSY_FORMATS = ("JPEG", "MPO")

# Pillow's single-channel modes read at their own depth -> their dtype (every other mode is read as 8 bits).
_MODE_DTYPES = {"I;16": "uint16", "I;16B": "uint16", "I;16L": "uint16", "I": "int32", "F": "float32"}


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """The image at `path`, its header read; a `DatasetError` naming the file when it is missing or unreadable."""
    try:
        with Image.open(path) as img:
            yield img
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"missing file: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"unreadable image {path}: {exc}") from None


def read_image(path: Path, ids: bool = False) -> np.ndarray:
    """Array of an image file: H x W (single channel, its own dtype) or H x W x C uint8. A palette image gives its
    colours, or with `ids` (a label file) its palette indices, which label releases use as class ids."""
    with _opened(path) as img:
        _check_depth(img, path)
        frames = getattr(img, "n_frames", 1)
        if frames > 1:  # trial 17: a 2-page TIFF was read as its first page, unsaid
            raise DatasetError(f"{path}: holds {frames} frames (pages, or an animation); smmcl reads one image per file: "
                               f"save each frame as a file of its own")
        if ids and img.format in LOSSY_FORMATS:
            # Lossy compression blends neighbouring values: along every edge a pixel gets an id between its
            # class and the next one's, which is another class (or none), silently.
            raise DatasetError(f"{path}: a label file in {img.format}, a lossy format that changes class ids along "
                               f"every edge; store labels losslessly (PNG)")
        img.load()
        if img.mode in _MODE_DTYPES:
            return np.array(img, dtype=_MODE_DTYPES[img.mode])
        if img.mode in ("L", "RGB", "RGBA") or (img.mode == "P" and ids):
            return np.array(img)
        if img.mode == "LA":  # grey with alpha: the grey values, as the file holds them (trial 16 #255: read as RGB)
            return np.array(img.getchannel("L"))
        return np.array(img.convert("RGB"))


def image_dtype(path: Path) -> str:
    """The dtype `read_image` gives the file, from its header alone (nothing decoded); a `DatasetError` as there."""
    with _opened(path) as img:
        return _MODE_DTYPES.get(img.mode, "uint8")


def _check_depth(img: Image.Image, path: Path) -> None:
    """Refuse a file whose samples Pillow would narrow: it reads 16-bit colour (48/64-bit PNG or TIFF) and 16-bit
    grey with alpha as 8 bits, dropping the low byte without a word. 16-bit grey (depth) is read in full."""
    for tile in getattr(img, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        rawmode = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else "")
        if ";16" in rawmode and not img.mode.startswith("I"):
            raise DatasetError(f"{path}: {img.mode} image with 16 bits per channel ({rawmode}), which would be read as 8 "
                               f"bits (the low byte dropped): smmcl reads colour at 8 bits per channel and depth or "
                               f"thermal as one 16-bit channel; convert the file (e.g. colour to 8 bits, scaled to its "
                               f"own range)")


def write_image(path: Path, array: np.ndarray) -> None:
    """Write an H x W (uint8/uint16) or H x W x 3 uint8 array as PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)


def split_packed(image: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """RGB and auxiliary channels of one packed image (MFNet: R, G, B, thermal)."""
    if image.ndim != 3 or image.shape[2] < 4:
        raise DatasetError(f"{path} has shape {image.shape}: without a separate auxiliary image (--aux, data.aux_dir) "
                           f"the auxiliary values are read from a 4th channel (the packed layout: RGB + auxiliary, "
                           f"H x W x 4), which this image does not have; give the auxiliary images apart (--aux)")
    aux = image[..., 3:]
    if aux.size and aux.min() == aux.max():
        # An RGBA photo given without --aux: its alpha plane would pass for a thermal or depth image.
        raise DatasetError(f"{path}: its 4th channel holds one value everywhere ({aux.flat[0]}), an alpha channel "
                           f"rather than an auxiliary image; give the auxiliary images apart (--aux)")
    return image[..., :3], aux[..., 0] if aux.shape[2] == 1 else aux
