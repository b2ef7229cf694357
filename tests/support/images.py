"""Image files Pillow cannot write, written by hand for the tests that need them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def png_16bit_colour(path: Path, array: np.ndarray) -> None:
    """A 48-bit (16 bits per channel) colour PNG, written by hand: Pillow writes none."""
    import struct
    import zlib

    h, w, _ = array.shape
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
