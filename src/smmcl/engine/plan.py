"""How long a run is: iterations per epoch, total, warm-up and checkpoint spacing, from the config.

One iteration is one optimizer step over `train.accumulate` micro-batches of `train.batch_size` (paper
Sec. 4.1 trains with a batch of 16; docs/configuration.md explains the effective batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from smmcl.config import Config
from smmcl.engine.optim import lr_at


@dataclass
class Plan:
    """Lengths of a run in iterations, derived from the config and the training set."""

    iters_per_epoch: int
    total_iters: int
    warmup_iters: int
    checkpoint_every: int


def effective_batch(cfg: Config) -> int:
    """Samples per iteration (one optimizer step): `train.batch_size` (the global batch of one forward pass,
    split across the ranks) x `train.accumulate` (micro-batches per step). The plan, the learning-rate
    schedule and the logs count these iterations."""
    return cfg.train.batch_size * cfg.train.accumulate


def batch_warning(cfg: Config) -> Optional[str]:
    """A warning when the effective batch differs from the batch the config's setting was published with
    (`train.paper_batch`; the dataset presets of the paper's datasets set the paper's 16,
    docs/configuration.md); None when it matches or no batch is stated."""
    paper, t = cfg.train.paper_batch, cfg.train
    if paper is None or effective_batch(cfg) == paper:
        return None
    hint = ""
    if paper % t.batch_size == 0:
        hint = f"; to train at the paper's batch with this micro-batch: train.accumulate={paper // t.batch_size}"
    return (f"the effective batch is {effective_batch(cfg)} (train.batch_size={t.batch_size} x train.accumulate="
            f"{t.accumulate}), but the paper trained this setting with {paper} (train.paper_batch), for which its "
            f"learning rate and schedule were set{hint}")


def make_plan(cfg: Config, num_train: int) -> Plan:
    batch = effective_batch(cfg)
    ipe = num_train // batch
    if ipe == 0:
        shown = (f"train.batch_size x train.accumulate = {cfg.train.batch_size} x {cfg.train.accumulate} = {batch}"
                 if cfg.train.accumulate > 1 else f"train.batch_size={batch}")
        raise ValueError(f"{shown} exceeds the {num_train} training samples")
    total = cfg.train.max_iters if cfg.train.max_iters is not None else cfg.train.epochs * ipe
    warmup = min(total, round(cfg.train.warmup_epochs * ipe))
    every = cfg.train.checkpoint_every or ipe
    return Plan(ipe, total, warmup, every)


def lr_points(plan: Plan, cfg: Config, points: int = 5) -> list[tuple[int, float]]:
    """(iteration, learning rate) at the start, the end of warm-up and evenly after, for the plan printout."""
    p, t = plan, cfg.train
    steps = sorted({0, p.warmup_iters, p.total_iters - 1,
                    *(p.warmup_iters + k * (p.total_iters - p.warmup_iters) // points for k in range(1, points))})
    return [(k, lr_at(k, t.lr, p.total_iters, p.warmup_iters, t.poly_power)) for k in steps if 0 <= k < p.total_iters]
