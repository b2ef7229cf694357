"""The training loop on Eq. 7 (`smmcl.losses.Objective`): AdamW, warm-up + poly, exact resume; one process or DDP.

A run is made of parts: `engine.builder` makes data, model, optimizer and objective from the config,
`engine.state.TrainingState` saves and restores what changes while training, `engine.step.train_step` is one
optimisation step, and `Trainer` only loops: batches in, steps, logs, validation and checkpoints out.

Under `torchrun` every rank builds the same Trainer: `train.batch_size` is the global batch, split evenly
across the ranks, and the model is wrapped in DistributedDataParallel (see `smmcl.engine.distributed`).

One iteration is one optimizer step over `train.accumulate` micro-batches of `train.batch_size` (see
`effective_batch`); checkpoints are written between iterations only, so a run killed inside an iteration
redoes that whole iteration on resume, from the same samples, augmentation seeds and RNG states. With
`train.ema` on, an average of the weights (`AveragedModel`) is kept beside them, in the checkpoints too,
and is what validation scores and `model.safetensors` holds (docs/configuration.md).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torch.utils.data import DataLoader

from smmcl.config import Config, to_yaml
from smmcl.data.dataset import RGBXDataset, split_root
from smmcl.data.fingerprint import encode, split_digests
from smmcl.data.sampler import ResumableBatchSampler
from smmcl.engine import distributed
from smmcl.engine.builder import build_parts, step_network
from smmcl.engine.checkpoint import checkpoint_path, latest_checkpoint, prune_checkpoints
from smmcl.engine.distributed import RankSlice
from smmcl.engine.evaluate import evaluate
from smmcl.engine.optim import lr_at
from smmcl.engine.plan import effective_batch
from smmcl.models.compiled import to_channels_last
from smmcl.engine.run_dir import (check_run_dir, check_run_folder, check_writable, claim_run_dir, remove_partial_saves,
                                   run_files, writing)
from smmcl.engine.run_log import RankMeanLog, RunLog, run_summary
from smmcl.engine.step import shared_encoder_parameters, train_step
from smmcl.errors import CheckpointError, ConfigError
from smmcl.files import folder_lock
from smmcl.outputs import record, remove_written, warn_other_outputs
from smmcl.losses import contrast_scale
from smmcl.progress import track
from smmcl.weights import LoadReport, load_weights
from smmcl.weights.pretrained import write_weights

# The figures the progress bar (or a log's progress line) shows; log.jsonl has every logged figure.
PROGRESS_KEYS = ("loss", "ce", "cm", "vis", "aux", "lr", "val_miou")


class Trainer:
    """The loop over the parts of a run; `run()` trains to the end or to `stop_at`.

    Under torchrun (WORLD_SIZE > 1) it is one rank of a DDP job: `self.model` stays the plain module
    (optimizer groups, checkpoints, validation) and `self.net`, what the step calls, is its
    DistributedDataParallel wrapper. Only rank 0 (`self.ctx.is_main`) writes files.
    """

    def __init__(self, cfg: Config, resume: Optional[str | Path] = None, overwrite: bool = False,
                 allow_config_change: bool = False):
        """`resume`: a checkpoint path or `auto`. `overwrite`: replace another run found in `train.out_dir`
        (refused otherwise). `allow_config_change`: resume although training keys of the config differ from
        the checkpoint's (refused otherwise; the change is then recorded in the log)."""
        if overwrite and resume is not None:  # trial 9 #167: --overwrite was silently dropped for the resume
            raise ConfigError("--overwrite (overwrite=True) replaces the run in train.out_dir and --resume (resume=...) "
                              "continues it: give one of them")
        self.cfg = cfg
        self.overwrite, self.resume_asked = overwrite, resume is not None
        self.parts = parts = build_parts(cfg)
        self.ctx, self.device, self.plan, self.train_set = parts.ctx, parts.ctx.device, parts.plan, parts.train_set
        self.state = state = parts.state
        self.model, self.optimizer, self.scaler, self.ema = state.model, state.optimizer, state.scaler, state.ema
        self.objective, self.contrast_generator = state.objective, state.contrast_generator
        self.out_dir = Path(cfg.train.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.pretrained_report: Optional[LoadReport] = None
        self.resumed_from: Optional[Path] = None
        # `auto` with nothing saved yet is a fresh start.
        resume_path = latest_checkpoint(self.ckpt_dir) if str(resume) == "auto" else resume
        if resume_path is not None and not Path(resume_path).is_file():
            raise CheckpointError(f"resume {resume!s}: no such checkpoint file; give `auto` (the newest checkpoint in "
                                  f"train.out_dir, or a fresh start) or the path of a training checkpoint")
        if resume_path is not None:
            self.state.restore(Path(resume_path), cfg, allow_config_change)
            self.resumed_from = Path(resume_path)
            if self.step > self.plan.total_iters:  # trial 10 #196b, #213: "done" with no weights, or a config of 20
                raise ConfigError(f"{resume_path} is at step {self.step}, past the {self.plan.total_iters} iterations "
                                  f"this config plans: a run is not shortened below where it is; plan at least "
                                  f"{self.step} (train.max_iters), or start a new run elsewhere")
        elif cfg.model.pretrained:
            # A resumed run already holds these weights (and trained them further).
            self.pretrained_report = load_weights(self.model, cfg.model.pretrained, cfg.model.pretrained_parts)
        self.net = step_network(parts, cfg)
        self._monitor_sets: dict[tuple[str, Optional[str]], RGBXDataset] = {}
        # The splits the run will score, read now: a missing file there stops the run before it trains, not at its
        # first validation after the training so far.
        t = cfg.train
        for every, split, subset in ((t.val_every, t.val_split, None), (t.test_every, cfg.eval.split, cfg.eval.subset)):
            if every:
                self._monitor_set(split, subset)
        # Filled at the end of a finished run (`run_summary` of its log; also <out_dir>/summary.json).
        self.summary: dict = {}

    @property
    def step(self) -> int:
        """Iterations (optimizer steps) done so far."""
        return self.state.step

    @property
    def local_batch_size(self) -> int:
        return self.parts.local_batch_size

    @property
    def evaluation_model(self) -> nn.Module:
        """What validation scores and `model.safetensors` holds: the average of weights with `train.ema` (on
        rank 0, which alone evaluates and writes), else the trained model."""
        return self.ema.module if self.ema is not None else self.model

    def _inputs(self) -> list:
        """What the run reads and its folder must keep apart from: the data (each split's folder too, whose linked
        image folders are judged where they lead: `smmcl.outputs`), and pretrained weights."""
        splits = [split_root(self.cfg.data, s) for s in self.cfg.data.split_dirs]
        return [self.cfg.data.root, *splits, self.cfg.model.pretrained or None]

    def _saved_config(self) -> tuple[Path, bool]:
        """The run folder's config.yaml, and whether it holds this run's config exactly."""
        saved = self.out_dir / "config.yaml"
        return saved, saved.is_file() and saved.read_text() == to_yaml(self.cfg)

    def _prepare_out_dir(self) -> None:
        """Rank 0, before the first step: the folder is ours to write, writable, and free of a kill's leftovers."""
        saved, same = self._saved_config()
        claim_run_dir(self.out_dir, self.resumed_from is not None, same, self.overwrite, inputs=self._inputs(),
                      resume_asked=self.resume_asked)
        check_writable(self.ckpt_dir)
        remove_partial_saves(self.ckpt_dir)
        if saved.is_file() and not same:
            # An allowed config change on resume: the old config stays beside the new one; a report or export made
            # from the run before the change no longer describes it.
            warn_other_outputs(self.out_dir, "train.out_dir", "resuming with a changed config")
            before = self.out_dir / f"config.before_step{self.step}.yaml"
            saved.replace(before)
            record(self.out_dir, [before.name])
        # The same config is left as it was: a finished run resumed rewrites nothing (trial 15 DM5). Judged after the
        # claim, which --overwrite may have emptied the folder in (trial 16 #243: a run replaced had no config.yaml).
        if not (saved.is_file() and saved.read_text() == to_yaml(self.cfg)):
            with writing(saved, "config"):
                saved.write_text(to_yaml(self.cfg))
        record(self.out_dir, [saved.name])

    def save(self) -> Path:
        """Write a checkpoint of the current step (rank 0); under DDP every rank must call it (it gathers RNG states)."""
        path = checkpoint_path(self.ckpt_dir, self.step)
        if self.ctx.is_main:
            record(self.ckpt_dir, [path.name])  # before the write: a kill mid-write leaves a file the run owns
        self.state.save(path, self.cfg, epoch=self.step // self.plan.iters_per_epoch)
        if self.ctx.is_main:
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
        t, step = self.cfg.train, self.state.step
        lr = lr_at(step, t.lr, self.plan.total_iters, self.plan.warmup_iters, t.poly_power)
        probe = t.grad_probe_every and (step + 1) % t.grad_probe_every == 0
        stats = train_step(
            self.net, self.objective, self.optimizer, rgb, aux, label, lr=lr, precision=t.precision,
            scaler=self.scaler, generator=self.contrast_generator,
            contrast_scale=contrast_scale(step, self.cfg.loss.contrast_start, self.cfg.loss.contrast_ramp),
            probe_params=shared_encoder_parameters(self.model) if probe else None,
            accumulate=t.accumulate, ema=self.ema,
        )
        self.state.step += 1
        return {**stats, "lr": torch.tensor(lr)}

    def _score(self, split: str, subset: Optional[str] = None) -> dict:
        """Scores on `split` with the eval protocol, on the plain model (its average of weights with
        `train.ema`) in this process only; under DDP the loop calls it on rank 0 alone."""
        return evaluate(self.evaluation_model, self.cfg, split, subset, dataset=self._monitor_set(split, subset))

    def _monitor_set(self, split: str, subset: Optional[str]) -> RGBXDataset:
        if (split, subset) not in self._monitor_sets:
            self._monitor_sets[(split, subset)] = RGBXDataset(self.cfg.data, split, self.cfg.model.num_classes,
                                                              train=False, subset=subset)
        return self._monitor_sets[(split, subset)]

    def validate(self) -> dict:
        """Scores on `train.val_split` (monitoring only; no checkpoint is chosen by it)."""
        scores = self._score(self.cfg.train.val_split)
        return {"val_miou": scores["miou"], "val_pixel_acc": scores["pixel_acc"]}

    def score_test(self) -> dict:
        """Scores on the reported split (`eval.split` / `eval.subset`): the trajectory `train.test_every` logs."""
        scores = self._score(self.cfg.eval.split, self.cfg.eval.subset)
        return {"test_miou": scores["miou"], "test_pixel_acc": scores["pixel_acc"]}

    def dry_run(self) -> dict:
        """One training step on the first batch, writing nothing: proves data, model, loss and optimizer fit.

        `batch_shape` is the shape of one forward pass (a micro-batch on this rank); the step ran
        `train.accumulate` of them."""
        # What the run would refuse about its folder (an input's, another run's, the user's files), refused now.
        check_run_dir(self.out_dir, self.resumed_from is not None, self._saved_config()[1], self.overwrite,
                      inputs=self._inputs(), resume_asked=self.resume_asked)
        t0 = time.perf_counter()
        batch = next(iter(self._loader(self.step + 1)))
        stats = {k: float(v) for k, v in self.train_step(batch).items()}
        self.state.step -= 1  # nothing was trained for real
        stats["seconds"] = time.perf_counter() - t0
        shape = list(batch["rgb"].shape)
        stats["batch_shape"] = [shape[0] // self.cfg.train.accumulate, *shape[1:]]
        return stats

    # --- the loop ----------------------------------------------------------------------------
    def _loader(self, end: int) -> DataLoader:
        # Global batches in the same order whatever the number of ranks; each rank loads its own slice. One loader
        # batch is one iteration: train.accumulate micro-batches, this rank's share of each (RankSlice), which the
        # step cuts apart. With train.accumulate=1 the batches are the ones a run without accumulation had.
        t = self.cfg.train
        sampler = ResumableBatchSampler(len(self.train_set), effective_batch(self.cfg), t.seed, self.step, end)
        if self.ctx.world_size > 1:
            sampler = RankSlice(sampler, self.ctx.rank, self.ctx.world_size, parts=t.accumulate)
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=self.cfg.data.num_workers,
            persistent_workers=False,
            # Its own generator, so creating the loader never draws on the model's RNG stream.
            generator=torch.Generator().manual_seed(t.seed),
            pin_memory=self.device.type == "cuda",
        )

    def run(self, stop_at: Optional[int] = None) -> dict:
        """Train until the planned end (or until iteration `stop_at`, as if killed there).

        Under DDP every rank runs this loop; rank 0 alone writes config, logs, checkpoints and weights,
        shows the progress bar and validates, and the logged losses are means over the ranks. Rank 0 holds the
        run folder's lock (`smmcl.files.folder_lock`) throughout: a second run into it stops at once.
        """
        if self.ctx.is_main:
            check_run_folder(self.out_dir, self.resumed_from is not None, self._inputs())
        # A new run refused before its first checkpoint (a bad image in its data) has nothing to resume: it leaves
        # nothing behind, so that the same command, corrected, starts afresh rather than meeting "holds a run".
        fresh = self.ctx.is_main and self.resumed_from is None and not run_files(self.out_dir)
        existed, undone = self.out_dir.exists(), False
        try:
            with folder_lock(self.out_dir, "train.out_dir") if self.ctx.is_main else contextlib.nullcontext():
                try:
                    return self._run(stop_at)
                except Exception:
                    # Only under the lock, which this run holds: what the folder lists is this run's own.
                    undone = fresh and not any(self.ckpt_dir.glob("ckpt_*.pt"))
                    if undone:
                        remove_written(self.out_dir)
                    raise
        finally:
            if undone and not existed:
                with contextlib.suppress(OSError):
                    self.out_dir.rmdir()  # the lock file is gone with the lock; a folder the user made stays

    def _run(self, stop_at: Optional[int]) -> dict:
        main = self.ctx.is_main
        # A finished run resumed (`--resume auto` again, a rerun of the demo) trains nothing and rewrites nothing.
        self.finished_before = (self.step == self.plan.total_iters and (self.out_dir / "model.safetensors").is_file()
                                and (self.out_dir / "summary.json").is_file())
        if main:
            self._prepare_out_dir()
        end = self.plan.total_iters if stop_at is None else min(stop_at, self.plan.total_iters)
        # A finished run has its TensorBoard events already: no empty event file beside them.
        log = RankMeanLog(RunLog(self.out_dir, self.step, self.cfg.train.log_every,
                                 self.cfg.train.tensorboard and not self.finished_before, enabled=main))
        if main:  # each run file is listed as the run's once it exists, never before (smmcl.outputs)
            record(self.out_dir, ["log.jsonl"])
        if self.state.config_changes:
            log.write(self.step, {"config_change": {k: list(v) for k, v in self.state.config_changes.items()}})
            self.state.config_changes = {}
        last: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = track(total=self.plan.total_iters, initial=self.step, desc=f"train {self.cfg.name}", unit="it",
                    enabled=self.cfg.train.progress and main, leave=True)
        # Monitoring only (nothing is chosen by either): validation, and the reported split's trajectory.
        monitors = [(every, score) for every, score in ((self.cfg.train.val_every, self.validate),
                                                         (self.cfg.train.test_every, self.score_test)) if every]
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
                    for every, score in monitors:
                        if self.step % every and self.step != self.plan.total_iters:
                            continue
                        # Rank 0 scores; the others wait for its scores (the broadcast is the barrier).
                        scores = distributed.broadcast_object(score() if main else None)
                        log.write(self.step, scores)
                        last.update(scores)
                        bar.set_postfix({k: last[k] for k in PROGRESS_KEYS if k in last})
                    if self.step % self.plan.checkpoint_every == 0 or self.step == self.plan.total_iters:
                        self.save()
        finally:
            log.close()
        if self.finished_before:
            self.summary = json.loads((self.out_dir / "summary.json").read_text())
        elif self.step == self.plan.total_iters and main:
            # Deployable weights with their config, apart from the resumable training checkpoints: the average
            # of weights with train.ema (the trained weights stay in the last checkpoint).
            # It names the images it was trained on by content, so any later evaluation can tell them in its split.
            trained_on = encode(split_digests(self.cfg.data, "train").values())
            with writing(self.out_dir / "model.safetensors", "weights"):
                write_weights(self.evaluation_model, self.cfg, self.out_dir / "model.safetensors", trained_on,
                              self.train_set.aux_dtype, self.train_set.aux_top)
            record(self.out_dir, ["model.safetensors"])
            # Whole-run figures of the contrast (zero-step fraction, sampled rows, classes, gradients).
            self.summary = run_summary(self.out_dir / "log.jsonl")
            (self.out_dir / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")
            record(self.out_dir, ["summary.json"])
        # No rank returns before rank 0 has written everything.
        distributed.barrier()
        last["seconds"] = time.perf_counter() - t0
        last["step"] = self.step
        return last

