"""Fast paths shared by training, evaluation and prediction: autocast precision, channels_last, torch.compile."""

from __future__ import annotations

import contextlib
from typing import Optional

import torch
from torch import nn

from smmcl.models.cpu_guard import guard_cpu_depthwise

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed-precision region for `precision` on `device` (a no-op for fp32).

    The contrastive terms and the NMF updates disable autocast themselves and run in fp32.
    """
    dtype = PRECISIONS[check_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    if not torch.amp.is_autocast_available(device.type):
        raise ValueError(f"precision {precision} needs autocast, which device {device} does not support")
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> Optional[torch.amp.GradScaler]:
    """A loss scaler for fp16 (its small exponent range underflows gradients); None otherwise."""
    if check_precision(precision) != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


class FrozenCompiled(nn.Module):
    """`torch.compile` of a model for no_grad inference with Inductor's freezing: the weights become graph
    constants, batch norms fold into convolutions and weights are pre-packed for oneDNN.

    Inductor reads the setting when a call compiles, not when `torch.compile` is called (passing it in
    `options` has no effect in torch 2.13), so every call runs under it. Attributes not found here are read
    from the model, like `torch.compile`'s own wrapper does.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.compiled = torch.compile(model)

    def forward(self, *args, **kwargs):
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return self.compiled(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("compiled")._orig_mod, name)


def prepare_model(model: nn.Module, channels_last: bool = False, compile: bool = False, freeze: bool = False) -> nn.Module:
    """Move parameters to channels_last (NHWC kernels) and optionally wrap in `torch.compile`
    (`freeze`: for no_grad inference only, see `FrozenCompiled`).

    Returns the module to call; the original keeps its parameters, state dict and checkpoint names.
    """
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        guard_cpu_depthwise(model)  # models not made by build_model
    if compile:
        return FrozenCompiled(model) if freeze else torch.compile(model)  # type: ignore[return-value]
    return model


def to_channels_last(x: torch.Tensor, enabled: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if enabled and x.dim() == 4 else x
