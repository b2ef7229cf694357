"""ROS messages (as `rosbags` deserialises them) to arrays, units, times and calibration.

    sensor_msgs/msg/Image            rgb8, bgr8, rgba8, bgra8 -> H x W x 3/4 uint8 in RGB order; mono8 / 8UC1 ->
                                     H x W uint8 ("raw"); mono16 / 16UC1 -> uint16 ("mm", REP 118);
                                     32FC1 -> float32 ("m")
    sensor_msgs/msg/CompressedImage  jpeg / png -> what the image holds (8-bit colour, 8-bit grey "raw", 16-bit
                                     grey "mm"); "compressedDepth": its 12-byte header, then a PNG of 16UC1
                                     (uint16 "mm") or of quantised inverse depth (32FC1: float32 "m")
    sensor_msgs/msg/CameraInfo       -> `Intrinsics` from K (ROS 1 spells the fields in capitals, ROS 2 not)
    geometry_msgs/msg/Transform      -> `Rigid`
    realsense2_camera(_msgs)/Extrinsics -> `Rigid` (librealsense's column-major rotation)
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, UnidentifiedImageError

from smmcl.errors import DatasetError
from smmcl.recordings.align import Intrinsics, Rigid
from smmcl.recordings.frames import METRES, MM, RAW

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TRANSFORM = "geometry_msgs/msg/Transform"
IMAGE_TYPES = (IMAGE, COMPRESSED)

# encoding -> (numpy type, channels, units); colour encodings carry no units.
ENCODINGS = {
    "rgb8": ("u1", 3, None), "bgr8": ("u1", 3, None), "rgba8": ("u1", 4, None), "bgra8": ("u1", 4, None),
    "mono8": ("u1", 1, RAW), "8uc1": ("u1", 1, RAW),
    "mono16": ("u2", 1, MM), "16uc1": ("u2", 1, MM),
    "32fc1": ("f4", 1, METRES),
}
DEPTH_ENCODINGS = ("mono16", "16uc1", "32fc1")
SUPPORTED = "rgb8, bgr8, rgba8, bgra8, mono8, 8UC1, mono16, 16UC1, 32FC1"

# compressed_depth_image_transport's ConfigHeader: an int32 format, then two float32 quantisation parameters.
DEPTH_HEADER = struct.Struct("<iff")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def stamp_seconds(msg: object) -> float:
    """A message's header stamp in seconds; 0.0 where it has none (the caller then uses the record time)."""
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        return 0.0
    return float(getattr(stamp, "sec", 0)) + float(getattr(stamp, "nanosec", 0)) * 1e-9


def encoding_of(msg: object, msgtype: str) -> str:
    """The lower-case pixel encoding of an Image, or "compresseddepth <type>" / the format text of a
    CompressedImage (e.g. "jpeg", "rgb8; jpeg compressed bgr8", "16uc1; compresseddepth png")."""
    if msgtype == IMAGE:
        return str(msg.encoding).strip().lower()
    fmt = str(msg.format).strip().lower()
    if "compresseddepth" in fmt:
        return "compresseddepth " + fmt.split(";")[0].strip()
    return fmt


def is_depth_encoding(encoding: str) -> bool:
    """Depth by its encoding; a CompressedImage's format starts with the encoding it was compressed from."""
    return encoding.split(";")[0].strip() in DEPTH_ENCODINGS or encoding.startswith("compresseddepth")


def _raw_image(msg: object, source: str) -> tuple[np.ndarray, str | None]:
    encoding = str(msg.encoding).strip().lower()
    if encoding not in ENCODINGS:
        raise DatasetError(f"{source}: image encoding {msg.encoding!r} is not one smmcl reads ({SUPPORTED})")
    kind, channels, units = ENCODINGS[encoding]
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row = width * channels * dtype.itemsize
    data = np.asarray(msg.data, dtype=np.uint8)
    if step < row or data.size < step * height:
        raise DatasetError(f"{source}: {encoding} image of {width}x{height} holds {data.size} bytes with a row "
                           f"step of {step}; expected at least {row} bytes a row")
    # Rows may be padded past width x pixel size (`step`): cut each row before viewing its pixels.
    rows = data[: step * height].reshape(height, step)[:, :row]
    array = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    array = array.astype(dtype.newbyteorder("="), copy=False)
    if encoding.startswith("bgr"):
        array = array[..., [2, 1, 0, 3][:channels]]
    return (array[..., 0] if channels == 1 else array), units


def _pil(data: bytes, source: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L"):
                return np.array(img, dtype=np.uint16)
            if img.mode == "I":
                # Pillow widens some 16-bit PNGs to 32-bit; their values still fit 16 bits.
                return np.array(img).astype(np.uint16)
            if img.mode in ("L", "RGB", "RGBA"):
                return np.array(img)
            return np.array(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"{source}: compressed image does not decode: {exc}") from None


def _compressed_depth(msg: object, kind: str, source: str) -> tuple[np.ndarray, str]:
    data = bytes(np.asarray(msg.data, dtype=np.uint8))
    if "rvl" in str(msg.format).lower():
        raise DatasetError(f"{source}: compressedDepth with RVL compression is not read; record it as png")
    if data[DEPTH_HEADER.size: DEPTH_HEADER.size + 8] != PNG_SIGNATURE:
        raise DatasetError(f"{source}: compressedDepth data is not its {DEPTH_HEADER.size}-byte header and a PNG")
    _, quant_a, quant_b = DEPTH_HEADER.unpack_from(data)
    image = _pil(data[DEPTH_HEADER.size:], source)
    if kind == "16uc1" or kind == "mono16":
        return image.astype(np.uint16, copy=False), MM
    if kind == "32fc1":
        # The PNG holds quantised inverse depth: depth = a / (value - b); value 0 means no measurement.
        value = image.astype(np.float32)
        with np.errstate(divide="ignore"):
            depth = np.where(value > 0, np.float32(quant_a) / (value - np.float32(quant_b)), 0.0)
        return depth.astype(np.float32), METRES
    raise DatasetError(f"{source}: compressedDepth of {kind!r} is not read (16UC1 or 32FC1)")


def decode_image(msg: object, msgtype: str, source: str) -> tuple[np.ndarray, str | None]:
    """An Image or CompressedImage message as an array (colour in RGB order) and the units its values are in
    (None for colour)."""
    if msgtype == IMAGE:
        return _raw_image(msg, source)
    encoding = encoding_of(msg, msgtype)
    if encoding.startswith("compresseddepth"):
        return _compressed_depth(msg, encoding.split(" ", 1)[1], source)
    array = _pil(bytes(np.asarray(msg.data, dtype=np.uint8)), source)
    if array.ndim == 3:
        return array, None
    return array, (MM if array.dtype == np.uint16 else RAW)


def intrinsics_of(msg: object) -> Intrinsics:
    """CameraInfo -> Intrinsics (K is `K` in ROS 1 messages, `k` in ROS 2)."""
    k = getattr(msg, "k", None)
    if k is None:
        k = getattr(msg, "K")
    return Intrinsics.from_matrix(list(k), msg.width, msg.height)


def rigid_of(msg: object, msgtype: str) -> Rigid:
    """geometry_msgs Transform (or a message holding one as `transform`) or a realsense Extrinsics -> Rigid."""
    if msgtype.endswith("/Extrinsics"):
        return Rigid.from_column_major(list(msg.rotation), list(msg.translation))
    transform = getattr(msg, "transform", msg)
    r, t = transform.rotation, transform.translation
    return Rigid.from_quaternion(r.x, r.y, r.z, r.w, (t.x, t.y, t.z))
