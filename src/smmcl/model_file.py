"""One model-file type: what a file is, told from its content (never its name), and what it carries.

    smmcl.model_file.open_model_file("anything")   ->  ModelFile(kind, config, class_names, palette, ...)

Kinds (`KINDS`), and the backend that runs each (`BACKENDS`):

    weights      smmcl weights: safetensors with the resolved config in its metadata (`model.safetensors`)
    checkpoint   a training checkpoint of `smmcl train` (pickle-free torch.save: model, optimizer, config)
    released     a released SMMCL checkpoint (the authors' epoch-*.pth): weights without a config
    onnx         an ONNX export of `smmcl export`, fp32
    onnx-int8    the same, quantised (QuantizeLinear / QLinear* nodes in its graph)
    state-dict   any other PyTorch state dict (an ImageNet backbone file): starts a training, runs nothing

Opening an ONNX export needs `onnx` and no PyTorch (a robot's runtime need not carry it); a PyTorch file is
read with `torch.load(weights_only=True)`, so no pickled code runs. Loading a file into a backend is the
API's (`smmcl.api.open_model`): this module only says what the file is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from smmcl.config import Config, load_config
from smmcl.errors import CheckpointError, ConfigError
from smmcl.files import EXPECTED_MODEL_FILES as EXPECTED, container

KINDS = ("weights", "checkpoint", "released", "onnx", "onnx-int8", "state-dict")
BACKENDS: Dict[str, Tuple[str, ...]] = {
    "weights": ("torch",), "checkpoint": ("torch",), "released": ("torch",),
    "onnx": ("onnxruntime",), "onnx-int8": ("onnxruntime",), "state-dict": (),
}
DESCRIPTIONS = {
    "weights": "smmcl weights", "checkpoint": "a training checkpoint", "released": "a released SMMCL checkpoint",
    "onnx": "an ONNX export", "onnx-int8": "an int8 ONNX export", "state-dict": "a PyTorch state dict",
}
# The metadata keys that mark our own files (the writers: weights.pretrained, deploy.metadata).
WEIGHTS_FORMAT = "smmcl-weights"
ONNX_FORMAT_KEY = "smmcl_format"
_QUANTISED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}

@dataclass
class ModelFile:
    """A model file as smmcl understands it: `kind` (one of `KINDS`), the `config` it carries (None for a released
    checkpoint or a state dict, which need one given), the file's own metadata strings; for a training checkpoint,
    the `checkpoint` dict read to tell its kind, so that loading it does not read the file again."""

    path: Path
    kind: str
    config: Optional[Config] = None
    metadata: Dict[str, str] = field(default_factory=dict)
    checkpoint: Optional[dict] = field(default=None, repr=False, compare=False)

    @property
    def backends(self) -> Tuple[str, ...]:
        return BACKENDS[self.kind]

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.kind]

    @property
    def num_classes(self) -> Optional[int]:
        return None if self.config is None else self.config.model.num_classes

    @property
    def class_names(self) -> List[str]:
        """The names an export records, else the one rule of `class_names(config)`."""
        if "class_names" in self.metadata:
            return list(json.loads(self.metadata["class_names"]))
        if self.config is None:
            raise CheckpointError(f"{self.path} is {self.description}: it names no classes; give a config")
        from smmcl.data.classes import class_names

        return class_names(self.config)

    def require_config(self) -> Config:
        if self.config is None:
            raise CheckpointError(f"{self.path} is {self.description}, which holds no config: give one (--config), "
                                  f"or convert it to smmcl weights with `smmcl convert`")
        return self.config

    def backend(self, wanted: Optional[str] = None) -> str:
        """The backend that runs this file: `wanted` when it can, else a named error; None: the file's own."""
        if not self.backends:
            raise CheckpointError(f"{self.path} is {self.description} (an ImageNet backbone file?): it can start a "
                                  f"training (model.pretrained) but is not a trained model to run")
        if wanted is None:
            return self.backends[0]
        if wanted not in self.backends:
            raise CheckpointError(f"{self.path} is {self.description}, which the {wanted} backend does not run "
                                  f"(it runs on: {', '.join(self.backends)})"
                                  + ("; write an ONNX file with smmcl export" if "onnx" in wanted else ""))
        return wanted


# What the writers name their files (the kind of a file is never read from its name).
def is_model_file(path: str | Path) -> bool:
    """Whether `path` is a file in one of the model containers (else, e.g., a YAML config)."""
    try:
        container(Path(path))
    except CheckpointError:
        return False
    return True


def open_model_file(path: str | Path) -> ModelFile:
    """What `path` is and what it carries; a named error for a file that is none of `KINDS`."""
    path = Path(path)
    kind = container(path)
    if kind == "onnx":
        return _onnx(path)
    if kind == "safetensors":
        return _safetensors(path)
    return _torch(path)


def _config(raw: Any, path: Path, where: str) -> Config:
    try:
        return load_config(json.loads(raw) if isinstance(raw, str) else raw)
    except (ConfigError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: the config in its {where} is not valid ({exc})") from None


def _onnx(path: Path) -> ModelFile:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have several types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable ONNX file ({first}); expected {EXPECTED}") from None
    metadata = {p.key: p.value for p in proto.metadata_props}
    if ONNX_FORMAT_KEY not in metadata or "config" not in metadata:
        raise CheckpointError(f"{path}: an ONNX file without smmcl metadata (not written by smmcl export); "
                              f"export the model with smmcl export")
    quantised = any(node.op_type in _QUANTISED_OPS for node in proto.graph.node)
    return ModelFile(path, "onnx-int8" if quantised else "onnx", _config(metadata["config"], path, "metadata"), metadata)


def _safetensors(path: Path) -> ModelFile:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
    except Exception as exc:  # SafetensorError for truncated or malformed headers
        raise CheckpointError(f"cannot read {path}: not a valid safetensors file ({exc})") from None
    if metadata.get("format") != WEIGHTS_FORMAT or "config" not in metadata:
        raise CheckpointError(f"{path} is a safetensors file but not smmcl weights (no embedded smmcl config); "
                              f"convert it with `smmcl convert`")
    return ModelFile(path, "weights", _config(metadata["config"], path, "metadata"), metadata)


def _torch(path: Path) -> ModelFile:
    from smmcl.weights.formats import looks_official_smmcl, looks_smmcl
    from smmcl.weights.reading import load_pickle_free, unwrap_state_dict

    obj = load_pickle_free(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and "config" in obj and "optimizer" in obj:
        cfg = _config(obj["config"], path, "checkpoint") if obj["config"] else None
        return ModelFile(path, "checkpoint", cfg, checkpoint=obj)
    keys = list(unwrap_state_dict(obj, str(path)))
    if looks_official_smmcl(keys) and not looks_smmcl(keys):
        return ModelFile(path, "released")
    return ModelFile(path, "state-dict")
