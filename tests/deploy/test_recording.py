"""A recording in, an overlay video out (`smmcl predict --bag` / `--video`, `smmcl.deploy.recording`): a ROS 2 bag
and a video written in the test with rosbags' and PyAV's own writers, segmented by a saved model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("rosbags", reason="recordings need the recordings extra: pip install -e '.[recordings]'")
pytest.importorskip("av", reason="videos need the recordings extra: pip install -e '.[recordings]'")

import smmcl  # noqa: E402
from smmcl.cli import main  # noqa: E402
from smmcl.deploy.recording import aux_scale_for  # noqa: E402
from smmcl.outputs import MANIFEST_NAME  # noqa: E402

from support import TINY_CONFIG, build_tiny_model  # noqa: E402
from support.bags import DT_NS, H, N, W, depth_frame, rgb_frame, write_ros2_aligned  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    cfg = smmcl.load_config(TINY_CONFIG, ["data.aux_max=10000"])
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, path)
    return path


def test_a_bag_goes_in_and_an_overlay_video_comes_out(weights, tmp_path, capsys):
    import av

    bag = write_ros2_aligned(tmp_path / "bag")
    assert main(["predict", "--bag", str(bag), "--list-topics"]) == 0
    listed = capsys.readouterr().out
    assert "/camera/aligned_depth_to_color/image_raw" in listed and "sensor_msgs/msg/Image" in listed

    out = tmp_path / "pred"
    assert main(["--quiet", "predict", "--checkpoint", str(weights), "--bag", str(bag), "--out", str(out), "--labels",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # The bag lost depth frame 5: 7 pairs, one RGB frame unpaired, one aux frame dropped from its stream.
    assert summary["frames"] == N - 1 and summary["unpaired"] == {"rgb": 1, "aux": 0} and summary["dropped"]["aux"] == 1
    assert summary["aux_units"] == "mm" and summary["aux_scale"] == 1.0
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "frames.csv", "labels", "overlay.mp4", "summary.json"]
    with av.open(str(out / "overlay.mp4")) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(frames) == N - 1 and frames[0].shape[0] >= H and frames[0].shape[1] > W  # the legend beside
    rows = list(csv.DictReader((out / "frames.csv").open()))
    assert [int(r["index"]) for r in rows] == list(range(N - 1))
    steps = np.diff([float(r["time"]) for r in rows])  # RGB frame 5 went unpaired: one double step
    assert np.allclose(np.delete(steps, 4), DT_NS / 1e9, atol=1e-6) and steps[4] == pytest.approx(2 * DT_NS / 1e9, abs=1e-6)
    fractions = np.array([[float(r[name]) for name in rows[0] if name not in ("index", "time", "aux_time", "latency_ms")]
                          for r in rows])
    assert np.allclose(fractions.sum(1), 1.0, atol=1e-4)  # 5-decimal shares of every pixel
    # The label PNGs are the predictor's own labels for the same frames.
    predictor = smmcl.Predictor(weights)
    want = predictor(rgb_frame(0), depth_frame(0))
    assert np.array_equal(np.asarray(Image.open(out / "labels" / "000000.png")), want)

    # A second prediction into its own folder is refused without --overwrite, and with it replaces the first whole
    # (no labels or video of the first linger); a user's file in its labels/ is refused, not removed; into the bag
    # is refused.
    again = ["--quiet", "predict", "--checkpoint", str(weights), "--bag", str(bag), "--out", str(out), "--no-video"]
    assert main(again) == 2
    assert "earlier output" in capsys.readouterr().err and (out / "overlay.mp4").is_file()
    (out / "labels" / "000099.png").write_bytes(b"mine")
    assert main([*again, "--overwrite"]) == 2
    assert "labels/000099.png" in capsys.readouterr().err and (out / "labels" / "000099.png").read_bytes() == b"mine"
    (out / "labels" / "000099.png").unlink()
    assert main([*again, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "frames.csv", "summary.json"]
    assert main(["predict", "--checkpoint", str(weights), "--bag", str(bag), "--out", str(bag / "pred")]) == 2
    assert "lies inside the input folder" in capsys.readouterr().err


def test_a_video_with_an_image_folder_of_depth(weights, tmp_path, capsys):
    from smmcl.recordings import VideoWriter

    video = tmp_path / "drive.mkv"
    depth = tmp_path / "depth"
    depth.mkdir()
    with VideoWriter(video, fps=5, codec="ffv1") as writer:
        for k in range(4):
            writer.write(rgb_frame(k))
            Image.fromarray(depth_frame(k)).save(depth / f"{k:04d}.png")
    out = tmp_path / "pred"
    assert main(["--quiet", "predict", "--checkpoint", str(weights), "--video", str(video), "--aux", str(depth),
                 "--aux-units", "mm", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 4 and summary["aux_scale"] == 1.0
    assert summary["video_fps"] == 5.0  # the recording's own rate: the overlay plays in real time
    assert main(["predict", "--checkpoint", str(weights), "--video", str(video), "--aux", str(depth), "--aux-units", "mm",
                 "--out", str(depth / "pred")]) == 2  # never inside an input, the auxiliary folder included
    assert "lies inside the input folder" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(weights), "--video", str(video), "--aux", str(depth), "--out",
                 str(out), "--flip"]) == 2
    assert "do not apply" in capsys.readouterr().err


def test_a_recording_in_other_units_than_the_model_is_refused_not_warned(weights, tmp_path, capsys):
    """A recording is a file, read like a folder of images: millimetres declared as metres (x1000) or a scale from
    another model's units stop the run, naming the frame and the likely fix; the Predictor on a live stream warns."""
    bag = write_ros2_aligned(tmp_path / "bag")
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(weights), "--bag", str(bag), "--out", str(out), "--aux-scale",
                 "1000"]) == 2
    err = capsys.readouterr().err
    assert "smmcl: error:" in err and "frame 0: values up to" in err and "for a depth model whose aux_max is 10000" in err
    assert "Traceback" not in err and not out.exists()  # refused at its first frame: nothing written


def test_the_units_of_a_recording_become_the_models():
    assert aux_scale_for("mm", "depth", 10000) == (1.0, aux_scale_for("mm", "depth", 10000)[1])
    assert aux_scale_for("m", "depth", 10000)[0] == pytest.approx(1000)
    assert aux_scale_for("0.0001 m", "depth", 10000)[0] == pytest.approx(0.1)
    assert aux_scale_for("raw", "thermal", None)[0] == 1.0
    assert aux_scale_for("m", "depth", 255)[0] == 1.0  # an 8-bit depth model counts no millimetres


def test_a_bag_on_an_export_runs_on_the_backend_asked(weights, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    onnx_path = tmp_path / "model.onnx"
    smmcl.export(weights, onnx_path, size=(32, 32))  # dynamic: any frame size runs
    bag = write_ros2_aligned(tmp_path / "bag")
    for backend in ("onnxruntime", "openvino"):
        out = tmp_path / backend
        assert main(["--quiet", "predict", "--checkpoint", str(onnx_path), "--bag", str(bag), "--out", str(out),
                     "--labels", "--no-video", "--backend", backend]) == 0
        want = smmcl.Predictor(onnx_path, backend=backend)(rgb_frame(0), depth_frame(0))
        assert np.array_equal(np.asarray(Image.open(out / "labels" / "000000.png")), want)
    # The tiny model's depth-wise convolutions are where OpenVINO's bf16 kernel hangs: refused, named.
    assert main(["predict", "--checkpoint", str(onnx_path), "--bag", str(bag), "--out", str(tmp_path / "bf16"),
                 "--backend", "openvino", "--precision", "bf16"]) == 2
    assert "bf16 refused" in capsys.readouterr().err


def test_a_short_recording_in_other_units_is_judged_whole_at_its_end(weights, tmp_path, capsys):
    """Trial 8 #145: the Predictor judges a stream after 30 frames, so an 8-frame bag in centimetres said nothing;
    a recording shorter than that is judged whole, as a folder is."""
    import warnings

    from smmcl.errors import AuxUnitsWarning

    bag = write_ros2_aligned(tmp_path / "bag")
    out = tmp_path / "pred"
    with pytest.warns(AuxUnitsWarning, match=r"in all \d+ frames is [\d.]+ .*under 1/10 of the model's aux_max 10000.*"
                                             r"pass aux_scale=.*made as given"):
        smmcl.predict_recording(weights, bag, out, aux_scale=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AuxUnitsWarning)
        smmcl.predict_recording(weights, bag, tmp_path / "pred_mm")
