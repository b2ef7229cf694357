"""Read weight files without executing pickled code: `torch.load(weights_only=True)` or safetensors."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple, Union

import torch
from torch import Tensor

from smmcl.errors import CheckpointError
from smmcl.files import container, safetensors_metadata

StateDict = Dict[str, Tensor]
WeightSource = Union[str, Path, Mapping[str, Any]]

# Wrappers used by the releases we read: mmseg/SegNeXt (`state_dict`), released SMMCL and our
# training checkpoints (`model`).
_WRAPPERS = ("state_dict", "model")


def read_file(path: Union[str, Path]) -> Tuple[Any, Dict[str, str]]:
    """The raw object in a PyTorch or safetensors file (told by `smmcl.model_file` from its content) and, for
    safetensors, its metadata."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if container(path) == "safetensors":
        from safetensors.torch import load_file

        metadata = safetensors_metadata(path)
        try:
            return load_file(str(path)), metadata
        except Exception as exc:  # SafetensorError for truncated or malformed headers
            raise CheckpointError(f"cannot read {path}: not a valid safetensors file ({exc})") from None
    return load_pickle_free(path), {}



def load_pickle_free(path: Union[str, Path], map_location: Any = "cpu") -> Any:
    """`torch.load(weights_only=True)` with errors in words: an empty file, a truncated one, or one that
    holds pickled code (refused: it is never loaded, whatever the file claims to be)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read {path}: the file is empty (0 bytes)")
    kind = container(path)  # a named error for a file that is no model file at all
    if kind != "torch":
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: it is a {kind} file"
                              + (" (smmcl weights: --resume takes a training checkpoint, checkpoints/ckpt_*.pt, or auto; a new run "
                                 "starts from weights with model.pretrained=FILE)" if kind == "safetensors"
                                 else " (an ONNX export is for inference alone, with --backend onnxruntime or openvino: it cannot be "
                                      "trained, resumed or converted from; give smmcl weights or a checkpoint)"))
    try:
        # An open file, not the name: torch.load would pick a reader by the name's suffix.
        with path.open("rb") as f:
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"it references {found.group(1)}" if found else "it holds objects other than tensors and containers"
        raise CheckpointError(
            f"refusing to load {path}: {what}, that is pickled Python code, which could run anything; smmcl "
            f"reads only tensors, numbers, strings and containers, and will not load this file"
        ) from None
    except Exception as exc:  # truncated zip, not a torch file, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read {path}: not a PyTorch file, or truncated ({reason})") from None


def unwrap_state_dict(obj: Any, origin: str) -> StateDict:
    """The flat name -> tensor mapping inside a checkpoint, without `module.` (DDP) prefixes."""
    if isinstance(obj, Mapping):
        for wrapper in _WRAPPERS:
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{origin}: expected a state dict (names -> tensors), got {type(obj).__name__}")
    state = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not state:
        keys = ", ".join(list(map(str, obj))[:5])
        raise CheckpointError(f"{origin}: no tensors found (top-level entries: {keys})")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def read_state_dict(source: WeightSource) -> Tuple[StateDict, str, Dict[str, str]]:
    """(state dict, a name for messages, safetensors metadata) from a path or an in-memory mapping."""
    if isinstance(source, (str, Path)):
        obj, metadata = read_file(source)
        return unwrap_state_dict(obj, str(source)), str(source), metadata
    return unwrap_state_dict(source, "state dict"), "state dict", {}
