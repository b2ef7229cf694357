"""Trained models from files: smmcl weights (.safetensors, which carry their config) or training checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Tuple

import torch

from smmcl.config import Config, load_config, to_dict
from smmcl.engine.checkpoint import evaluation_weights, load_checkpoint, load_model_state
from smmcl.engine.precision import prepare_model
from smmcl.engine.runtime import resolve_device
from smmcl.models import build_model
from smmcl.weights.pretrained import load_pretrained, read_pretrained_config


def load_trained(cfg: Config, checkpoint: str | Path, device: str | torch.device | None = None) -> torch.nn.Module:
    """A model with trained weights, in eval mode: from smmcl weights (.safetensors, which carry their
    own model config) or from a training checkpoint (model built from `cfg`; the weight average when the run
    kept one, `train.ema`, as in its model.safetensors). `cfg.train.channels_last`
    and `cfg.train.compile` apply as in training (compiled with frozen weights, for no_grad inference)."""
    dev = resolve_device(cfg.train.device) if device is None else torch.device(device)
    if Path(checkpoint).suffix == ".safetensors":
        model = load_pretrained(checkpoint, device=dev)
    else:
        model = build_model(cfg.model)
        load_model_state(model, evaluation_weights(load_checkpoint(Path(checkpoint))), checkpoint)
    # Compiled for inference: weights frozen into the graph; the wrapper forwards attribute access.
    return prepare_model(model.to(dev).eval(), channels_last=cfg.train.channels_last, compile=cfg.train.compile, freeze=True)


def model_and_config(checkpoint: str | Path, config: str | Path | None = None, overrides: Sequence[str] = (),
                     device: str | None = None) -> Tuple[torch.nn.Module, Config]:
    """A trained model and its config: weights files and training checkpoints carry their config;
    `config` (a YAML) replaces it."""
    if config is not None:
        cfg = load_config(config, overrides)
    elif Path(checkpoint).suffix == ".safetensors":
        cfg = load_config(to_dict(read_pretrained_config(checkpoint)), overrides)
    else:
        cfg = load_config(load_checkpoint(Path(checkpoint)).get("config") or {}, overrides)
    return load_trained(cfg, checkpoint, device=device), cfg
