"""Data-parallel training across processes started by `torchrun` (PyTorch's own DDP engine).

`torchrun --nproc-per-node N -m smmcl train CONFIG` starts N processes and gives each one RANK, WORLD_SIZE and
LOCAL_RANK (and the rendezvous address) in its environment; multi-node runs get the same variables through
torchrun's rendezvous. Without them, everything here describes a single process and does nothing.

Backend: NCCL when the ranks train on CUDA devices (device cuda:LOCAL_RANK), gloo on CPU.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, NoReturn, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Sampler

from smmcl.collectives import gather, gather_with_grad, is_distributed  # noqa: F401  (re-exported)
from smmcl.engine.runtime import resolve_device

# Rank 0 alone validates and writes checkpoints while the other ranks wait at their next collective;
# the default NCCL timeout (10 minutes) could cut a long validation short.
TIMEOUT = datetime.timedelta(minutes=30)


def env_world_size() -> int:
    """Processes in the job according to torchrun's environment (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job: its rank, the number of ranks, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the only one that prints, logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistContext:
    """The context of this process; joins (or, under torchrun, creates) the default process group.

    `device` is `train.device`. When it resolves to CUDA every rank trains on cuda:LOCAL_RANK (an explicit
    index such as cuda:1 is replaced: torchrun assigns devices by local rank); CPU ranks use gloo.
    """
    resolved = resolve_device(device)
    if dist.is_available() and dist.is_initialized():
        # A group created by the caller (e.g. torch.multiprocessing.spawn + init_process_group).
        world, rk = dist.get_world_size(), dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", rk))
    else:
        world = env_world_size()
        if world == 1:
            return DistContext(device=resolved)
        if not dist.is_available():
            raise ValueError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
        rk, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and resolved.type not in ("cuda", "cpu"):
        raise ValueError(f"distributed training runs on CUDA (nccl) or CPU (gloo), not on train.device={device!r}")
    if resolved.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ValueError(f"local rank {local} has no CUDA device ({torch.cuda.device_count()} visible)")
        resolved = torch.device("cuda", local)
        # Before the group exists, so NCCL and the object collectives use this rank's own device.
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", timeout=TIMEOUT)
    return DistContext(rank=rk, world_size=world, local_rank=local, device=resolved)


# What `cleanup` keeps alive until the process ends (see there).
_KEPT: List[Any] = []


def cleanup(keep: Any = None) -> None:
    """Leave the process group (if one exists), after every rank has got here; `keep` (what holds the DDP model,
    e.g. the trainer) then stays alive until the process ends.

    Freeing a DDP model frees its reducer and with it gloo's process group, whose destructor waits for gloo's
    worker threads; a worker still releasing finished work (the barrier's) needs the GIL, which the freeing thread
    holds: the rank hangs for ever (seen about 1 run in 7 on a loaded CPU, in `~ProcessGroupGloo`). Kept, nothing
    is freed before `exit_process` ends the rank. A process that has used DDP with gloo should end through
    `exit_process`: see there.
    """
    if dist.is_available() and dist.is_initialized():
        if keep is not None:
            _KEPT.append(keep)
        barrier()
        dist.destroy_process_group()


def exit_process(code: int) -> NoReturn:
    """End this rank at once with `code`, flushing its output but skipping the interpreter's shutdown.

    Collectives launched during backward (DDP's bucket all-reduces, the gathered-embedding all-reduce)
    capture thread-local state that holds a Python object, and gloo's worker threads drop that state
    only after the collective completes. A worker that gets to it while the interpreter is shutting
    down needs the GIL, is refused it, and aborts the process ("terminate called without an active
    exception"; seen here on loaded CPUs, a PyTorch race). Those threads are never joined before
    shutdown because DDP keeps the process group alive after `destroy_process_group`, so the only sure
    way out is not to run the shutdown at all. Call after `cleanup()`, from the program's entry point.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(code)


def barrier() -> None:
    """Wait until every rank gets here (a no-op in a single process)."""
    if not is_distributed():
        return
    if dist.get_backend() == "nccl":
        # Naming the device avoids NCCL guessing it (and warning) from the rank.
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def rank_seed(seed: int, rank_: int, step: int = 0) -> int:
    """A seed of its own for each rank's model randomness (dropout, drop path, NMF bases, SMMCL sampling)."""
    return int(np.random.SeedSequence([seed, rank_, step]).generate_state(1)[0])


def all_reduce_mean(tensors: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Mean over ranks of every (scalar) tensor of the dict, in one float64 collective.

    In a single process the dict comes back unchanged.
    """
    if not is_distributed() or not tensors:
        return dict(tensors)
    keys = list(tensors)
    flat = torch.stack([tensors[k].detach().reshape(()).to(torch.float64) for k in keys])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    return {k: flat[i] for i, k in enumerate(keys)}


def all_gather_objects(obj: Any) -> List[Any]:
    """Every rank's `obj` (picklable), in rank order; [obj] in a single process."""
    if not is_distributed():
        return [obj]
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (and a synchronisation point)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


class RankSlice(Sampler[List[Any]]):
    """This rank's share of every global batch of a batch sampler.

    The wrapped sampler yields the global batch (the same on every rank: one permutation per epoch,
    one augmentation seed per sample). With `parts` = 1 rank r takes elements [r * b, (r + 1) * b) with
    b = batch / W. With gradient accumulation (`parts` = train.accumulate micro-batches per iteration) the
    global batch is cut into `parts` consecutive micro-batches and rank r takes its share of each, in order,
    so micro-batch j is positions [j * B, (j + 1) * B) of the global batch (B = train.batch_size) on any
    number of ranks. So which samples form a global step and a micro-step, and how each is augmented, does
    not depend on W.
    """

    def __init__(self, batches: Sampler[List[Any]], rank_: int, world: int, parts: int = 1):
        self.batches = batches
        self.rank = rank_
        self.world = world
        self.parts = parts

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[List[Any]]:
        for batch in self.batches:
            if len(batch) % (self.world * self.parts):
                raise ValueError(f"a batch of {len(batch)} cannot be split evenly into {self.parts} micro-batches "
                                 f"across {self.world} ranks" if self.parts > 1 else
                                 f"a batch of {len(batch)} cannot be split evenly across {self.world} ranks")
            micro = len(batch) // self.parts
            share = micro // self.world
            yield [x for j in range(self.parts)
                   for x in batch[j * micro + self.rank * share:j * micro + (self.rank + 1) * share]]


def split_batch_size(batch_size: int, world: int) -> int:
    """Per-rank batch of a global `train.batch_size`; a clear error when the ranks cannot share it evenly."""
    if batch_size % world:
        raise ValueError(
            f"train.batch_size={batch_size} (the global batch) must be divisible by the number of processes "
            f"({world}); choose e.g. train.batch_size={max(world, batch_size // world * world)}"
        )
    return batch_size // world


def parameters_without_grad(model: torch.nn.Module, loss_of_model) -> Sequence[str]:
    """Names of trainable parameters that `loss_of_model(model)` does not reach (their grad stays None).

    Used once before wrapping in DDP, which must be told about parameters that never get a gradient.
    Gradients are cleared again afterwards.
    """
    loss_of_model(model).backward()
    names = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    model.zero_grad(set_to_none=True)
    return names
