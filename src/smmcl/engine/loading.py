"""Trained models for PyTorch from model files (`smmcl.model_file`): smmcl weights and training checkpoints, which
carry their config, and released SMMCL checkpoints, which take one."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Tuple

import torch

from smmcl.config import Config, load_config, to_dict
from smmcl.engine.checkpoint import evaluation_weights, load_checkpoint
from smmcl.engine.runtime import resolve_device
from smmcl.model_file import ModelFile, open_model_file
from smmcl.models import build_model
from smmcl.models.compiled import prepare_model
from smmcl.weights import load_official_smmcl
from smmcl.weights.loading import load_state_strict
from smmcl.weights.pretrained import load_pretrained


def load_trained(cfg: Config, checkpoint: str | Path | ModelFile, device: str | torch.device | None = None) -> torch.nn.Module:
    """A model with trained weights, in eval mode: from smmcl weights (which carry their own model config), a
    training checkpoint (model built from `cfg`; the weight average when the run kept one, `train.ema`, as in its
    model.safetensors) or a released SMMCL checkpoint (model built from `cfg`). `cfg.train.channels_last` and
    `cfg.train.compile` apply as in training (compiled with frozen weights, for no_grad inference)."""
    file = checkpoint if isinstance(checkpoint, ModelFile) else open_model_file(checkpoint)
    file.backend("torch")  # an ONNX export or a bare state dict is refused here, by name
    dev = resolve_device(cfg.train.device) if device is None else torch.device(device)
    if file.kind == "weights":
        model = load_pretrained(file.path, device=dev)
    else:
        model = build_model(cfg.model)
        if file.kind == "released":
            load_official_smmcl(model, file.path, strict=True)
        else:
            ckpt = file.checkpoint if file.checkpoint is not None else load_checkpoint(file.path)
            load_state_strict(model, evaluation_weights(ckpt), str(file.path))
    # Compiled for inference: weights frozen into the graph; the wrapper forwards attribute access.
    return prepare_model(model.to(dev).eval(), channels_last=cfg.train.channels_last, compile=cfg.train.compile, freeze=True)


def model_and_config(checkpoint: str | Path | ModelFile, config: Config | str | Path | None = None,
                     overrides: Sequence[str] = (), device: str | torch.device | None = None) -> Tuple[torch.nn.Module, Config]:
    """A trained model and the config it runs under: `config` (a Config, or a YAML file) replaces the one that
    weights files and training checkpoints carry (a released checkpoint needs one); `overrides` apply to either."""
    file = checkpoint if isinstance(checkpoint, ModelFile) else open_model_file(checkpoint)
    if isinstance(config, Config):
        cfg = load_config(to_dict(config), overrides) if overrides else config
    else:
        cfg = load_config(config if config is not None else to_dict(file.require_config()), overrides)
    return load_trained(cfg, file, device=device), cfg
