"""Export of an HHA model (its check frame is HHA, trial 14 #245), the --int8/--calibration message (trial 14 #121),
and bag topics found by their encoding where their names say nothing (trial 14 #215)."""

from __future__ import annotations

import numpy as np
import pytest

from smmcl.cli import main
from smmcl.config import load_config
from smmcl.deploy.onnx_export import verification_frames
from smmcl.errors import DatasetError
from smmcl.model_file import open_model_file
from smmcl.recordings.layout import choose_topics
from smmcl.recordings.messages import IMAGE
from smmcl.weights import save_pretrained

from support import TINY_CONFIG, build_tiny_model

HHA = ["data.aux_kind=hha", "data.aux_max=null", "data.aux_dir=HHA"]


@pytest.fixture(scope="module")
def hha_weights(tmp_path_factory):
    cfg = load_config(TINY_CONFIG, HHA)
    return save_pretrained(build_tiny_model(cfg, seed=0), cfg, tmp_path_factory.mktemp("hha") / "hha.safetensors")


def test_check_frames_fit_the_models_aux_kind():
    for overrides, shape, dtype in ((HHA, (32, 40, 3), np.uint8), ([], (32, 40), np.uint16),
                                    (["data.aux_kind=thermal", "data.aux_dir=Thermal"], (32, 40), None)):
        rgb, aux = verification_frames(load_config(TINY_CONFIG, overrides), (32, 40))
        assert rgb.shape == (32, 40, 3) and aux.shape == shape
        assert dtype is None or aux.dtype == dtype
    rgb, hha = verification_frames(load_config(TINY_CONFIG, HHA), (32, 40))
    assert hha.std() > 0  # a real encoding of the room, not an empty frame


def test_hha_model_exports(hha_weights, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "hha.onnx"
    assert main(["--quiet", "export", "--checkpoint", str(hha_weights), "--out", str(out), "--size", "64x80"]) == 0, \
        capsys.readouterr().err
    file = open_model_file(out)
    assert file.kind == "onnx" and file.require_config().data.aux_kind == "hha"


def test_int8_and_calibration_messages_read_well(hha_weights, tmp_path, capsys):
    out = str(tmp_path / "a.onnx")
    assert main(["export", "--checkpoint", str(hha_weights), "--out", out, "--int8"]) == 2
    err = capsys.readouterr().err
    assert "--int8 needs --calibration FOLDER: " in err and "--calibration --int8" not in err
    assert main(["export", "--checkpoint", str(hha_weights), "--out", out, "--calibration", str(tmp_path)]) == 2
    assert f"--calibration {tmp_path} is used only with --int8" in capsys.readouterr().err


def test_colour_and_depth_topics_found_by_encoding(tmp_path):
    pytest.importorskip("rosbags", reason="bags need the recordings extra")
    from smmcl.recordings import open_recording
    from support.bags import N, write_ros2_aligned

    path = write_ros2_aligned(tmp_path / "bag_plain", rgb_topic="/cam/image", aux_topic="/cam/aux")
    recording = open_recording(path, align=False)
    assert (recording.rgb_source, recording.aux_source) == ("/cam/image", "/cam/aux")
    assert len(recording) == N - 1


def test_topics_no_encoding_tells_apart_are_listed_with_flags():
    types = {"/cam/a": IMAGE, "/cam/b": IMAGE}
    encodings = {"/cam/a": "16uc1", "/cam/b": "mono16"}
    with pytest.raises(DatasetError) as info:
        choose_topics(types, None, None, encodings.get)
    message = str(info.value)
    assert "--rgb-topic" in message and "--aux-topic" in message
    assert "/cam/a (16uc1)" in message and "/cam/b (mono16)" in message
    # Named colour: the other one is the auxiliary by its encoding.
    assert choose_topics(types, "/cam/b", None, encodings.get) == ("/cam/b", "/cam/a")
