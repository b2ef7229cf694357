"""Videos through PyAV: RGB from one video, its auxiliary stream from a second video (thermal as grey video) or
a folder of images (`smmcl.recordings.sequence`); and `VideoWriter`, the overlay video writer.

Opening counts and times the frames from the containers' packets, without decoding; iterating decodes.
A second video pairs by frame index (two cameras cut to one clip); a folder by index, or by time where its file
names are timestamps. The auxiliary video is read as grey: 16-bit where its pixel format is (gray16, as FFV1
stores it), else the luma of its pixels, 8-bit.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from smmcl.data.io import read_image
from smmcl.errors import DatasetError
from smmcl.files import atomic_path
from smmcl.recordings.frames import RAW, UNKNOWN, Frame, Recording, check_frame, metres_per_unit
from smmcl.recordings.pairing import pair_by_index, pair_by_time
from smmcl.recordings.sequence import list_images, name_times, relative

# Encoders tried for .mp4 / .mkv / .mov when none is named: H.264 where the PyAV build has one, else MPEG-4 part 2.
ENCODERS = ("libx264", "h264", "libopenh264", "mpeg4")


def _av():
    try:
        import av
    except ImportError:
        raise ImportError("reading and writing videos needs PyAV: pip install 'smmcl[recordings]'") from None
    return av


@contextlib.contextmanager
def _video(path: Path) -> Iterator[tuple[object, object]]:
    """The container and its first video stream; a `DatasetError` for a file without one."""
    av = _av()
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DatasetError(f"{path}: not a readable video: {exc}") from None
    try:
        if not container.streams.video:
            raise DatasetError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield container, stream
    finally:
        container.close()


def _times(path: Path) -> list[float]:
    """Presentation times (seconds) of the video's frames, from its packets: no decoding needed."""
    with _video(path) as (container, stream):
        base = stream.time_base
        pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size)
    if not pts:
        raise DatasetError(f"{path}: the video has no frames")
    return [float(p * base) for p in pts]


def _grey_format(stream) -> str:
    name = stream.codec_context.pix_fmt or ""
    return "gray16le" if name.startswith("gray16") else "gray"


def _decode(path: Path, grey: bool) -> Iterator[np.ndarray]:
    with _video(path) as (container, stream):
        fmt = _grey_format(stream) if grey else "rgb24"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format=fmt)


# The mean spread between a pixel's channels above which a video is in colour: a grey video stored as YUV comes back
# with channels a step or two apart (chroma rounding), a colour one (or a palette's false colours) far more.
COLOUR_SPREAD = 8.0


def _check_grey(path: Path) -> None:
    """Refuse a colour video as the auxiliary stream, which is read as grey: its luma would pass for depth or
    thermal (trial 16 #102: the RGB and thermal videos swapped were predicted without a word)."""
    with _video(path) as (container, stream):
        if (stream.codec_context.pix_fmt or "").startswith("gray"):
            return
        first = next(iter(container.decode(stream)), None)
        if first is None:
            return  # no frames: said where they are counted
        rgb = first.to_ndarray(format="rgb24").astype(np.int16)
    spread = float((rgb.max(axis=2) - rgb.min(axis=2)).mean())
    if spread > COLOUR_SPREAD:
        raise DatasetError(f"{path}: a colour video (its first frame's channels differ by {spread:.0f} on average) as "
                           f"the auxiliary stream, which holds one value per pixel (depth or thermal, read as grey): "
                           f"the RGB video given as --aux, or a colour-mapped picture of the sensor's values? give "
                           f"the colour video as --video and the sensor's grey video as --aux")


def _check_units(aux_units: str) -> str:
    if aux_units not in (RAW, UNKNOWN) and metres_per_unit(aux_units) is None:
        raise DatasetError(f"aux_units {aux_units!r}: expected mm, m, '<metres per unit> m', raw or unknown")
    return aux_units


def open_video(path: Path, aux_path: str | Path, *, tolerance: Optional[float] = None,
               aux_units: Optional[str] = None) -> Recording:
    """A video's frames paired with a second video's or an image folder's (see `open_recording`)."""
    aux_path = Path(aux_path)
    if not aux_path.exists():
        raise DatasetError(f"auxiliary stream not found: {aux_path}")
    rgb_times = _times(path)
    files: Optional[list[Path]] = None
    if aux_path.is_dir():
        files, numbers = list_images(aux_path)
        if numbers is None:
            # No times of their own: each image is given its partner's.
            pairing, aux_times = pair_by_index(len(rgb_times), len(files), rgb_times), None
        else:
            shared = name_times(aux_path, numbers, rgb_times)
            try:
                pairing = pair_by_time(relative(rgb_times), shared, tolerance)
            except ValueError as exc:
                raise DatasetError(f"{aux_path}: {exc}") from None
            aux_times = [t + rgb_times[0] for t in shared]
    else:
        _check_grey(aux_path)
        aux_times = _times(aux_path)
        pairing = pair_by_index(len(rgb_times), len(aux_times), rgb_times)
    if not pairing.pairs:
        raise DatasetError(f"{path} and {aux_path}: no frames pair ({pairing.summary()})")

    def aux_frames() -> Iterator[np.ndarray]:
        if files is None:
            yield from _decode(aux_path, grey=True)
        else:
            for file in files:
                yield read_image(file)

    def units_of(aux: np.ndarray) -> str:
        if aux_units is not None:
            return _check_units(aux_units)
        return RAW if aux.dtype == np.uint8 else UNKNOWN

    def frames() -> Iterator[Frame]:
        wanted = iter(enumerate(pairing.pairs))
        index, (want_rgb, want_aux) = next(wanted)
        aux_iter = enumerate(aux_frames())
        a, aux = next(aux_iter)
        for r, rgb in enumerate(_decode(path, grey=False)):
            if r != want_rgb:
                continue
            while a < want_aux:
                step = next(aux_iter, None)
                if step is None:
                    raise DatasetError(f"{aux_path}: ended at frame {a}, before its frame {want_aux} that the "
                                       "count of its packets promised")
                a, aux = step
            aux_name = str(files[a]) if files is not None else str(aux_path)
            aux_source = aux_name if files is not None else f"{aux_path} frame {a}"
            rgb_image, aux_image = check_frame(rgb, aux, f"{path} frame {r}", aux_source)
            aux_time = aux_times[a] if aux_times is not None else rgb_times[r]
            yield Frame(index, rgb_times[r], rgb_image, aux_image, units_of(aux_image), str(path), aux_name,
                        aux_time)
            index, (want_rgb, want_aux) = next(wanted, (None, (None, None)))
            if index is None:
                return

    # The first auxiliary image's type settles the units reported before iterating.
    reading = aux_frames()
    first = next(reading)
    reading.close()
    return Recording(path, str(path), str(aux_path), pairing, "as recorded", units_of(first), frames)


class VideoWriter:
    """Write RGB frames (H x W x 3 uint8) to a video: `with VideoWriter("out.mp4", fps=15) as video:
    video.write(frame)`.

    The codec: `codec` if named, else H.264 where the PyAV build has an encoder for it, else MPEG-4 part 2; the
    container from the suffix (.mp4, .mkv, .mov, .avi). 4:2:0 encoders need even sizes: an odd width or height
    is padded by repeating the last column or row. The file appears under its name only once closed without an
    error (`smmcl.files.atomic_path`)."""

    def __init__(self, path: str | Path, fps: float = 10.0, codec: Optional[str] = None):
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.codec = codec or self.default_codec()
        self.frames = 0
        self._stack: Optional[contextlib.ExitStack] = None
        self._container = None
        self._stream = None

    @staticmethod
    def default_codec() -> str:
        av = _av()
        for name in ENCODERS:
            with contextlib.suppress(Exception):
                return av.codec.Codec(name, "w").name
        raise ImportError("this PyAV build has no H.264 or MPEG-4 encoder")

    def __enter__(self) -> "VideoWriter":
        av = _av()
        self._stack = contextlib.ExitStack()
        temporary = self._stack.enter_context(atomic_path(self.path, suffix=self.path.suffix))
        self._container = av.open(str(temporary), mode="w", format=None)
        return self

    def _open_stream(self, height: int, width: int) -> None:
        self._stream = self._container.add_stream(self.codec, rate=self.fps)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = self.pix_fmt
        if self.codec == "libx264":
            # x264's own default (medium) spends a third more of a 2-core robot's time per frame than veryfast,
            # the usual live-encoding preset, for a few per cent smaller files.
            self._stream.options = {"preset": "veryfast"}

    @property
    def pix_fmt(self) -> str:
        """FFV1 keeps RGB as it is (lossless); the others get the 4:2:0 that every player decodes."""
        return "bgr0" if self.codec == "ffv1" else "yuv420p"

    def write(self, rgb: np.ndarray) -> None:
        """Append one frame; every frame must have the first one's size."""
        if self._container is None:
            raise RuntimeError("VideoWriter.write outside its `with` block")
        if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
            raise ValueError(f"video frames are H x W x 3 uint8, got {getattr(rgb, 'dtype', type(rgb))} "
                             f"{getattr(rgb, 'shape', '')}")
        even = self.pix_fmt == "yuv420p"
        height, width = rgb.shape[0] + even * (rgb.shape[0] % 2), rgb.shape[1] + even * (rgb.shape[1] % 2)
        if self._stream is None:
            self._open_stream(height, width)
        if (height, width) != (self._stream.height, self._stream.width):
            raise ValueError(f"frame {self.frames} is {rgb.shape[1]}x{rgb.shape[0]}; the video's frames are "
                             f"{self._stream.width}x{self._stream.height}")
        if (height, width) != rgb.shape[:2]:
            rgb = np.pad(rgb, ((0, height - rgb.shape[0]), (0, width - rgb.shape[1]), (0, 0)), mode="edge")
        frame = _av().VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        stack, container, self._stack, self._container = self._stack, self._container, None, None
        try:
            if exc_type is None:
                if self._stream is None:
                    raise ValueError(f"{self.path}: no frames were written")
                for packet in self._stream.encode():
                    container.mux(packet)
            container.close()
        except BaseException as error:
            with contextlib.suppress(Exception):
                container.close()
            stack.__exit__(type(error), error, error.__traceback__)  # removes the temporary file
            raise
        stack.__exit__(exc_type, exc, tb)
