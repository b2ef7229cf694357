"""`Predictor`: segmentation of camera frames, from smmcl weights, a training checkpoint or an ONNX export.

What a ROS node or a video loop calls. It owns the preprocessing contract (`smmcl.data.preprocess`), so
the caller hands over frames as the camera gives them:

    predictor = Predictor("model.onnx")                     # or weights.safetensors / a training checkpoint
    labels = predictor(rgb, depth)                          # H x W x 3 uint8 + H x W depth -> H x W uint8
    labels, probs = predictor(rgb, depth, probs=True)       # + K x H x W float32 class probabilities
    labels = predictor(bgr_frames, depths, bgr=True)        # N x H x W x 3 (BGR, e.g. OpenCV) -> N x H x W
    predictor = Predictor("model.onnx", aux_scale=1000)     # depth in metres for a model trained on millimetres

Frames may have any size; every call with frames of the size of the last one reuses its input buffers. Frames
follow the dataset's rules (`smmcl.data.modality`): RGB must be 8-bit colour (RGBA and 8-bit grey are read as
RGB); auxiliary values that do not fit the model's `aux_max` (float metres for a millimetre model, 8-bit depth,
values far beyond the scale) give one `AuxUnitsWarning` per Predictor, naming the likely cause and the `aux_scale`
that would fit.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from smmcl.config import Config
from smmcl.data.classes import class_names, dataset_palette
from smmcl.model_file import open_model_file
from smmcl.data.modality import check_aux_scale
from smmcl.data.preprocess import Preprocessing, stack_into
from smmcl.deploy.onnx_runtime import OnnxSegmentor
from smmcl.engine.inference import InferenceProtocol
from smmcl.engine.predict import model_device
from smmcl.errors import AuxUnitsWarning

Frames = Union[np.ndarray, Sequence[np.ndarray]]


class Predictor:
    """Label maps (and class probabilities) for RGB + auxiliary frames; see the module docstring.

    `source`: a `.onnx` export (run by ONNX Runtime, `threads` intra-op threads), smmcl weights
    (`.safetensors`) or a training checkpoint (PyTorch on `device`). `protocol`: how probabilities are
    computed (default: one whole-frame pass; an ONNX file cannot take autocast precisions). `aux_scale`: the
    auxiliary frames' units in the model's, multiplied in before its `aux_max` applies (1000: a depth camera's
    metres for a model trained on millimetres; 1: the frames are in the training data's units).
    """

    def __init__(self, source: str | Path, device: Optional[str] = None, threads: Optional[int] = None,
                 protocol: Optional[InferenceProtocol] = None, aux_scale: float = 1.0) -> None:
        self.aux_scale = check_aux_scale(aux_scale)
        self._units_told = False
        self.source = Path(source)
        file = open_model_file(source)
        if file.backend() == "onnxruntime":
            self.model: torch.nn.Module = OnnxSegmentor(source, device=device or "cpu", threads=threads)
            meta = self.model.metadata
            self.config: Config = meta.config
            self.preprocessing = meta.preprocessing
            self.class_names: List[str] = list(meta.class_names)
            self.palette = np.asarray(meta.palette, np.uint8)
            self.backend = "onnxruntime"
        else:
            from smmcl.engine.loading import model_and_config

            self.model, self.config = model_and_config(file, device=device)
            k = self.config.model.num_classes
            self.preprocessing = Preprocessing.from_data_config(self.config.data)
            self.class_names = class_names(self.config)
            self.palette = np.asarray(dataset_palette(self.config.data.class_names, self.config.data.palette, k), np.uint8)
            self.backend = "torch"
        self.num_classes = self.config.model.num_classes
        self.protocol = protocol or InferenceProtocol()
        if self.backend == "onnxruntime" and self.protocol.precision != "fp32":
            raise ValueError(f"an ONNX model runs in the precision it was exported in; protocol precision "
                             f"{self.protocol.precision!r} applies to PyTorch models only")
        self._rgb: Optional[torch.Tensor] = None
        self._aux: Optional[torch.Tensor] = None

    def __repr__(self) -> str:
        return f"Predictor({str(self.source)!r}, backend={self.backend}, classes={self.num_classes})"

    @torch.no_grad()
    def __call__(self, rgb: Frames, aux: Frames, bgr: bool = False, probs: bool = False):
        """Class ids per pixel (uint8 when K <= 256, else int32) for one frame (H x W x 3 and H x W [x C])
        or a batch (N x H x W x 3 arrays or lists of frames of one size) -> H x W or N x H x W.
        With `probs`, also the class probabilities (float32, K x H x W or N x K x H x W)."""
        single = isinstance(rgb, np.ndarray) and rgb.ndim in (2, 3)  # H x W grey or H x W x 3; N x H x W x 3 is a batch
        rgb_list = [rgb] if single else list(rgb)
        aux_list = [aux] if single else list(aux)
        if not rgb_list or len(rgb_list) != len(aux_list):
            raise ValueError(f"got {len(rgb_list)} RGB and {len(aux_list)} auxiliary frames; give one of each per observation")
        pairs = [self.preprocessing.pair(np.asarray(r), np.asarray(a), bgr=bgr, source=f"auxiliary frame {i}",
                                         aux_scale=self.aux_scale, on_units=self._tell_units, rgb_source=f"RGB frame {i}")
                 for i, (r, a) in enumerate(zip(rgb_list, aux_list))]
        sizes = {tuple(p[0].shape[-2:]) for p in pairs}
        if len(sizes) > 1:
            raise ValueError(f"the frames of one batch must share a size, got {sorted(sizes)}; call once per size")
        self._rgb = stack_into(self._rgb, [p[0] for p in pairs])
        self._aux = stack_into(self._aux, [p[1] for p in pairs])
        device = model_device(self.model)
        p = self.protocol.apply(self.model, self._rgb.to(device), self._aux.to(device))
        labels = p.argmax(1).to("cpu", torch.uint8 if self.num_classes <= 256 else torch.int32).numpy()
        if single:
            labels, p = labels[0], p[0]
        return (labels, p.cpu().numpy()) if probs else labels

    def _tell_units(self, message: str) -> None:
        # One camera keeps its units: the first frame that shows a mismatch says so, the stream is not flooded.
        if not self._units_told:
            self._units_told = True
            warnings.warn(f"{message} (said once per Predictor)", AuxUnitsWarning, stacklevel=2)

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """A label map (H x W) as an H x W x 3 uint8 picture in the dataset's class colours."""
        return self.palette[np.asarray(labels, np.int64)]
