"""Exported smmcl ONNX files as inference backends: what every runtime shares, and ONNX Runtime.

`ExportedModel` is what does not depend on the runtime: the file, its smmcl metadata (`smmcl.deploy.metadata`:
classes, palette, preprocessing, the training config), the check of its inputs' names and of a fixed-size
export's shape, and `run(rgb, aux)`: float32 N x 3 x H x W arrays -> logits N x K x H x W. It needs neither
PyTorch nor the `onnx` package, so the `Predictor` runs an export on numpy alone. A runtime subclasses it with
its session (`_open`) and its call (`_infer`): `OnnxRuntimeModel` here, `OpenVinoModel` in
`smmcl.deploy.openvino_runtime`.

Evaluation, the inference protocols (sliding window, scales, flip) and `predict` take an `nn.Module`: each runtime
has a PyTorch face, an `nn.Module` without parameters whose `forward` calls `run` (`OnnxSegmentor`,
`OpenVinoSegmentor`; `torch_face`). The faces are made on first use, so importing this module imports no PyTorch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from smmcl.deploy.metadata import OnnxMetadata, parse_metadata
from smmcl.errors import CheckpointError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def default_threads() -> int:
    """Intra-op threads when none are given: PyTorch's own count where PyTorch is loaded (the backends then
    compare at equal threads), else the cores this process may run on."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class ExportedModel:
    """An smmcl ONNX export on one runtime; see the module docstring. Subclasses set `backend` (the name in the
    backends' table, `smmcl.deploy.predictor.BACKENDS`) and `precisions`, and implement `_open` and `_infer`."""

    backend = ""
    face_name = ""  # the class name of its PyTorch face
    precisions: Tuple[str, ...] = ("fp32",)

    def __init__(self, path: str | Path, device: str = "cpu", threads: Optional[int] = None,
                 precision: str = "fp32") -> None:
        super().__init__()  # nn.Module's, in a PyTorch face
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"ONNX file not found: {path}")
        if precision not in self.precisions:
            raise ValueError(f"the {self.backend} backend runs an export in {' or '.join(self.precisions)}, "
                             f"not {precision!r}")
        self.path = path
        self.precision = precision
        props, names, shape = self._open(path, device, int(threads or default_threads()), precision)
        # From the runtime's own reading, not a second parse of the file (hundreds of MB for the paper models).
        self.metadata: OnnxMetadata = parse_metadata(props, path)
        self.num_classes = self.metadata.num_classes
        if list(names) != ["rgb", "aux"]:
            raise CheckpointError(f"{path}: inputs are {list(names)}, an smmcl export has ['rgb', 'aux']")
        # A `--no-dynamic` export takes one input shape only; None for each free dimension otherwise.
        self.input_shape: Tuple[Optional[int], ...] = tuple(d if isinstance(d, int) else None for d in shape)

    def _open(self, path: Path, device: str, threads: int, precision: str) -> Tuple[Dict[str, str], List[str], Sequence[Any]]:
        """Load the file: returns its metadata strings, its input names and the first input's shape (an int for
        each fixed dimension)."""
        raise NotImplementedError

    def _infer(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def threads(self) -> int:
        raise NotImplementedError

    def run(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """Logits N x K x H x W (float32) for normalised float32 N x 3 x H x W arrays."""
        for given in (rgb.shape, aux.shape):
            if len(given) != len(self.input_shape) or any(d is not None and d != g for d, g in zip(self.input_shape, given)):
                fixed = "x".join("N" if d is None else str(d) for d in self.input_shape)
                raise CheckpointError(f"{self.path} was exported for inputs of shape {fixed} (a fixed-size export, "
                                      f"--no-dynamic), got {'x'.join(map(str, given))}: export it again with --dynamic "
                                      f"or at this size, or give it inputs of that shape (scored with --mode slide, "
                                      f"windows of that size: eval.crop_size=[{self.input_shape[-2]},"
                                      f"{self.input_shape[-1]}])")
        return self._infer(np.ascontiguousarray(rgb, np.float32), np.ascontiguousarray(aux, np.float32))

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, backend={self.backend}, precision={self.precision}, threads={self.threads}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


_FACES: Dict[type, type] = {}


def torch_face(runtime: type) -> type:
    """The PyTorch face of an `ExportedModel` subclass: the same class and arguments, also an `nn.Module` without
    parameters whose `forward(rgb, aux)` takes tensors (or arrays) and returns the logits as a CPU tensor (the
    runtime copies to its own device itself). Made once per runtime, on first use; needs PyTorch."""
    if runtime not in _FACES:
        import torch
        from torch import nn

        class Face(runtime, nn.Module):  # type: ignore[valid-type, misc]
            def forward(self, rgb: Any, aux: Any) -> torch.Tensor:
                def array(t: Any) -> np.ndarray:
                    t = t.detach().to("cpu", torch.float32) if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=torch.float32)
                    return np.ascontiguousarray(t.numpy())

                return torch.from_numpy(self.run(array(rgb), array(aux)))

        Face.__name__ = Face.__qualname__ = runtime.face_name
        Face.__module__ = runtime.__module__
        _FACES[runtime] = Face
    return _FACES[runtime]


# ---------------------------------------------------------------------------------------------------- ONNX Runtime

def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("ONNX Runtime is not installed: pip install 'smmcl[deploy]'", name="onnxruntime") from None
    return onnxruntime


def session_options(threads: Optional[int] = None):
    """Session options set on purpose, not left to defaults.

    All graph optimisations (constant folding, conv + BN/activation fusion, layout transforms); `threads`
    intra-op threads (default: `default_threads`, PyTorch's own count where it is loaded, so the two backends
    compare at equal threads) and one inter-op thread with sequential execution: a segmentation graph is one
    chain of large ops, and a second thread pool would only compete with the first for the same cores.
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads or default_threads())
    options.inter_op_num_threads = 1
    return options


def execution_provider(device: str, available: Sequence[str]) -> Tuple[str, Dict[str, Any]]:
    """The ONNX Runtime provider and its options for `device`: cpu, cuda, cuda:N, or auto (CUDA where this ONNX
    Runtime has it, else the CPU). A device it cannot run on is a named error, never a fallback to the CPU."""
    if device == "auto":
        device = "cuda" if PROVIDERS["cuda"] in available else "cpu"
    kind, _, index = str(device).partition(":")
    if kind not in PROVIDERS or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"device {device!r} is not one ONNX Runtime runs on; use auto, cpu, cuda or cuda:N")
    provider = PROVIDERS[kind]
    if provider not in available:
        raise ValueError(f"device {device!r} asked for, but this ONNX Runtime has no {provider} (it has "
                         f"{', '.join(available)}); install onnxruntime-gpu for CUDA, or use device 'cpu'")
    return provider, ({"device_id": int(index)} if index else {})


def make_session(path: str | Path, device: str = "cpu", threads: Optional[int] = None):
    """An ONNX Runtime session on `device` (see `execution_provider`)."""
    ort = import_onnxruntime()
    provider, options = execution_provider(device, ort.get_available_providers())
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads), providers=[(provider, options)])
    except Exception as exc:  # ORT raises its own exception types for unreadable or invalid files
        raise CheckpointError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from None


class OnnxRuntimeModel(ExportedModel):
    """An smmcl export run by ONNX Runtime (fp32, as exported; an int8 export in int8), on `device` "cpu" or "cuda"
    (ONNX Runtime copies the inputs to the GPU itself)."""

    backend = "onnxruntime"
    face_name = "OnnxSegmentor"

    def _open(self, path: Path, device: str, threads: int, precision: str):
        self.session = make_session(path, device, threads)
        inputs = self.session.get_inputs()
        return self.session.get_modelmeta().custom_metadata_map, [i.name for i in inputs], inputs[0].shape

    def _infer(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"rgb": rgb, "aux": aux})[0]

    @property
    def threads(self) -> int:
        return int(self.session.get_session_options().intra_op_num_threads)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, providers={list(self.session.get_providers())}"


def __getattr__(name: str) -> Any:
    # `OnnxSegmentor(path, device="cpu", threads=None)`: the PyTorch face of `OnnxRuntimeModel` (see `torch_face`).
    if name == "OnnxSegmentor":
        return torch_face(OnnxRuntimeModel)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
