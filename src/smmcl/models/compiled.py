"""How a built model runs fast, in training, evaluation and prediction alike: channels_last layout (NHWC kernels)
and `torch.compile`, frozen for no_grad inference."""

from __future__ import annotations

import torch
from torch import nn

from smmcl.models.cpu_guard import guard_cpu_depthwise


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
