"""ONNX export, ONNX Runtime as a backend (eval, predict), and the frame-stream `Predictor`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from smmcl.api import evaluate_checkpoint, export
from smmcl.cli import main
from smmcl.config import load_config
from smmcl.data.preprocess import Preprocessing
from smmcl.deploy import onnx_export
from smmcl.deploy.onnx_export import ExportError, export_onnx
from smmcl.deploy.predictor import Predictor
from smmcl.errors import CheckpointError
from smmcl.models import build_model
from smmcl.models.cpu_guard import GuardedConv2d
from smmcl.models.lightham_head import NMF2D

from support import ROOT, TINY_CONFIG, build_tiny_model, export_decided_tiny

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(indoor_data, tmp_path_factory):
    """The tiny model (MSCAN with guarded strip convs + LightHam), lightly trained weights, and its ONNX export."""
    weights, onnx_path, cfg = export_decided_tiny(tmp_path_factory.mktemp("export"), indoor_data)
    assert any(isinstance(m, GuardedConv2d) for m in build_tiny_model(cfg).modules())
    return weights, onnx_path, cfg


def test_export_is_self_describing_and_runs_without_smmcl(exported, indoor_data, tmp_path):
    weights, onnx_path, cfg = exported
    rgb = np.asarray(Image.open(indoor_data / "RGB" / "scene_00000.png"))
    depth = np.asarray(Image.open(indoor_data / "Depth" / "scene_00000.png"))
    np.savez(tmp_path / "frame.npz", rgb=rgb, depth=depth)
    # A deployment: ONNX Runtime and numpy only, everything else from the file's metadata.
    script = f"""
import json, sys
import numpy as np, onnxruntime as ort
s = ort.InferenceSession({str(onnx_path)!r}, providers=["CPUExecutionProvider"])
meta = s.get_modelmeta().custom_metadata_map
pre = json.loads(meta["preprocessing"])
f = np.load({str(tmp_path / 'frame.npz')!r})
mean, std = np.float32(pre["mean"]).reshape(3, 1, 1), np.float32(pre["std"]).reshape(3, 1, 1)
rgb = (f["rgb"].transpose(2, 0, 1).astype(np.float32) / np.float32(255) - mean) / std
aux = (np.repeat(f["depth"][None].astype(np.float32), 3, 0) / np.float32(pre["aux_max"]) - mean) / std
logits = s.run(["logits"], {{"rgb": rgb[None], "aux": aux[None]}})[0]
e = np.exp(logits - logits.max(1, keepdims=True))
np.save({str(tmp_path / 'probs.npy')!r}, e / e.sum(1, keepdims=True))
json.dump({{"smmcl_imported": any(m.startswith("smmcl") for m in sys.modules), "classes": json.loads(meta["class_names"]),
           "palette": json.loads(meta["palette"]), "ignore_index": int(meta["ignore_index"]), "K": int(meta["num_classes"])}},
          open({str(tmp_path / 'meta.json')!r}, "w"))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["smmcl_imported"] is False
    assert meta["classes"] == cfg.data.class_names and meta["K"] == 14 and meta["ignore_index"] == 255
    assert len(meta["palette"]) == 14 and all(len(c) == 3 for c in meta["palette"])
    ort_probs = np.load(tmp_path / "probs.npy")[0]
    labels, probs = Predictor(weights)(rgb, depth, probs=True)  # smmcl's own PyTorch prediction
    assert (ort_probs.argmax(0) == labels).mean() >= 0.999
    assert np.abs(ort_probs - probs).max() <= 1e-3


def test_onnxruntime_eval_matches_torch_eval(exported, capsys):
    weights, onnx_path, cfg = exported
    torch_scores = evaluate_checkpoint(weights, cfg, progress=False)
    ort_scores = evaluate_checkpoint(onnx_path, progress=False)  # the config comes from the file
    a, b = np.asarray(torch_scores["confusion"]), np.asarray(ort_scores["confusion"])
    assert a.sum() == b.sum() > 0
    assert np.abs(a - b).sum() / 2 <= 0.001 * a.sum()  # at most 0.1% of pixels change class
    assert ort_scores["miou"] == pytest.approx(torch_scores["miou"], abs=2e-3)
    # The CLI: no YAML, the backend named.
    out = onnx_path.with_suffix(".scores.json")
    assert main(["eval", "--backend", "onnxruntime", "--checkpoint", str(onnx_path), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["miou"] == pytest.approx(ort_scores["miou"])


def test_onnxruntime_predict_writes_the_labels_torch_writes(exported, indoor_data, tmp_path):
    weights, onnx_path, _ = exported
    rgb, depth = indoor_data / "RGB" / "scene_00001.png", indoor_data / "Depth" / "scene_00001.png"
    for name, source in (("torch", weights), ("ort", onnx_path)):
        assert main(["predict", "--checkpoint", str(source), "--rgb", str(rgb), "--aux", str(depth),
                     "--out", str(tmp_path / name)]) == 0
    a = np.asarray(Image.open(tmp_path / "torch" / "scene_00001.png"))
    b = np.asarray(Image.open(tmp_path / "ort" / "scene_00001.png"))
    assert a.shape == (64, 80) and (a == b).mean() >= 0.999


def test_precision_is_one_switch_for_every_backend(exported, indoor_data, tmp_path, capsys):
    """bf16 is PyTorch's autocast for weights, OpenVINO's precision for an export (openvino tests), and refused by
    ONNX Runtime, which runs an export as written; the CLI's --precision reaches each."""
    weights, onnx_path, cfg = exported
    scores = evaluate_checkpoint(weights, cfg, progress=False, precision="bf16")
    assert "bf16 autocast" in scores["protocol_text"]
    with pytest.raises(ValueError, match="runs an export in fp32, not 'bf16'"):
        evaluate_checkpoint(onnx_path, progress=False, precision="bf16")
    frame = (np.asarray(Image.open(indoor_data / "RGB" / "scene_00001.png")),
             np.asarray(Image.open(indoor_data / "Depth" / "scene_00001.png")))
    assert (Predictor(weights, precision="bf16")(*frame) == Predictor(weights)(*frame)).mean() >= 0.9
    assert main(["--quiet", "predict", "--checkpoint", str(weights), "--rgb", str(indoor_data / "RGB" / "scene_00001.png"),
                 "--aux", str(indoor_data / "Depth" / "scene_00001.png"), "--out", str(tmp_path / "bf16"),
                 "--precision", "bf16"]) == 0
    assert main(["eval", "--checkpoint", str(onnx_path), "--precision", "bf16"]) == 2
    assert "runs an export in fp32" in capsys.readouterr().err


def test_backend_and_file_must_agree(exported):
    weights, onnx_path, cfg = exported
    with pytest.raises(CheckpointError, match="is smmcl weights, which the onnxruntime backend does not run .*smmcl export"):
        evaluate_checkpoint(weights, cfg, backend="onnxruntime")
    with pytest.raises(CheckpointError, match="is an ONNX export, which the torch backend does not run"):
        evaluate_checkpoint(onnx_path, cfg, backend="torch")


def test_a_foreign_onnx_file_is_a_named_error(tmp_path):
    path = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 2, 1), (torch.randn(1, 3, 8, 8),), str(path), dynamo=False)
    with pytest.raises(CheckpointError, match="an ONNX file without smmcl metadata"):
        Predictor(path)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="junk.onnx: not a model file smmcl reads"):
        Predictor(tmp_path / "junk.onnx")


def test_a_disagreeing_export_is_refused_and_not_written(exported, tmp_path, monkeypatch):
    weights, _, _ = exported
    monkeypatch.setattr(onnx_export, "MAX_PROB_DIFF", -1.0)  # no export can meet it
    with pytest.raises(ExportError, match="disagrees with PyTorch.*nothing written"):
        export(weights, tmp_path / "bad.onnx", size=(64, 80))
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind


def test_a_fixed_size_export_has_fixed_inputs(exported, tmp_path):
    import onnx

    weights, _, _ = exported
    report = export(weights, tmp_path / "fixed.onnx", size=(64, 96), dynamic=False)
    dims = onnx.load(str(report.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 64, 96] and len(report.parity) == 1 and report.parity[0].ok


def test_predictor_frames_batches_bgr_sizes_and_buffers(exported, indoor_data):
    weights, onnx_path, _ = exported
    frames = [(np.asarray(Image.open(indoor_data / "RGB" / f"scene_0000{i}.png")),
               np.asarray(Image.open(indoor_data / "Depth" / f"scene_0000{i}.png"))) for i in range(3)]
    for source in (weights, onnx_path):
        p = Predictor(source)
        one = p(*frames[0])
        assert one.shape == (64, 80) and one.dtype == np.uint8
        batch, probs = p(np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]), probs=True)
        assert batch.shape == (3, 64, 80) and probs.shape == (3, 14, 64, 80)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
        assert (batch[0] == one).all()
        assert (p(frames[0][0][..., ::-1].copy(), frames[0][1], bgr=True) == one).all()
        buffer = p._rgb.data_ptr()
        assert (p(*frames[1]) == batch[1]).all()
        assert p._rgb.data_ptr() == buffer  # a frame of the last one's size: the input buffer is reused
        odd = p(frames[0][0][:61, :77], frames[0][1][:61, :77])  # any size, not a multiple of 32
        assert odd.shape == (61, 77)
        assert p.colorize(one).shape == (64, 80, 3)
    with pytest.raises(ValueError, match="must share a size"):
        p([frames[0][0], frames[0][0][:32]], [frames[0][1], frames[0][1][:32]])
    with pytest.raises(ValueError, match="aux is .* but rgb is"):
        p(frames[0][0], frames[0][1][:32])


def test_a_users_mistakes_with_the_predictor_are_named(exported, tmp_path):
    import smmcl
    from smmcl.errors import CheckpointError, ConfigError

    weights, onnx_path, _ = exported
    p = Predictor(onnx_path, device="cpu")
    with pytest.raises(TypeError, match="rgb must be a numpy frame"):
        p(None, None)
    with pytest.raises(ValueError, match=r"label ids must lie in 0\.\.13"):
        p.colorize(np.full((4, 4), 99))
    for threads in (-2, 0, 1.5):
        with pytest.raises(ValueError, match=f"threads={threads!r}"):
            Predictor(onnx_path, threads=threads)
    with pytest.raises(CheckpointError, match="is a folder, not a model file"):
        smmcl.open_model_file(weights.parent)
    with pytest.raises(ValueError, match="CUDAExecutionProvider"):  # ONNX Runtime here has no CUDA: never the CPU
        Predictor(onnx_path, device="cuda")
    with pytest.raises(ConfigError, match="model.num_classes=0"):
        smmcl.build_model({"num_classes": 0})


def test_preprocessing_matches_the_evaluation_dataset(indoor_data):
    from smmcl.data.dataset import RGBXDataset

    cfg = load_config(TINY_CONFIG, [f"data.root={indoor_data}"])
    sample = RGBXDataset(cfg.data, "test", 14)[0]
    rgb = np.asarray(Image.open(indoor_data / "RGB" / f"{sample['name']}.png"))
    depth = np.asarray(Image.open(indoor_data / "Depth" / f"{sample['name']}.png"))
    prep = Preprocessing.from_data_config(cfg.data)
    a, b = prep.pair(rgb, depth)
    assert torch.equal(a, sample["rgb"]) and torch.equal(b, sample["aux"])  # bit for bit
    assert Preprocessing.from_json(prep.to_json()) == prep


def test_lightham_eval_bases_are_the_seeded_draw():
    # The bases used to be drawn from a fresh generator on every eval call; the buffer must be that same draw.
    nmf = NMF2D(rank=8, eval_seed=3, dim=32)
    generator = torch.Generator().manual_seed(3)
    expected = torch.nn.functional.normalize(torch.rand(1, 32, 8, generator=generator), dim=1)
    assert torch.equal(nmf.eval_bases, expected)
    assert "eval_bases" not in nmf.state_dict()  # old checkpoints keep loading


# ResNet-101's dual encoder is 680 MB of fp32 weights and takes minutes to export here: the test exports
# ResNet-50 (the same bottleneck blocks and decoder), `make bench` exports and checks ResNet-101 itself.
@pytest.mark.parametrize("config,overrides", [("demo", []), ("paper/llrgbd_mscanb_smmcl", []), ("paper/llrgbd_mitb2_smmcl", []),
                                              ("paper/llrgbd_resnet101_smmcl", ["model.backbone.preset=50"])])
def test_demo_and_paper_models_export_with_parity(config, overrides, tmp_path):
    cfg = load_config(ROOT / "configs" / f"{config}.yaml", overrides)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    report = export_onnx(model, cfg, tmp_path / "m.onnx", size=(64, 96))
    assert [p.size for p in report.parity] == [(64, 96), (96, 64)]
    assert all(p.agreement >= 0.999 and p.max_prob_diff <= 1e-3 for p in report.parity)
