"""Trial 12's deployment and output cases: units a model cannot read (#180), a stopped command's note of what it kept
(#87), int8 calibration's range (#117), a stream's range after a frame with holes (#119), a folder in use (#211),
and a killed run's advice (#223)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import smmcl
from smmcl.data.io import read_image, write_image
from smmcl.data.modality import RangeWatch
from smmcl.errors import AuxUnitsWarning, ConfigError, DatasetError, StaleOutputWarning
from smmcl.files import FolderBusyError
from smmcl.model_file import open_model_file
from smmcl.outputs import claim_folder, record, settle, writing

from support import TINY_CONFIG


@pytest.mark.parametrize("units", ["mm", "0.1 m", "m"])
@pytest.mark.parametrize("kind", ["thermal", "hha"])
def test_units_of_length_for_a_model_of_another_kind_are_refused(units, kind):
    pytest.importorskip("av", reason="recordings need the recordings extra")
    from smmcl.deploy.recording import aux_scale_for

    with pytest.raises(DatasetError, match=rf"units '{units}' are a length.*trained on {kind} images"):
        aux_scale_for(units, kind, None)
    for plain in ("raw", "unknown"):  # no length: read as recorded
        assert aux_scale_for(plain, kind, None)[0] == 1.0
    assert aux_scale_for(units, "depth", 10000)[0] > 0


def test_a_stopped_command_names_only_the_outputs_that_exist(tmp_path):
    out = tmp_path / "v87"
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleOutputWarning)
        with pytest.raises(DatasetError):
            with writing(out, "recording", "--out", names=["overlay.mp4"]) as folder:
                record(folder, ["overlay.mp4"])  # listed, its (atomic) file never put there
                raise DatasetError("refused at frame 0")
    assert not out.exists()  # nothing written: nothing said to be kept
    out.mkdir()  # the user's folder stays; of three names listed, only the file that exists is kept
    with pytest.warns(StaleOutputWarning, match=r"the 1 outputs it wrote before \(e\.g\. frames\.csv\) are kept"):
        with pytest.raises(DatasetError):
            with writing(out, "recording", "--out", names=["overlay.mp4", "frames.csv", "labels"]) as folder:
                record(folder, ["overlay.mp4"])
                claim_folder(folder / "labels", "labels", "--out", names=["000000.png"])  # claimed, still empty
                (folder / "frames.csv").write_text("index\n")
                raise DatasetError("refused")


def test_a_recording_refused_at_its_first_frame_says_it_kept_nothing(weights, tmp_path):
    pytest.importorskip("rosbags", reason="recordings need the recordings extra")
    pytest.importorskip("av", reason="recordings need the recordings extra")
    from support.bags import write_ros2_aligned

    bag = write_ros2_aligned(tmp_path / "bag")
    out = tmp_path / "v87"
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleOutputWarning)
        with pytest.raises(DatasetError, match="frame 0"):
            smmcl.predict_recording(weights, bag, out, aux_scale=1000)
    assert not out.exists()


def _in_centimetres(folder):
    for png in sorted(folder.glob("*.png")):
        write_image(png, (read_image(png) // 10).astype(np.uint16))


def test_int8_calibration_in_other_units_is_noted_before_quantising(weights, indoor_data, tmp_path):
    from smmcl.api.deploy import _calibration_frames

    cfg = smmcl.load_config(TINY_CONFIG, [f"data.root={indoor_data}"])
    file = open_model_file(weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AuxUnitsWarning)
        _calibration_frames(cfg, indoor_data, "test", file)  # millimetres, as the model: nothing said
    root = tmp_path / "calib"
    shutil.copytree(indoor_data, root)
    _in_centimetres(root / "Depth")
    said = (r"under 1/10 of the model's aux_max 10000: .*centimetres for millimetres.*convert the files"
            r".*int8 is calibrated")
    with pytest.warns(AuxUnitsWarning, match=r"test images sampled.*" + said):
        _calibration_frames(cfg, root, "test", file)
    folders = tmp_path / "frames"  # the model's image folders, without a list
    shutil.copytree(root / "RGB", folders / "RGB")
    shutil.copytree(root / "Depth", folders / "Depth")
    with pytest.warns(AuxUnitsWarning, match=r"calibration images.*" + said):
        _calibration_frames(cfg, folders, "test", file)


def test_a_frame_with_holes_does_not_hide_a_stream_in_other_units(weights):
    watch = RangeWatch(10000)
    watch.see(np.array([[np.nan, 2.5], [np.inf, 1.0]], np.float32), "frame 0")
    assert watch.top == 2.5  # NaN / inf are no measurement, as the frame is read

    predictor = smmcl.Predictor(weights)
    rgb, rng = np.full((32, 40, 3), 90, np.uint8), np.random.default_rng(0)
    metres = rng.uniform(0.3, 9.8, (32, 40)).astype(np.float32)
    metres[0, 0] = np.nan  # a depth camera's float metres have holes
    with pytest.warns(AuxUnitsWarning) as caught:
        predictor(rgb, metres)
        for _ in range(35):
            predictor(rgb, rng.integers(30, 980, (32, 40)).astype(np.uint16))  # then centimetres
    told = [str(w.message) for w in caught if issubclass(w.category, AuxUnitsWarning)]
    assert any("metres given to a model trained on millimetres" in m for m in told)
    assert any("in all 30 frames so far" in m and "centimetres for millimetres" in m for m in told)


HOLD = """
import sys
from smmcl.outputs import record, writing
with writing(sys.argv[1], "predictions", "--out", names=["a.png"]) as out:
    (out / "a.png").write_bytes(b"png")
    record(out, ["a.png"])
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_folder_in_use_is_named_so_before_anything_else(tmp_path):
    out = tmp_path / "plock"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        for overwrite in (False, True):  # not "an earlier output ... --overwrite replaces it": the command running
            with pytest.raises(FolderBusyError, match=rf"being written by another smmcl process \(pid {proc.pid} "):
                with writing(out, "predictions", "--out", names=["a.png"], overwrite=overwrite):
                    pass
    finally:
        proc.communicate("", timeout=60)
    assert proc.returncode == 0 and (out / "a.png").read_bytes() == b"png"


def test_a_run_killed_before_its_first_checkpoint_is_not_sent_to_resume(tmp_path):
    from smmcl.engine.run_dir import RUN_FILES, check_run_dir

    out = tmp_path / "k2"
    claim_folder(out, "run", "train.out_dir", names=RUN_FILES)
    (out / "config.yaml").write_text("name: tiny\n")
    (out / "log.jsonl").write_text("")
    claim_folder(out / "checkpoints", "checkpoints", "checkpoints folder")
    settle(out)
    with pytest.raises(ConfigError, match="already holds a run") as refused:
        check_run_dir(out, resumed=False, same_config=False, overwrite=False)
    assert "--resume" not in str(refused.value) and "no checkpoint to continue from" in str(refused.value)
    assert "--overwrite" in str(refused.value)
    (out / "checkpoints" / "ckpt_00000002.pt").write_bytes(b"")
    record(out / "checkpoints", ["ckpt_00000002.pt"])
    with pytest.raises(ConfigError, match=r"continue it with --resume auto.*--overwrite"):
        check_run_dir(out, resumed=False, same_config=False, overwrite=False)


def test_what_is_given_as_a_recording_is_named_for_what_it_is(weights, tmp_path, capsys):
    """Trial 13 #315: a still image as --video was "too few frames to pair"; #316: a YAML as --bag "needs aux_path";
    #134: a bag's thermal topic for a depth model was sent to --aux-aligned before its name was judged."""
    pytest.importorskip("av", reason="recordings need the recordings extra")
    pytest.importorskip("rosbags", reason="bags need the recordings extra")
    from smmcl.cli import main
    from support.bags import write_ros2_aligned

    still = tmp_path / "f.png"
    write_image(still, np.zeros((32, 40, 3), np.uint8))
    (tmp_path / "my.yaml").write_text("a: 1\n")
    cases = [(["--video", str(still), "--aux", str(tmp_path)], "is an image, not a recording"),
             (["--bag", str(tmp_path / "my.yaml")], "is neither a ROS bag"),
             (["--bag", str(write_ros2_aligned(tmp_path / "bag", aux_topic="/flir/thermal/image_raw"))],
              "topic /flir/thermal/image_raw names thermal images but the model was trained on depth images")]
    for i, (given, words) in enumerate(cases):
        assert main(["predict", "--checkpoint", str(weights), *given, "--out", str(tmp_path / f"o{i}")]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, err
