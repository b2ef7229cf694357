"""ROS bags (ROS 1 `.bag`, RealSense recordings included; ROS 2 folders of .db3 / .mcap) through `rosbags`.

Opening reads the two image topics once for their times (header stamps; the record time where a stamp is 0)
and the small calibration topics, pairs the streams and settles alignment and units, so every refusal comes
before the first frame; iterating reads the bag again and decodes only the paired messages.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from smmcl.data.names import check_folder_kind
from smmcl.errors import DatasetError
from smmcl.recordings import layout
from smmcl.recordings.align import Intrinsics, Rigid, align_depth_to_color
from smmcl.recordings.frames import MM, Frame, Recording, check_frame, depth_units_text, metres_per_unit
from smmcl.recordings.messages import decode_image, encoding_of, intrinsics_of, is_depth_encoding, rigid_of, \
    stamp_seconds
from smmcl.recordings.pairing import pair_by_time

Register = Callable[[np.ndarray, float, str], np.ndarray]

BAG_SUFFIXES = (".bag",)  # ROS 1, RealSense recordings too
ROS2_FILES = (".db3", ".mcap")  # a ROS 2 bag's storage files


@dataclass(frozen=True)
class TopicInfo:
    """A topic of a bag: its name, message type (e.g. sensor_msgs/msg/Image) and message count."""

    name: str
    msgtype: str
    count: int


def _bag_path(path: Path) -> Path:
    """The path rosbags opens: a ROS 2 storage file's folder when it has metadata.yaml (a split bag is read
    whole), a folder's only storage file when it has none."""
    if path.is_file() and path.suffix.lower() in ROS2_FILES and (path.parent / "metadata.yaml").is_file():
        return path.parent
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in ROS2_FILES)
        if len(files) == 1:
            return files[0]
        raise DatasetError(f"{path}: a ROS 2 bag folder without metadata.yaml holds {len(files)} storage files; "
                           "open one of them")
    return path


@contextlib.contextmanager
def _open(path: Path) -> Iterator[object]:
    try:
        from rosbags.highlevel import AnyReader, AnyReaderError
        from rosbags.typesys import Stores, get_typestore
    except ImportError:
        raise ImportError("reading ROS bags needs rosbags: pip install 'smmcl[recordings]'") from None
    try:
        # Bags written before ROS 2 Iron carry no message definitions: the standard ones are read from the store.
        reader = AnyReader([_bag_path(path)], default_typestore=get_typestore(Stores.LATEST))
        reader.open()
    except (AnyReaderError, FileNotFoundError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable ROS bag: {exc}") from None
    try:
        yield reader
    finally:
        reader.close()


def list_topics(path: str | Path) -> list[TopicInfo]:
    """The topics of a bag, sorted by name, with their message type and count."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"recording not found: {path}")
    with _open(path) as reader:
        return [TopicInfo(name, info.msgtype or "(several types)", int(info.msgcount))
                for name, info in sorted(reader.topics.items())]


def _first(reader, topic: Optional[str]) -> Optional[object]:
    """The first message of a (calibration) topic, deserialised; None for no topic or no message."""
    if topic is None or topic not in reader.topics:
        return None
    for connection, _, raw in reader.messages(connections=reader.topics[topic].connections):
        return reader.deserialize(raw, connection.msgtype)
    return None


def _encodings(reader) -> layout.Encoding:
    """A topic's pixel encoding, its first message's (None: no message), read once a topic: what tells a colour
    topic from depth where the names do not (trial 14 #215)."""
    seen: dict[str, Optional[str]] = {}

    def encoding(topic: str) -> Optional[str]:
        if topic not in seen:
            msg = _first(reader, topic)
            seen[topic] = None if msg is None else encoding_of(msg, reader.topics[topic].msgtype)
        return seen[topic]

    return encoding


def _scan(reader, path: Path, topics: tuple[str, str]) -> dict[str, dict]:
    """Times (seconds), record times (ns), the first message and its encoding, of each image topic."""
    found = {t: {"times": [], "record": [], "encoding": None, "first": None} for t in topics}
    connections = [c for t in topics for c in reader.topics[t].connections]
    for connection, record, raw in reader.messages(connections=connections):
        msg = reader.deserialize(raw, connection.msgtype)
        entry = found[connection.topic]
        if entry["encoding"] is None:
            entry["encoding"] = encoding_of(msg, connection.msgtype)
            entry["first"] = (msg, connection.msgtype)
        entry["times"].append(stamp_seconds(msg) or record * 1e-9)
        entry["record"].append(record)
    for topic, entry in found.items():
        if not entry["times"]:
            raise DatasetError(f"{path}: topic {topic} has no messages")
    return found


def _depth_units(reader, topic: str, types: dict) -> Optional[tuple[list[int], list[str]]]:
    """The RealSense recorder's "Depth Units" option of the sensor behind `topic`: record times (ns) and units
    text of each value set, or None where the recording has no such option."""
    option = layout.depth_units_topic(topic, types)
    if option is None:
        return None
    times, units = [], []
    for connection, record, raw in reader.messages(connections=reader.topics[option].connections):
        value = float(reader.deserialize(raw, connection.msgtype).data)
        if value > 0:
            times.append(record)
            units.append(depth_units_text(value))
    return (times, units) if units else None


def _extrinsics(reader, types: dict, rgb_topic: str, aux_topic: str) -> tuple[Optional[Rigid], str]:
    """Depth-to-colour extrinsics from the recording, and where they were looked for."""
    depth_stream, color_stream = layout.realsense_stream(aux_topic), layout.realsense_stream(rgb_topic)
    if depth_stream and color_stream:
        depth_tf = layout.realsense_extrinsics(depth_stream, types)
        color_tf = layout.realsense_extrinsics(color_stream, types)
        for group in sorted(set(depth_tf) & set(color_tf)):
            to_depth, to_color = (_first(reader, tf[group]) for tf in (depth_tf, color_tf))
            if to_depth is not None and to_color is not None:
                # Each tf maps the group's reference stream to its own stream: depth -> reference -> colour.
                return (rigid_of(to_color, types[color_tf[group]]).after(
                    rigid_of(to_depth, types[depth_tf[group]]).inverse()), "")
        return None, f"{depth_stream}/tf/<group> and {color_stream}/tf/<group> with a common group"
    topic = layout.ros_extrinsics_topic(aux_topic, types)
    if topic is not None:
        msg = _first(reader, topic)
        if msg is not None:
            return rigid_of(msg, types[topic]), ""
    return None, "an Extrinsics topic <camera>/extrinsics/depth_to_color"


def _intrinsics(reader, types: dict, topic: str) -> tuple[Optional[Intrinsics], str]:
    info = layout.camera_info_topic(topic, types)
    msg = _first(reader, info)
    if msg is None:
        return None, f"camera_info beside {topic} (a CameraInfo topic <namespace>/camera_info or info/camera_info)"
    intrinsics = intrinsics_of(msg)
    if not intrinsics.valid:
        return None, f"a calibrated {info} (its camera matrix K is zero)"
    return intrinsics, ""


def _alignment(reader, path: Path, types: dict, rgb_topic: str, aux_topic: str, encoding: str,
               align: Optional[bool]) -> tuple[str, Optional[Register]]:
    """How the auxiliary frames are registered to colour, and the function that does it (None: as recorded)."""
    if not is_depth_encoding(encoding):
        if align:
            raise DatasetError(f"{path}: {aux_topic} holds {encoding} images, not depth: only depth is reprojected")
        return "as recorded", None
    if align is False:
        return "as recorded (--aux-aligned)", None
    if align is None and layout.is_aligned(aux_topic):
        return "aligned stream", None
    depth, depth_missing = _intrinsics(reader, types, aux_topic)
    color, color_missing = _intrinsics(reader, types, rgb_topic)
    extrinsics, extrinsics_missing = _extrinsics(reader, types, rgb_topic, aux_topic)
    missing = [m for m in (depth_missing, color_missing) if m]
    if extrinsics_missing:
        missing.append(f"depth-to-colour extrinsics ({extrinsics_missing})")
    if missing:
        aligned = [t for t in layout.image_topics(types) if layout.is_aligned(t)]
        hint = f" It has aligned depth: read {', '.join(aligned)} instead." if aligned else ""
        raise DatasetError(
            f"{path}: depth {aux_topic} is not registered to colour {rgb_topic} and cannot be aligned: the recording "
            f"lacks {'; '.join(missing)}.{hint} Record the camera's aligned depth (aligned_depth_to_color) or its "
            "calibration; or, if this depth is registered to colour already, read it as recorded (--aux-aligned; "
            "align=False in Python).")

    def register(image: np.ndarray, mpu: float, source: str) -> np.ndarray:
        if image.shape[:2] != (depth.height, depth.width):
            raise DatasetError(f"{source}: depth is {image.shape[1]}x{image.shape[0]} but its camera_info is for "
                               f"{depth.width}x{depth.height}")
        return align_depth_to_color(image, depth, color, extrinsics, mpu)

    return "reprojected", register


def open_bag(path: Path, rgb_topic: Optional[str] = None, aux_topic: Optional[str] = None, *,
             tolerance: Optional[float] = None, align: Optional[bool] = None, aux_kind: Optional[str] = None) -> Recording:
    """A bag's paired frames (see `smmcl.recordings.open_recording`)."""
    with _open(path) as reader:
        types = {name: info.msgtype for name, info in reader.topics.items()}
        rgb_topic, aux_topic = layout.choose_topics(types, rgb_topic, aux_topic, _encodings(reader))
        if rgb_topic == aux_topic:
            raise DatasetError(f"{path}: the rgb and aux topics are the same, {rgb_topic}")
        if aux_kind is not None:  # before alignment is judged: a thermal topic was sent to --aux-aligned (trial 13 #134)
            check_folder_kind(aux_topic, aux_kind, f"the model was trained on {aux_kind} images",
                              "give the topic of the images it was trained on (--aux-topic)", what=f"topic {aux_topic}",
                              topic=True)
        scanned = _scan(reader, path, (rgb_topic, aux_topic))
        rgb, aux = scanned[rgb_topic], scanned[aux_topic]
        alignment, register = _alignment(reader, path, types, rgb_topic, aux_topic, aux["encoding"], align)
        option = _depth_units(reader, aux_topic, types)
    try:
        pairing = pair_by_time(rgb["times"], aux["times"], tolerance)
    except ValueError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    if not pairing.pairs:
        raise DatasetError(f"{path}: no frame of {rgb_topic} pairs with one of {aux_topic}: {pairing.summary()}; "
                           "are their stamps on one clock? A wider tolerance pairs frames further apart")

    def units_at(record: int, decoded: Optional[str]) -> str:
        # The option applies to integer depth only; float depth is metres whatever the sensor's option says.
        if option is None or decoded != MM:
            return decoded or "raw"
        times, units = option
        return units[max(bisect_right(times, record) - 1, 0)]

    def frames() -> Iterator[Frame]:
        position = {"rgb": {r: n for n, (r, _) in enumerate(pairing.pairs)},
                    "aux": {a: n for n, (_, a) in enumerate(pairing.pairs)}}
        pending: dict[str, dict[int, tuple]] = {"rgb": {}, "aux": {}}
        seen = {rgb_topic: 0, aux_topic: 0}
        following = 0
        with _open(path) as reader:
            connections = [c for t in (rgb_topic, aux_topic) for c in reader.topics[t].connections]
            for connection, _, raw in reader.messages(connections=connections):
                stream = "rgb" if connection.topic == rgb_topic else "aux"
                k = seen[connection.topic]
                seen[connection.topic] += 1
                if k in position[stream]:
                    pending[stream][position[stream][k]] = (k, connection.msgtype, raw)
                while following in pending["rgb"] and following in pending["aux"]:
                    yield make(following, reader, pending["rgb"].pop(following), pending["aux"].pop(following))
                    following += 1
                if following == len(pairing.pairs):
                    return

    def make(index: int, reader, rgb_message: tuple, aux_message: tuple) -> Frame:
        (r, rgb_type, rgb_raw), (a, aux_type, aux_raw) = rgb_message, aux_message
        rgb_source, aux_source = f"{path}:{rgb_topic} message {r}", f"{path}:{aux_topic} message {a}"
        rgb_image, _ = decode_image(reader.deserialize(rgb_raw, rgb_type), rgb_type, rgb_source)
        aux_image, decoded = decode_image(reader.deserialize(aux_raw, aux_type), aux_type, aux_source)
        units = units_at(aux["record"][a], decoded)
        if register is not None:
            aux_image = register(aux_image, metres_per_unit(units) or 1.0, aux_source)
        rgb_image, aux_image = check_frame(rgb_image, aux_image, rgb_source, aux_source)
        return Frame(index, rgb["times"][r], rgb_image, aux_image, units, rgb_topic, aux_topic, aux["times"][a])

    # What the first auxiliary image decodes to settles the units the recording reports before iterating.
    first_message, first_type = aux["first"]
    _, decoded = decode_image(first_message, first_type, f"{path}:{aux_topic} message 0")
    return Recording(path, rgb_topic, aux_topic, pairing, alignment, units_at(aux["record"][0], decoded), frames)
