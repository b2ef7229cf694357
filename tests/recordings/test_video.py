"""Videos to paired frames and the overlay writer (smmcl.recordings.video), on small videos PyAV writes: FFV1 in
Matroska where pixels must come back exact (lossless), H.264 / MPEG-4 where a tolerance is the codec's."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="videos need the recordings extra: pip install -e '.[recordings]'")

from smmcl.data.io import write_image  # noqa: E402
from smmcl.errors import DatasetError  # noqa: E402
from smmcl.recordings import VideoWriter, open_recording  # noqa: E402

H, W, N, FPS = 24, 32, 8, 10


def rgb_frame(k: int) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([x * 8, y * 10, np.full_like(x, 25 * k)], -1).astype(np.uint8)


def thermal_frame(k: int) -> np.ndarray:
    return ((np.arange(H * W).reshape(H, W) + 7 * k) % 256).astype(np.uint8)


def write_ffv1(path: Path, frames: list[np.ndarray], source_format: str, pix_fmt: str) -> Path:
    """Frames through PyAV's own encoder, FFV1 (lossless) at FPS."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format=source_format)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_rgb_video_with_a_grey_thermal_video(tmp_path):
    rgb = write_ffv1(tmp_path / "rgb.mkv", [rgb_frame(k) for k in range(N)], "rgb24", "bgr0")
    thermal = write_ffv1(tmp_path / "thermal.mkv", [thermal_frame(k) for k in range(N - 2)], "gray", "gray")
    recording = open_recording(rgb, aux_path=thermal)
    assert len(recording) == N - 2 and recording.pairing.unpaired_rgb == [N - 2, N - 1]
    assert recording.aux_units == "raw" and "by frame index" in recording.summary()
    frames = list(recording)
    assert [f.index for f in frames] == list(range(N - 2))
    for k, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.rgb, rgb_frame(k))  # FFV1 is lossless
        np.testing.assert_array_equal(frame.aux, thermal_frame(k))
        assert frame.aux.dtype == np.uint8 and frame.aux_units == "raw"
        assert frame.time == pytest.approx(k / FPS, abs=1e-9)  # pts x time_base: a rational made float


def test_the_rgb_video_given_as_its_own_auxiliary_stream_is_named(tmp_path):
    """Trial 6 C157: refused before, but for 8-bit values; the mistake itself is said, as for image folders."""
    rgb = write_ffv1(tmp_path / "rgb.mkv", [rgb_frame(k) for k in range(2)], "rgb24", "bgr0")
    (tmp_path / "link.mkv").symlink_to(rgb)
    for aux in (rgb, tmp_path / "link.mkv"):
        with pytest.raises(DatasetError, match="rgb.mkv is given as both the RGB video and its auxiliary stream"):
            open_recording(rgb, aux_path=aux)


def test_a_16_bit_grey_video_keeps_its_bit_depth_and_stated_units(tmp_path):
    depth = [(np.arange(H * W).reshape(H, W) * 50 + k).astype(np.uint16) for k in range(4)]
    rgb = write_ffv1(tmp_path / "rgb.mkv", [rgb_frame(k) for k in range(4)], "rgb24", "bgr0")
    aux = write_ffv1(tmp_path / "depth.mkv", depth, "gray16le", "gray16le")
    frames = list(open_recording(rgb, aux_path=aux, aux_units="mm"))
    assert len(frames) == 4 and frames[0].aux_units == "mm"
    for k, frame in enumerate(frames):
        assert frame.aux.dtype == np.uint16
        np.testing.assert_array_equal(frame.aux, depth[k])
    with pytest.raises(DatasetError, match="aux_units 'cm'"):
        list(open_recording(rgb, aux_path=aux, aux_units="cm"))


def test_an_image_folder_named_by_timestamps_pairs_by_time(tmp_path):
    rgb = write_ffv1(tmp_path / "rgb.mkv", [rgb_frame(k) for k in range(N)], "rgb24", "bgr0")
    folder = tmp_path / "thermal"
    for k in range(N):
        if k != 3:  # a lost image: rgb frame 3 stays unpaired
            # Milliseconds on the camera's clock, 4 ms behind the video's frames.
            write_image(folder / f"{1_700_000_000_000 + 100 * k + 4}.png", thermal_frame(k))
    recording = open_recording(rgb, aux_path=folder)
    assert recording.pairing.rule == "by time" and recording.pairing.unpaired_rgb == [3]
    frames = list(recording)
    assert [f.time for f in frames] == pytest.approx([k / FPS for k in range(N) if k != 3], abs=1e-9)
    for frame, k in zip(frames, [k for k in range(N) if k != 3]):
        np.testing.assert_array_equal(frame.rgb, rgb_frame(k))
        np.testing.assert_array_equal(frame.aux, thermal_frame(k))
        assert frame.aux_source.endswith(f"{1_700_000_000_000 + 100 * k + 4}.png")


def test_an_image_folder_of_frame_numbers_pairs_by_index(tmp_path):
    rgb = write_ffv1(tmp_path / "rgb.mkv", [rgb_frame(k) for k in range(4)], "rgb24", "bgr0")
    folder = tmp_path / "thermal"
    for k in range(4):
        write_image(folder / f"{k:06d}.png", thermal_frame(k))
    recording = open_recording(rgb, aux_path=folder)
    assert recording.pairing.rule == "by frame index" and len(recording) == 4
    np.testing.assert_array_equal(list(recording)[2].aux, thermal_frame(2))
    with pytest.raises(DatasetError, match="needs its auxiliary stream"):
        open_recording(rgb)


@pytest.mark.parametrize("codec", [None, "mpeg4"], ids=["default", "mpeg4"])
def test_overlay_writer_lossy_round_trip(tmp_path, codec):
    path = tmp_path / "overlay.mp4"
    odd = [np.pad(rgb_frame(k), ((0, 1), (0, 1), (0, 0)), mode="edge") for k in range(N)]  # 25 x 33
    with VideoWriter(path, fps=FPS, codec=codec) as video:
        for frame in odd:
            video.write(frame)
    assert video.codec in ("libx264", "mpeg4") and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.mp4"]  # no temporary file left beside it
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == N
    assert decoded[0].shape == (H + 2, W + 2, 3)  # padded to even sizes for 4:2:0
    # A lossy codec at its default quality, 4:2:0 chroma on a 34 x 26 picture: compare the mean error, a few
    # levels (measured: 3.5 with libx264, 5.7 with mpeg4), not single pixels (block edges and chroma
    # subsampling move some by 15).
    for k in range(N):
        error = np.abs(decoded[k][: H + 1, : W + 1].astype(int) - odd[k]).mean()
        assert error < 8, (k, error)


def test_overlay_writer_ffv1_is_exact_and_failed_writes_leave_nothing(tmp_path):
    path = tmp_path / "overlay.mkv"
    with VideoWriter(path, fps=FPS, codec="ffv1") as video:
        for k in range(3):
            video.write(rgb_frame(k))
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for k in range(3):
        np.testing.assert_array_equal(decoded[k], rgb_frame(k))

    broken = tmp_path / "broken.mp4"
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        with VideoWriter(broken, fps=FPS) as video:
            video.write(rgb_frame(0))
            video.write(np.zeros((H, W), dtype=np.uint8))
    with pytest.raises(ValueError, match="no frames were written"):
        with VideoWriter(tmp_path / "empty.mp4"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlay.mkv"]


def test_frame_numbers_with_gaps_pair_by_number_and_streams_of_other_spans_are_said(tmp_path):
    """Trial 14 #299: frame numbers with a dropped frame were refused with the advice to name them by frame number;
    #186: timestamps starting later than the video paired off by the head start without a word."""
    import warnings

    from smmcl.errors import InputWarning

    rgb = write_ffv1(tmp_path / "rgb.mkv", [rgb_frame(k) for k in range(N)], "rgb24", "bgr0")
    gaps = tmp_path / "thermal"
    for k in (0, 1, 2, 4, 5, 6, 7):  # frame 3 dropped
        write_image(gaps / f"{k:06d}.png", thermal_frame(k))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recording = open_recording(rgb, aux_path=gaps)
    assert recording.pairing.unpaired_rgb == [3]
    for frame in recording:
        assert frame.aux_source.endswith(f"{round(frame.time * FPS):06d}.png")
        np.testing.assert_array_equal(frame.aux, thermal_frame(round(frame.time * FPS)))
    late = tmp_path / "late"
    for k in range(4, N):  # milliseconds, started 0.4 s after the video
        write_image(late / f"{1_700_000_000_000 + 100 * k}.png", thermal_frame(k))
    with pytest.warns(InputWarning, match=r"late: its file-name times span 0.3 s, the video 0.7 s; times are counted "
                                          r"from each one's first frame"):
        open_recording(rgb, aux_path=late)


def test_swapped_videos_are_refused_by_name_and_by_colour(tmp_path):
    """Trial 16 #102: the thermal video given as --video and the colour one as --aux were predicted without a word:
    the auxiliary video is read as grey, and grey passes as RGB. A colour video as the auxiliary stream is refused by
    its content, a video named for thermal or depth as the RGB one by its name."""
    colour = write_ffv1(tmp_path / "drive.mkv", [rgb_frame(k) for k in range(3)], "rgb24", "bgr0")
    thermal = write_ffv1(tmp_path / "thermal.mkv", [thermal_frame(k) for k in range(3)], "gray", "gray")
    with pytest.raises(DatasetError, match=r"thermal.mkv names thermal images, given as the RGB ones: the RGB video is "
                                           r"the colour camera's \(--video\)"):
        open_recording(thermal, aux_path=colour)
    plain = write_ffv1(tmp_path / "cam1.mkv", [thermal_frame(k) for k in range(3)], "gray", "gray")
    with pytest.raises(DatasetError, match=r"drive.mkv: a colour video \(its first frame's channels differ by \d+ on "
                                           r"average\) as the auxiliary stream"):
        open_recording(plain, aux_path=colour)
    # A grey video stored as YUV (not gray) is still grey: chroma rounding is no colour.
    yuv = write_ffv1(tmp_path / "thermal_yuv.mkv", [np.repeat(thermal_frame(k)[..., None], 3, 2) for k in range(3)],
                     "rgb24", "yuv444p")
    assert len(open_recording(colour, aux_path=yuv)) == 3
