"""Fixtures of the deployment tests."""

from __future__ import annotations

import pytest

import smmcl
from support import TINY_CONFIG, build_tiny_model


@pytest.fixture(scope="module")
def weights(indoor_data, tmp_path_factory):
    """The tiny model's weights (seed 0), saved with its config on `indoor_data`: a model file as a run leaves one."""
    cfg = smmcl.load_config(TINY_CONFIG, [f"data.root={indoor_data}"])
    path = tmp_path_factory.mktemp("weights") / "model.safetensors"
    smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, path)
    return path
