"""The parts of a training run, made from a config: data, plan, model, optimizer, loss scaler, average of
weights, objective (Eq. 7, `smmcl.losses`) and the contrast's generator; and the network the step calls.

`build_parts` draws on the global RNG in a fixed order (seed, model initialisation, per-rank reseed), so the
same config gives the same initial weights and the same stream of dropout and drop-path masks on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from smmcl.config import Config
from smmcl.data.dataset import RGBXDataset
from smmcl.engine import distributed
from smmcl.engine.distributed import DistContext
from smmcl.engine.optim import build_optimizer
from smmcl.engine.plan import Plan, make_plan
from smmcl.engine.precision import grad_scaler
from smmcl.models.compiled import prepare_model
from smmcl.engine.runtime import seed_everything, use_deterministic_kernels
from smmcl.engine.state import TrainingState
from smmcl.losses import build_objective
from smmcl.models import build_model


@dataclass
class TrainingParts:
    """Everything a run trains with: its place in the job, the data and the plan, and the state that training
    changes and a checkpoint holds (`state.model`, the plain module; `state.optimizer`, `.scaler`, `.ema` on
    rank 0 with `train.ema` on, `.objective`, `.contrast_generator`, `.step`)."""

    ctx: DistContext
    train_set: RGBXDataset
    plan: Plan
    state: TrainingState
    # Samples of one forward pass on this rank (`train.batch_size` is the global one).
    local_batch_size: int


def contrast_seed(seed: int, rank: int = 0) -> int:
    """Seed of the contrast's own sampling generator, apart from the stream dropout and augmentation use."""
    return int(np.random.SeedSequence([seed, 0x534D4D43, rank]).generate_state(1)[0])


def build_ema(model: nn.Module, cfg: Config) -> Optional[AveragedModel]:
    """`train.ema` (not in the paper; off by default): PyTorch's exponential moving average of the parameters
    and buffers (BatchNorm running statistics) of `model`, `AveragedModel` with `get_ema_multi_avg_fn`; None
    when off. `train_step` updates it after every optimizer step; its first update copies the weights. Its
    counter stays on the CPU, so an update never waits for the device."""
    if not cfg.train.ema.enabled:
        return None
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema.decay), use_buffers=True)
    ema.module.requires_grad_(False)
    # The memory format training and validation use (channels_last), as the trained model gets.
    prepare_model(ema.module, cfg.train.channels_last)
    return ema


def build_parts(cfg: Config, ctx: Optional[DistContext] = None) -> TrainingParts:
    """The parts of a run of `cfg` in this process (`ctx`: its place in a DDP job; joined here when None)."""
    # Checked before any rendezvous too, so a bad batch size fails at once on every rank instead of hanging.
    distributed.split_batch_size(cfg.train.batch_size, distributed.env_world_size())
    ctx = ctx or distributed.setup(cfg.train.device)
    world = ctx.world_size
    local_batch_size = distributed.split_batch_size(cfg.train.batch_size, world)
    if world > 1 and cfg.model.norm == "syncbn" and ctx.device.type != "cuda":
        raise ValueError("model.norm=syncbn needs CUDA devices: SyncBatchNorm does not run on CPU (gloo); use model.norm=bn")
    use_deterministic_kernels(cfg.train.deterministic)
    seed_everything(cfg.train.seed)
    num_classes = cfg.model.num_classes
    train_set = RGBXDataset(cfg.data, "train", num_classes, train=True)
    plan = make_plan(cfg, len(train_set))
    # Every rank builds the same initial weights from the same seed (DDP also broadcasts rank 0's).
    model = build_model(cfg.model)
    if world > 1 and ctx.device.type == "cuda":
        # Batch statistics over the global batch; the parameters are the same objects, so the
        # optimizer and the checkpoint names are unaffected.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(ctx.device)
    if world > 1:
        # From here on each rank draws its own dropout / drop-path masks, NMF bases and SMMCL samples.
        torch.manual_seed(distributed.rank_seed(cfg.train.seed, ctx.rank))
    optimizer = build_optimizer(model, cfg.train)
    scaler = grad_scaler(ctx.device, cfg.train.precision)
    # The average of the weights (train.ema), on rank 0 only: it is read by validation and the files rank 0
    # writes, and every rank holds the same weights to average (DDP), so the others would only spend memory.
    ema = build_ema(model, cfg) if ctx.is_main else None
    objective = build_objective(cfg.loss, num_classes, cfg.data.ignore_index, cfg.model.projector.dim,
                                feature_dim=cfg.model.decoder.channels).to(ctx.device)
    # The contrast samples from its own generator: the global stream (dropout, drop path, NMF bases)
    # is then the same for Base and for any contrast under one seed.
    generator = torch.Generator(device=ctx.device).manual_seed(contrast_seed(cfg.train.seed, ctx.rank))
    state = TrainingState(ctx, model, optimizer, scaler, ema, objective, generator)
    return TrainingParts(ctx, train_set, plan, state, local_batch_size)


def step_network(parts: TrainingParts, cfg: Config) -> nn.Module:
    """What the step calls: the same parameters as `parts.model`, maybe NHWC, DDP-wrapped and compiled."""
    net = prepare_model(parts.state.model, cfg.train.channels_last, compile=False)
    if parts.ctx.world_size > 1:
        net = _wrap_ddp(net, parts, cfg)
    return prepare_model(net, compile=cfg.train.compile)


def _wrap_ddp(model: nn.Module, parts: TrainingParts, cfg: Config) -> DistributedDataParallel:
    """DistributedDataParallel around the (NHWC) model; told about parameters the step never uses.

    LightHam reads stages 2-4 only, so the stage-1 fusion conv gets no gradient; without the SMMCL
    terms neither do the projectors. DDP must then search for unused parameters after each forward
    (find_unused_parameters), which costs a graph traversal, so it is switched on only when a probe
    forward/backward of the step's own call finds such parameters.
    """
    device = parts.ctx.device
    # A delayed contrast (loss.contrast_start) leaves the projectors idle on its first steps.
    with_embeddings = parts.state.objective.needs_embeddings and cfg.loss.contrast_start == 0
    channels = getattr(getattr(model, "encoder", None), "in_channels", 3)

    def probe_loss(m: nn.Module) -> torch.Tensor:
        # Eval mode: no running-statistics update, and no draw from the global RNG (its own generator).
        was_training = m.training
        m.eval()
        try:
            x = torch.randn(2, channels, 64, 64, generator=torch.Generator().manual_seed(0)).to(device)
            out = m(x, x, return_embeddings=True) if with_embeddings else (m(x, x),)
            return sum(t.float().sum() for t in out)
        finally:
            m.train(was_training)

    unused = distributed.parameters_without_grad(model, probe_loss)
    cuda = device.type == "cuda"
    return DistributedDataParallel(
        model,
        device_ids=[device.index] if cuda else None,
        output_device=device.index if cuda else None,
        find_unused_parameters=bool(unused),
    )
