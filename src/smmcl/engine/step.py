"""One optimisation step on Eq. 7 (`smmcl.losses.Objective`): the step the Trainer, tests and benchmarks call.

One step is one iteration of the plan: `train.accumulate` micro-batches, forward and backward each, then one
optimizer step (and, when `train.ema` is on, one update of the weight average). docs/configuration.md.
"""

from __future__ import annotations

import contextlib
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from smmcl.engine.optim import set_lr
from smmcl.engine.precision import autocast
from smmcl.engine.run_log import accumulate as add_terms
from smmcl.losses import Objective, ObjectiveOutput


def shared_encoder_parameters(model: nn.Module) -> list[Tensor]:
    """Trainable parameters of the dual encoder that both losses reach: both branches, the cross-modal
    modules and the fusion convs (not the projectors, which only the contrast trains, nor the decoder)."""
    encoder = model.encoder
    return [p for n, p in encoder.named_parameters() if p.requires_grad and not n.startswith("projector_")]


def _flat_grad(loss: Tensor, params: Sequence[Tensor]) -> Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float() for g, p in zip(grads, params)])


def _probe_gradients(out: ObjectiveOutput, params: Sequence[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
    """The flat gradients of L_ce and of the weighted contrastive sum on `params` (None: no contrast gradient)."""
    g_ce = _flat_grad(out.ce, params)
    g_aux = _flat_grad(out.contrast, params) if out.contrast.requires_grad else None
    return g_ce, g_aux


def _probe_stats(g_ce: Tensor, g_aux: Optional[Tensor]) -> Dict[str, Tensor]:
    stats = {"grad_ce": g_ce.norm()}
    if g_aux is not None:
        n_aux = g_aux.norm()
        stats["grad_contrast"] = n_aux
        stats["grad_cos"] = (g_ce @ g_aux) / (stats["grad_ce"] * n_aux).clamp(min=1e-30)
        stats["grad_ratio"] = n_aux / stats["grad_ce"].clamp(min=1e-30)
    return stats


def gradient_probe(out: ObjectiveOutput, params: Sequence[Tensor]) -> Dict[str, Tensor]:
    """Norms of the gradients that L_ce and the weighted contrastive sum each put on `params`, and
    their cosine (two extra backward passes; the graph is kept for the real one)."""
    return _probe_stats(*_probe_gradients(out, params))


def micro_batches(accumulate: int, *tensors: Tensor) -> List[Tuple[Tensor, ...]]:
    """`tensors` (one batch) cut along dim 0 into `accumulate` equal consecutive micro-batches."""
    size = tensors[0].shape[0]
    if accumulate < 1 or size % accumulate:
        raise ValueError(f"a batch of {size} cannot be cut into train.accumulate={accumulate} equal micro-batches")
    if accumulate == 1:
        return [tuple(tensors)]
    return list(zip(*(t.split(size // accumulate) for t in tensors)))


def _without_gradient_sync(net: nn.Module) -> contextlib.AbstractContextManager:
    """DistributedDataParallel's `no_sync()` (gradients stay on the rank, to be all-reduced with the next synced
    backward); nothing to skip for a plain module. A compiled DDP model forwards the attribute to its DDP."""
    no_sync = getattr(net, "no_sync", None)
    return no_sync() if callable(no_sync) else contextlib.nullcontext()


def unwrapped(net: nn.Module) -> nn.Module:
    """The plain model under a torch.compile and / or DistributedDataParallel wrapper (the parameters' owner)."""
    while True:
        if isinstance(net, nn.parallel.DistributedDataParallel):
            net = net.module
        elif isinstance(getattr(net, "_orig_mod", None), nn.Module):
            net = net._orig_mod
        else:
            return net


def train_step(
    net: nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    rgb: Tensor,
    aux: Tensor,
    label: Tensor,
    *,
    lr: float,
    precision: str = "fp32",
    scaler: Optional[torch.amp.GradScaler] = None,
    generator: Optional[torch.Generator] = None,
    contrast_scale: float = 1.0,
    probe_params: Optional[Sequence[Tensor]] = None,
    accumulate: int = 1,
    ema: Optional[AveragedModel] = None,
) -> Dict[str, Tensor]:
    """Forward, Eq. 7, backward and one optimizer step at learning rate `lr`, over `accumulate` micro-batches.

    `net` is the model as the step calls it (maybe DDP-wrapped or compiled); `generator` drives the
    contrast's sampling only, so Base and SMMCL runs draw the same dropout and augmentation streams;
    `probe_params` turns on `gradient_probe` for this step.

    Accumulation (`train.accumulate`, docs/configuration.md): `rgb`, `aux`, `label` hold the whole iteration
    (this rank's share) and are cut into `accumulate` equal consecutive micro-batches. Each micro-batch's loss
    is scaled by 1 / accumulate before its backward, so the summed gradient is the mean of the micro-batch
    gradients: the big-batch gradient for losses that are means over equal micro-batches (CE over equal
    numbers of valid pixels; BatchNorm statistics and the contrast's sampling are per micro-batch, as they
    are per rank under DDP). Under DDP the gradient all-reduce is skipped on all but the last micro-batch
    (`no_sync`). With fp16 the loss scaler scales every micro-batch's backward and steps (and updates its
    scale) once. `ema`, an `AveragedModel` of the plain model, is updated after the optimizer step.

    Returns detached 0-dim tensors (no host sync), means over the micro-batches: `loss`, every term, the
    contrast's sampling stats; and the probe's figures for the iteration's (summed) gradient.
    """
    set_lr(optimizer, lr)
    net.train()
    objective.train()
    embed = objective.needs_embeddings and contrast_scale != 0.0
    # A contrast on the decoder (region_released) reads the head's features and logits, not the projectors.
    head = objective.needs_decoder_features and contrast_scale != 0.0
    optimizer.zero_grad(set_to_none=True)
    parts = micro_batches(accumulate, rgb, aux, label)
    sums: Dict[str, Tensor] = {}
    counts: Dict[str, int] = {}
    g_ce: Optional[Tensor] = None
    g_aux: Optional[Tensor] = None
    for i, (x_rgb, x_aux, y) in enumerate(parts):
        last = i == len(parts) - 1
        with contextlib.nullcontext() if last else _without_gradient_sync(net):
            with autocast(x_rgb.device, precision):
                decoder: Dict[str, Tensor] = {}
                if head:
                    logits, features, head_logits = net(x_rgb, x_aux, return_decoder_features=True)
                    vis_embed, aux_embed = None, None
                    decoder = {"decoder_features": features, "head_logits": head_logits}
                    del features, head_logits
                elif embed:
                    logits, vis_embed, aux_embed = net(x_rgb, x_aux, return_embeddings=True)
                else:
                    logits, vis_embed, aux_embed = net(x_rgb, x_aux), None, None
            out = objective(logits, y, vis_embed, aux_embed, generator=generator, scale=contrast_scale, **decoder)
            if probe_params:
                ce_i, aux_i = _probe_gradients(out, probe_params)
                if accumulate > 1:
                    ce_i, aux_i = ce_i / accumulate, (aux_i / accumulate if aux_i is not None else None)
                g_ce = ce_i if g_ce is None else g_ce + ce_i
                if aux_i is not None:
                    g_aux = aux_i if g_aux is None else g_aux + aux_i
            loss = out.total / accumulate if accumulate > 1 else out.total
            if scaler is not None:
                scaler.scale(loss).backward()
            else:
                loss.backward()
        add_terms(sums, counts, {"loss": out.total, **out.terms, **out.stats})
        # This micro-batch's outputs go before the next one's forward pass (memory is why one accumulates).
        del logits, vis_embed, aux_embed, decoder, out, loss
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    if ema is not None:
        ema.update_parameters(unwrapped(net))
    stats = {k: (v / counts[k] if counts[k] > 1 else v) for k, v in sums.items()}
    if g_ce is not None:
        stats.update(_probe_stats(g_ce, g_aux))
    return {k: v.detach() for k, v in stats.items()}
