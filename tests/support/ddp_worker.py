"""One rank of the DDP checks in tests/engine/test_distributed.py; started by `torchrun --nproc-per-node 2` on CPU (gloo).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/support/ddp_worker.py SPEC.json OUT_DIR

SPEC.json: {"config": path, "runs": [{"name", "overrides", optional "stop_at", "resume", "watch_sync"}, ...]}. For
every run, in order, each rank trains a Trainer and saves its final state dict (with `watch_sync`, it also records
after which forward pass each gradient all-reduce came, `watch_gradient_sync`); rank 1 also records every file it
creates, renames or removes under the runs' output folders (it should touch none). Then each rank runs the
gather-with-gradient check on fixed inputs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def record_writes(roots: list[Path], seen: list[str]) -> None:
    """Append to `seen` every path under `roots` this process opens for writing, makes, renames or removes."""
    prefixes = tuple(os.path.abspath(r) for r in roots)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def under(path) -> str | None:
        if isinstance(path, int) or path is None:
            return None
        text = os.path.abspath(os.fsdecode(os.fspath(path)))
        return text if text.startswith(prefixes) else None

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or bool((flags or 0) & write_flags)
            hits = [under(path)] if writing else []
        elif event in ("os.mkdir", "os.remove", "os.rmdir", "tempfile.mkstemp", "tempfile.mkdtemp"):
            hits = [under(args[0])]
        elif event == "os.rename":
            hits = [under(args[0]), under(args[1])]
        else:
            return
        seen.extend(f"{event} {h}" for h in hits if h)

    sys.addaudithook(hook)


def watch_gradient_sync(trainer) -> dict:
    """Record, for every gradient all-reduce DDP launches, how many forward passes the model had run by then
    (PyTorch's own all-reduce communication hook, wrapped; the result is the same as without a hook)."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    state = {"passes": 0, "synced": []}

    def count(module, args):
        state["passes"] += 1

    def hook(st, bucket):
        st["synced"].append(st["passes"])
        return default_hooks.allreduce_hook(None, bucket)

    trainer.model.register_forward_pre_hook(count)
    trainer.net.register_comm_hook(state, hook)
    return state


def train_runs(spec: dict, out: Path, rank: int) -> None:
    from smmcl.config import load_config
    from smmcl.engine.trainer import Trainer

    jobs = [{**job, "cfg": load_config(spec["config"], job["overrides"])} for job in spec["runs"]]
    writes: list[str] = []
    if rank != 0:
        record_writes([Path(job["cfg"].train.out_dir) for job in jobs], writes)
    report = {}
    for job in jobs:
        trainer = Trainer(job["cfg"], resume=job.get("resume"))
        watched = watch_gradient_sync(trainer) if job.get("watch_sync") else None
        last = trainer.run(stop_at=job.get("stop_at"))
        report[job["name"]] = {"last": last, "find_unused_parameters": trainer.net.find_unused_parameters,
                               "synced_after_passes": watched["synced"] if watched else None}
        torch.save(trainer.model.state_dict(), out / f"run_{job['name']}_rank{rank}.pt")
        print(f"[rank {rank}] trained {job['name']}", flush=True)
    report["writes"] = writes
    (out / f"report_rank{rank}.json").write_text(json.dumps(report))


class TwoProjections(nn.Module):
    """Stand-ins for the two projectors: 1x1 convs from shared features to visible / auxiliary embeddings."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.vis = nn.Conv2d(channels, dim, 1)
        self.aux = nn.Conv2d(channels, dim, 1)

    def forward(self, x):
        return self.vis(x), self.aux(x)


def gather_inputs(world: int):
    """Fixed features and labels for all ranks' images (rank r owns images [2r, 2r + 2)), and the model."""
    g = torch.Generator().manual_seed(7)
    feats = torch.randn(2 * world, 6, 8, 10, generator=g)
    labels = torch.randint(0, 5, (2 * world, 16, 20), generator=g)
    labels[:2, :, :8] = 255  # rank 0 has ignored pixels, rank 1 none: different valid counts, same layout
    with torch.random.fork_rng():
        torch.manual_seed(11)
        model = TwoProjections(6, 8)
    return feats, labels, model


LOSS_ARGS = dict(num_classes=5, min_views=2, max_views=40, max_total=96)


def gather_check(out: Path, rank: int, world: int) -> None:
    from smmcl.engine import distributed
    from smmcl.losses import SMMCLLoss

    feats, labels, model = gather_inputs(world)
    net = DistributedDataParallel(model)
    mine = slice(2 * rank, 2 * rank + 2)
    vis, aux = net(feats[mine])
    vis.retain_grad()
    aux.retain_grad()
    terms, _ = SMMCLLoss(**LOSS_ARGS, gather=True)(vis, aux, labels[mine], generator=torch.Generator().manual_seed(100 + rank))
    loss = terms["cm"] + terms["vis"] + terms["aux"]
    loss.backward()
    # A different loss on every rank: rank s weighs the gathered rows by (s + 1) * position, so rank r's rows
    # must receive the sum over all ranks' gradients, sum_s (s + 1) * position.
    own = torch.zeros(3, 2, requires_grad=True)
    gathered = distributed.gather_with_grad(own)
    (gathered * (rank + 1) * torch.arange(gathered.numel(), dtype=torch.float32).reshape(gathered.shape)).sum().backward()
    torch.save(
        {
            "rank_dependent_grad": own.grad,
            "terms": {k: v.detach() for k, v in terms.items()},
            "vis_grad": vis.grad,
            "aux_grad": aux.grad,
            "param_grads": {n: p.grad for n, p in model.named_parameters()},
        },
        out / f"gather_rank{rank}.pt",
    )


def main() -> None:
    torch.set_num_threads(1)
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    from smmcl.engine import distributed

    distributed.setup("cpu")
    try:
        train_runs(spec, out, rank)
        gather_check(out, rank, world)
        print(f"[rank {rank}] gather check done", flush=True)
    finally:
        distributed.cleanup()
    print(f"[rank {rank}] left the process group", flush=True)
    distributed.exit_process(0)  # as the CLI does: no interpreter shutdown racing gloo's threads


if __name__ == "__main__":
    main()
