"""Where a recording keeps what goes with an image topic: its camera_info, its depth units, the depth-to-colour
extrinsics; and which image topics to read when the caller names none.

Two layouts are known:
    ROS drivers (realsense-ros, most cameras)  /camera/color/image_raw, /camera/color/camera_info,
        /camera/aligned_depth_to_color/image_raw (depth already registered to colour),
        /camera/extrinsics/depth_to_color (realsense2_camera Extrinsics)
    The RealSense recorder (realsense-viewer, rs-record; librealsense's rosbag format, version 3 and up)
        /device_0/sensor_0/Depth_0/image/data, .../Depth_0/info/camera_info, .../Depth_0/tf/<group>
        (geometry_msgs/Transform from the group's reference stream to this one),
        /device_0/sensor_0/option/Depth Units/value (std_msgs/Float32, metres per unit; some librealsense
        versions write the option name with "_" for spaces), /device_0/sensor_1/Color_0/image/data
"""

from __future__ import annotations

import re
from typing import Callable, Mapping, Optional

from smmcl.errors import DatasetError
from smmcl.recordings.messages import CAMERA_INFO, ENCODINGS, IMAGE_TYPES, is_depth_encoding

REALSENSE_STREAM = re.compile(r"^(/device_\d+/sensor_\d+)/([A-Za-z]+_\d+)/image/data$")
REALSENSE_TF = re.compile(r"/tf/(?:ref_)?(\d+)$")
DEPTH_UNITS_OPTION = re.compile(r"/option/depth[ _]units/value$", re.IGNORECASE)
ALIGNED_NAMES = ("aligned_depth_to_color", "depth_registered")
RGB_WORDS = ("color", "colour", "rgb")
AUX_WORDS = ("depth", "thermal", "infra", "ir")


def is_aligned(topic: str) -> bool:
    """Depth that the driver already registered to the colour camera, by the drivers' names for it."""
    return any(name in topic.lower() for name in ALIGNED_NAMES)


def realsense_stream(topic: str) -> Optional[str]:
    """The stream prefix (/device_0/sensor_0/Depth_0) of a RealSense recorder image topic, else None."""
    match = REALSENSE_STREAM.match(topic)
    return f"{match.group(1)}/{match.group(2)}" if match else None


def camera_info_topic(image_topic: str, types: Mapping[str, Optional[str]]) -> Optional[str]:
    """The CameraInfo topic beside an image topic: the nearest enclosing namespace's `camera_info` (ROS
    drivers; image_raw/compressed included) or `info/camera_info` (the RealSense recorder)."""
    parts = image_topic.strip("/").split("/")
    for depth in range(len(parts) - 1, 0, -1):
        prefix = "/" + "/".join(parts[:depth])
        for candidate in (f"{prefix}/camera_info", f"{prefix}/info/camera_info"):
            if types.get(candidate) == CAMERA_INFO:
                return candidate
    return None


def depth_units_topic(image_topic: str, types: Mapping[str, Optional[str]]) -> Optional[str]:
    """The RealSense recorder's "Depth Units" option topic of the sensor that recorded `image_topic`."""
    match = REALSENSE_STREAM.match(image_topic)
    if not match:
        return None
    sensor = match.group(1) + "/option/"
    return next((t for t in sorted(types) if t.startswith(sensor) and DEPTH_UNITS_OPTION.search(t)), None)


def realsense_extrinsics(stream: str, types: Mapping[str, Optional[str]]) -> dict[str, str]:
    """Extrinsic group -> tf topic of a RealSense recorder stream (each maps the group's reference to it)."""
    found = {}
    for topic in types:
        if topic.startswith(stream + "/tf/"):
            match = REALSENSE_TF.search(topic)
            if match:
                found[match.group(1)] = topic
    return found


def ros_extrinsics_topic(depth_topic: str, types: Mapping[str, Optional[str]]) -> Optional[str]:
    """realsense-ros's depth-to-colour Extrinsics topic of the camera namespace that holds `depth_topic`."""
    best = None
    for topic, msgtype in types.items():
        if topic.endswith("/extrinsics/depth_to_color") and (msgtype or "").endswith("/Extrinsics"):
            namespace = topic[: -len("extrinsics/depth_to_color")]
            if depth_topic.startswith(namespace) and (best is None or len(topic) > len(best)):
                best = topic
    return best


def image_topics(types: Mapping[str, Optional[str]]) -> list[str]:
    return sorted(t for t, m in types.items() if m in IMAGE_TYPES)


# Where a topic's name says nothing (/cam/image, /cam/aux), its pixel encoding says colour or not (trial 14 #215).
Encoding = Callable[[str], Optional[str]]


def _base(encoding: Optional[str]) -> str:
    """The pixel encoding an Image holds, or a CompressedImage was compressed from ("rgb8; jpeg ..." -> "rgb8")."""
    return (encoding or "").split(";")[0].strip()


def is_colour_encoding(encoding: Optional[str]) -> bool:
    kind = ENCODINGS.get(_base(encoding))
    return kind is not None and kind[2] is None


def is_aux_encoding(encoding: Optional[str]) -> bool:
    """Depth, or single-channel images a thermal camera writes (mono8, mono16); not colour."""
    kind = ENCODINGS.get(_base(encoding))
    return (kind is not None and kind[2] is not None) or is_depth_encoding(encoding or "")


def _pick(candidates: list[str], what: str, images: list[str], flag: str,
          encoding: Optional[Encoding] = None) -> str:
    if len(candidates) == 1:
        return candidates[0]
    listed = ", ".join(f"{t} ({encoding(t) or 'no messages'})" if encoding else t for t in images) or "none"
    name = f"--{flag.replace(' ', '-')} (or {flag.replace(' ', '_')}= in Python)"
    if not candidates:
        # Both flags named: the user who names one topic usually has to name the other too (trial 14 #215).
        raise DatasetError(f"no {what} image topic found by name or encoding; name the topics with --rgb-topic and "
                           f"--aux-topic (rgb_topic=, aux_topic= in Python). Image topics: {listed}")
    raise DatasetError(f"{len(candidates)} {what} image topics: {', '.join(candidates)}; name one with {name}. "
                       f"Image topics: {listed}")


def choose_topics(types: Mapping[str, Optional[str]], rgb_topic: Optional[str],
                  aux_topic: Optional[str], encoding: Optional[Encoding] = None) -> tuple[str, str]:
    """The named topics, checked to be image topics; where one is not named, the only image topic that fits
    (an aligned depth topic before raw depth); a `DatasetError` listing the image topics otherwise. `encoding`:
    a topic's pixel encoding (its first message's; None: no message), to tell colour from depth or thermal where
    the names do not."""
    images = image_topics(types)
    for topic, flag in ((rgb_topic, "rgb topic"), (aux_topic, "aux topic")):
        if topic is not None and topic not in images:
            what = f"holds {types[topic]}" if topic in types else "is not in the recording"
            raise DatasetError(f"{flag} {topic} {what}; image topics (sensor_msgs Image or CompressedImage): "
                               f"{', '.join(images) or 'none'}")

    def words(topic: str, names: tuple[str, ...]) -> bool:
        parts = re.split(r"[/_]", topic.lower())
        return any(any(p.startswith(n) for n in names) for p in parts)

    # (Infrared is left alone: a grey stream can stand in for colour.)
    if rgb_topic is not None and (is_aligned(rgb_topic) or (words(rgb_topic, ("depth", "thermal"))
                                                            and not words(rgb_topic, RGB_WORDS))):
        # Named by its depth or thermal name: the colour stream was meant (trial 9 #181 was told of a missing aux).
        colour = [t for t in images if words(t, RGB_WORDS) and not words(t, AUX_WORDS) and not is_aligned(t)]
        raise DatasetError(f"rgb topic {rgb_topic} is named as an auxiliary (depth or thermal) stream, not colour"
                           + (f"; the colour topic is probably {colour[0]}" if colour else "")
                           + f"; image topics: {', '.join(images)}")
    if rgb_topic is None:
        # Compressed copies of a raw topic (image_raw/compressed) are the same frames: prefer the raw one.
        found = [t for t in images if words(t, RGB_WORDS) and not is_aligned(t) and not words(t, AUX_WORDS)]
        if not found and encoding is not None:
            found = [t for t in images if t != aux_topic and is_colour_encoding(encoding(t))]
        raw = [t for t in found if types[t] == IMAGE_TYPES[0]]
        rgb_topic = _pick(raw or found, "colour", images, "rgb topic", encoding)
    if aux_topic is None:
        # Depth before thermal before infrared: a RealSense records infrared beside its depth.
        others = [t for t in images if t != rgb_topic]
        tiers = [[t for t in others if is_aligned(t)]] + [[t for t in others if words(t, (w,))] for w in AUX_WORDS]
        if encoding is not None:
            tiers.append([t for t in others if is_aux_encoding(encoding(t))])
        preferred = next((tier for tier in tiers if tier), [])
        raw = [t for t in preferred if types[t] == IMAGE_TYPES[0]]
        aux_topic = _pick(raw or preferred, "auxiliary (depth or thermal)", images, "aux topic", encoding)
    return rgb_topic, aux_topic
