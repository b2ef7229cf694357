"""The contrastive objectives run in float32 whatever autocast the network runs under."""

from __future__ import annotations

import contextlib

import torch


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast switched off on the inputs' device (a no-op where autocast does not exist).

    exp(s / tau) with tau = 0.1 and N x N sums are too coarse in half precision.
    """
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()
