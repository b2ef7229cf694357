"""ROS bags to paired frames (smmcl.recordings.bags), on real bags written with rosbags' own writers: a ROS 2 bag
with aligned depth, a ROS 1 bag laid out as the RealSense recorder writes it (unaligned depth, intrinsics,
extrinsics, the Depth Units option), compressed topics, and every Image encoding."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("rosbags", reason="bags need the recordings extra: pip install -e '.[recordings]'")

from rosbags.rosbag1 import Writer as Writer1  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2  # noqa: E402
from rosbags.typesys import Stores, get_types_from_msg  # noqa: E402

from smmcl.errors import DatasetError, NonFiniteWarning  # noqa: E402
from smmcl.recordings import list_topics, metres_per_unit, open_recording  # noqa: E402
from smmcl.recordings.messages import COMPRESSED, IMAGE, decode_image  # noqa: E402

from support.bags import DT_NS, H, N, START, W, Bag, depth_frame, rgb_frame, write_ros2_aligned  # noqa: E402


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP], ids=["db3", "mcap"])
def test_ros2_bag_with_aligned_depth(tmp_path, storage):
    path = write_ros2_aligned(tmp_path / "run", storage)
    topics = {t.name: (t.msgtype, t.count) for t in list_topics(path)}
    assert topics == {"/camera/color/image_raw": ("sensor_msgs/msg/Image", N),
                      "/camera/aligned_depth_to_color/image_raw": ("sensor_msgs/msg/Image", N - 1),
                      "/camera/color/camera_info": ("sensor_msgs/msg/CameraInfo", 1)}

    with pytest.raises(DatasetError, match=r"rgb topic /camera/aligned_depth_to_color/image_raw is named as an auxiliary "
                                           r"\(depth or thermal\) stream, not colour; the colour topic is probably "
                                           r"/camera/color/image_raw"):
        open_recording(path, rgb_topic="/camera/aligned_depth_to_color/image_raw")  # trial 9 #181
    recording = open_recording(path)  # the only colour topic and the only (aligned) depth topic
    assert (recording.rgb_source, recording.aux_source) == ("/camera/color/image_raw",
                                                            "/camera/aligned_depth_to_color/image_raw")
    assert recording.alignment == "aligned stream" and recording.aux_units == "mm"
    assert len(recording) == N - 1 and recording.pairing.unpaired_rgb == [5]
    assert recording.pairing.aux.dropped == 1 and "unpaired: 1 rgb, 0 aux" in recording.summary()

    frames = list(recording)
    assert [f.index for f in frames] == list(range(N - 1))
    for frame, k in zip(frames, [0, 1, 2, 3, 4, 6, 7]):
        np.testing.assert_array_equal(frame.rgb, rgb_frame(k))
        np.testing.assert_array_equal(frame.aux, depth_frame(k))
        assert frame.aux.dtype == np.uint16 and frame.aux_units == "mm"
        # Header stamps, not record times: the same float sums as the bag's sec + nanosec.
        assert frame.time == START + (k * DT_NS) * 1e-9
        assert frame.aux_time == START + (k * DT_NS + 3_000_000) * 1e-9


def test_raw_depth_without_calibration_is_refused_and_can_be_read_as_recorded(tmp_path):
    bag = Bag(Stores.ROS2_HUMBLE)
    path = tmp_path / "raw"
    with Writer2(path, version=9) as writer:
        for k in range(4):
            stamp = START * 10**9 + k * DT_NS
            bag.write(writer, "/camera/color/image_raw", stamp, bag.image(stamp, rgb_frame(k), "rgb8"))
            bag.write(writer, "/camera/depth/image_rect_raw", stamp, bag.image(stamp, depth_frame(k), "16UC1"))
    with pytest.raises(DatasetError) as caught:
        open_recording(path)
    message = str(caught.value)
    assert "/camera/depth/image_rect_raw is not registered to colour /camera/color/image_raw" in message
    assert "camera_info beside /camera/depth/image_rect_raw" in message and "extrinsics" in message
    assert "align=False" in message
    frames = list(open_recording(path, align=False))
    assert len(frames) == 4 and frames[0].aux_units == "mm"
    np.testing.assert_array_equal(frames[3].aux, depth_frame(3))
    with pytest.raises(DatasetError, match="holds sensor_msgs/msg/Image|is not in the recording"):
        open_recording(path, "/camera/color/image_raw", "/no/such/topic")


# ROS 1, as the RealSense recorder lays it out: depth (mono16, units of 0.1 mm) and colour from two sensors,
# not aligned; intrinsics on info/camera_info, extrinsics on tf/0 from the reference (depth) stream.

DEPTH_K = (40.0, 40.0, 15.5, 11.5)
COLOR_K = (40.0, 40.0, 16.5, 11.5)  # principal point one pixel right of depth's
BASELINE = 0.1  # metres from the depth lens to the colour lens, along x
PLANE = 20000  # 2 m in units of 0.1 mm


def write_realsense(path: Path, units_option: str = "Depth Units", color_tf: bool = True) -> Path:
    bag = Bag(Stores.ROS1_NOETIC)
    bag.ts.register(get_types_from_msg("uint32 fps\nstring encoding\nbool is_recommended\n",
                                       "realsense_msgs/msg/StreamInfo"))
    t = bag.ts.types
    depth, color = "/device_0/sensor_0/Depth_0", "/device_0/sensor_1/Color_0"
    with Writer1(path) as writer:
        bag.write(writer, "/file_version", 1, t["std_msgs/msg/UInt32"](data=3))
        for stream, fps, encoding in ((depth, 30, "mono16"), (color, 30, "rgb8")):
            bag.write(writer, f"{stream}/info", 1, t["realsense_msgs/msg/StreamInfo"](fps, encoding, True))
        bag.write(writer, f"{depth}/info/camera_info", 1, bag.camera_info(DEPTH_K))
        bag.write(writer, f"{color}/info/camera_info", 1, bag.camera_info(COLOR_K))
        bag.write(writer, f"{depth}/tf/0", 1, bag.transform())
        if color_tf:
            bag.write(writer, f"{color}/tf/0", 1, bag.transform((BASELINE, 0.0, 0.0)))
        option = f"/device_0/sensor_0/option/{units_option}"
        bag.write(writer, f"{option}/value", 1, t["std_msgs/msg/Float32"](data=0.0001))
        bag.write(writer, f"{option}/description", 1, t["std_msgs/msg/String"](data="Number of meters per unit"))
        for k in range(6):
            ns = 10**9 + k * DT_NS  # device time from the start of the recording
            plane = np.full((H, W), PLANE, dtype=np.uint16)
            bag.write(writer, f"{depth}/image/data", ns, bag.image(ns + 2_000_000, plane, "mono16"))
            bag.write(writer, f"{color}/image/data", ns, bag.image(ns, rgb_frame(k), "rgb8"))
    return path


@pytest.mark.parametrize("units_option", ["Depth Units", "Depth_Units"])
def test_realsense_recording_is_aligned_by_its_calibration(tmp_path, units_option):
    path = write_realsense(tmp_path / "d435.bag", units_option)
    topics = {t.name: (t.msgtype, t.count) for t in list_topics(path)}
    assert topics[f"/device_0/sensor_0/option/{units_option}/value"] == ("std_msgs/msg/Float32", 1)
    assert topics["/device_0/sensor_0/Depth_0/image/data"] == ("sensor_msgs/msg/Image", 6)
    assert topics["/device_0/sensor_0/Depth_0/info"] == ("realsense_msgs/msg/StreamInfo", 1)

    recording = open_recording(path)
    assert recording.rgb_source == "/device_0/sensor_1/Color_0/image/data"
    assert recording.aux_source == "/device_0/sensor_0/Depth_0/image/data"
    assert recording.alignment == "reprojected" and recording.aux_units == "0.0001 m"
    assert metres_per_unit(recording.aux_units) == 0.0001
    frames = list(recording)
    assert len(frames) == 6
    # 40 px * 0.1 m / 2 m = 2 px of parallax, plus the principal points' 1 px: the plane starts at column 3.
    expected = np.zeros((H, W), dtype=np.uint16)
    expected[:, 3:] = PLANE
    for k, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.aux, expected)
        np.testing.assert_array_equal(frame.rgb, rgb_frame(k))
        assert frame.aux_units == "0.0001 m"


def test_realsense_recording_without_extrinsics_says_what_is_missing(tmp_path):
    path = write_realsense(tmp_path / "no_tf.bag", color_tf=False)
    with pytest.raises(DatasetError, match=r"lacks depth-to-colour extrinsics \(/device_0/sensor_0/Depth_0/tf/"
                                           r"<group> and /device_0/sensor_1/Color_0/tf/<group>"):
        open_recording(path)
    frames = list(open_recording(path, align=False))  # as recorded: the depth camera's own view
    assert (frames[0].aux == PLANE).all() and frames[0].aux_units == "0.0001 m"


# Compressed topics: JPEG colour, and compressedDepth (its 12-byte header, then a 16-bit PNG).

def jpeg(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="JPEG", quality=95, subsampling=0)
    return out.getvalue()


def compressed_depth(array: np.ndarray, header=(0, 0.0, 0.0)) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return struct.pack("<iff", *header) + out.getvalue()


def test_compressed_colour_and_compressed_depth(tmp_path):
    bag = Bag(Stores.ROS1_NOETIC)
    path = tmp_path / "compressed.bag"
    with Writer1(path) as writer:
        for k in range(5):
            ns = START * 10**9 + k * DT_NS
            bag.write(writer, "/camera/color/image_raw/compressed", ns,
                      bag.compressed(ns, jpeg(rgb_frame(k)), "rgb8; jpeg compressed bgr8"))
            bag.write(writer, "/camera/aligned_depth_to_color/image_raw/compressedDepth", ns,
                      bag.compressed(ns, compressed_depth(depth_frame(k)), "16UC1; compressedDepth png"))
    recording = open_recording(path)
    assert recording.aux_units == "mm" and recording.alignment == "aligned stream"
    for k, frame in enumerate(recording):
        np.testing.assert_array_equal(frame.aux, depth_frame(k))  # PNG is lossless
        # JPEG at quality 95 without chroma subsampling rounds DCT coefficients: a few levels on this smooth
        # gradient (3 measured), never the colour order (a swapped channel is off by up to 255).
        assert np.abs(frame.rgb.astype(int) - rgb_frame(k)).max() <= 4


def test_message_decoding_of_each_encoding():
    bag = Bag(Stores.ROS2_HUMBLE)
    rgb = rgb_frame(1)
    for encoding, array in (("rgb8", rgb), ("bgr8", rgb[..., ::-1]),
                            ("rgba8", np.dstack([rgb, np.full((H, W), 255, np.uint8)])),
                            ("bgra8", np.dstack([rgb[..., ::-1], np.full((H, W), 255, np.uint8)]))):
        image, units = decode_image(bag.image(0, np.ascontiguousarray(array), encoding), IMAGE, encoding)
        np.testing.assert_array_equal(image[..., :3], rgb)
        assert units is None
    grey = rgb[..., 0].copy()
    assert decode_image(bag.image(0, grey, "mono8"), IMAGE, "m8") == (pytest.approx(grey), "raw")
    depth = depth_frame(2)
    for encoding in ("mono16", "16UC1"):
        image, units = decode_image(bag.image(0, depth, encoding), IMAGE, encoding)
        assert image.dtype == np.uint16 and units == "mm"
        np.testing.assert_array_equal(image, depth)
    metres = depth.astype(np.float32) / 1000
    image, units = decode_image(bag.image(0, metres, "32FC1"), IMAGE, "32FC1")
    assert image.dtype == np.float32 and units == "m"
    np.testing.assert_array_equal(image, metres)

    # Big-endian 16-bit rows padded to a 70-byte step.
    padded = np.zeros((H, 70), dtype=np.uint8)
    padded[:, : 2 * W] = np.frombuffer(depth.astype(">u2").tobytes(), dtype=np.uint8).reshape(H, 2 * W)
    msg = bag.image(0, depth, "16UC1")
    msg.is_bigendian, msg.step, msg.data = 1, 70, padded.ravel()
    np.testing.assert_array_equal(decode_image(msg, IMAGE, "padded")[0], depth)

    # compressedDepth of 32FC1: quantised inverse depth, depth = a / (value - b).
    a, b = 100 * 101.0, 1 - 100 * 101.0 / 10  # compressed_depth_image_transport's defaults (quantisation 100, 10 m)
    inverse = np.full((H, W), a / 2.0 + b, dtype=np.uint16)  # 2 m everywhere ...
    inverse[0, 0] = 0  # ... but one pixel with no measurement
    image, units = decode_image(bag.compressed(0, compressed_depth(inverse, (0, a, b)), "32FC1; compressedDepth"),
                                COMPRESSED, "inv")
    assert units == "m" and image.dtype == np.float32 and image[0, 0] == 0
    np.testing.assert_array_equal(image.ravel()[1:], 2.0)  # 10100 / 5050: exact in float32

    with pytest.raises(DatasetError, match="encoding 'bayer_rggb8' is not one smmcl reads"):
        decode_image(bag.image(0, grey, "bayer_rggb8"), IMAGE, "bayer")
    with pytest.raises(DatasetError, match="12-byte header and a PNG"):
        decode_image(bag.compressed(0, b"\0" * 40, "16UC1; compressedDepth png"), COMPRESSED, "broken")


def test_thermal_topic_without_stamps_uses_record_times(tmp_path):
    bag = Bag(Stores.ROS2_HUMBLE)
    path = tmp_path / "thermal"
    with Writer2(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for k in range(4):
            ns = START * 10**9 + k * 100_000_000
            bag.write(writer, "/rgb/image", ns, bag.image(0, rgb_frame(k), "rgb8"))
            bag.write(writer, "/thermal/image", ns + 5_000_000, bag.image(0, rgb_frame(k)[..., 1].copy(), "mono8"))
    recording = open_recording(path, "/rgb/image", "/thermal/image")
    assert recording.alignment == "as recorded" and recording.aux_units == "raw"
    frames = list(recording)
    assert [f.time for f in frames] == [(START * 10**9 + k * 100_000_000) * 1e-9 for k in range(4)]
    assert frames[2].aux.dtype == np.uint8 and (frames[2].aux == rgb_frame(2)[..., 1]).all()


def test_frames_pass_the_modality_rules(tmp_path):
    """The project's per-modality checks (smmcl.data.modality) on every decoded frame: NaN depth read as 0 with
    a warning; a 16-bit image given as the RGB stream refused, naming the bag, topic and message."""
    bag = Bag(Stores.ROS2_HUMBLE)
    path = tmp_path / "float"
    metres = np.full((H, W), 1.5, dtype=np.float32)
    metres[2, 3] = np.nan
    with Writer2(path, version=9) as writer:
        for k in range(3):
            ns = START * 10**9 + k * DT_NS
            bag.write(writer, "/camera/color/image_raw", ns, bag.image(ns, rgb_frame(k), "rgb8"))
            bag.write(writer, "/camera/aligned_depth_to_color/image_raw", ns, bag.image(ns, metres, "32FC1"))
            bag.write(writer, "/camera/infra1/image_rect_raw", ns, bag.image(ns, depth_frame(k), "mono16"))
    with pytest.warns(NonFiniteWarning, match="1 non-finite auxiliary values"):
        frames = list(open_recording(path, "/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw"))
    assert frames[0].aux_units == "m" and frames[0].aux.dtype == np.float32
    assert frames[0].aux[2, 3] == 0 and (np.delete(frames[0].aux.ravel(), 2 * W + 3) == np.float32(1.5)).all()
    wrong = open_recording(path, "/camera/infra1/image_rect_raw", "/camera/aligned_depth_to_color/image_raw")
    with pytest.raises(DatasetError, match=r"float:/camera/infra1/image_rect_raw message 0: RGB image is uint16"):
        next(iter(wrong))


def test_not_a_bag(tmp_path):
    bad = tmp_path / "broken.bag"
    bad.write_bytes(b"not a bag at all")
    with pytest.raises(DatasetError, match="not a readable ROS bag"):
        list_topics(bad)
    with pytest.raises(DatasetError, match="recording not found"):
        open_recording(tmp_path / "missing.bag")


def test_streams_on_different_clocks_do_not_pair(tmp_path):
    bag = Bag(Stores.ROS2_HUMBLE)
    path = tmp_path / "clocks"
    with Writer2(path, version=9) as writer:
        for k in range(3):
            ns = START * 10**9 + k * DT_NS
            bag.write(writer, "/camera/color/image_raw", ns, bag.image(ns, rgb_frame(k), "rgb8"))
            # Stamped by a device clock that started at boot, not the wall clock.
            bag.write(writer, "/thermal/image_raw", ns, bag.image(5 * 10**9 + k * DT_NS, rgb_frame(k)[..., 0].copy(),
                                                                  "mono8"))
    with pytest.raises(DatasetError, match="no frame of /camera/color/image_raw pairs with one of /thermal/image_raw"):
        open_recording(path)
