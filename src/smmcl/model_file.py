"""One model-file type: what a file is, told from its content (never its name), and what it carries.

    smmcl.model_file.open_model_file("anything")   ->  ModelFile(kind, config, class_names, palette, ...)

Kinds (`KINDS`), and the backend that runs each (`BACKENDS`):

    weights      smmcl weights: safetensors with the resolved config in its metadata (`model.safetensors`)
    checkpoint   a training checkpoint of `smmcl train` (pickle-free torch.save: model, optimizer, config)
    released     a released SMMCL checkpoint (the authors' epoch-*.pth): weights without a config
    onnx         an ONNX export of `smmcl export`, fp32
    onnx-int8    the same, quantised (QuantizeLinear / QLinear* nodes in its graph)
    state-dict   any other PyTorch state dict (an ImageNet backbone file): starts a training, runs nothing

Opening an ONNX export needs neither PyTorch nor the `onnx` package (a robot's runtime, numpy and ONNX Runtime or
OpenVINO, need not carry them): the few fields read (metadata strings, node types) are taken from the protobuf
wire format directly (`read_onnx_header`). A PyTorch file is read with `torch.load(weights_only=True)`, so no
pickled code runs. Loading a file into a backend is the backends' table (`smmcl.deploy.predictor.BACKENDS`, used
by `smmcl.api.open_model` and the `Predictor`): this module only says what the file is and which backends run it.
"""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from smmcl.config import Config, load_config
from smmcl.errors import CheckpointError, ConfigError
from smmcl.files import EXPECTED_MODEL_FILES as EXPECTED, as_path, container, safetensors_metadata

KINDS = ("weights", "checkpoint", "released", "onnx", "onnx-int8", "state-dict")
# Which backends run each kind, the first by default. The backends themselves (name -> how a file is loaded) are one
# table, `smmcl.deploy.predictor.BACKENDS`, whose names are these (tests/deploy/test_openvino.py checks). OpenVINO
# 2026.4 cannot compile the int8 (QDQ) export of the tiny model (an error in its Add transformation, at LightHam).
BACKENDS: Dict[str, Tuple[str, ...]] = {
    "weights": ("torch",), "checkpoint": ("torch",), "released": ("torch",),
    "onnx": ("onnxruntime", "openvino"), "onnx-int8": ("onnxruntime",), "state-dict": (),
}
BACKEND_NAMES: Tuple[str, ...] = tuple(dict.fromkeys(name for names in BACKENDS.values() for name in names))
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

    @property
    def preprocessing(self):
        """Its `smmcl.data.preprocess.Preprocessing`: as an export records it, else from its config and what its
        weights record of the images it was trained on (`aux_dtype`, `aux_top`). One reading for every caller."""
        from smmcl.data.preprocess import Preprocessing

        if "preprocessing" in self.metadata:
            return Preprocessing.from_json(self.metadata["preprocessing"])
        top = self.metadata.get("aux_top")
        return Preprocessing.from_data_config(self.require_config().data, self.metadata.get("aux_dtype"),
                                              float(top) if top else None)

    def require_config(self) -> Config:
        if self.config is None:
            raise CheckpointError(f"{self.path} is {self.description}, which holds no config: give the config of its "
                                  f"model (`smmcl eval CONFIG --checkpoint ...`, `smmcl predict --config CONFIG ...`), "
                                  f"or convert it to smmcl weights with `smmcl convert`")
        return self.config

    def backend(self, wanted: Optional[str] = None) -> str:
        """The backend that runs this file: `wanted` when it can, else a named error; None: the file's own."""
        if not self.backends:
            raise CheckpointError(f"{self.path} is {self.description} (an ImageNet backbone file?): it can start a "
                                  f"training (model.pretrained) but is not a trained model to run")
        if wanted is None:
            return self.backends[0]
        if wanted not in BACKEND_NAMES:
            raise ValueError(f"unknown backend {wanted!r}; the backends are {', '.join(BACKEND_NAMES)}")
        if wanted not in self.backends:
            raise CheckpointError(f"{self.path} is {self.description}, which the {wanted} backend does not run "
                                  f"(it runs on: {', '.join(self.backends)})"
                                  + ("; write an ONNX file with smmcl export" if wanted != "torch" and "onnx" not in self.kind else ""))
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
    path = as_path(path, "the model file")
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
    try:
        metadata, op_types = read_onnx_header(path)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable ONNX file ({exc}); expected {EXPECTED}") from None
    if ONNX_FORMAT_KEY not in metadata or "config" not in metadata:
        raise CheckpointError(f"{path}: an ONNX file without smmcl metadata (not written by smmcl export); "
                              f"export the model with smmcl export")
    quantised = bool(op_types & _QUANTISED_OPS)
    return ModelFile(path, "onnx-int8" if quantised else "onnx", _config(metadata["config"], path, "metadata"), metadata)


# ONNX's ModelProto fields read here (onnx/onnx.proto): graph 7 -> GraphProto, node 1 -> NodeProto, op_type 4;
# metadata_props 14 -> StringStringEntryProto, key 1, value 2. Protobuf's wire types: 0 varint, 1 fixed 64 bits,
# 2 length-delimited, 5 fixed 32 bits (3 and 4, groups, are not used by ONNX).
_GRAPH, _NODE, _OP_TYPE, _METADATA, _KEY, _VALUE = 7, 1, 4, 14, 1, 2


def read_onnx_header(path: str | Path) -> Tuple[Dict[str, str], Set[str]]:
    """An ONNX file's metadata strings and the op types of its main graph's nodes, read from the protobuf wire
    format: the weights are skipped over, never decoded (the file is memory-mapped). A ValueError for a file
    that is not a well-formed ModelProto."""
    with Path(path).open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        metadata: Dict[str, str] = {}
        op_types: Set[str] = set()
        for number, span in _fields(buf, 0, len(buf)):
            if number == _METADATA and span is not None:
                entry = dict(_strings(buf, span, (_KEY, _VALUE)))
                metadata[entry.get(_KEY, "")] = entry.get(_VALUE, "")
            elif number == _GRAPH and span is not None:
                for field_number, node in _fields(buf, *span):
                    if field_number == _NODE and node is not None:
                        op_types.update(text for _, text in _strings(buf, node, (_OP_TYPE,)))
        return metadata, op_types


def _strings(buf: Any, span: Tuple[int, int], wanted: Tuple[int, ...]) -> Iterator[Tuple[int, str]]:
    """(field number, UTF-8 text) of the length-delimited fields numbered `wanted` in the message at `span`."""
    for number, inner in _fields(buf, *span):
        if number in wanted and inner is not None:
            yield number, bytes(buf[inner[0]:inner[1]]).decode("utf-8")


def _varint(buf: Any, pos: int, end: int) -> Tuple[int, int]:
    value = shift = 0
    while shift < 64:
        if pos >= end:
            raise ValueError("the protobuf data ends inside a number")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("a protobuf number longer than 64 bits")


def _fields(buf: Any, start: int, end: int) -> Iterator[Tuple[int, Optional[Tuple[int, int]]]]:
    """(field number, (start, end) of its bytes) of each field of the message in buf[start:end]; None for numbers."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0 in the protobuf data")
        span: Optional[Tuple[int, int]] = None
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            span = (pos, pos + size)
            pos += size
        else:
            raise ValueError(f"protobuf wire type {wire}, which ONNX does not use")
        if pos > end:
            raise ValueError("the protobuf data ends inside a field")
        yield number, span


def _safetensors(path: Path) -> ModelFile:
    metadata = safetensors_metadata(path)
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
