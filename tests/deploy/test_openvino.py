"""OpenVINO as a backend beside ONNX Runtime (`smmcl.deploy.openvino_runtime`): the same export and metadata, fp32
asked for explicitly, bf16 only where the CPU has it, never on the layers it hangs on, and checked for parity at
load; the one table of backends."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

import smmcl  # noqa: E402
from smmcl.api import BACKENDS as API_BACKENDS  # noqa: E402
from smmcl.cli import main  # noqa: E402
from smmcl.config import load_config  # noqa: E402
from smmcl.deploy import openvino_runtime  # noqa: E402
from smmcl.deploy.onnx_export import export_onnx  # noqa: E402
from smmcl.deploy.onnx_runtime import OnnxRuntimeModel  # noqa: E402
from smmcl.deploy.openvino_runtime import (Bf16HangRisk, Bf16NotSupported, OpenVinoModel,  # noqa: E402
                                           builtin_frame, cpu_has_bf16)
from smmcl.deploy.predictor import BACKENDS, load_backend  # noqa: E402
from smmcl.engine.inference import InferenceProtocol  # noqa: E402
from smmcl.model_file import BACKEND_NAMES, open_model_file  # noqa: E402

from support import TINY_CONFIG, build_tiny_model, export_decided_tiny  # noqa: E402

# The tiny model's strip convs have 8 and 16 channels (hang-prone in bf16); this width has none below 17.
WIDE = "model.backbone.embed_dims=[24,32,48,64]"
BF16_CPU = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 (OpenVINO reports no BF16 capability)")


@pytest.fixture(scope="module")
def tiny(indoor_data, tmp_path_factory):
    """The tiny model (MSCAN with 8- and 16-channel strip convs + LightHam) and its export by `smmcl export`."""
    return export_decided_tiny(tmp_path_factory.mktemp("openvino"), indoor_data)


def wide_export(path, weight_scale: float, bias_spread: float, bias_offset: float = 0.0):
    """The tiny model at widths 24-64 (no hang-prone layer), its class head rescaled, exported to `path`."""
    cfg = load_config(TINY_CONFIG, [WIDE])
    model = build_tiny_model(cfg, seed=0).eval()
    with torch.no_grad():
        model.decoder.conv_seg.weight.mul_(weight_scale)
        model.decoder.conv_seg.bias.copy_(torch.linspace(-bias_spread, bias_spread, cfg.model.num_classes) + bias_offset)
    export_onnx(model, cfg, path, size=(64, 80))
    return path


def in_subprocess(code: str, timeout: int = 180) -> dict:
    """Run `code` (which prints one JSON line last) in a fresh process: a bf16 kernel that hangs cannot hang the suite."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_openvino_runs_the_export_as_onnxruntime_does(tiny):
    _, onnx_path, cfg = tiny
    ov, ort = OpenVinoModel(onnx_path, threads=1), OnnxRuntimeModel(onnx_path, threads=1)
    assert ov.metadata == ort.metadata and ov.metadata.config == cfg  # the metadata, as OpenVINO's reader keeps it
    assert ov.input_shape == (None, 3, None, None) and ov.threads == 1 and ov.parity is None
    # fp32 is asked for: OpenVINO's CPU plugin would run bf16 by default wherever the CPU has it.
    assert str(ov.compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    rgb, aux = builtin_frame(ov)
    a, b = ov.run(rgb, aux), ort.run(rgb, aux)
    # The same fp32 graph on two runtimes: only the order of float32 sums differs (logits apart by 7e-6 here, at
    # most 1.5e-5 on 192,000 pixels); held to the export's own check of ONNX Runtime against PyTorch (onnx_export).
    pa, pb = (np.exp(x - x.max(1, keepdims=True)) for x in (a, b))
    pa, pb = pa / pa.sum(1, keepdims=True), pb / pb.sum(1, keepdims=True)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.999 and np.abs(pa - pb).max() <= 1e-3


def test_eval_and_predict_take_backend_openvino(tiny, indoor_data, tmp_path):
    _, onnx_path, _ = tiny
    ort = smmcl.evaluate_checkpoint(onnx_path, progress=False)
    ov = smmcl.evaluate_checkpoint(onnx_path, progress=False, backend="openvino")
    a, b = np.asarray(ort["confusion"]), np.asarray(ov["confusion"])
    assert a.sum() == b.sum() > 0 and np.abs(a - b).sum() / 2 <= 0.001 * a.sum()
    out = tmp_path / "scores.json"
    assert main(["--quiet", "eval", "--backend", "openvino", "--checkpoint", str(onnx_path), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["miou"] == pytest.approx(ov["miou"])
    rgb, depth = indoor_data / "RGB" / "scene_00001.png", indoor_data / "Depth" / "scene_00001.png"
    for backend in ("onnxruntime", "openvino"):
        assert main(["--quiet", "predict", "--backend", backend, "--checkpoint", str(onnx_path), "--rgb", str(rgb),
                     "--aux", str(depth), "--out", str(tmp_path / backend)]) == 0
    first, second = (np.asarray(Image.open(tmp_path / b / "scene_00001.png")) for b in ("onnxruntime", "openvino"))
    assert first.shape == (64, 80) and (first == second).mean() >= 0.999
    predictor = smmcl.Predictor(onnx_path, backend="openvino")
    frame = np.asarray(Image.open(rgb)), np.asarray(Image.open(depth))
    assert predictor.backend == "openvino" and (predictor(*frame) == smmcl.Predictor(onnx_path)(*frame)).mean() >= 0.999


def test_bf16_is_refused_for_layers_it_hangs_on(tiny):
    # In a child process with a timeout: were the check to miss them, the bf16 kernel would never return.
    _, onnx_path, _ = tiny
    result = in_subprocess(f"""
import json
from smmcl.deploy.openvino_runtime import Bf16HangRisk, OpenVinoModel
try:
    OpenVinoModel({str(onnx_path)!r}, precision="bf16")
    print(json.dumps({{"refused": None}}))
except Bf16HangRisk as exc:
    print(json.dumps({{"refused": str(exc)}}))
""")
    assert result["refused"] and "bf16 refused: 4 depth-wise conv(s) of 2-16 channels with kernels 15+ wide" in result["refused"]
    with pytest.raises(Bf16HangRisk, match="run it in fp32"):  # before anything is compiled: safe in this process
        smmcl.Predictor(onnx_path, backend="openvino", precision="bf16")


def test_bf16_needs_a_cpu_with_bf16(tmp_path, monkeypatch):
    path = wide_export(tmp_path / "wide.onnx", 1.0, 0.5)
    monkeypatch.setattr(openvino_runtime, "cpu_has_bf16", lambda core=None: False)  # an AVX2 machine
    with pytest.raises(Bf16NotSupported, match=r"this CPU \(.*\) has no bf16 instructions.*run in fp32"):
        OpenVinoModel(path, precision="bf16")


@BF16_CPU
def test_bf16_is_checked_against_fp32_at_load(tmp_path):
    # Decided: class biases far apart, so bf16 and fp32 agree on the argmax; tied: logits 256 + O(1), so that
    # bf16's 8-bit significand (steps of 2 at 256) cannot tell the classes apart (agreement 54% measured).
    decided = wide_export(tmp_path / "decided.onnx", 0.05, 3.0)
    tied = wide_export(tmp_path / "tied.onnx", 1.0, 0.0, 256.0)
    result = in_subprocess(f"""
import json
import numpy as np
from smmcl.deploy.openvino_runtime import Bf16Disagrees, OpenVinoModel, builtin_frame
model = OpenVinoModel({str(decided)!r}, precision="bf16")
rgb, aux = builtin_frame(model)
fp32 = OpenVinoModel({str(decided)!r}).run(rgb, aux)
out = {{"parity": model.parity, "hint": str(model.compiled.get_property("INFERENCE_PRECISION_HINT")),
        "same": float((model.run(rgb, aux).argmax(1) == fp32.argmax(1)).mean())}}
try:
    OpenVinoModel({str(tied)!r}, precision="bf16")
except Bf16Disagrees as exc:
    out["refused"], out["agreement"] = str(exc), exc.agreement
print(json.dumps(out))
""")
    assert result["hint"] == "<Type: 'bfloat16'>" and result["parity"] >= 0.99 and result["same"] == result["parity"]
    assert result["agreement"] < 0.99 and f"agrees with fp32 on {result['agreement']:.2%} of pixels" in result["refused"]


def test_precision_and_device_are_checked(tiny):
    weights, onnx_path, _ = tiny
    with pytest.raises(ValueError, match="runs an export in fp32 or bf16, not 'fp16'"):
        OpenVinoModel(onnx_path, precision="fp16")
    with pytest.raises(ValueError, match="runs an export in fp32, not 'bf16'"):
        smmcl.Predictor(onnx_path, precision="bf16")  # ONNX Runtime
    assert smmcl.Predictor(weights, precision="bf16").config.train.precision == "bf16"  # PyTorch: its autocast
    with pytest.raises(ValueError, match="precision='bf16' and protocol precision 'fp16': give one"):
        smmcl.Predictor(weights, precision="bf16", protocol=InferenceProtocol(precision="fp16"))
    with pytest.raises(ValueError, match="runs on the CPU"):
        OpenVinoModel(onnx_path, device="cuda")
    with pytest.raises(Exception, match="which the openvino backend does not run"):
        smmcl.Predictor(weights, backend="openvino")


def test_backends_are_one_table(tiny, capsys):
    weights, onnx_path, _ = tiny
    assert tuple(BACKENDS) == BACKEND_NAMES == API_BACKENDS == ("torch", "onnxruntime", "openvino")
    for command in ("eval", "predict"):  # the CLI's choices
        with pytest.raises(SystemExit):
            main([command, "--checkpoint", str(onnx_path), "--backend", "tensorrt"])
        assert "(choose from torch, onnxruntime, openvino)" in capsys.readouterr().err.replace("'", "")
    assert open_model_file(onnx_path).backends == ("onnxruntime", "openvino")
    for call in (lambda: open_model_file(onnx_path).backend("tensorrt"),
                 lambda: load_backend("tensorrt", open_model_file(onnx_path)),
                 lambda: smmcl.Predictor(onnx_path, backend="tensorrt")):
        with pytest.raises(ValueError, match="unknown backend 'tensorrt'; the backends are torch, onnxruntime, openvino"):
            call()
    model, cfg = smmcl.open_model(onnx_path, backend="openvino")
    assert isinstance(model, torch.nn.Module) and type(model).__name__ == "OpenVinoSegmentor"
    assert cfg.train.precision == "fp32" and model(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)).shape == (1, 14, 32, 32)


def test_class_argmax_is_numpys_argmax_ties_included():
    from smmcl.deploy.predictor import class_argmax

    rng = np.random.default_rng(0)
    for k, dtype in ((2, np.uint8), (14, np.uint8), (300, np.int32)):
        logits = rng.integers(-3, 3, (2, k, 9, 11)).astype(np.float32)  # small integers: many ties
        got = class_argmax(logits, dtype)
        assert got.dtype == dtype and np.array_equal(got, logits.argmax(1))
