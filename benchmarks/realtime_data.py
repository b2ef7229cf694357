"""The inputs of `benchmarks/realtime.py`: the synthetic training data, the scenes of each frame size, and a ROS 2
bag per size written from those scenes the way a RealSense driver records them (rgb8 colour, 16UC1 depth in
millimetres already aligned to colour, 30 fps stamps)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from realtime_settings import ROOT

# The message classes and CDR serialisation of the tests' bag writer (tests/support/bags.py), reused rather than
# written a second time: its `Bag` takes frames of any size, only its `write_ros2_aligned` is fixed to 24x32.
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

RGB_TOPIC = "/camera/color/image_raw"
DEPTH_TOPIC = "/camera/aligned_depth_to_color/image_raw"  # the name the driver gives depth aligned to colour
START_S = 1_700_000_000  # a plausible wall clock
FRAME_NS = 33_333_333  # 30 fps


def _meta_matches(root: Path, **want) -> bool:
    meta = root / "meta.json"
    if not meta.is_file():
        return False
    have = json.loads(meta.read_text())
    return all(have.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in want.items())


def ensure_dataset(root: Path, num: int, size: tuple[int, int], seed: int, test_fraction: float = 0.0) -> Path:
    """`generate_dataset("indoor-rgbd", ...)` into `root`, unless the same scenes are there already. With the
    default test_fraction 0 every scene is in train.txt: the bag's frames, or int8's calibration frames."""
    from smmcl.data.synth import generate_dataset

    if not _meta_matches(root, num=num, size=list(size), seed=seed, test_fraction=test_fraction):
        generate_dataset("indoor-rgbd", root, num, size=size, seed=seed, test_fraction=test_fraction)
    return root


def write_bag(bag_dir: Path, scenes: Path) -> Path:
    """A ROS 2 bag of the train split of `scenes` (all of them: see ensure_dataset), one colour and one aligned
    depth frame per scene in order. Rewritten only when missing or written from other scenes (the source's
    meta.json is kept beside it)."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores

    from smmcl.data.io import read_image
    from support.bags import Bag

    source = (scenes / "meta.json").read_text()
    stamp_file = bag_dir.parent / f"{bag_dir.name}.source.json"
    if bag_dir.is_dir() and stamp_file.is_file() and stamp_file.read_text() == source:
        return bag_dir
    if bag_dir.exists():
        shutil.rmtree(bag_dir)
    names = (scenes / "train.txt").read_text().split()
    bag = Bag(Stores.ROS2_HUMBLE)
    with Writer(bag_dir, version=9) as writer:
        for k, name in enumerate(names):
            rgb = read_image(scenes / "RGB" / f"{name}.png")
            depth = read_image(scenes / "Depth" / f"{name}.png")
            if rgb.dtype != np.uint8 or depth.dtype != np.uint16:
                raise ValueError(f"{scenes}/{name}: expected 8-bit RGB and 16-bit depth, got {rgb.dtype} / {depth.dtype}")
            stamp = START_S * 10**9 + k * FRAME_NS
            # The two streams share the camera's stamp; the recorder receives depth a little after colour.
            bag.write(writer, RGB_TOPIC, stamp + 1_000_000, bag.image(stamp, np.ascontiguousarray(rgb), "rgb8"))
            bag.write(writer, DEPTH_TOPIC, stamp + 2_000_000, bag.image(stamp, np.ascontiguousarray(depth), "16UC1"))
    stamp_file.write_text(source)
    return bag_dir
