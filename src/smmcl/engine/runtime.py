"""Device choice, seeding and RNG state capture (for exact resume)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an explicit device that is not there is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={name!r} but CUDA is not available; use 'cpu' or 'auto'")
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
