"""The Python API given a user's mistakes (None for a path, an array where a file is read, a string for a list,
wrong shapes and dtypes): a TypeError or ValueError (or smmcl's own error) whose message says what was expected,
never an error from deep inside PyTorch, Pillow or pathlib."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import smmcl
from smmcl.config import load_config
from smmcl.errors import ConfigError

from support import TINY_CONFIG, build_tiny_model, tiny_config


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    cfg = tiny_config()
    return smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg,
                                 tmp_path_factory.mktemp("w") / "tiny.safetensors")


@pytest.fixture(scope="module")
def model():
    return build_tiny_model(tiny_config(), seed=0).eval()


FRAME, DEPTH = np.zeros((32, 40, 3), np.uint8), np.zeros((32, 40), np.uint16)
T = torch.zeros(1, 3, 32, 32)

CASES = [
    ("Predictor(None)", lambda w, m, tmp: smmcl.Predictor(None), TypeError, "the model file must be a path"),
    ("open_model_file(None)", lambda w, m, tmp: smmcl.open_model_file(None), TypeError, "must be a path"),
    ("evaluate_checkpoint(None)", lambda w, m, tmp: smmcl.evaluate_checkpoint(None), TypeError, "must be a path"),
    ("predict(None, ...)", lambda w, m, tmp: smmcl.predict(None, "a", "b", tmp / "o"), TypeError, "must be a path"),
    ("predict(rgb=array)", lambda w, m, tmp: smmcl.predict(w, FRAME, DEPTH, tmp / "o"), TypeError,
     "rgb must be a path (str or pathlib.Path), got a ndarray; for frames in memory use smmcl.Predictor"),
    ("predict(out=None)", lambda w, m, tmp: smmcl.predict(w, "a", "b", None), TypeError, "out must be a path"),
    ("Predictor 1-D rgb", lambda w, m, tmp: smmcl.Predictor(w)(FRAME.ravel(), DEPTH), ValueError,
     "rgb has shape (3840,); expected one frame (H x W x 3) or a batch"),
    ("Predictor batch rgb, one aux", lambda w, m, tmp: smmcl.Predictor(w)(FRAME[None], DEPTH), ValueError,
     "rgb is a batch of 1 frames but aux is one frame of shape (32, 40)"),
    ("Predictor.colorize(None)", lambda w, m, tmp: smmcl.Predictor(w).colorize(None), TypeError,
     "colorize takes a label map"),
    ("Predictor.colorize(probabilities)", lambda w, m, tmp: smmcl.Predictor(w).colorize(np.full((14, 4, 4), 0.5)),
     ValueError, "colorize takes class ids (H x W integers, or N x H x W), got float64 of shape (14, 4, 4)"),
    ("load_config overrides a string", lambda w, m, tmp: load_config(TINY_CONFIG, "train.lr=0.1"), ConfigError,
     "overrides must be a list of key=value strings, e.g. ['train.lr=0.1']"),
    ("export size a string", lambda w, m, tmp: smmcl.export(w, tmp / "m.onnx", size="64x80"), ValueError,
     "size must be (height, width), e.g. (480, 640), got '64x80'"),
    ("export size one number", lambda w, m, tmp: smmcl.export(w, tmp / "m.onnx", size=(64,)), ValueError,
     "size must be (height, width)"),
    ("export(out=None)", lambda w, m, tmp: smmcl.export(w, None), TypeError, "out must be a path"),
    ("export(out='')", lambda w, m, tmp: smmcl.export(w, ""), ValueError, "out must be a path, got an empty string"),
    ("report(None)", lambda w, m, tmp: smmcl.report(None), TypeError, "run_dir must be a path"),
    ("run_study(None)", lambda w, m, tmp: smmcl.run_study(None), TypeError, "the study file must be a path"),
    # trial 17 API30: nested lists read as a batch of rows; PY09: an overrides string read a character at a time
    ("Predictor frames as nested lists", lambda w, m, tmp: smmcl.Predictor(w)(FRAME.tolist(), DEPTH.tolist()),
     TypeError, "rgb[0] is a list, not a numpy frame: a list given as rgb is a batch of frames"),
    ("open_model overrides a string", lambda w, m, tmp: smmcl.open_model(w, overrides="eval.mode=slide"),
     ConfigError, "overrides must be a list of key=value strings, e.g. ['eval.mode=slide']"),
    # trial 18 G049, G052, G054, G046: an AttributeError or pathlib's TypeError from inside
    ("Predictor protocol a string", lambda w, m, tmp: smmcl.Predictor(w, protocol="slide"), TypeError,
     "protocol must be an InferenceProtocol"),
    ("Predictor protocol a dict", lambda w, m, tmp: smmcl.Predictor(w, protocol={"mode": "slide"}), TypeError,
     "protocol must be an InferenceProtocol"),
    ("analyze_features checkpoints a list", lambda w, m, tmp: smmcl.analyze_features(tiny_config(), [w], tmp / "f"),
     TypeError, "checkpoints must be a mapping of name -> model file"),
    ("analyze_features out None", lambda w, m, tmp: smmcl.analyze_features(tiny_config(), {"a": w}, None),
     TypeError, "out must be a path"),
    ("Predictor channels-first rgb", lambda w, m, tmp: smmcl.Predictor(w)(FRAME.transpose(2, 0, 1), DEPTH), ValueError,
     "channels first (PyTorch's order); frames are channels last"),
    ("model(numpy)", lambda w, m, tmp: m(FRAME, DEPTH), TypeError, "rgb must be a torch tensor"),
    ("model(uint8 tensor)", lambda w, m, tmp: m(T.to(torch.uint8), T), TypeError, "torch.uint8 tensor"),
    ("model(3-D tensor)", lambda w, m, tmp: m(T[0], T[0]), ValueError, "expected B x 3 x H x W"),
    ("model(sizes differ)", lambda w, m, tmp: m(T, torch.zeros(1, 3, 64, 64)), ValueError,
     "must share batch size, height and width"),
    ("model(batches differ)", lambda w, m, tmp: m(torch.zeros(2, 3, 32, 32), T), ValueError,
     "must share batch size"),
    ("dry_run(a number)", lambda w, m, tmp: smmcl.dry_run(3), TypeError,
     "config must be a Config (smmcl.load_config) or the path of a YAML config, got int"),
    ("train(a dict)", lambda w, m, tmp: smmcl.train({"train": {}}), TypeError, "got dict"),
    ("evaluate(model, None)", lambda w, m, tmp: smmcl.evaluate(m, None), TypeError, "got NoneType"),
    ("load_trained with another dataset's config", lambda w, m, tmp: smmcl.load_trained(
        w, load_config(TINY_CONFIG, ["model.num_classes=5", "data.class_names=[]"], dataset_meta=False)),
     smmcl.errors.CheckpointError, "was trained with model.num_classes=14 but the config gives model.num_classes=5"),
]


def test_a_config_path_is_taken_where_a_config_is(weights, tmp_path):
    """README: every call names a config `config` (a Config, or a YAML path where taken)."""
    assert smmcl.model_info(str(TINY_CONFIG))["params"] == smmcl.model_info(tiny_config())["params"]
    assert isinstance(smmcl.load_trained(weights, str(TINY_CONFIG)), torch.nn.Module)


@pytest.mark.parametrize("call, kind, words", [pytest.param(c, k, w, id=i) for i, c, k, w in CASES])
def test_an_api_mistake_says_what_was_expected(weights, model, tmp_path, call, kind, words):
    with pytest.raises(kind) as caught:
        call(weights, model, tmp_path)
    assert words in str(caught.value)
