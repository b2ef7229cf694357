"""Opening a recording: `open_recording` tells a bag from a video and hands it to its reader (`bags`, `video`),
which returns a `frames.Recording`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from smmcl.data.io import IMAGE_SUFFIXES
from smmcl.data.names import check_folder_kind, check_rgb_named
from smmcl.errors import DatasetError
from smmcl.recordings.bags import BAG_SUFFIXES, ROS2_FILES
from smmcl.recordings.frames import Recording


def is_bag(path: Path) -> bool:
    """A ROS 1 bag file, a ROS 2 bag folder (metadata.yaml, .db3 / .mcap files) or one of its storage files."""
    if path.is_dir():
        return (path / "metadata.yaml").is_file() or any(p.suffix in ROS2_FILES for p in path.iterdir())
    return path.suffix.lower() in BAG_SUFFIXES + ROS2_FILES


def _is_video(path: Path) -> bool:
    """Whether PyAV finds a video stream in `path` (without PyAV, which reads the videos, no file is told apart)."""
    try:
        import av
    except ImportError:
        return True
    try:
        with av.open(str(path)) as container:
            return any(stream.type == "video" for stream in container.streams)
    except Exception:  # whatever PyAV cannot open is no video it could read
        return False


def open_recording(path: str | Path, rgb_topic: Optional[str] = None, aux_topic: Optional[str] = None, *,
                   aux_path: str | Path | None = None, tolerance: Optional[float] = None,
                   align: Optional[bool] = None, aux_units: Optional[str] = None,
                   aux_kind: Optional[str] = None) -> Recording:
    """Open a ROS bag (ROS 1 `.bag`, RealSense recordings included, or a ROS 2 bag folder) or a video.

    Bags: `rgb_topic` / `aux_topic` (default: the only colour and the only depth / thermal image topic, an
    aligned depth topic first); `align` None aligns unaligned depth by the recording's calibration and refuses
    without it, True always reprojects, False takes the depth as registered already. Videos: `aux_path` is a
    second video or a folder of images; `aux_units` states their units (see `smmcl.recordings.frames`).
    `tolerance`: the most seconds between paired frames (default: half the slower stream's frame interval).
    `aux_kind`: the modality the frames are for (a model's); an auxiliary topic, video or folder whose name says
    another is refused (`smmcl.data.names`)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"recording not found: {path}")
    if is_bag(path):
        if aux_path is not None or aux_units is not None:
            raise DatasetError(f"{path} is a ROS bag: its auxiliary stream is a topic (aux_topic), and its units "
                               "are read from the recording; aux_path and aux_units are for videos")
        from smmcl.recordings.bags import open_bag

        return open_bag(path, rgb_topic, aux_topic, tolerance=tolerance, align=align, aux_kind=aux_kind)
    if rgb_topic is not None or aux_topic is not None or align is not None:
        raise DatasetError(f"{path} is not a ROS bag (a .bag file or a ROS 2 bag folder): topics and alignment "
                           "apply to bags only")
    if path.suffix.lower() in IMAGE_SUFFIXES:  # trial 13 #315: "too few frames to pair" of a still image
        raise DatasetError(f"{path} is an image, not a recording (a ROS bag or a video file): images are predicted "
                           f"with --rgb and --aux")
    if path.is_file() and not _is_video(path):  # trial 13 #316: a YAML given as a bag was told it "needs aux_path"
        raise DatasetError(f"{path} is neither a ROS bag (a .bag file, a ROS 2 bag folder or its "
                           f"{'/'.join(ROS2_FILES)} files) nor a video file with a video stream")
    if path.is_dir():
        raise DatasetError(f"{path} is a folder but not a ROS 2 bag (it has no metadata.yaml): a recording is a ROS 1 "
                           f".bag file, a ROS 2 bag folder or a video file; a folder of images is predicted with "
                           f"--rgb and --aux")
    if aux_path is None:
        raise DatasetError(f"{path} is a video, not a ROS bag: a video needs its auxiliary stream, a second video or "
                           "an image folder (aux_path, --aux with --video)")
    # A grey video passes as RGB: only its own name tells (thermal.mp4 as --video); its folder may be a project's.
    check_rgb_named(path, "the RGB video is the colour camera's (--video); its depth or thermal stream goes with --aux "
                          "(aux_path)")
    if aux_kind is not None:  # a video's stream named for another modality: its folder, or its own name (thermal.mkv)
        for named in ((aux_path,) if Path(aux_path).is_dir() else (aux_path, Path(aux_path).parent)):
            check_folder_kind(named, aux_kind, f"the model was trained on {aux_kind} images",
                              "give it a recording of the images it was trained on")
    if Path(aux_path).exists() and Path(aux_path).resolve() == path.resolve():
        raise DatasetError(f"{path} is given as both the RGB video and its auxiliary stream (aux_path, --aux): the "
                           f"auxiliary stream is the depth or thermal video (or image folder) recorded beside it")
    from smmcl.recordings.video import open_video

    return open_video(path, aux_path, tolerance=tolerance, aux_units=aux_units)
