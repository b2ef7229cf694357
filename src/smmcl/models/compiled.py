"""How a built model runs fast, in training, evaluation and prediction alike: channels_last layout (NHWC kernels)
and `torch.compile`, frozen for no_grad inference."""

from __future__ import annotations

import torch
from torch import nn

from smmcl.models.cpu_guard import guard_cpu_depthwise


# Compiled and eager float32 agree to about 1e-7 of the output's range here; a wrong kernel is off by a tenth.
FROZEN_TOLERANCE = 1e-3


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
        self.checked = False  # the first call is compared with eager (see `forward`)
        self.frozen = True

    def forward(self, *args, **kwargs):
        import torch._inductor.config as inductor_config

        model = super().__getattr__("compiled")._orig_mod
        if not self.frozen:
            return model(*args, **kwargs)
        with inductor_config.patch(freezing=True):
            out = self.compiled(*args, **kwargs)
        if not self.checked and isinstance(out, torch.Tensor):
            # Frozen kernels that compute something else exist (torch 2.13 with ATen's AVX2 kernels on an AVX-512
            # CPU: probabilities off by 0.16, every pixel): the first batch is checked against eager, and a model
            # that disagrees by more than a thousandth of its output's range runs eagerly from then on.
            self.checked = True
            ref = model(*args, **kwargs)
            gap = float((out.float() - ref.float()).abs().max())
            if gap > FROZEN_TOLERANCE * max(float(ref.float().abs().max()), 1.0):
                import warnings

                self.frozen = False
                warnings.warn(f"train.compile: the frozen compiled model disagrees with eager by {gap:.3g} on its "
                              f"first batch (torch {torch.__version__}, this CPU); it runs eagerly instead",
                              RuntimeWarning, stacklevel=2)
                return ref
        return out

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
        narrow_cpu_vectors()
        return FrozenCompiled(model) if freeze else torch.compile(model)  # type: ignore[return-value]
    return model


# Inductor's widest CPU vectors that compute what eager does with torch 2.13 (see `narrow_cpu_vectors`).
SAFE_SIMD_BITS = 256


def narrow_cpu_vectors() -> None:
    """Have Inductor write CPU kernels with 256-bit vectors where it would pick 512-bit (AVX-512) ones, unless the
    user chose a width (`torch._inductor.config.cpp.simdlen`).

    With torch 2.13 on an AVX-512 CPU, Inductor's 512-bit kernels for these models corrupt the heap: a small
    model compiled in a script aborts (`malloc(): unaligned tcache chunk detected`), and in a longer process the
    compiled probabilities were off by up to 0.16. With 256-bit kernels they agree with eager to 1e-7, on the
    same CPU (`benchmarks/compile_vectors.py` shows both). GPU kernels are not affected; AVX2 CPUs pick 256 anyway.
    """
    import torch._inductor.config as inductor_config
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    if inductor_config.cpp.simdlen is None and pick_vec_isa().bit_width() > SAFE_SIMD_BITS:
        inductor_config.cpp.simdlen = SAFE_SIMD_BITS


def to_channels_last(x: torch.Tensor, enabled: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if enabled and x.dim() == 4 else x
