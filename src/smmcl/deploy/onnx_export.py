"""ONNX export of a trained model, verified with ONNX Runtime before the file is put in place.

The graph: inputs `rgb` and `aux` (N x 3 x H x W, normalised as the metadata's `preprocessing` says),
output `logits` (N x K x H x W). Height, width and batch are dynamic unless a fixed size is asked for.
Two exporters: `torchscript` (the default: PyTorch's tracer, deprecated there but 20x faster to run
here: 7 s against 148 s for the demo model) and `dynamo` (torch.export-based, PyTorch's future path).
Both give the same graph semantics; either way the parity check below decides. The exported file is checked on a
real input against the eager fp32 model; a file that disagrees is never written.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple

import numpy as np
import torch
from torch import nn

from smmcl.config import Config
from smmcl.data.preprocess import Preprocessing
from smmcl.deploy.metadata import metadata_for
from smmcl.deploy.onnx_runtime import OnnxSegmentor
from smmcl.engine.inference import predict_probs
from smmcl.errors import SmmclError
from smmcl.files import atomic_path, check_output_name
from smmcl.models.cpu_guard import unguarded

EXPORTERS = ("torchscript", "dynamo")
DEFAULT_OPSET = 18
# The opsets each exporter writes these models in, verified: below 11 the torchscript exporter's Resize differs from
# PyTorch's (40% of pixels agree at opset 9: the parity check refuses it); the dynamo exporter writes 18 whatever
# lower opset is asked for.
MIN_OPSET = {"torchscript": 11, "dynamo": 18}
MAX_OPSET = 23
# Parity bounds an export must meet (issue: argmax agreement and the largest softmax-probability difference).
MIN_AGREEMENT = 0.999
MAX_PROB_DIFF = 1e-3
DOC = "smmcl: RGB + auxiliary semantic segmentation; see the metadata 'inputs' and 'preprocessing'"


class ExportError(SmmclError):
    """An export that failed, or whose ONNX Runtime output disagrees with PyTorch's."""


@dataclass
class Parity:
    """ONNX Runtime against eager fp32 PyTorch on one input."""

    size: Tuple[int, int]
    agreement: float       # fraction of pixels with the same argmax class
    max_prob_diff: float   # largest absolute softmax-probability difference

    @property
    def ok(self) -> bool:
        return self.agreement >= MIN_AGREEMENT and self.max_prob_diff <= MAX_PROB_DIFF

    def __str__(self) -> str:
        return (f"{self.size[0]}x{self.size[1]}: argmax agreement {100 * self.agreement:.3f}% (>= {100 * MIN_AGREEMENT:.1f}%), "
                f"max |p_ort - p_torch| {self.max_prob_diff:.2e} (<= {MAX_PROB_DIFF:.0e})")


@dataclass
class ExportReport:
    path: Path
    exporter: str
    opset: int
    dynamic: bool
    size: Tuple[int, int]
    export_seconds: float
    parity: List[Parity] = field(default_factory=list)

    def lines(self) -> List[str]:
        shape = "N x 3 x H x W (dynamic)" if self.dynamic else f"1 x 3 x {self.size[0]} x {self.size[1]}"
        return ([f"exported {self.path} ({self.path.stat().st_size / 2**20:.1f} MiB, {self.exporter} exporter, opset "
                 f"{self.opset}, inputs rgb/aux {shape}) in {self.export_seconds:.1f} s",
                 "verified with ONNX Runtime against eager fp32 PyTorch:"]
                + [f"  {p}" for p in self.parity])

    def to_dict(self) -> dict:
        """The report in plain JSON types (`smmcl export --json`)."""
        return {"path": str(self.path), "bytes": self.path.stat().st_size, "exporter": self.exporter, "opset": self.opset,
                "dynamic": self.dynamic, "size": list(self.size), "export_seconds": self.export_seconds,
                "parity": [{"size": list(p.size), "agreement": p.agreement, "max_prob_diff": p.max_prob_diff, "ok": p.ok}
                           for p in self.parity]}


def verification_frames(cfg: Config, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """A real-looking dark scene of `size` to verify an export on: a built-in synthetic scene of the
    config's modality (thermal: a night street; otherwise a room with depth, as HHA for an HHA model, trial 14 #245)."""
    from smmcl.deploy.check_frame import builtin_scene

    return builtin_scene(cfg.data.aux_kind, size)


def _any_units(message: str) -> None:
    """A verification scene's values are not checked against the model's aux_max."""


def parity(model: nn.Module, onnx_model: OnnxSegmentor, rgb: torch.Tensor, aux: torch.Tensor) -> Parity:
    """Argmax agreement and max probability difference of ONNX Runtime vs the eager model on one batch."""
    with torch.no_grad():
        ref = predict_probs(model, rgb, aux)
        got = predict_probs(onnx_model, rgb, aux)
    return Parity(tuple(rgb.shape[-2:]), float((ref.argmax(1) == got.argmax(1)).float().mean()),
                  float((ref - got).abs().max()))


def _export(model: nn.Module, example: Tuple[torch.Tensor, torch.Tensor], path: Path, exporter: str, opset: int,
            dynamic: bool, metadata: Dict[str, str]) -> bool:
    """Write the graph with its metadata to `path` in one pass (the weights of a paper model are ~700 MB:
    no second read or write); returns whether height and width came out dynamic."""
    names = dict(input_names=["rgb", "aux"], output_names=["logits"], opset_version=opset)
    with warnings.catch_warnings():
        # The exporters narrate (TracerWarnings on shape checks, deprecations, dynamo's progress); the
        # verification below is what decides whether the file is right.
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes
        if exporter == "torchscript":
            import onnx

            axes = {"rgb": {0: "N", 2: "H", 3: "W"}, "aux": {0: "N", 2: "H", 3: "W"}, "logits": {0: "N", 2: "H", 3: "W"}}
            buffer = io.BytesIO()
            torch.onnx.export(model, example, buffer, dynamo=False, dynamic_axes=axes if dynamic else None, **names)
            proto = onnx.load_from_string(buffer.getvalue())
            del buffer
            del proto.metadata_props[:]
            for key, value in metadata.items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, value
            proto.doc_string = DOC
            onnx.save(proto, str(path))
            dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
        else:
            auto = torch.export.Dim.AUTO
            shapes = {"rgb": {0: auto, 2: auto, 3: auto}, "aux": {0: auto, 2: auto, 3: auto}} if dynamic else None
            program = torch.onnx.export(model, example, dynamic_shapes=shapes, dynamo=True, verbose=False,
                                        optimize=True, external_data=False, **names)
            program.model.metadata_props.update(metadata)
            program.model.doc_string = DOC
            program.save(str(path))
            dims = [getattr(d, "value", d) for d in program.model.graph.inputs[0].shape]  # SymbolicDim -> its name
    return all(isinstance(d, str) and d for i, d in enumerate(dims) if i != 1)


def export_onnx(model: nn.Module, cfg: Config, out: str | Path, size: Tuple[int, int] = (480, 640),
                dynamic: bool = True, opset: int = DEFAULT_OPSET, exporter: Literal["torchscript", "dynamo"] = "torchscript",
                frames: Optional[Tuple[np.ndarray, np.ndarray]] = None, trained_on: str = "",
                trained: Optional[Preprocessing] = None) -> ExportReport:
    """Export `model` (trained with `cfg`) to `out`, verify it with ONNX Runtime, and only then write it.

    `size`: the example input's H x W (the fixed size when `dynamic` is False). `frames`: the raw RGB and
    auxiliary frames to verify on (default: a built-in synthetic scene, `verification_frames`). A dynamic
    export is verified at `size` and at a second size, as a batch of two. `trained_on`, `trained`: what the weights
    record of the images they were trained on (`smmcl.data.fingerprint`; `ModelFile.preprocessing`), kept.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    lowest = MIN_OPSET[exporter]
    if not lowest <= int(opset) <= MAX_OPSET:
        raise ValueError(f"opset must be between {lowest} and {MAX_OPSET} for the {exporter} exporter, got {opset}"
                         + (" (the dynamo exporter writes opset 18 or newer; --exporter torchscript goes down to 11)"
                            if exporter == "dynamo" else ""))
    out = Path(out)
    check_output_name(out, "onnx")
    height, width = (int(s) for s in size)
    if height < 32 or width < 32:
        raise ValueError(f"export size must be at least 32x32 (the encoder downsamples 32x), got {height}x{width}")
    model = model.to("cpu").float().eval()
    prep = Preprocessing.from_data_config(cfg.data)
    rgb_np, aux_np = frames if frames is not None else verification_frames(cfg, (height, width))
    # The built-in scene is in its own units, not the model's (only the graph is verified on it): no units warning.
    own_units = {"on_units": _any_units} if frames is None else {}
    rgb, aux = (t[None] for t in prep.pair(rgb_np, aux_np, source="the verification frame", **own_units))
    if (rgb.shape[-2], rgb.shape[-1]) != (height, width) and not dynamic:
        raise ValueError(f"verification frames are {rgb.shape[-2]}x{rgb.shape[-1]} but the export is fixed at {height}x{width}")
    # Dynamic batch: the dynamo exporter would fix a batch of one as a constant.
    example = (rgb.repeat(2, 1, 1, 1), aux.repeat(2, 1, 1, 1)) if dynamic else (rgb, aux)
    with atomic_path(out, suffix=".tmp.onnx") as tmp:
        t0 = time.perf_counter()
        with unguarded(model):
            try:
                is_dynamic = _export(model, example, tmp, exporter, int(opset), dynamic, metadata_for(cfg, trained_on, trained))
            except Exception as exc:
                raise ExportError(f"the {exporter} exporter failed on this model: {type(exc).__name__}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                                  + f"; try --exporter {'torchscript' if exporter == 'dynamo' else 'dynamo'}") from exc
        seconds = time.perf_counter() - t0
        if dynamic and not is_dynamic:
            raise ExportError(f"the {exporter} exporter fixed the input size although a dynamic export was asked for")
        report = ExportReport(out, exporter, int(opset), dynamic, (height, width), seconds)
        runtime = OnnxSegmentor(tmp, threads=torch.get_num_threads())
        report.parity.append(parity(model, runtime, rgb, aux))
        if dynamic:  # another size, and a batch of two
            other = (height + 32, max(32, width - 32))
            rgb2, aux2 = (t[None] for t in prep.pair(*verification_frames(cfg, other), source="the verification frame",
                                                     on_units=_any_units))
            report.parity.append(parity(model, runtime, rgb2.repeat(2, 1, 1, 1), aux2.repeat(2, 1, 1, 1)))
        bad = [p for p in report.parity if not p.ok]
        if bad:
            raise ExportError(f"ONNX Runtime disagrees with PyTorch on the exported model ({'; '.join(map(str, bad))}); "
                              f"nothing written to {out}")
    return report
