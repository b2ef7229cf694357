"""One model-file type (`smmcl.model_file`): a file's kind from its content, never its name; what it carries; which
backend runs it; an ONNX export read without PyTorch; and no other module deciding by suffix."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch

from smmcl.config import load_config
from smmcl.errors import CheckpointError
from smmcl.model_file import KINDS, container, is_model_file, open_model_file
from smmcl.weights import save_pretrained

from support import ROOT, TINY_CONFIG, build_tiny_model
from support.released_reference import released_state_dict

PACKAGE = ROOT / "src" / "smmcl"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One file of every kind, each under a misleading name."""
    out = tmp_path_factory.mktemp("kinds")
    cfg = load_config(TINY_CONFIG)
    model = build_tiny_model(cfg, seed=0)
    found = {"weights": save_pretrained(model, cfg, out / "w.safetensors").rename(out / "weights.onnx")}
    torch.save({"model": model.state_dict(), "optimizer": {}, "config": json.loads(json.dumps(
        __import__("smmcl.config", fromlist=["to_dict"]).to_dict(cfg))), "step": 3}, out / "ckpt.safetensors")
    found["checkpoint"] = out / "ckpt.safetensors"
    torch.save({"model": released_state_dict(embed_dims=(8, 16, 32, 64), depths=(1, 1, 1, 1), decoder_channels=16,
                                             projector_dim=8, seed=1)}, out / "epoch-500.onnx")
    found["released"] = out / "epoch-500.onnx"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2, 2)}}, out / "backbone.bin")
    found["state-dict"] = out / "backbone.bin"
    return cfg, found


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    """An smmcl ONNX export of the tiny model (renamed), and a quantised graph with the same metadata."""
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx import TensorProto, helper

    from smmcl.deploy.metadata import metadata_for
    from smmcl.deploy.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("onnx")
    cfg = load_config(TINY_CONFIG)
    export_onnx(build_tiny_model(cfg, seed=0).eval(), cfg, out / "m.onnx", size=(64, 80))
    shutil.move(out / "m.onnx", out / "model.safetensors")
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]), helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])],
        "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        initializer=[helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]), helper.make_tensor("z", TensorProto.UINT8, [], [0])])
    proto = helper.make_model(graph)
    for key, value in metadata_for(cfg).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, out / "int8.pt")
    return cfg, {"onnx": out / "model.safetensors", "onnx-int8": out / "int8.pt"}


def test_every_kind_is_told_from_its_content(files, onnx_files):
    cfg, found = files
    found = {**found, **onnx_files[1]}
    assert set(found) == set(KINDS)
    for kind, path in found.items():
        file = open_model_file(path)
        assert file.kind == kind, path
    assert open_model_file(found["weights"]).config == cfg and open_model_file(found["checkpoint"]).config == cfg
    assert open_model_file(found["onnx"]).class_names == list(cfg.data.class_names)
    assert [open_model_file(found[k]).backend() for k in ("weights", "checkpoint", "released", "onnx", "onnx-int8")] == \
        ["torch", "torch", "torch", "onnxruntime", "onnxruntime"]


def test_what_a_file_cannot_do_is_a_named_error(files, onnx_files, tmp_path):
    _, found = files
    with pytest.raises(CheckpointError, match="backbone.bin is a PyTorch state dict .*not a trained model"):
        open_model_file(found["state-dict"]).backend()
    with pytest.raises(CheckpointError, match="epoch-500.onnx is a released SMMCL checkpoint, which holds no config"):
        open_model_file(found["released"]).require_config()
    with pytest.raises(CheckpointError, match="an ONNX export, which the torch backend does not run"):
        open_model_file(onnx_files[1]["onnx"]).backend("torch")
    (tmp_path / "config.yaml").write_text("model:\n  num_classes: 3\n")
    assert not is_model_file(tmp_path / "config.yaml") and is_model_file(found["weights"])
    for name, content, message in [("empty.pt", b"", "empty"), ("text.onnx", b"hello world", "not a model file smmcl reads"),
                                   ("cut.safetensors", found["weights"].read_bytes()[:40], "not a model file smmcl reads")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=re.escape(name) + ".*" + message):
            container(tmp_path / name)
    with pytest.raises(CheckpointError, match="not found"):
        open_model_file(tmp_path / "missing.safetensors")


def test_an_onnx_export_is_read_without_pytorch(onnx_files):
    path = onnx_files[1]["onnx"]
    code = ("import sys; sys.modules['torch'] = None\n"
            "from smmcl.model_file import open_model_file\n"
            f"f = open_model_file({str(path)!r})\n"
            "print(f.kind, f.backend(), f.num_classes, len(f.class_names), 'torch' in sys.modules and sys.modules['torch'] is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["onnx", "onnxruntime", str(onnx_files[0].model.num_classes), str(onnx_files[0].model.num_classes), "False"]


def test_no_other_module_tells_a_model_file_by_its_name():
    """File suffixes of model files are looked at in smmcl.model_file alone, and the writers' naming rule in
    smmcl.files (where the container is told from the first bytes)."""
    pattern = re.compile(r"""(\.suffix|endswith\().*["']\.(onnx|safetensors|pth?|bin)["']|["']\.(onnx|safetensors|pth?)["']\s*(==|!=|in)""")
    found = [f"{path.relative_to(PACKAGE)}:{i}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py")) if path.name not in ("model_file.py", "files.py")
             for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, "modules deciding on a model file's name:\n" + "\n".join(found)
    assert pattern.search('if Path(checkpoint).suffix == ".safetensors":')  # the check sees the old way


def test_a_released_checkpoint_runs_with_a_config(tmp_path):
    """A released SMMCL checkpoint is known by its keys and, given the matching config, loads for inference."""
    from smmcl.api import open_model
    from smmcl.models import build_model
    from smmcl.weights import load_official_smmcl

    dims, depths = (8, 16, 32, 64), (1, 1, 1, 1)
    state = released_state_dict(embed_dims=dims, depths=depths, decoder_channels=32, projector_dim=8, seed=3)
    torch.save({"model": state}, tmp_path / "epoch-500.pth")
    cfg = load_config({"model": {"num_classes": 14, "backbone": {"name": "mscan", "preset": "B", "embed_dims": list(dims),
                                 "depths": list(depths), "drop_path_rate": 0.0},
                                 "decoder": {"name": "lightham", "channels": 32, "ham_out_norm": False},
                                 "projector": {"dim": 8}}, "train": {"device": "cpu"}})
    with pytest.raises(CheckpointError, match="holds no config"):
        open_model(tmp_path / "epoch-500.pth")
    model, _ = open_model(tmp_path / "epoch-500.pth", cfg)
    reference = build_model(cfg.model).eval()
    load_official_smmcl(reference, tmp_path / "epoch-500.pth")
    rgb, aux = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(rgb, aux), reference(rgb, aux))


def test_a_loaded_model_saved_with_another_models_config_is_warned_of(tmp_path):
    """Trial 17 PY10: depth weights saved with a thermal config went through, and every later check trusted the file."""
    import warnings

    import pytest

    import smmcl
    from smmcl.errors import ConfigWarning
    from support import build_tiny_model, tiny_config

    depth = smmcl.save_pretrained(build_tiny_model(tiny_config(), seed=0).eval(), tiny_config(), tmp_path / "d.safetensors")
    model = smmcl.load_pretrained(depth)
    thermal = tiny_config("data.aux_kind=thermal", "data.aux_max=null")
    with pytest.warns(ConfigWarning, match=r"the model was loaded from .*d.safetensors, whose config differs from the one "
                                           r"it is saved with \(data.aux_kind='depth' there, 'thermal' here; "
                                           r"data.aux_max=10000.0 there, None here\)"):
        smmcl.save_pretrained(model, thermal, tmp_path / "t.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        smmcl.save_pretrained(model, smmcl.open_model_file(depth).config, tmp_path / "same.safetensors")
