"""An exported smmcl ONNX file as an inference backend: ONNX Runtime behind the `model(rgb, aux) -> logits` call.

`OnnxSegmentor` is an `nn.Module` without parameters, so evaluation, the inference protocols (sliding
window, scales, flip) and `predict` run it unchanged; everything they need to know (classes, palette,
preprocessing, the training config) comes from the file's metadata (`smmcl.deploy.metadata`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from smmcl.deploy.metadata import OnnxMetadata, parse_metadata
from smmcl.errors import CheckpointError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("ONNX Runtime is not installed: pip install 'smmcl[deploy]'") from None
    return onnxruntime


def session_options(threads: Optional[int] = None):
    """Session options set on purpose, not left to defaults.

    All graph optimisations (constant folding, conv + BN/activation fusion, layout transforms); `threads`
    intra-op threads (default: PyTorch's own count, so the two backends compare at equal threads) and one
    inter-op thread with sequential execution: a segmentation graph is one chain of large ops, and a second
    thread pool would only compete with the first for the same cores.
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    return options


def make_session(path: str | Path, device: str = "cpu", threads: Optional[int] = None):
    """An ONNX Runtime session on `device` ("cpu" or "cuda"); an unavailable provider is an error, not a fallback."""
    ort = import_onnxruntime()
    if device not in PROVIDERS:
        raise ValueError(f"ONNX Runtime device must be one of {', '.join(PROVIDERS)}, got {device!r}")
    provider = PROVIDERS[device]
    if provider not in ort.get_available_providers():
        raise RuntimeError(f"ONNX Runtime here has no {provider} (available: {', '.join(ort.get_available_providers())})")
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads), providers=[provider])
    except Exception as exc:  # ORT raises its own exception types for unreadable or invalid files
        raise CheckpointError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from None


class OnnxSegmentor(nn.Module):
    """An exported smmcl model run by ONNX Runtime: `(rgb, aux)` normalised B x 3 x H x W -> logits B x K x H x W.

    Inputs are taken as CPU float32 tensors (or numpy arrays) and logits returned as a CPU tensor; with
    `device="cuda"` ONNX Runtime copies them to the GPU itself.
    """

    def __init__(self, path: str | Path, device: str = "cpu", threads: Optional[int] = None) -> None:
        super().__init__()
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"ONNX file not found: {path}")
        self.path = path
        self.session = make_session(path, device, threads)
        # From the session, not a second parse of the file (hundreds of MB for the paper models).
        self.metadata: OnnxMetadata = parse_metadata(self.session.get_modelmeta().custom_metadata_map, path)
        self.num_classes = self.metadata.num_classes
        names = [i.name for i in self.session.get_inputs()]
        if names != ["rgb", "aux"]:
            raise CheckpointError(f"{path}: inputs are {names}, an smmcl export has ['rgb', 'aux']")
        # A `--no-dynamic` export takes one input shape only; a name for each free dimension otherwise.
        self.input_shape = tuple(d if isinstance(d, int) else None for d in self.session.get_inputs()[0].shape)

    @property
    def threads(self) -> int:
        return int(self.session.get_session_options().intra_op_num_threads)

    def run(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """The raw session call on float32 NCHW arrays."""
        for given in (rgb.shape, aux.shape):
            if len(given) != len(self.input_shape) or any(d is not None and d != g for d, g in zip(self.input_shape, given)):
                fixed = "x".join("N" if d is None else str(d) for d in self.input_shape)
                raise CheckpointError(f"{self.path} was exported for inputs of shape {fixed} (a fixed-size export, "
                                      f"--no-dynamic), got {'x'.join(map(str, given))}: export it again with --dynamic "
                                      f"or at this size, or give it inputs of that shape")
        return self.session.run(["logits"], {"rgb": rgb, "aux": aux})[0]

    def forward(self, rgb: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        def array(t) -> np.ndarray:
            t = t.detach().to("cpu", torch.float32) if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=torch.float32)
            return np.ascontiguousarray(t.numpy())

        return torch.from_numpy(self.run(array(rgb), array(aux)))

    def extra_repr(self) -> str:
        providers: Sequence[str] = self.session.get_providers()
        return f"path={str(self.path)!r}, providers={list(providers)}, threads={self.threads}"
