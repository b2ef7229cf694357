"""Single-process training: CE + weighted SMMCL terms (Eq. 7), AdamW, warm-up + poly, exact resume."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from smmcl.config import Config, to_dict, to_yaml
from smmcl.data.dataset import RGBXDataset
from smmcl.data.sampler import ResumableBatchSampler
from smmcl.engine.checkpoint import (
    atomic_save,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    load_model_state,
    prune_checkpoints,
)
from smmcl.engine.optim import build_optimizer, lr_at, set_lr
from smmcl.engine.runtime import resolve_device, rng_state, seed_everything, set_rng_state
from smmcl.errors import CheckpointError
from smmcl.losses import SMMCLLoss
from smmcl.models import build_model
from smmcl.weights import LoadReport, load_weights, save_pretrained


@dataclass
class Plan:
    """Lengths of a run in iterations, derived from the config and the training set."""

    iters_per_epoch: int
    total_iters: int
    warmup_iters: int
    checkpoint_every: int


def make_plan(cfg: Config, num_train: int) -> Plan:
    ipe = num_train // cfg.train.batch_size
    if ipe == 0:
        raise ValueError(f"train.batch_size={cfg.train.batch_size} exceeds the {num_train} training samples")
    total = cfg.train.max_iters if cfg.train.max_iters is not None else cfg.train.epochs * ipe
    warmup = min(total, round(cfg.train.warmup_epochs * ipe))
    every = cfg.train.checkpoint_every or ipe
    return Plan(ipe, total, warmup, every)


def combine_losses(ce: torch.Tensor, terms: dict[str, torch.Tensor] | None, cfg) -> torch.Tensor:
    """Eq. 7: L = L_ce + l_cm L_cm + l_vis L_vis + l_aux L_aux."""
    if not terms:
        return ce
    return ce + cfg.cm_weight * terms["cm"] + cfg.vis_weight * terms["vis"] + cfg.aux_weight * terms["aux"]


class Trainer:
    """Owns model, optimizer, data order and RNG; `run()` trains to the end or to `stop_at`."""

    def __init__(self, cfg: Config, resume: Optional[str | Path] = None):
        self.cfg = cfg
        seed_everything(cfg.train.seed)
        self.device = resolve_device(cfg.train.device)
        self.num_classes = cfg.model.num_classes
        self.train_set = RGBXDataset(cfg.data, "train", self.num_classes, train=True)
        self.plan = make_plan(cfg, len(self.train_set))
        self.model = build_model(cfg.model).to(self.device)
        self.optimizer = build_optimizer(self.model, cfg.train)
        weights = (cfg.loss.cm_weight, cfg.loss.vis_weight, cfg.loss.aux_weight)
        self.contrast = (
            SMMCLLoss.from_config(cfg.loss, self.num_classes, cfg.data.ignore_index) if any(w > 0 for w in weights) else None
        )
        self.out_dir = Path(cfg.train.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.step = 0
        self.pretrained_report: Optional[LoadReport] = None
        resume_path = self._resume_path(resume)
        if resume_path is not None:
            self._resume(resume_path)
        elif cfg.model.pretrained:
            # A resumed run already holds these weights (and trained them further).
            self.pretrained_report = load_weights(self.model, cfg.model.pretrained)

    # --- checkpoints -------------------------------------------------------------------------
    def _resume_path(self, resume: Optional[str | Path]) -> Optional[Path]:
        if resume is None:
            return None
        # `auto` with nothing saved yet is a fresh start.
        return latest_checkpoint(self.ckpt_dir) if str(resume) == "auto" else Path(resume)

    def _resume(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        load_model_state(self.model, ckpt["model"], path)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not match this model ({exc})") from None
        self.step = int(ckpt["step"])
        set_rng_state(ckpt["rng"])

    def save(self) -> Path:
        path = checkpoint_path(self.ckpt_dir, self.step)
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.step // self.plan.iters_per_epoch,
            "rng": rng_state(),
            "config": to_dict(self.cfg),
        }
        atomic_save(state, path)
        prune_checkpoints(self.ckpt_dir, self.cfg.train.keep_checkpoints)
        return path

    # --- one iteration -----------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, float]:
        rgb = batch["rgb"].to(self.device, non_blocking=True)
        aux = batch["aux"].to(self.device, non_blocking=True)
        label = batch["label"].to(self.device, non_blocking=True)
        lr = lr_at(self.step, self.cfg.train.lr, self.plan.total_iters, self.plan.warmup_iters, self.cfg.train.poly_power)
        set_lr(self.optimizer, lr)
        self.model.train()
        if self.contrast is None:
            logits, terms = self.model(rgb, aux), None
        else:
            logits, vis_embed, aux_embed = self.model.forward_train(rgb, aux)
            terms = self.contrast(vis_embed, aux_embed, label)
        ce = F.cross_entropy(logits, label, ignore_index=self.cfg.data.ignore_index)
        loss = combine_losses(ce, terms, self.cfg.loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        stats = {"loss": loss.detach(), "ce": ce.detach()}
        if terms:
            stats.update({k: v.detach() for k, v in terms.items()})
        out = {k: float(v) for k, v in stats.items()}
        out["lr"] = lr
        return out

    def dry_run(self) -> dict:
        """One training step on the first batch, writing nothing: proves data, model, loss and optimizer fit."""
        t0 = time.perf_counter()
        batch = next(iter(self._loader(self.step + 1)))
        stats = self.train_step(batch)
        self.step -= 1  # nothing was trained for real
        stats["seconds"] = time.perf_counter() - t0
        stats["batch_shape"] = list(batch["rgb"].shape)
        return stats

    def schedule(self, points: int = 5) -> list[tuple[int, float]]:
        """(iteration, learning rate) at the start, the end of warm-up and evenly after, for the plan printout."""
        p, base = self.plan, self.cfg.train.lr
        steps = sorted({0, p.warmup_iters, *(p.warmup_iters + k * (p.total_iters - p.warmup_iters) // points for k in range(1, points)), p.total_iters - 1})
        return [(k, lr_at(k, base, p.total_iters, p.warmup_iters, self.cfg.train.poly_power)) for k in steps if 0 <= k < p.total_iters]

    # --- the loop ----------------------------------------------------------------------------
    def _loader(self, end: int) -> DataLoader:
        sampler = ResumableBatchSampler(len(self.train_set), self.cfg.train.batch_size, self.cfg.train.seed, self.step, end)
        workers = self.cfg.data.num_workers
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=workers,
            persistent_workers=False,
            # Its own generator, so creating the loader never draws on the model's RNG stream.
            generator=torch.Generator().manual_seed(self.cfg.train.seed),
            pin_memory=self.device.type == "cuda",
        )

    def run(self, stop_at: Optional[int] = None) -> dict:
        """Train until the planned end (or until iteration `stop_at`, as if killed there)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.yaml").write_text(to_yaml(self.cfg))
        end = self.plan.total_iters if stop_at is None else min(stop_at, self.plan.total_iters)
        log_path = self.out_dir / "log.jsonl"
        last: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = tqdm(
            total=self.plan.total_iters, initial=self.step, desc=self.cfg.name, unit="it",
            disable=not self.cfg.train.progress, dynamic_ncols=True,
        )
        with bar, log_path.open("a") as log:
            for batch in self._loader(end):
                last = self.train_step(batch)
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()}, refresh=False)
                if self.step % self.cfg.train.log_every == 0 or self.step == end:
                    log.write(json.dumps({"step": self.step, **last}) + "\n")
                    log.flush()
                if self.step % self.plan.checkpoint_every == 0 or self.step == self.plan.total_iters:
                    self.save()
        if self.step == self.plan.total_iters:
            # Deployable weights with their config, apart from the resumable training checkpoints.
            save_pretrained(self.model, self.cfg, self.out_dir / "model.safetensors")
        last["seconds"] = time.perf_counter() - t0
        last["step"] = self.step
        return last


def train(cfg: Config, resume: Optional[str | Path] = None) -> Trainer:
    """Train a model as configured (resuming from a checkpoint path or `auto`); returns the trainer."""
    trainer = Trainer(cfg, resume=resume)
    trainer.run()
    return trainer
