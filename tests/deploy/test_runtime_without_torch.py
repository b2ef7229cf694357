"""A runtime without PyTorch: `smmcl.Predictor` on an ONNX export needs numpy, Pillow, OmegaConf and ONNX Runtime or
OpenVINO alone; its numpy preprocessing is the evaluation dataset's, bit for bit; the CLI names the extra a command
needs; and the package's wheel, installed without its extras, runs the Predictor where no PyTorch is installed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import venv

import numpy as np
import pytest
from PIL import Image
import torch

from smmcl.data.preprocess import Preprocessing
from smmcl.data.transforms import aux_full_scale, normalize, to_tensor_aux, to_tensor_rgb
from smmcl.deploy.predictor import Predictor

from support import ROOT, TINY_CONFIG, export_decided_tiny

pytest.importorskip("onnxruntime")

# What a process without PyTorch lacks: PyTorch, and what the `torch` and `deploy` extras bring beside it.
BLOCK = "import sys\nfor m in ('torch', 'onnx', 'onnxscript', 'safetensors', 'tensorboard'): sys.modules[m] = None\n"
HAVE_OPENVINO = subprocess.run([sys.executable, "-c", "import openvino"], capture_output=True).returncode == 0
RUNTIMES = ["onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    not HAVE_OPENVINO, reason="OpenVINO is not installed (the openvino extra)"))]
# ONNX Runtime, OpenVINO and PyTorch compute the same fp32 graph and differ in the order of float32 sums: at most
# 1.9e-5 between their logits (which reach ~5) measured on 192,000 pixels of this model; an argmax may legitimately
# differ only where the two best logits are closer than that. FP32_GAP is 50x the measured gap; 0.02% of pixels lie
# within 1e-4 of a tie, and every label was equal there too.
FP32_GAP = 1e-3


@pytest.fixture(scope="module")
def exported(indoor_data, tmp_path_factory):
    """The tiny model's weights, their export by `smmcl export`, and frames of the synthetic set."""
    out = tmp_path_factory.mktemp("torchless")
    weights, onnx_path, cfg = export_decided_tiny(out, indoor_data)
    frames = out / "frames.npz"
    np.savez(frames, rgb=np.stack([np.asarray(Image.open(indoor_data / "RGB" / f"scene_0000{i}.png")) for i in range(3)]),
             depth=np.stack([np.asarray(Image.open(indoor_data / "Depth" / f"scene_0000{i}.png")) for i in range(3)]))
    return weights, onnx_path, frames


def predict_script(onnx_path, frames, out, backend: str) -> str:
    """A script that predicts the frames with a Predictor on `backend` and writes labels and what it imported."""
    return textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import smmcl
        f = np.load({str(frames)!r})
        predictor = smmcl.Predictor({str(onnx_path)!r}, backend={backend!r})
        labels, probs = predictor(f["rgb"], f["depth"], probs=True)
        one = predictor(f["rgb"][0][..., ::-1].copy(), f["depth"][0], bgr=True)
        np.savez({str(out)!r}, labels=labels, probs=probs, one=one)
        heavy = sorted(m for m in ("torch", "onnx", "safetensors", "tensorboard") if sys.modules.get(m) is not None)
        print(json.dumps({{"backend": predictor.backend, "imported": heavy}}))
    """)


def assert_torch_labels(weights, frames, labels):
    """`labels` are the PyTorch Predictor's on the frames wherever the argmax is decided: its two best logits further
    apart than `FP32_GAP`: (nearly) every pixel. Measured: all labels equal, near-ties included."""
    f = np.load(frames)
    predictor = Predictor(weights)
    want = predictor(f["rgb"], f["depth"])
    rgb, aux = zip(*(predictor.preprocessing.pair(r, d) for r, d in zip(f["rgb"], f["depth"])))
    with torch.no_grad():
        top2 = np.sort(predictor.model(torch.stack(rgb), torch.stack(aux)).numpy(), axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > FP32_GAP
    assert labels.shape == want.shape == (3, 64, 80) and labels.dtype == want.dtype == np.uint8
    assert decided.mean() > 0.99 and np.array_equal(labels[decided], want[decided])


@pytest.mark.parametrize("dtype,aux_max,aux_scale", [(np.uint16, 10000.0, 1.0), (np.uint16, None, 1.0),
                                                     (np.uint8, None, 1.0), (np.uint16, 10000.0, 1000.0),
                                                     (np.float32, 10000.0, 1000.0), (np.float64, None, 1.0)])
def test_numpy_preprocessing_is_the_datasets_bit_for_bit(dtype, aux_max, aux_scale):
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    if np.issubdtype(dtype, np.integer):
        aux = rng.integers(0, min(np.iinfo(dtype).max, 12000) + 1, (37, 53), dtype=dtype)
    else:
        aux = (rng.random((37, 53)) * (12.0 if aux_scale != 1 else 1.0)).astype(dtype)
        aux[0, :3] = [np.nan, np.inf, -np.inf]  # holes, read as 0
    prep = Preprocessing(aux_max=aux_max)
    # The evaluation dataset's PyTorch path (smmcl.data.dataset: to_tensor_*, then eval_transform's normalize).
    clean = np.where(np.isfinite(aux), aux, 0).astype(aux.dtype)
    full = aux_full_scale(aux.dtype, aux_max) / aux_scale
    want_rgb, want_aux = normalize(to_tensor_rgb(rgb)).numpy(), normalize(to_tensor_aux(clean, full)).numpy()
    with pytest.warns() if not np.isfinite(aux).all() else contextlib.nullcontext():
        got_rgb, got_aux = prep.pair_arrays(rgb, aux, aux_scale=aux_scale, on_units=lambda _: None)
    assert got_rgb.dtype == got_aux.dtype == np.float32 and got_rgb.shape == got_aux.shape == (3, 37, 53)
    assert np.array_equal(got_rgb.view(np.uint32), want_rgb.view(np.uint32))  # the same bits, not just close
    assert np.array_equal(got_aux.view(np.uint32), want_aux.view(np.uint32))
    bgr = prep.rgb_array(rgb[..., ::-1].copy(), bgr=True)
    assert np.array_equal(bgr.view(np.uint32), want_rgb.view(np.uint32))
    # Several channels: the first three, or one repeated; the tensors PyTorch callers get are the same arrays.
    many = np.repeat(clean[..., None], 4, 2) if aux_scale == 1 else clean[..., None]
    got_many = prep.aux_array(many, aux_scale=aux_scale, on_units=lambda _: None)
    assert np.array_equal(got_many.view(np.uint32), normalize(to_tensor_aux(many, full)).numpy().view(np.uint32))
    assert torch.equal(prep.pair(rgb, clean, aux_scale=aux_scale, on_units=lambda _: None)[1], torch.from_numpy(want_aux))


@pytest.mark.parametrize("backend", RUNTIMES)
def test_predictor_runs_an_export_without_pytorch(exported, backend, tmp_path):
    weights, onnx_path, frames = exported
    out = tmp_path / "labels.npz"
    done = subprocess.run([sys.executable, "-c", BLOCK + predict_script(onnx_path, frames, out, backend)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"backend": backend, "imported": []}
    got = np.load(out)
    assert_torch_labels(weights, frames, got["labels"])
    np.testing.assert_allclose(got["probs"].sum(1), 1.0, atol=1e-5)
    assert np.array_equal(got["one"], got["labels"][0])


def test_the_cli_names_the_extra_a_command_needs(exported, tmp_path):
    weights, onnx_path, _ = exported
    for args in (["train", str(TINY_CONFIG), f"train.out_dir={tmp_path / 'run'}"], ["eval", "--checkpoint", str(weights)],
                 ["info", "--checkpoint", str(weights)]):
        done = subprocess.run([sys.executable, "-c", BLOCK + f"from smmcl.cli import main; sys.exit(main({args!r}))"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        # PyTorch, or safetensors (smmcl weights), which the same extra brings.
        assert re.search(r"^smmcl: error: this needs (PyTorch|safetensors), which is not installed: "
                         r"pip install 'smmcl\[torch\]'", done.stderr, re.M), done.stderr


def test_cli_predict_on_an_export_without_pytorch(exported, indoor_data, tmp_path):
    _, onnx_path, _ = exported
    rgb, depth = indoor_data / "RGB" / "scene_00001.png", indoor_data / "Depth" / "scene_00001.png"
    args = ["predict", "--checkpoint", str(onnx_path), "--rgb", str(rgb), "--aux", str(depth), "--out", str(tmp_path / "p")]
    done = subprocess.run([sys.executable, "-c", BLOCK + f"from smmcl.cli import main; sys.exit(main({args!r}))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p" / "scene_00001.png").is_file()


def test_a_wheel_installed_without_extras_runs_the_predictor(exported, tmp_path):
    """The package's wheel in a fresh venv with only its own dependencies and a runtime: no PyTorch there at all.
    pip takes the runtime's wheels from its cache (or the index); ~25 s here with the cache warm."""
    weights, onnx_path, frames = exported
    source, wheels = tmp_path / "source", tmp_path / "dist"  # built from a copy: a build writes build/ beside its source
    (source / "src").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src" / "smmcl", source / "src" / "smmcl", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, timeout=300)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}  # nothing of this venv's
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", *map(str, wheels.glob("smmcl-*.whl"))], check=True, capture_output=True, timeout=300,
                   env=clean)
    runtimes = ["onnxruntime"] + (["openvino"] if HAVE_OPENVINO else [])
    base = _base_dependencies()
    done = subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), *base, *runtimes], capture_output=True, text=True,
                          timeout=600, env=clean)
    if done.returncode != 0:  # no index and no cached wheels here: nothing about the package itself
        pytest.skip(f"pip could not install {' '.join(base + runtimes)}: {done.stderr.strip().splitlines()[-1:]}")
    have_torch = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('torch') is not None)"],
                                capture_output=True, text=True, check=True, env=clean).stdout.strip()
    assert have_torch == "False"
    for backend in runtimes:
        out = tmp_path / f"{backend}.npz"
        done = subprocess.run([str(python), "-c", predict_script(onnx_path, frames, out, backend)], capture_output=True,
                              text=True, timeout=300, cwd=tmp_path, env=clean)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1]) == {"backend": backend, "imported": []}
        assert_torch_labels(weights, frames, np.load(out)["labels"])
    smmcl_cli = env_dir / "bin" / "smmcl"
    frames_dir, f = tmp_path / "frames", np.load(frames)
    for sub, array in (("rgb", f["rgb"][0]), ("depth", f["depth"][0])):
        (frames_dir / sub).mkdir(parents=True)
        Image.fromarray(array).save(frames_dir / sub / "f.png")
    done = subprocess.run([str(smmcl_cli), "--quiet", "predict", "--checkpoint", str(onnx_path), "--rgb",
                           str(frames_dir / "rgb"), "--aux", str(frames_dir / "depth"), "--out", str(tmp_path / "cli")],
                          capture_output=True, text=True, timeout=300, env=clean)  # the command line too, torch-free
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cli" / "f.png")), np.load(tmp_path / "onnxruntime.npz")["one"])
    done = subprocess.run([str(smmcl_cli), "train", str(TINY_CONFIG)], capture_output=True, text=True, timeout=120, env=clean)
    assert done.returncode == 2 and "pip install 'smmcl[torch]'" in done.stderr and "Traceback" not in done.stderr
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    size = subprocess.run(["du", "-sm", str(site)], capture_output=True, text=True).stdout.split()[0]
    print(f"torch-free runtime venv ({', '.join(runtimes)}): site-packages {size} MiB")


def _base_dependencies() -> list:
    """The package's own dependencies, as pyproject.toml lists them (the wheel was installed with --no-deps)."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(d.split(">")[0].split("=")[0].strip().lower() == "torch" for d in deps)
    return list(deps)
