"""What the tests share besides fixtures (those are in tests/conftest.py): paths, the tiny config and the one
way to build its model, and small helpers. pyproject's `[tool.pytest.ini_options] pythonpath` puts tests/ on
the path, so a test writes `from support import ...`.

Beside this file:
    tiny.yaml              the tiny config (TINY_CONFIG)
    ddp_worker.py          one rank of the DDP checks, run by torchrun (engine/test_distributed.py)
    imagenet_files.py      state dicts laid out as SegFormer's and torchvision's ImageNet files (models/, weights/)
    release_layouts.py     miniature datasets in each release's layout (data/test_datasets.py)
    released_reference.py  the released SMMCL model in plain functional ops (weights/test_weights.py)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from smmcl.config import Config, load_config
from smmcl.models import Segmentor, build_model

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parents[1]  # the repository: configs/, studies/, src/, README.md
TINY_CONFIG = SUPPORT / "tiny.yaml"  # a model small enough for unit tests on two CPU cores
DDP_WORKER = SUPPORT / "ddp_worker.py"


def tiny_config(*overrides: str) -> Config:
    """The tiny config with `overrides` (`key=value`, as on the command line)."""
    return load_config(TINY_CONFIG, list(overrides))


def build_tiny_model(cfg: Config | None = None, *, seed: int | None = None) -> Segmentor:
    """The model of `cfg` (the tiny config as it is when None), in train mode as built; with `seed`, its weights
    are drawn right after `torch.manual_seed(seed)`. Every test model made from the tiny config is built here;
    the `tiny_model` fixture is this one with seed 0, in eval mode."""
    if seed is not None:
        torch.manual_seed(seed)
    return build_model((cfg if cfg is not None else tiny_config()).model)


def count(module: nn.Module) -> int:
    """Number of parameters (elements, not tensors)."""
    return sum(p.numel() for p in module.parameters())


def read_log(run_dir: Path) -> list[dict]:
    """A run folder's training log (`log.jsonl`), one dict per line."""
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


def stage_outputs(backbone: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """A backbone's stages run one at a time (as the dual encoder runs them, with cross-modal modules between),
    each on the previous one's output; a test compares them with the backbone's own forward."""
    outs = []
    with torch.no_grad():
        for stage in backbone.stages:
            x = stage(x)
            outs.append(x)
    return outs


def export_decided_tiny(out: Path, data_root: Path) -> tuple:
    """The tiny model with its class biases set apart (so that the argmax is decided, as in a trained model), saved
    as smmcl weights and exported at 64x80 by `smmcl export`: (weights, ONNX file, config), both in `out`."""
    from smmcl.cli import main
    from smmcl.weights import save_pretrained

    cfg = load_config(TINY_CONFIG, [f"data.root={data_root}"])
    model = build_tiny_model(cfg, seed=0)
    with torch.no_grad():
        model.decoder.conv_seg.bias.copy_(torch.linspace(-0.5, 0.5, cfg.model.num_classes))
    weights = save_pretrained(model, cfg, out / "tiny.safetensors")
    onnx_path = out / "tiny.onnx"
    assert main(["--quiet", "export", "--checkpoint", str(weights), "--out", str(onnx_path), "--size", "64x80"]) == 0
    return weights, onnx_path, cfg
