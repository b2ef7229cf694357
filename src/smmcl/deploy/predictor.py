"""`Predictor`: segmentation of camera frames, from smmcl weights, a training checkpoint or an ONNX export.

What a ROS node or a video loop calls. It owns the preprocessing contract (`smmcl.data.preprocess`), so
the caller hands over frames as the camera gives them:

    predictor = Predictor("model.onnx")                     # or weights.safetensors / a training checkpoint
    labels = predictor(rgb, depth)                          # H x W x 3 uint8 + H x W depth -> H x W uint8
    labels, probs = predictor(rgb, depth, probs=True)       # + K x H x W float32 class probabilities
    labels = predictor(bgr_frames, depths, bgr=True)        # N x H x W x 3 (BGR, e.g. OpenCV) -> N x H x W
    predictor = Predictor("model.onnx", aux_scale=1000)     # depth in metres for a model trained on millimetres
    predictor = Predictor("model.onnx", backend="openvino", precision="bf16")   # OpenVINO, bf16 where it is safe

Frames may have any size; every call with frames of the size of the last one reuses its input buffers. Frames
follow the dataset's rules (`smmcl.data.modality`): RGB must be 8-bit colour (RGBA and 8-bit grey are read as
RGB); auxiliary values that do not fit the model's `aux_max` (float metres for a millimetre model, 8-bit depth,
values far beyond the scale) give one `AuxUnitsWarning` per Predictor, naming the likely cause and the `aux_scale`
that would fit; so do the first `STREAM_FRAMES` frames when every one of them stays under a tenth of the scale
(centimetres for a millimetre model; `smmcl.data.modality.RangeWatch`).

An ONNX export with one whole-frame pass (no `protocol`) runs on numpy and its runtime alone (ONNX Runtime or
OpenVINO): nothing on that path imports PyTorch (tests/deploy/test_runtime_without_torch.py). Weights and
checkpoints, and any `protocol`, need PyTorch (the `torch` extra).

`BACKENDS` is the one table of backends, name -> loader; `smmcl.model_file.BACKENDS` says which of them runs
which kind of file, `smmcl.api.open_model` and the CLI's `--backend` take their names from here.
"""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from smmcl.config import Config, load_config, to_dict
from smmcl.data.classes import class_names, dataset_palette
from smmcl.data.modality import STREAM_FRAMES, RangeWatch, check_aux_scale
from smmcl.data.preprocess import Preprocessing, stack_into
from smmcl.errors import AuxUnitsWarning
from smmcl.files import as_path
from smmcl.model_file import ModelFile, open_model_file

Frames = Union[np.ndarray, Sequence[np.ndarray]]
# An exported model runs as exported: PyTorch's precision, layout and compile switches do not apply to it.
EXPORTED_PROTOCOL = ("train.precision=fp32", "train.channels_last=false", "train.compile=false")


def _load_torch(file: ModelFile, config: Any, overrides: Sequence[str], device: Optional[str], threads: Optional[int],
                precision: str, face: bool) -> Tuple[Any, Config]:
    from smmcl.engine.loading import model_and_config

    if precision != "fp32":  # PyTorch's precision is its autocast, the inference protocol's switch
        overrides = [*overrides, f"train.precision={precision}"]

    return model_and_config(file, config, overrides, device)


def _exported(module: str, runtime: str) -> Callable[..., Tuple[Any, Config]]:
    """The loader of an ONNX runtime: its `ExportedModel` (its PyTorch face with `face`), and the config the file
    carries (or `config`) with `overrides` and `EXPORTED_PROTOCOL`."""

    def load(file: ModelFile, config: Any, overrides: Sequence[str], device: Optional[str], threads: Optional[int],
             precision: str, face: bool) -> Tuple[Any, Config]:
        from smmcl.deploy.onnx_runtime import torch_face

        base = config if config is not None else file.require_config()
        cfg = load_config(to_dict(base) if isinstance(base, Config) else base, [*overrides, *EXPORTED_PROTOCOL])
        cls = getattr(importlib.import_module(module), runtime)
        # The config's train.device, as for a PyTorch model: an export asked to run on CUDA never runs on the CPU.
        model = (torch_face(cls) if face else cls)(file.path, device=device or cfg.train.device, threads=threads,
                                                   precision=precision)
        return model, cfg

    return load


BACKENDS: Dict[str, Callable[..., Tuple[Any, Config]]] = {
    "torch": _load_torch,
    "onnxruntime": _exported("smmcl.deploy.onnx_runtime", "OnnxRuntimeModel"),
    "openvino": _exported("smmcl.deploy.openvino_runtime", "OpenVinoModel"),
}


def load_backend(name: str, file: ModelFile, config: Any = None, overrides: Sequence[str] = (), device: Optional[str] = None,
                 threads: Optional[int] = None, precision: str = "fp32", face: bool = True) -> Tuple[Any, Config]:
    """`file` loaded on the backend `name`, and its config (`config`, a Config or YAML path, replaces the file's;
    `overrides` apply). `face`: an exported model as an `nn.Module` (for evaluation and the protocols), else its
    plain runtime (numpy in, numpy out). `threads`: a runtime's intra-op threads; `precision`: fp32, or bf16 on
    openvino. An unknown name is an error listing the known ones."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; the backends are {', '.join(BACKENDS)}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads={threads!r}: expected an integer >= 1, or None for the runtime's default")
    return BACKENDS[name](file, config, overrides, device, threads, precision, face)


class Predictor:
    """Label maps (and class probabilities) for RGB + auxiliary frames; see the module docstring.

    `source`: a `.onnx` export (run by ONNX Runtime, or OpenVINO with `backend="openvino"`, with `threads`
    intra-op threads), smmcl weights (`.safetensors`) or a training checkpoint (PyTorch on `device`; its threads
    are the process's, `torch.set_num_threads`, which a Predictor leaves alone). `precision`: fp32, or bf16 on
    OpenVINO (refused where unsafe) and PyTorch (autocast; fp16 too); ONNX Runtime runs an export as written
    (fp32, or int8 for an int8 export). `protocol`: how probabilities are computed (default None: one whole-frame
    pass; an ONNX file cannot take autocast precisions). `aux_scale`: the auxiliary frames' units in the model's,
    multiplied in before its `aux_max` applies (1000: a depth camera's metres for a model trained on millimetres;
    1: the frames are in the training data's units).
    """

    def __init__(self, source: str | Path, device: Optional[str] = None, threads: Optional[int] = None,
                 protocol: Any = None, aux_scale: float = 1.0, backend: Optional[str] = None,
                 precision: str = "fp32") -> None:
        self.aux_scale = check_aux_scale(aux_scale)
        self._units_told: set = set()
        self.source = as_path(source, "the model file")
        file = open_model_file(source)
        self.backend = file.backend(backend)
        if protocol is not None and not all(hasattr(protocol, k) for k in ("apply", "precision", "mode")):
            # trial 18 G049, G052: "slide" or {"mode": "slide"} met an AttributeError deep inside
            raise TypeError(f"protocol must be an InferenceProtocol (smmcl.engine.inference.InferenceProtocol(mode="
                            f"'slide', crop_size=(h, w), ...)) or None, got a {type(protocol).__name__}")
        self.protocol, self.precision = protocol, precision
        if self.backend != "torch" and protocol is not None and protocol.precision != "fp32":
            raise ValueError(f"an ONNX model runs in the precision it was exported in (or precision='bf16' on "
                             f"openvino); protocol precision {protocol.precision!r} applies to PyTorch models only")
        # One whole-frame pass on an export: the runtime itself, on numpy. Anything else goes through PyTorch.
        self._numpy = self.backend != "torch" and protocol is None
        if self.backend == "torch" and protocol is not None and precision != "fp32" and protocol.precision != precision:
            raise ValueError(f"precision={precision!r} and protocol precision {protocol.precision!r}: give one")
        self.model, self.config = load_backend(self.backend, file, device=device, threads=threads, precision=precision,
                                               face=not self._numpy)
        k = self.num_classes = self.config.model.num_classes
        if self.backend == "torch":
            self.preprocessing = file.preprocessing
            self.class_names: List[str] = class_names(self.config)
            self.palette = np.asarray(dataset_palette(self.config.data.class_names, self.config.data.palette, k), np.uint8)
        else:
            meta = self.model.metadata
            self.preprocessing, self.class_names = meta.preprocessing, list(meta.class_names)
            self.palette = np.asarray(meta.palette, np.uint8)
        self._buffers: List[Optional[np.ndarray]] = [None, None]  # rgb, aux: N x 3 x H x W float32, reused
        # Judged once, after STREAM_FRAMES, against the scale and the training images' largest value.
        self._near = RangeWatch(self.preprocessing.aux_max, self.aux_scale, self.preprocessing.aux_top)

    def __repr__(self) -> str:
        return f"Predictor({str(self.source)!r}, backend={self.backend}, classes={self.num_classes})"

    def __call__(self, rgb: Frames, aux: Frames, bgr: bool = False, probs: bool = False):
        """Class ids per pixel (uint8 when K <= 256, else int32) for one frame (H x W x 3 and H x W [x C])
        or a batch (N x H x W x 3 arrays or lists of frames of one size) -> H x W or N x H x W.
        With `probs`, also the class probabilities (float32, K x H x W or N x K x H x W)."""
        for name, frames in (("rgb", rgb), ("aux", aux)):
            if frames is None or isinstance(frames, (str, bytes)) or not hasattr(frames, "__len__"):
                raise TypeError(f"{name} must be a numpy frame or a batch (list) of them, got {type(frames).__name__}; "
                                f"read image files with smmcl.predict or the CLI")
        for name, frames, dims in (("rgb", rgb, "H x W x 3"), ("aux", aux, "H x W")):
            if isinstance(frames, np.ndarray) and frames.ndim not in (2, 3, 4):
                raise ValueError(f"{name} has shape {frames.shape}; expected one frame ({dims}) or a batch of them "
                                 f"(N x {dims}, or a list)")
        if isinstance(rgb, np.ndarray) and rgb.ndim in (3, 4) and rgb.shape[-3] in (3, 4) and rgb.shape[-1] not in (3, 4):
            raise ValueError(f"rgb has shape {rgb.shape}, channels first (PyTorch's order); frames are channels last: "
                             f"H x W x 3 (rgb.transpose(1, 2, 0) for one frame)")
        single = isinstance(rgb, np.ndarray) and rgb.ndim in (2, 3)  # H x W grey or H x W x 3; N x H x W x 3 is a batch
        if not single and isinstance(aux, np.ndarray) and aux.ndim == 2:
            raise ValueError(f"rgb is a batch of {len(rgb)} frames but aux is one frame of shape {aux.shape}; give a "
                             f"batch of auxiliary frames too (N x H x W, or a list)")
        rgb_list = [rgb] if single else list(rgb)
        aux_list = [aux] if single else list(aux)
        for name, frames in (("rgb", rgb_list), ("aux", aux_list)):
            # A list is a batch of numpy frames; nested lists (`frame.tolist()`) were read as a batch of rows
            # (trial 17 API30: "RGB image is int64, shape (64, 3) ... a depth image among the RGB ones?").
            if frames and isinstance(frames[0], (list, tuple)):
                raise TypeError(f"{name}[0] is a {type(frames[0]).__name__}, not a numpy frame: a list given as {name} "
                                f"is a batch of frames, each a numpy array; give one frame as np.asarray(...)")
        if not rgb_list or len(rgb_list) != len(aux_list):
            raise ValueError(f"got {len(rgb_list)} RGB and {len(aux_list)} auxiliary frames; give one of each per observation")
        pairs = [self.preprocessing.pair_arrays(np.asarray(r), np.asarray(a), bgr=bgr, source=f"auxiliary frame {i}",
                                                aux_scale=self.aux_scale, on_units=self._tell_units, rgb_source=f"RGB frame {i}")
                 for i, (r, a) in enumerate(zip(rgb_list, aux_list))]
        self._watch_range(aux_list)
        sizes = {tuple(p[0].shape[-2:]) for p in pairs}
        if len(sizes) > 1:
            raise ValueError(f"the frames of one batch must share a size, got {sorted(sizes)}; call once per size")
        self._buffers = [stack_into(self._buffers[i], [p[i] for p in pairs]) for i in (0, 1)]
        dtype = np.uint8 if self.num_classes <= 256 else np.int32
        if self._numpy:
            logits = self.model.run(*self._buffers)
            labels = class_argmax(logits, dtype)
            p = _softmax(logits) if probs else None
        else:
            labels, p = self._torch_call(dtype, probs)
        if single:
            labels, p = labels[0], (p[0] if probs else None)
        return (labels, p) if probs else labels

    def _torch_call(self, dtype: type, probs: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        import torch

        from smmcl.engine.inference import InferenceProtocol
        from smmcl.engine.predict import model_device

        device = model_device(self.model)
        rgb, aux = (torch.from_numpy(b).to(device) for b in self._buffers)  # type: ignore[arg-type]
        with torch.no_grad():
            p = (self.protocol or InferenceProtocol(precision=self.precision)).apply(self.model, rgb, aux)
        labels = p.argmax(1).to("cpu", torch.uint8 if dtype is np.uint8 else torch.int32).numpy()
        return labels, (p.cpu().numpy() if probs else None)

    @property
    def _rgb(self) -> Any:
        # The RGB input buffer as a tensor sharing its memory: tests/deploy/test_export.py checks its reuse by the
        # tensor's data_ptr() (it predates the numpy buffers); needs PyTorch.
        import torch

        return torch.from_numpy(self._buffers[0])

    def _watch_range(self, frames: list) -> None:
        # A stream's first STREAM_FRAMES frames all far under the scale: other units more likely than a scene so near.
        for frame in frames:
            if self._near.count >= STREAM_FRAMES:
                return
            self._near.see(np.asarray(frame), f"auxiliary frame {self._near.count}")
            if self._near.count == STREAM_FRAMES:
                small = self._near.problem(for_model=True, unit="frames so far")
                if small is not None:
                    self._tell_units(small)

    def _tell_units(self, message: str) -> None:
        # One camera keeps its units: the first frame that shows a kind of mismatch says so, the stream is not
        # flooded; another kind later (a stream whose units break) is said too. Kinds: the message, numbers aside.
        kind = re.sub(r"-?\d+(\.\d+)?(e[+-]?\d+)?", "#", message)
        if kind not in self._units_told:
            self._units_told.add(kind)
            warnings.warn(f"{message} (said once per Predictor and kind of mismatch)", AuxUnitsWarning, stacklevel=2)

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """A label map (H x W) as an H x W x 3 uint8 picture in the dataset's class colours."""
        if not isinstance(labels, (np.ndarray, list, tuple)):
            raise TypeError(f"colorize takes a label map (H x W class ids, as a Predictor returns), got "
                            f"{type(labels).__name__}")
        labels = np.asarray(labels)
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool) or labels.ndim not in (2, 3):
            # Probabilities or logits (K x H x W floats) would index the palette as garbage (trial 10 #206b).
            raise ValueError(f"colorize takes class ids (H x W integers, or N x H x W), got {labels.dtype} of shape "
                             f"{labels.shape}: class probabilities? take their argmax over the class axis first")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.palette)):
            raise ValueError(f"label ids must lie in 0..{len(self.palette) - 1} (this model's classes), got "
                             f"{int(labels.min())}..{int(labels.max())}")
        return self.palette[labels.astype(np.int64)]


def class_argmax(logits: np.ndarray, dtype: type = np.uint8) -> np.ndarray:
    """`logits.argmax(1)` (N x K x H x W -> N x H x W, the first of equal maxima) as `dtype`, one contiguous class
    plane at a time: numpy's argmax over the strided class axis took 4.5 ms of a 240x320 frame's ~35, this ~2.7."""
    best = logits[:, 0].copy()
    labels = np.zeros(best.shape, dtype)
    for k in range(1, logits.shape[1]):
        higher = np.greater(logits[:, k], best)
        np.maximum(best, logits[:, k], out=best)
        np.putmask(labels, higher, k)
    return labels


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities over axis 1, in float32, as `torch.softmax` computes them (the maximum subtracted)."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    e /= e.sum(1, keepdims=True)
    return e
