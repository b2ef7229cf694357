"""Real ROS bags for tests, written with rosbags' own writers (messages of its typestores, serialised the writer's
way): small frames, a plausible clock, and a ROS 2 bag with depth the driver aligned to colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2
from rosbags.typesys import Stores, get_typestore

from smmcl.recordings.messages import COMPRESSED, IMAGE

H, W, N = 24, 32, 8
START = 1_700_000_000  # seconds: a plausible wall clock
DT_NS = 33_333_333  # 30 fps


def rgb_frame(k: int) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([x * 8, y * 10, np.full_like(x, 30 * k)], -1).astype(np.uint8)


def depth_frame(k: int) -> np.ndarray:
    return (1000 + 10 * k + np.arange(H * W).reshape(H, W)).astype(np.uint16)


class Bag:
    """Messages for a writer: the typestore's own classes, serialised the writer's way (ROS 1 or CDR)."""

    def __init__(self, store: Stores):
        self.ts = get_typestore(store)
        self.ros1 = store == Stores.ROS1_NOETIC
        self.connections: dict = {}

    def header(self, ns: int, frame: str = "cam"):
        time = self.ts.types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
        fields = dict(stamp=time, frame_id=frame)
        return self.ts.types["std_msgs/msg/Header"](seq=0, **fields) if self.ros1 else \
            self.ts.types["std_msgs/msg/Header"](**fields)

    def image(self, ns: int, array: np.ndarray, encoding: str):
        step = array.shape[1] * array.itemsize * (array.shape[2] if array.ndim == 3 else 1)
        return self.ts.types[IMAGE](header=self.header(ns), height=array.shape[0], width=array.shape[1],
                                    encoding=encoding, is_bigendian=0, step=step,
                                    data=np.frombuffer(array.tobytes(), dtype=np.uint8))

    def compressed(self, ns: int, data: bytes, fmt: str):
        return self.ts.types[COMPRESSED](header=self.header(ns), format=fmt,
                                         data=np.frombuffer(data, dtype=np.uint8))

    def camera_info(self, intrinsics: tuple[float, float, float, float], width: int = W, height: int = H):
        fx, fy, cx, cy = intrinsics
        k = np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], dtype=np.float64)
        names = ("D", "K", "R", "P") if self.ros1 else ("d", "k", "r", "p")
        arrays = dict(zip(names, (np.zeros(5), k, np.eye(3).ravel(), np.zeros(12))))
        roi = self.ts.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                               do_rectify=False)
        return self.ts.types["sensor_msgs/msg/CameraInfo"](header=self.header(0), height=height, width=width,
                                                           distortion_model="plumb_bob", binning_x=0, binning_y=0,
                                                           roi=roi, **arrays)

    def transform(self, translation=(0.0, 0.0, 0.0)):
        t = self.ts.types
        return t["geometry_msgs/msg/Transform"](translation=t["geometry_msgs/msg/Vector3"](*translation),
                                                rotation=t["geometry_msgs/msg/Quaternion"](0.0, 0.0, 0.0, 1.0))

    def write(self, writer, topic: str, record_ns: int, msg) -> None:
        if topic not in self.connections:
            self.connections[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=self.ts)
        data = self.ts.serialize_ros1(msg, msg.__msgtype__) if self.ros1 else \
            self.ts.serialize_cdr(msg, msg.__msgtype__)
        writer.write(self.connections[topic], record_ns, data)


# ROS 2: rgb8 colour and 16UC1 depth the driver aligned to it; aux 3 ms late, its frame 5 lost.

def write_ros2_aligned(path: Path, storage=StoragePlugin.SQLITE3,
                       aux_topic: str = "/camera/aligned_depth_to_color/image_raw",
                       rgb_topic: str = "/camera/color/image_raw") -> Path:
    bag = Bag(Stores.ROS2_HUMBLE)
    with Writer2(path, version=9, storage_plugin=storage) as writer:
        for k in range(N):
            stamp = START * 10**9 + k * DT_NS
            bag.write(writer, rgb_topic, stamp + 1_000_000, bag.image(stamp, rgb_frame(k), "rgb8"))
            if k != 5:
                bag.write(writer, aux_topic, stamp + 4_000_000,
                          bag.image(stamp + 3_000_000, depth_frame(k), "16UC1"))
        bag.write(writer, "/camera/color/camera_info", START * 10**9, bag.camera_info((40, 40, 15.5, 11.5)))
    return path
