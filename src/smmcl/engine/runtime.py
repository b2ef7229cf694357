"""Device choice, seeding and RNG state capture (for exact resume)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def _mps() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(name: str | torch.device) -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an explicit device that is not there is an error naming it."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {name!r} is not one PyTorch knows; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here; use 'cpu' or 'auto'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} CUDA devices")
    if device.type == "mps" and not _mps():
        raise ValueError(f"device {name!r} asked for, but MPS is not available here; use 'cpu' or 'auto'")
    return device


def use_deterministic_kernels(on: bool) -> None:
    """`train.deterministic`: PyTorch's deterministic kernels (warning, not failing, on an op that has none),
    cuDNN's autotuner off, and the cuBLAS workspace setting its deterministic mode needs (read when cuBLAS
    starts, so set before the first CUDA matmul; a value already in the environment is kept)."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(on, warn_only=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """The RNG state the model's randomness draws on (dropout, drop path, NMF bases, SMMCL sampling)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
