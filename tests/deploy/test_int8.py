"""`smmcl export --int8`: static int8 quantisation with ONNX Runtime, calibrated on the user's frames and verified
on held-out ones; written only where it keeps the answers and wins (`smmcl.deploy.quantize`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import smmcl  # noqa: E402
from smmcl.cli import main  # noqa: E402
from smmcl.deploy import quantize  # noqa: E402
from smmcl.model_file import open_model_file  # noqa: E402

from support import TINY_CONFIG  # noqa: E402


def test_int8_is_refused_with_its_numbers_when_it_does_not_win(weights, indoor_data, tmp_path, capsys, monkeypatch):
    # Whatever this machine measures, "not faster" is made certain: the refusal must give every number.
    monkeypatch.setattr(quantize, "_median_seconds", lambda *a, **k: (0.010, 0.012))
    out = tmp_path / "m.int8.onnx"
    assert main(["export", "--checkpoint", str(weights), "--out", str(out), "--int8", "--calibration", str(indoor_data),
                 "--calibration-split", "test", "--size", "64x80"]) == 2
    err = capsys.readouterr().err
    assert "int8 refused" in err and "not faster than fp32 on this machine" in err and "pixel agreement with fp32" in err
    assert "mIoU" in err and "12.0 ms vs fp32 10.0 ms" in err and not out.exists()


def test_an_accepted_int8_file_is_an_int8_model_with_its_report(weights, indoor_data, tmp_path, capsys, monkeypatch):
    # The acceptance path: thresholds opened and the timing fixed, so that what is tested is what gets written.
    monkeypatch.setattr(quantize, "MIN_AGREEMENT", 0.0)
    monkeypatch.setattr(quantize, "MAX_MIOU_DROP", 1.0)
    monkeypatch.setattr(quantize, "_median_seconds", lambda *a, **k: (0.020, 0.010))
    out = tmp_path / "m.int8.onnx"
    assert main(["--quiet", "export", "--checkpoint", str(weights), "--out", str(out), "--int8", "--calibration",
                 str(indoor_data), "--calibration-split", "test", "--size", "64x80", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["held_out_frames"] == 4 and report["calibration_frames"] == 8 and report["speedup"] == 2.0
    file = open_model_file(out)
    assert file.kind == "onnx-int8" and file.num_classes == 14
    assert json.loads(file.metadata[quantize.INT8_KEY])["agreement"] == report["agreement"]
    labels = smmcl.Predictor(out)(np.full((64, 80, 3), 40, np.uint8), np.full((64, 80), 3000, np.uint16))
    assert labels.shape == (64, 80)


def test_int8_needs_calibration_frames(weights, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(weights), "--out", str(tmp_path / "a.onnx"), "--int8"]) == 2
    assert "--int8 needs --calibration" in capsys.readouterr().err
    (tmp_path / "frames").mkdir()
    assert main(["export", "--checkpoint", str(weights), "--out", str(tmp_path / "a.onnx"), "--int8", "--calibration",
                 str(tmp_path / "frames")]) == 2
    assert "expected a dataset with train.txt" in capsys.readouterr().err


def test_a_calibration_set_storing_its_images_otherwise_is_read(weights, indoor_data, tmp_path):
    """Trial 7 #95: depth as TIFF where the model was trained on PNG; export takes no overrides, so the suffix each
    calibration folder holds is used (the advice to set data.aux_ext could not be followed)."""
    import shutil

    from smmcl.api.deploy import _calibration_frames
    from smmcl.data.io import read_image, write_image

    root = tmp_path / "calib"
    shutil.copytree(indoor_data, root)
    for png in sorted((root / "Depth").glob("*.png")):
        write_image(png.with_suffix(".tiff"), read_image(png))
        png.unlink()
    cfg = smmcl.load_config(TINY_CONFIG, [f"data.root={indoor_data}"])
    frames = _calibration_frames(cfg, root, "test")
    expected = _calibration_frames(cfg, indoor_data, "test")
    assert len(frames) == len(expected) == len((indoor_data / "test.txt").read_text().split())
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(frames, expected))
