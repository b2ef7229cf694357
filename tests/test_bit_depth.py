"""A model trained with `data.aux_max` unset (8-bit thermal "needs nothing") read each auxiliary image by its type's
maximum, so any bit depth fitted it: 16-bit depth given to it was read on another scale without a word (trial 6
C256-C265). Its weights now record the type it was trained on, and predict, the Predictor, eval and exports refuse
(or, for live frames, warn of) another one, by the one auxiliary rule."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

import smmcl
from smmcl.errors import AuxUnitsWarning, DatasetError
from smmcl.files import safetensors_metadata

from support import tiny_config

SIZE = (32, 40)


def _dataset(root, aux_dtype):
    rng = np.random.default_rng(0)
    for sub in ("RGB", "Thermal", "Label"):
        (root / sub).mkdir(parents=True)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8)).save(root / "RGB" / f"s{i}.png")
        top = 255 if aux_dtype == np.uint8 else 9000
        Image.fromarray(rng.integers(1, top, SIZE).astype(aux_dtype)).save(root / "Thermal" / f"s{i}.png")
        Image.fromarray(rng.integers(0, 4, SIZE, dtype=np.uint8)).save(root / "Label" / f"s{i}.png")
    (root / "train.txt").write_text("s0\ns1\ns2\ns3\n")
    (root / "test.txt").write_text("s4\ns5\n")


def test_a_model_trained_with_aux_max_unset_refuses_another_bit_depth(tmp_path):
    thermal, depth = tmp_path / "thermal8", tmp_path / "depth16"
    _dataset(thermal, np.uint8)
    _dataset(depth, np.uint16)
    run = tmp_path / "run"
    common = ["data.aux_max=null", "data.aux_dir=Thermal", "data.aux_kind=thermal", "data.crop_size=[32,40]",
              "model.num_classes=4", "data.class_names=[]", "eval.exclude_classes=[]", "train.tensorboard=false"]
    smmcl.train(tiny_config(f"data.root={thermal}", f"train.out_dir={run}", "train.max_iters=1", *common))
    weights = run / "model.safetensors"
    assert safetensors_metadata(weights)["aux_dtype"] == "uint8"

    with warnings.catch_warnings():
        warnings.simplefilter("error", AuxUnitsWarning)
        smmcl.evaluate_checkpoint(weights, progress=False)  # its own kind of images: fine
        smmcl.predict(weights, thermal / "RGB", thermal / "Thermal", tmp_path / "p8", progress=False)
    with pytest.raises(DatasetError, match=r"s\d.png: uint16 auxiliary image for .*model.safetensors, trained on uint8 "
                                           r"ones with data.aux_max unset"):
        smmcl.evaluate_checkpoint(weights, tiny_config(f"data.root={depth}", *common), progress=False)
    with pytest.raises(DatasetError, match=r"uint16 auxiliary image .* for a thermal model trained on uint8 ones"):
        smmcl.predict(weights, depth / "RGB", depth / "Thermal", tmp_path / "p16", progress=False)
    rgb = np.asarray(Image.open(depth / "RGB" / "s0.png"))
    frame16 = np.asarray(Image.open(depth / "Thermal" / "s0.png"))
    with pytest.warns(AuxUnitsWarning, match="trained on uint8 ones"):
        smmcl.Predictor(weights)(rgb, frame16)

    onnx = tmp_path / "m.onnx"
    smmcl.export(weights, onnx, size=SIZE)
    from smmcl.deploy.metadata import read_metadata

    assert json.loads(read_metadata(onnx).preprocessing.to_json())["aux_dtype"] == "uint8"
    with pytest.warns(AuxUnitsWarning, match="trained on uint8 ones"):
        smmcl.Predictor(onnx)(rgb, frame16)
    # Eval of the export refuses them too: it reads the type from the export's preprocessing, not the weights'.
    with pytest.raises(DatasetError, match=r"uint16 auxiliary image for .*m.onnx, trained on uint8 ones"):
        smmcl.evaluate_checkpoint(onnx, tiny_config(f"data.root={depth}", *common), progress=False)
