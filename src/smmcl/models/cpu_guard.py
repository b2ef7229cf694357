"""A guard around a CPU kernel hang: slim depth-wise strip convs in bf16 with NHWC tensors.

With torch 2.13's oneDNN on CPU, a depth-wise conv of 2 to 16 channels with a kernel at least 15 wide never
returns under bf16 when its input or weight is channels_last and the feature map is a few dozen pixels wide
(MSCAN's 1x21 strips in a slim MSCAN hit it; 17+ channels, tall kernels, fp32 and fp16 do not). The paper's
models (64+ channels) are unaffected; custom slim ones, like the demo's, are. `benchmarks/onednn_hang.py`
maps the conditions. The guard runs those layers in NCHW on CPU, also inside compiled models; they are
tiny, and the rest of the model keeps its layout.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


def hang_prone(module: nn.Module) -> bool:
    """Whether `module` is a depth-wise conv of the shape that hangs (see the module docstring)."""
    if not isinstance(module, nn.Conv2d):
        return False
    c = module.in_channels
    return module.groups == c == module.out_channels and 2 <= c <= 16 and module.kernel_size[1] >= 15


def _nchw(t: torch.Tensor) -> torch.Tensor:
    # Not `.contiguous()`: a 1 x k depth-wise weight counts as contiguous with NHWC strides, while the conv
    # reads the strides themselves; so rebuild the layout whenever they differ from row-major ones.
    if t.stride() == torch.empty(t.shape, device="meta").stride():
        return t
    return t.clone(memory_format=torch.contiguous_format)


class GuardedConv2d(nn.Conv2d):
    """A hang-prone depth-wise conv that runs in NCHW on CPU; same parameters and state-dict keys.

    Kept out of `torch.compile` graphs: Inductor picks conv layouts itself (NHWC under bf16), which would
    bring the hang back, so the graph breaks around these few small layers and they run eagerly.
    """

    def weight_to_nchw(self) -> None:
        weight = _nchw(self.weight.data)
        if weight is not self.weight.data:
            self.weight.data = weight

    @torch.compiler.disable
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        self.weight_to_nchw()  # again: e.g. after model.to(memory_format=torch.channels_last)
        return super().forward(_nchw(x))


def guard_cpu_depthwise(model: nn.Module) -> int:
    """Turn every hang-prone conv in `model` into a `GuardedConv2d` (idempotent); returns how many there are."""
    guarded = 0
    for module in model.modules():
        if hang_prone(module):
            module.__class__ = GuardedConv2d
            if module.weight.device.type == "cpu":  # now, not at the first call: DDP records layouts when wrapping
                module.weight_to_nchw()
            guarded += 1
    return guarded


@contextlib.contextmanager
def unguarded(model: nn.Module) -> Iterator[nn.Module]:
    """`model` with its guarded convs as plain `nn.Conv2d` for the duration (same weights).

    For graph capture (ONNX export, `torch.export`): the guard's compiler barrier stops them, and the
    hang it avoids is PyTorch's own CPU kernel, which an exported graph never runs.
    """
    guarded = [m for m in model.modules() if isinstance(m, GuardedConv2d)]
    for module in guarded:
        module.__class__ = nn.Conv2d
    try:
        yield model
    finally:
        for module in guarded:
            module.__class__ = GuardedConv2d
