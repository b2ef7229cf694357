"""Recordings to paired frames: ROS bags (ROS 1 `.bag`, Intel RealSense recordings included; ROS 2 bag folders
of .db3 / .mcap) and videos, as a stream of RGB + auxiliary (depth or thermal) frames for smmcl to segment.

    list_topics(path) -> [TopicInfo(name, msgtype, count)]
        A bag's topics, to pick the two image topics from.
    open_recording(path, rgb_topic=None, aux_topic=None, *, aux_path=None, tolerance=None, align=None,
                   aux_units=None) -> Recording
        Iterate the Recording for `Frame`s (index, time, rgb, aux, aux_units, rgb_source, aux_source, aux_time);
        `len()` is the number of pairs; `.pairing` counts unpaired and dropped frames; `.summary()` says it all.
    VideoWriter(path, fps=10.0, codec=None)
        `with VideoWriter("overlay.mp4", fps=15) as video: video.write(rgb)`.
    metres_per_unit(aux_units) -> float | None
        For converting a frame's depth into the units a model was trained on.

Reading needs the `recordings` extra (`pip install 'smmcl[recordings]'`: rosbags for bags, PyAV for videos).

What each image message gives is in `smmcl.recordings.messages`; units are read from the recording, never guessed
(`smmcl.recordings.frames`): 16UC1 / mono16 are millimetres unless a RealSense recording's "Depth Units" option
says otherwise, 32FC1 is metres. RGB and auxiliary frames pair by time (`smmcl.recordings.pairing`). Depth not
registered to colour is aligned by the recording's calibration, or refused with what is missing
(`smmcl.recordings.align`). Every decoded pair passes the project's per-modality checks
(`smmcl.data.modality`, through `frames.check_frame`).
"""

# rosbags and PyAV are imported where a bag or a video is opened: these names need neither.
from smmcl.recordings.bags import TopicInfo, list_topics
from smmcl.recordings.frames import Frame, Recording, metres_per_unit
from smmcl.recordings.recording import open_recording
from smmcl.recordings.video import VideoWriter

__all__ = ["Frame", "Recording", "TopicInfo", "VideoWriter", "list_topics", "metres_per_unit", "open_recording"]
