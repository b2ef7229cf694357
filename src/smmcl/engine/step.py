"""One optimisation step on Eq. 7 (`smmcl.losses.Objective`): the step the Trainer, tests and benchmarks call."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from smmcl.engine.optim import set_lr
from smmcl.engine.precision import autocast
from smmcl.losses import Objective, ObjectiveOutput


def shared_encoder_parameters(model: nn.Module) -> list[Tensor]:
    """Trainable parameters of the dual encoder that both losses reach: both branches, the cross-modal
    modules and the fusion convs (not the projectors, which only the contrast trains, nor the decoder)."""
    encoder = model.encoder
    return [p for n, p in encoder.named_parameters() if p.requires_grad and not n.startswith("projector_")]


def _flat_grad(loss: Tensor, params: Sequence[Tensor]) -> Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float() for g, p in zip(grads, params)])


def gradient_probe(out: ObjectiveOutput, params: Sequence[Tensor]) -> Dict[str, Tensor]:
    """Norms of the gradients that L_ce and the weighted contrastive sum each put on `params`, and
    their cosine (two extra backward passes; the graph is kept for the real one)."""
    g_ce = _flat_grad(out.ce, params)
    stats = {"grad_ce": g_ce.norm()}
    if out.contrast.requires_grad:
        g_aux = _flat_grad(out.contrast, params)
        n_aux = g_aux.norm()
        stats["grad_contrast"] = n_aux
        stats["grad_cos"] = (g_ce @ g_aux) / (stats["grad_ce"] * n_aux).clamp(min=1e-30)
        stats["grad_ratio"] = n_aux / stats["grad_ce"].clamp(min=1e-30)
    return stats


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
) -> Dict[str, Tensor]:
    """Forward, Eq. 7, backward and an optimizer step at learning rate `lr`.

    `net` is the model as the step calls it (maybe DDP-wrapped or compiled); `generator` drives the
    contrast's sampling only, so Base and SMMCL runs draw the same dropout and augmentation streams;
    `probe_params` turns on `gradient_probe` for this step. Returns detached 0-dim tensors (no host
    sync): `loss`, every term, the contrast's sampling stats and the probe's figures.
    """
    set_lr(optimizer, lr)
    net.train()
    objective.train()
    embed = objective.needs_embeddings and contrast_scale != 0.0
    with autocast(rgb.device, precision):
        if embed:
            logits, vis_embed, aux_embed = net(rgb, aux, return_embeddings=True)
        else:
            logits, vis_embed, aux_embed = net(rgb, aux), None, None
    out = objective(logits, label, vis_embed, aux_embed, generator=generator, scale=contrast_scale)
    probe = gradient_probe(out, probe_params) if probe_params else {}
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(out.total).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        out.total.backward()
        optimizer.step()
    stats = {"loss": out.total, **out.terms, **out.stats, **probe}
    return {k: v.detach() for k, v in stats.items()}
