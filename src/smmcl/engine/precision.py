"""Mixed precision shared by training, evaluation and prediction: autocast and the fp16 loss scaler (layout and
compilation of a model: `smmcl.models.compiled`)."""

from __future__ import annotations

import contextlib
from typing import Optional

import torch

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
