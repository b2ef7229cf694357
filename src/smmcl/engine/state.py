"""The state of a training run that a checkpoint holds and a resume restores, bit for bit.

Weights, optimizer moments, the fp16 loss scaler, the average of weights (`train.ema`), the objective's own
state (the region contrast's memory), the global RNG streams and the contrast's generator (per rank under
DDP), and the step. Checkpoints are written between iterations only; a run killed inside one redoes that
iteration on resume (docs/cli.md, "train").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from smmcl.config import Config, to_dict
from smmcl.engine import distributed
from smmcl.engine.checkpoint import atomic_save, load_checkpoint
from smmcl.weights.loading import load_state_strict
from smmcl.engine.distributed import DistContext
from smmcl.engine.run_dir import config_changes
from smmcl.engine.runtime import rng_state, set_rng_state
from smmcl.errors import CheckpointError, ConfigError
from smmcl.losses import Objective


@dataclass
class TrainingState:
    """What changes while a run trains; `save` writes it, `restore` reads it back (every rank calls both)."""

    ctx: DistContext
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Optional[torch.amp.GradScaler]
    ema: Optional[AveragedModel]
    objective: Objective
    contrast_generator: torch.Generator
    step: int = 0
    # Training keys that differ from the restored checkpoint's config: key -> (old, new).
    config_changes: dict = field(default_factory=dict)

    def save(self, path: Path, cfg: Config, epoch: int) -> None:
        """Write the checkpoint of the current step to `path` (rank 0; the others only take part in the gathers)."""
        world = self.ctx.world_size
        rngs = distributed.all_gather_objects(rng_state())
        # Per rank too: each rank's contrast samples its own stream and (region contrast) keeps its own memory.
        generators = distributed.all_gather_objects(self.contrast_generator.get_state())
        objectives = distributed.all_gather_objects({k: v.cpu() for k, v in self.objective.state_dict().items()})
        if not self.ctx.is_main:
            return
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": epoch,
            # Rank 0's state (what a single process resumes with) and, under DDP, every rank's in rank order.
            "rng": rngs[0],
            "rng_ranks": rngs if world > 1 else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            # train.ema: the average of weights (rank 0's; evaluation reads it, `evaluation_weights`); "model"
            # above stays the trained weights, which a resume continues from.
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "objective": objectives[0],
            "objective_ranks": objectives if world > 1 else None,
            "contrast_rng": generators[0],
            "contrast_rng_ranks": generators if world > 1 else None,
            "config": to_dict(cfg),
        }
        atomic_save(state, path)

    def restore(self, path: Path, cfg: Config, allow_config_change: bool = False) -> None:
        """Continue from the checkpoint at `path`; a config whose training keys differ from the checkpoint's is
        refused unless `allow_config_change` (the change is then kept in `config_changes` for the log)."""
        rank, world = self.ctx.rank, self.ctx.world_size
        # Every rank reads the same file onto its own device (and so starts from the same weights).
        ckpt = load_checkpoint(path, map_location=self.ctx.device)
        changes = config_changes(ckpt.get("config") or {}, to_dict(cfg)) if ckpt.get("config") else {}
        bare = lambda state: {k.replace("module.", "").replace("_orig_mod.", ""): tuple(v.shape)  # noqa: E731
                              for k, v in state.items()}  # wrapped (DDP) or compiled names: the same tensors
        fits = bare(ckpt["model"]) == bare(self.model.state_dict())
        architecture = [k for k in changes if k.startswith("model.")]
        if architecture and not fits:  # no flag makes another model's weights fit this one
            shown = "; ".join(f"{k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in architecture[:8])
            raise ConfigError(f"{path} is a checkpoint of another model ({shown}): a resume continues the same model; "
                              f"train a new run into another folder (model.pretrained= starts it from weights that "
                              f"fit)")
        if changes and not allow_config_change:
            shown = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(changes.items())[:8])
            raise ConfigError(f"{path} was trained with another config ({shown}); resume with the same config, "
                              f"or pass --allow-config-change (allow_config_change=True) to continue with the new "
                              f"values (recorded in log.jsonl)")
        self.config_changes = changes
        load_state_strict(self.model, ckpt["model"], str(path))
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not match this model ({exc})") from None
        self.step = int(ckpt["step"])
        ranks = ckpt.get("rng_ranks")
        if world == 1:
            set_rng_state(_on_cpu(ckpt["rng"]))
        elif ranks is not None and len(ranks) == world:
            set_rng_state(_on_cpu(ranks[rank]))
        else:
            # Another number of ranks than the run had: no exact continuation exists; fresh per-rank streams.
            torch.manual_seed(distributed.rank_seed(cfg.train.seed, rank, self.step))
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None and ckpt.get("ema"):
            # The average as it was at that step (a run that did not keep one, resumed with train.ema switched
            # on by --allow-config-change, starts its average from the weights at its next step).
            try:
                self.ema.load_state_dict(ckpt["ema"])
            except RuntimeError as exc:
                raise CheckpointError(f"{path}: its average of weights (train.ema) does not match this model "
                                      f"({str(exc).splitlines()[-1].strip()})") from None
        objective = ckpt.get("objective_ranks") or [ckpt.get("objective")]
        own = objective[rank] if len(objective) == world else objective[0]
        if own:
            self.objective.load_state_dict(own)
        generators = ckpt.get("contrast_rng_ranks") or [ckpt.get("contrast_rng")]
        if generators[0] is not None and len(generators) == world:
            self.contrast_generator.set_state(generators[rank].cpu())


def _on_cpu(state: dict) -> dict:
    """An RNG state with its byte tensors back on the CPU (checkpoints are loaded onto the training device)."""
    return {k: [t.cpu() for t in v] if isinstance(v, (list, tuple)) else v.cpu() for k, v in state.items()}
