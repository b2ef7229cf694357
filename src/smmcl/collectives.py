"""Tensor collectives that the losses use under DDP (the SMMCL `gather` option), kept in a leaf module so
that `losses/` needs nothing from `engine/`; process-group setup and samplers live in `engine/distributed.py`.
In a single process every function here is the identity."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _gather_rows(tensor: Tensor) -> Tensor:
    # A list all_gather plus cat: the most portable form across backends and torch versions.
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def gather(tensor: Tensor) -> Tensor:
    """Every rank's `tensor` concatenated along dim 0 in rank order, without gradient.

    All ranks must pass the same shape (collectives move fixed-size buffers).
    """
    if not is_distributed():
        return tensor
    return _gather_rows(tensor.detach())


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward returns, to each rank, the summed gradient of its own rows.

    Why this yields the exact gradient of one global loss (the SMMCL `gather` option): every rank
    computes the same loss L over the gathered rows e = [e_0, ..., e_{W-1}]. On rank s, autograd
    gives dL/de for all rows; rows of rank r only live on rank r, so the backward sums the W
    identical copies of dL/de_r (all-reduce with SUM, then rank r keeps its slice): W * dL/de_r.
    Rank r then backpropagates that into theta through its own forward, giving W * dL/de_r * de_r/dtheta,
    and DDP averages parameter gradients over the W ranks: (1/W) * sum_r W * dL/de_r * de_r/dtheta
    = dL/dtheta, the gradient a single process would get on the concatenated batch.

    With an identical loss on every rank the sum equals W times the local gradient; summing across
    ranks keeps the function correct for losses that differ per rank as well.
    """

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:  # type: ignore[override]
        ctx.rows = tensor.shape[0]
        return _gather_rows(tensor)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        # All-reduce then slice rather than reduce-scatter: supported by every backend, and the sampled
        # embeddings are small next to the model's own gradients. A copy: autograd owns `grad`.
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.rows
        return grad[start:start + ctx.rows]


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Every rank's `tensor` concatenated along dim 0, differentiable back to each rank's own rows.

    See `_GatherWithGrad` for the gradient argument. Same shape on every rank; identity in one process.
    """
    if not is_distributed():
        return tensor
    return _GatherWithGrad.apply(tensor)
