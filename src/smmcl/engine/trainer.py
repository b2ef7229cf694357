"""Training on Eq. 7 (`smmcl.losses.Objective`): AdamW, warm-up + poly, exact resume; one process or DDP.

Under `torchrun` every rank builds the same Trainer: `train.batch_size` is the global batch, split evenly
across the ranks, and the model is wrapped in DistributedDataParallel (see `smmcl.engine.distributed`).

One iteration is one optimizer step over `train.accumulate` micro-batches of `train.batch_size` (see
`effective_batch`); checkpoints are written between iterations only, so a run killed inside an iteration
redoes that whole iteration on resume, from the same samples, augmentation seeds and RNG states. With
`train.ema` on, an average of the weights (`AveragedModel`) is kept beside them, in the checkpoints too,
and is what validation scores and `model.safetensors` holds (README "Configuration").
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from smmcl.config import Config, to_dict, to_yaml
from smmcl.data.dataset import RGBXDataset
from smmcl.data.sampler import ResumableBatchSampler
from smmcl.engine import distributed
from smmcl.engine.checkpoint import (
    atomic_save,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    load_model_state,
    prune_checkpoints,
)
from smmcl.engine.distributed import RankSlice
from smmcl.engine.evaluate import evaluate
from smmcl.engine.inference import InferenceProtocol
from smmcl.engine.optim import build_optimizer, lr_at
from smmcl.engine.precision import grad_scaler, prepare_model, to_channels_last
from smmcl.engine.run_dir import check_writable, claim_run_dir, config_changes, remove_partial_saves, writing
from smmcl.engine.run_log import RunLog, accumulate, run_summary
from smmcl.engine.runtime import rng_state, seed_everything, set_rng_state
from smmcl.engine.step import shared_encoder_parameters, train_step
from smmcl.errors import CheckpointError, ConfigError
from smmcl.losses import build_objective, contrast_scale
from smmcl.models import build_model
from smmcl.progress import track
from smmcl.weights import LoadReport, load_weights, save_pretrained

# The figures the progress bar (or a log's progress line) shows; log.jsonl has every logged figure.
PROGRESS_KEYS = ("loss", "ce", "cm", "vis", "aux", "lr", "val_miou")


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
    (`train.paper_batch`; the dataset presets of the paper's datasets set the paper's 16, README
    "Configuration"); None when it matches or no batch is stated."""
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


def build_ema(model: nn.Module, cfg: Config) -> Optional[AveragedModel]:
    """`train.ema` (not in the paper; off by default): PyTorch's exponential moving average of the parameters
    and buffers (BatchNorm running statistics) of `model`, `AveragedModel` with `get_ema_multi_avg_fn`; None
    when off. `train_step` updates it after every optimizer step; its first update copies the weights. Its
    counter stays on the CPU, so an update never waits for the device."""
    if not cfg.train.ema.enabled:
        return None
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema.decay), use_buffers=True)
    ema.module.requires_grad_(False)
    # The memory format training and validation use (channels_last), as the trained model gets below.
    prepare_model(ema.module, cfg.train.channels_last)
    return ema


def contrast_seed(seed: int, rank: int = 0) -> int:
    """Seed of the contrast's own sampling generator, apart from the stream dropout and augmentation use."""
    return int(np.random.SeedSequence([seed, 0x534D4D43, rank]).generate_state(1)[0])


class Trainer:
    """Owns model, optimizer, data order and RNG; `run()` trains to the end or to `stop_at`.

    Under torchrun (WORLD_SIZE > 1) it is one rank of a DDP job: `self.model` stays the plain module
    (optimizer groups, checkpoints, validation) and `self.net`, what the step calls, is its
    DistributedDataParallel wrapper. Only rank 0 (`self.ctx.is_main`) writes files.
    """

    def __init__(self, cfg: Config, resume: Optional[str | Path] = None, overwrite: bool = False,
                 allow_config_change: bool = False):
        """`resume`: a checkpoint path or `auto`. `overwrite`: replace another run found in `train.out_dir`
        (refused otherwise). `allow_config_change`: resume although training keys of the config differ from
        the checkpoint's (refused otherwise; the change is then recorded in the log)."""
        self.cfg = cfg
        self.overwrite = overwrite
        self.allow_config_change = allow_config_change
        # Training keys that differ from the resumed checkpoint's config: key -> (old, new).
        self.config_changes: dict = {}
        self.resumed_from: Optional[Path] = None
        # Checked before any rendezvous too, so a bad batch size fails at once on every rank instead of hanging.
        distributed.split_batch_size(cfg.train.batch_size, distributed.env_world_size())
        self.ctx = distributed.setup(cfg.train.device)
        world = self.ctx.world_size
        self.local_batch_size = distributed.split_batch_size(cfg.train.batch_size, world)
        if world > 1 and cfg.model.norm == "syncbn" and self.ctx.device.type != "cuda":
            raise ValueError("model.norm=syncbn needs CUDA devices: SyncBatchNorm does not run on CPU (gloo); use model.norm=bn")
        seed_everything(cfg.train.seed)
        self.device = self.ctx.device
        self.num_classes = cfg.model.num_classes
        self.train_set = RGBXDataset(cfg.data, "train", self.num_classes, train=True)
        self.plan = make_plan(cfg, len(self.train_set))
        # Every rank builds the same initial weights from the same seed (DDP also broadcasts rank 0's).
        model = build_model(cfg.model)
        if world > 1 and self.ctx.device.type == "cuda":
            # Batch statistics over the global batch; the parameters are the same objects, so the
            # optimizer below and the checkpoint names are unaffected.
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        if world > 1:
            # From here on each rank draws its own dropout / drop-path masks, NMF bases and SMMCL samples.
            torch.manual_seed(distributed.rank_seed(cfg.train.seed, self.ctx.rank))
        self.optimizer = build_optimizer(self.model, cfg.train)
        self.scaler = grad_scaler(self.device, cfg.train.precision)
        # The average of the weights (train.ema), on rank 0 only: it is read by validation and the files rank 0
        # writes, and every rank holds the same weights to average (DDP), so the others would only spend memory.
        self.ema: Optional[AveragedModel] = build_ema(self.model, cfg) if self.ctx.is_main else None
        self.objective = build_objective(cfg.loss, self.num_classes, cfg.data.ignore_index, cfg.model.projector.dim).to(self.device)
        # The contrast samples from its own generator: the global stream (dropout, drop path, NMF bases)
        # is then the same for Base and for any contrast under one seed.
        self.contrast_generator = torch.Generator(device=self.device).manual_seed(contrast_seed(cfg.train.seed, self.ctx.rank))
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
        # What the step calls: the same parameters, maybe NHWC, DDP-wrapped and compiled (checkpoints use self.model).
        net = prepare_model(self.model, cfg.train.channels_last, compile=False)
        if world > 1:
            net = self._wrap_ddp(net)
        self.net = prepare_model(net, compile=cfg.train.compile)
        self._val_set: Optional[RGBXDataset] = None
        # Filled at the end of a finished run (`run_summary` of its log; also <out_dir>/summary.json).
        self.summary: dict = {}

    def _prepare_out_dir(self) -> None:
        """Rank 0, before the first step: the folder is ours to write, writable, and free of a kill's leftovers."""
        saved = self.out_dir / "config.yaml"
        same = saved.is_file() and saved.read_text() == to_yaml(self.cfg)
        claim_run_dir(self.out_dir, self.resumed_from is not None, same, self.overwrite)
        check_writable(self.ckpt_dir)
        remove_partial_saves(self.ckpt_dir)
        if saved.is_file() and not same:
            # An allowed config change on resume: the old config stays beside the new one.
            saved.replace(self.out_dir / f"config.before_step{self.step}.yaml")
        with writing(saved, "config"):
            saved.write_text(to_yaml(self.cfg))

    def _wrap_ddp(self, model: nn.Module) -> DistributedDataParallel:
        """DistributedDataParallel around the (NHWC) model; told about parameters the step never uses.

        LightHam reads stages 2-4 only, so the stage-1 fusion conv gets no gradient; without the SMMCL
        terms neither do the projectors. DDP must then search for unused parameters after each forward
        (find_unused_parameters), which costs a graph traversal, so it is switched on only when a probe
        forward/backward of the step's own call finds such parameters.
        """
        # A delayed contrast (loss.contrast_start) leaves the projectors idle on its first steps.
        with_embeddings = self.objective.needs_embeddings and self.cfg.loss.contrast_start == 0
        channels = getattr(getattr(model, "encoder", None), "in_channels", 3)

        def probe_loss(m: nn.Module) -> torch.Tensor:
            # Eval mode: no running-statistics update, and no draw from the global RNG (its own generator).
            was_training = m.training
            m.eval()
            try:
                x = torch.randn(2, channels, 64, 64, generator=torch.Generator().manual_seed(0)).to(self.device)
                out = m(x, x, return_embeddings=True) if with_embeddings else (m(x, x),)
                return sum(t.float().sum() for t in out)
            finally:
                m.train(was_training)

        unused = distributed.parameters_without_grad(model, probe_loss)
        cuda = self.device.type == "cuda"
        return DistributedDataParallel(
            model,
            device_ids=[self.device.index] if cuda else None,
            output_device=self.device.index if cuda else None,
            find_unused_parameters=bool(unused),
        )

    # --- checkpoints -------------------------------------------------------------------------
    def _resume_path(self, resume: Optional[str | Path]) -> Optional[Path]:
        if resume is None:
            return None
        # `auto` with nothing saved yet is a fresh start.
        return latest_checkpoint(self.ckpt_dir) if str(resume) == "auto" else Path(resume)

    def _resume(self, path: Path) -> None:
        # Every rank reads the same file onto its own device (and so starts from the same weights).
        ckpt = load_checkpoint(path, map_location=self.device)
        changes = config_changes(ckpt.get("config") or {}, to_dict(self.cfg)) if ckpt.get("config") else {}
        if changes and not self.allow_config_change:
            shown = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(changes.items())[:8])
            raise ConfigError(f"{path} was trained with another config ({shown}); resume with the same config, "
                              f"or pass --allow-config-change to continue with the new values (recorded in log.jsonl)")
        self.config_changes = changes
        self.resumed_from = path
        load_model_state(self.model, ckpt["model"], path)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not match this model ({exc})") from None
        self.step = int(ckpt["step"])
        ranks = ckpt.get("rng_ranks")
        if self.ctx.world_size == 1:
            set_rng_state(_on_cpu(ckpt["rng"]))
        elif ranks is not None and len(ranks) == self.ctx.world_size:
            set_rng_state(_on_cpu(ranks[self.ctx.rank]))
        else:
            # Another number of ranks than the run had: no exact continuation exists; fresh per-rank streams.
            torch.manual_seed(distributed.rank_seed(self.cfg.train.seed, self.ctx.rank, self.step))
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
        own = objective[self.ctx.rank] if len(objective) == self.ctx.world_size else objective[0]
        if own:
            self.objective.load_state_dict(own)
        generators = ckpt.get("contrast_rng_ranks") or [ckpt.get("contrast_rng")]
        if generators[0] is not None and len(generators) == self.ctx.world_size:
            self.contrast_generator.set_state(generators[self.ctx.rank].cpu())

    def save(self) -> Path:
        """Write a checkpoint of the current step (rank 0); under DDP every rank must call it (it gathers RNG states)."""
        path = checkpoint_path(self.ckpt_dir, self.step)
        rngs = distributed.all_gather_objects(rng_state())
        # Per rank too: each rank's contrast samples its own stream and (region contrast) keeps its own memory.
        generators = distributed.all_gather_objects(self.contrast_generator.get_state())
        objectives = distributed.all_gather_objects({k: v.cpu() for k, v in self.objective.state_dict().items()})
        if not self.ctx.is_main:
            return path
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.step // self.plan.iters_per_epoch,
            # Rank 0's state (what a single process resumes with) and, under DDP, every rank's in rank order.
            "rng": rngs[0],
            "rng_ranks": rngs if self.ctx.world_size > 1 else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            # train.ema: the average of weights (rank 0's; evaluation reads it, `evaluation_weights`); "model"
            # above stays the trained weights, which a resume continues from.
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "objective": objectives[0],
            "objective_ranks": objectives if self.ctx.world_size > 1 else None,
            "contrast_rng": generators[0],
            "contrast_rng_ranks": generators if self.ctx.world_size > 1 else None,
            "config": to_dict(self.cfg),
        }
        atomic_save(state, path)
        prune_checkpoints(self.ckpt_dir, self.cfg.train.keep_checkpoints)
        return path

    # --- one iteration -----------------------------------------------------------------------
    def _batch(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cl = self.cfg.train.channels_last
        rgb = to_channels_last(batch["rgb"].to(self.device, non_blocking=True), cl)
        aux = to_channels_last(batch["aux"].to(self.device, non_blocking=True), cl)
        return rgb, aux, batch["label"].to(self.device, non_blocking=True)

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """One iteration: `train.accumulate` micro-batches of `batch` (this rank's share of the iteration), one
        optimisation step, the EMA update; returns the detached loss terms and stats (tensors, no host sync;
        means over the micro-batches) and the lr."""
        rgb, aux, label = self._batch(batch)
        t = self.cfg.train
        lr = lr_at(self.step, t.lr, self.plan.total_iters, self.plan.warmup_iters, t.poly_power)
        probe = t.grad_probe_every and (self.step + 1) % t.grad_probe_every == 0
        stats = train_step(
            self.net, self.objective, self.optimizer, rgb, aux, label, lr=lr, precision=t.precision,
            scaler=self.scaler, generator=self.contrast_generator,
            contrast_scale=contrast_scale(self.step, self.cfg.loss.contrast_start, self.cfg.loss.contrast_ramp),
            probe_params=shared_encoder_parameters(self.model) if probe else None,
            accumulate=t.accumulate, ema=self.ema,
        )
        self.step += 1
        return {**stats, "lr": torch.tensor(lr)}

    @property
    def evaluation_model(self) -> nn.Module:
        """What validation scores and `model.safetensors` holds: the average of weights with `train.ema` (on
        rank 0, which alone evaluates and writes), else the trained model."""
        return self.ema.module if self.ema is not None else self.model

    def validate(self) -> dict:
        """Scores on `train.val_split` with the eval protocol (monitoring only; no checkpoint is chosen by it).

        Runs on the plain model (its average of weights with `train.ema`) in this process only; under DDP the
        loop calls it on rank 0 alone.
        """
        if self._val_set is None:
            self._val_set = RGBXDataset(self.cfg.data, self.cfg.train.val_split, self.num_classes)
        scores = evaluate(
            self.evaluation_model, self._val_set, self.num_classes, batch_size=self.cfg.eval.batch_size,
            ignore_index=self.cfg.data.ignore_index, exclude=self.cfg.eval.exclude_classes, progress=False,
            protocol=InferenceProtocol.from_config(self.cfg),
        )
        return {"val_miou": scores["miou"], "val_pixel_acc": scores["pixel_acc"]}

    def dry_run(self) -> dict:
        """One training step on the first batch, writing nothing: proves data, model, loss and optimizer fit.

        `batch_shape` is the shape of one forward pass (a micro-batch on this rank); the step ran
        `train.accumulate` of them."""
        t0 = time.perf_counter()
        batch = next(iter(self._loader(self.step + 1)))
        stats = {k: float(v) for k, v in self.train_step(batch).items()}
        self.step -= 1  # nothing was trained for real
        stats["seconds"] = time.perf_counter() - t0
        shape = list(batch["rgb"].shape)
        stats["batch_shape"] = [shape[0] // self.cfg.train.accumulate, *shape[1:]]
        return stats

    def schedule(self, points: int = 5) -> list[tuple[int, float]]:
        """(iteration, learning rate) at the start, the end of warm-up and evenly after, for the plan printout."""
        p, base = self.plan, self.cfg.train.lr
        steps = sorted({0, p.warmup_iters, *(p.warmup_iters + k * (p.total_iters - p.warmup_iters) // points for k in range(1, points)), p.total_iters - 1})
        return [(k, lr_at(k, base, p.total_iters, p.warmup_iters, self.cfg.train.poly_power)) for k in steps if 0 <= k < p.total_iters]

    # --- the loop ----------------------------------------------------------------------------
    def _loader(self, end: int) -> DataLoader:
        # Global batches in the same order whatever the number of ranks; each rank loads its own slice. One loader
        # batch is one iteration: train.accumulate micro-batches, this rank's share of each (RankSlice), which the
        # step cuts apart. With train.accumulate=1 the batches are the ones a run without accumulation had.
        t = self.cfg.train
        sampler = ResumableBatchSampler(len(self.train_set), effective_batch(self.cfg), t.seed, self.step, end)
        if self.ctx.world_size > 1:
            sampler = RankSlice(sampler, self.ctx.rank, self.ctx.world_size, parts=t.accumulate)
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
        """Train until the planned end (or until iteration `stop_at`, as if killed there).

        Under DDP every rank runs this loop; rank 0 alone writes config, logs, checkpoints and weights,
        shows the progress bar and validates, and the logged losses are means over the ranks.
        """
        main = self.ctx.is_main
        if main:
            self._prepare_out_dir()
        end = self.plan.total_iters if stop_at is None else min(stop_at, self.plan.total_iters)
        log = _RankMeanLog(RunLog(self.out_dir, self.step, self.cfg.train.log_every, self.cfg.train.tensorboard, enabled=main))
        if self.config_changes:
            log.write(self.step, {"config_change": {k: list(v) for k, v in self.config_changes.items()}})
            self.config_changes = {}
        last: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = track(total=self.plan.total_iters, initial=self.step, desc=f"train {self.cfg.name}", unit="it",
                    enabled=self.cfg.train.progress and main, leave=True)
        val_every = self.cfg.train.val_every
        try:
            with bar:
                for batch in self._loader(end):
                    stats = self.train_step(batch)
                    lr = float(stats.pop("lr"))
                    images = len(batch["name"]) * self.ctx.world_size
                    row = log.step(self.step, stats, lr, images, force=self.step == end)
                    if row is not None:
                        last = row
                        bar.set_postfix({k: row[k] for k in PROGRESS_KEYS if k in row})
                    bar.update(1)
                    if val_every and (self.step % val_every == 0 or self.step == self.plan.total_iters):
                        # Rank 0 validates; the others wait for its scores (the broadcast is the barrier).
                        scores = self.validate() if main else None
                        scores = distributed.broadcast_object(scores)
                        log.write(self.step, scores)
                        last.update(scores)
                        bar.set_postfix({k: last[k] for k in PROGRESS_KEYS if k in last})
                    if self.step % self.plan.checkpoint_every == 0 or self.step == self.plan.total_iters:
                        self.save()
        finally:
            log.close()
        if self.step == self.plan.total_iters and main:
            # Deployable weights with their config, apart from the resumable training checkpoints: the average
            # of weights with train.ema (the trained weights stay in the last checkpoint).
            with writing(self.out_dir / "model.safetensors", "weights"):
                save_pretrained(self.evaluation_model, self.cfg, self.out_dir / "model.safetensors")
            # Whole-run figures of the contrast (zero-step fraction, sampled rows, classes, gradients).
            self.summary = run_summary(self.out_dir / "log.jsonl")
            (self.out_dir / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")
        # No rank returns before rank 0 has written everything.
        distributed.barrier()
        last["seconds"] = time.perf_counter() - t0
        last["step"] = self.step
        return last


def _on_cpu(state: dict) -> dict:
    """An RNG state with its byte tensors back on the CPU (checkpoints are loaded onto the training device)."""
    return {k: [t.cpu() for t in v] if isinstance(v, (list, tuple)) else v.cpu() for k, v in state.items()}


class _RankMeanLog:
    """A RunLog whose rows are means over the ranks of the per-rank window means.

    Loss tensors are summed on the device every step; only on a logging step are the window sums
    reduced across the ranks (one collective, one host sync per window, as in a single process) and
    handed to the RunLog as a single step. In one process the rows equal the RunLog's own.
    """

    def __init__(self, log: RunLog):
        self.log = log
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._images = 0

    def step(self, step: int, terms: dict[str, torch.Tensor], lr: float, images: int, force: bool = False) -> Optional[dict]:
        accumulate(self._sums, self._counts, terms)
        self._images += images
        if step % self.log.every and not force:
            return None
        # float64 so that sum / count rounds exactly as RunLog's float(sum) / count would.
        # Every rank has the same keys on the same steps, so the collective sees the same dict everywhere.
        means = {k: v.to(torch.float64) / self._counts[k] for k, v in distributed.all_reduce_mean(self._sums).items()}
        images, self._sums, self._counts, self._images = self._images, {}, {}, 0
        return self.log.step(step, means, lr, images, force=True)

    def write(self, step: int, row: dict) -> None:
        self.log.write(step, row)

    def close(self) -> None:
        self.log.close()


def train(cfg: Config, resume: Optional[str | Path] = None) -> Trainer:
    """Train a model as configured (resuming from a checkpoint path or `auto`); returns the trainer."""
    trainer = Trainer(cfg, resume=resume)
    trainer.run()
    return trainer
