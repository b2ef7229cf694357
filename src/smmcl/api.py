"""The small public Python API; the CLI calls these and nothing deeper."""

from __future__ import annotations

from pathlib import Path

import torch

from smmcl.config import Config, load_config
from smmcl.data.dataset import RGBXDataset
from smmcl.engine.checkpoint import load_checkpoint, load_model_state
from smmcl.engine.evaluate import evaluate
from smmcl.engine.runtime import resolve_device
from smmcl.models import build_model


def load_trained(cfg: Config, checkpoint: str | Path, device: str | torch.device | None = None) -> torch.nn.Module:
    """A model built from `cfg` with the weights of a training checkpoint, in eval mode."""
    dev = resolve_device(cfg.train.device) if device is None else torch.device(device)
    model = build_model(cfg.model)
    ckpt = load_checkpoint(Path(checkpoint))
    load_model_state(model, ckpt["model"], checkpoint)
    return model.to(dev).eval()


def evaluate_checkpoint(cfg: Config | str | Path, checkpoint: str | Path, split: str | None = None, progress: bool = True) -> dict:
    """Scores of a checkpoint on a split of the configured dataset (confusion matrix over the whole split)."""
    cfg = cfg if isinstance(cfg, Config) else load_config(cfg)
    split = split or cfg.eval.split
    model = load_trained(cfg, checkpoint)
    dataset = RGBXDataset(cfg.data, split, cfg.model.num_classes, train=False)
    return evaluate(
        model, dataset, cfg.model.num_classes, batch_size=cfg.eval.batch_size, ignore_index=cfg.data.ignore_index,
        exclude=cfg.eval.exclude_classes, progress=progress,
    )
