"""Opening a recording: `open_recording` tells a bag from a video and hands it to its reader (`bags`, `video`),
which returns a `frames.Recording`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from smmcl.errors import DatasetError
from smmcl.recordings.bags import BAG_SUFFIXES, ROS2_FILES
from smmcl.recordings.frames import Recording


def is_bag(path: Path) -> bool:
    """A ROS 1 bag file, a ROS 2 bag folder (metadata.yaml, .db3 / .mcap files) or one of its storage files."""
    if path.is_dir():
        return (path / "metadata.yaml").is_file() or any(p.suffix in ROS2_FILES for p in path.iterdir())
    return path.suffix.lower() in BAG_SUFFIXES + ROS2_FILES


def open_recording(path: str | Path, rgb_topic: Optional[str] = None, aux_topic: Optional[str] = None, *,
                   aux_path: str | Path | None = None, tolerance: Optional[float] = None,
                   align: Optional[bool] = None, aux_units: Optional[str] = None) -> Recording:
    """Open a ROS bag (ROS 1 `.bag`, RealSense recordings included, or a ROS 2 bag folder) or a video.

    Bags: `rgb_topic` / `aux_topic` (default: the only colour and the only depth / thermal image topic, an
    aligned depth topic first); `align` None aligns unaligned depth by the recording's calibration and refuses
    without it, True always reprojects, False takes the depth as registered already. Videos: `aux_path` is a
    second video or a folder of images; `aux_units` states their units (see `smmcl.recordings.frames`).
    `tolerance`: the most seconds between paired frames (default: half the slower stream's frame interval)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"recording not found: {path}")
    if is_bag(path):
        if aux_path is not None or aux_units is not None:
            raise DatasetError(f"{path} is a ROS bag: its auxiliary stream is a topic (aux_topic), and its units "
                               "are read from the recording; aux_path and aux_units are for videos")
        from smmcl.recordings.bags import open_bag

        return open_bag(path, rgb_topic, aux_topic, tolerance=tolerance, align=align)
    if rgb_topic is not None or aux_topic is not None or align is not None:
        raise DatasetError(f"{path} is not a ROS bag (a .bag file or a ROS 2 bag folder): topics and alignment "
                           "apply to bags only")
    if path.is_dir():
        raise DatasetError(f"{path} is a folder but not a ROS 2 bag (it has no metadata.yaml): a recording is a ROS 1 "
                           f".bag file, a ROS 2 bag folder or a video file; a folder of images is predicted with "
                           f"--rgb and --aux")
    if aux_path is None:
        raise DatasetError(f"{path}: a video needs its auxiliary stream, a second video or an image folder "
                           "(aux_path)")
    if Path(aux_path).exists() and Path(aux_path).resolve() == path.resolve():
        raise DatasetError(f"{path} is given as both the RGB video and its auxiliary stream (aux_path, --aux): the "
                           f"auxiliary stream is the depth or thermal video (or image folder) recorded beside it")
    from smmcl.recordings.video import open_video

    return open_video(path, aux_path, tolerance=tolerance, aux_units=aux_units)
