"""OpenVINO as a backend beside ONNX Runtime: the same smmcl ONNX export and its metadata, in fp32 or bf16, on the CPU.

    OpenVinoModel("model.onnx", precision="bf16")   # numpy in, numpy out (what the Predictor runs)
    OpenVinoSegmentor("model.onnx")                  # its PyTorch face, for evaluation and inference protocols

fp32 is asked for explicitly (`INFERENCE_PRECISION_HINT` f32): OpenVINO's CPU plugin would otherwise run bf16 on
every CPU that has it. It needs no check at load: the graph is the one `smmcl export` verified against PyTorch
(ONNX Runtime, argmax agreement >= 99.9%), computed in the same precision; only the order of float32 sums differs
(the tiny model's logits, up to ~5, within 7e-6 of ONNX Runtime's and 1.5e-5 of PyTorch's, every argmax equal).

bf16 (`INFERENCE_PRECISION_HINT` bf16) is refused, each with its own error, where
- the CPU has no bf16 (`OPTIMIZATION_CAPABILITIES` without BF16; AVX2 machines): `Bf16NotSupported`;
- the model has hang-prone layers: depth-wise convs of 2-16 channels with a kernel at least 15 wide (slim MSCANs'
  1 x 21 strips). OpenVINO 2026.4's bf16 depth-wise kernel (brgconv_avx512_dw_bf16) never returns on them once the
  feature map is 32 or more wide (a 1 x 21 conv of 8 channels on 2 x 40: > 30 s at full load, vs microseconds in
  fp32), the condition PyTorch's oneDNN hangs on (`smmcl.models.cpu_guard`). Keeping those layers in fp32 is not
  offered: the plugin ignores the rt_info marks that would ask for it (`precise`, `disable_fp16_compression`)
  and the layer still ran, and hung, as bf16. `Bf16HangRisk`;
- one built-in frame (`smmcl.data.synth`, at the export's fixed size or the training crop) run through the fp32
  graph and the bf16 graph agree on the argmax of fewer than `MIN_AGREEMENT` of its pixels: `Bf16Disagrees`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from smmcl.deploy.onnx_runtime import ExportedModel, torch_face
from smmcl.errors import CheckpointError, SmmclError

MIN_AGREEMENT = 0.99
# The hang-prone depth-wise convs (see the module docstring): channels in this range, kernel width at least this.
HANG_CHANNELS, HANG_KERNEL_WIDTH = (2, 16), 15
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}


class Bf16Refused(SmmclError, ValueError):
    """bf16 was asked for and cannot be given; the subclass says why."""


class Bf16NotSupported(Bf16Refused):
    """The CPU has no bf16 instructions (OpenVINO reports no BF16 capability)."""


class Bf16HangRisk(Bf16Refused):
    """The model has layers OpenVINO's bf16 CPU kernels hang on."""


class Bf16Disagrees(Bf16Refused):
    """bf16 and fp32 disagree on the built-in frame; `agreement` is the share of pixels with the same argmax."""

    def __init__(self, message: str, agreement: float) -> None:
        super().__init__(message)
        self.agreement = agreement


def import_openvino():
    try:
        import openvino
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("OpenVINO is not installed: pip install 'smmcl[openvino]'", name="openvino") from None
    return openvino


def cpu_has_bf16(core: Any = None) -> bool:
    """Whether OpenVINO's CPU plugin reports bf16 support on this machine (AVX-512 BF16 or AMX)."""
    core = core if core is not None else import_openvino().Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def hang_prone_layers(model: Any) -> List[str]:
    """The names of the depth-wise convs of an OpenVINO model that bf16 hangs on (see the module docstring)."""
    low, high = HANG_CHANNELS
    found = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "GroupConvolution":
            continue
        weight = op.input(1).get_partial_shape()  # groups, out / group, in / group, kh, kw
        if not weight.is_static:
            continue
        groups, out_per, in_per, _, width = (d.get_length() for d in weight)
        if out_per == in_per == 1 and low <= groups <= high and width >= HANG_KERNEL_WIDTH:
            found.append(op.get_friendly_name())
    return found


class OpenVinoModel(ExportedModel):
    """An smmcl export run by OpenVINO on the CPU, in `precision` fp32 or bf16 (see the module docstring);
    `threads` inference threads, one stream. `parity`: the bf16 check's agreement (None in fp32)."""

    backend = "openvino"
    face_name = "OpenVinoSegmentor"
    precisions = ("fp32", "bf16")

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None, precision: str = "fp32") -> None:
        super().__init__(path, device, threads, precision)
        self.parity = self._check_bf16() if precision == "bf16" else None
        del self._source  # the parsed graph is only needed until the check

    def _open(self, path: Path, device: str, threads: int, precision: str) -> Tuple[Dict[str, str], List[str], List[Any]]:
        ov = import_openvino()
        if device not in ("cpu", "auto"):  # auto: the CPU is the one device this backend drives
            raise ValueError(f"the openvino backend runs on the CPU (device 'cpu' or 'auto'), got {device!r}")
        self._core, self._threads = ov.Core(), threads
        try:
            self._source = self._core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError and its own types for unreadable files
            raise CheckpointError(f"{path}: OpenVINO cannot read it ({str(exc).strip().splitlines()[0]})") from None
        if precision == "bf16":
            hangs = hang_prone_layers(self._source)
            if hangs:
                raise Bf16HangRisk(f"{path}: bf16 refused: {len(hangs)} depth-wise conv(s) of {HANG_CHANNELS[0]}-"
                                   f"{HANG_CHANNELS[1]} channels with kernels {HANG_KERNEL_WIDTH}+ wide (e.g. {hangs[0]}), "
                                   f"on which OpenVINO's bf16 CPU kernel hangs; run it in fp32")
            if not cpu_has_bf16(self._core):
                name = self._core.get_property("CPU", "FULL_DEVICE_NAME")
                raise Bf16NotSupported(f"bf16 refused: this CPU ({name}) has no bf16 instructions (OpenVINO reports "
                                       f"{', '.join(self._core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))}); run in fp32")
        self.compiled = self._compile(precision)
        self.request = self.compiled.create_infer_request()
        # The ONNX metadata_props, as OpenVINO's ONNX frontend keeps them: rt_info["framework"][key].
        framework = self._source.get_rt_info()["framework"] if self._source.has_rt_info("framework") else {}
        props = {key: value.astype(str) if hasattr(value, "astype") else str(value) for key, value in framework.items()}
        shape = [d.get_length() if d.is_static else None for d in self._source.inputs[0].get_partial_shape()]
        return props, [i.get_any_name() for i in self._source.inputs], shape

    def _compile(self, precision: str) -> Any:
        try:
            return self._core.compile_model(self._source, "CPU", {
                "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision], "INFERENCE_NUM_THREADS": self._threads,
                "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"})
        except RuntimeError as exc:  # a graph its CPU plugin cannot compile
            raise CheckpointError(f"{self.path}: OpenVINO cannot compile it for the CPU in {precision} "
                                  f"({str(exc).strip().splitlines()[0]})") from None

    def _infer(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        return self.request.infer({"rgb": rgb, "aux": aux}, share_inputs=True)["logits"]

    @property
    def threads(self) -> int:
        return int(self.compiled.get_property("INFERENCE_NUM_THREADS"))

    def _check_bf16(self) -> float:
        """Argmax agreement of bf16 with fp32 on one built-in frame; `Bf16Disagrees` below `MIN_AGREEMENT`."""
        rgb, aux = builtin_frame(self)
        fp32 = self._compile("fp32").create_infer_request().infer({"rgb": rgb, "aux": aux})["logits"]
        agreement = float((self.run(rgb, aux).argmax(1) == fp32.argmax(1)).mean())
        if agreement < MIN_AGREEMENT:
            raise Bf16Disagrees(f"{self.path}: bf16 refused: on the built-in {rgb.shape[2]}x{rgb.shape[3]} frame it "
                                f"agrees with fp32 on {agreement:.2%} of pixels (at least {MIN_AGREEMENT:.0%} needed); "
                                f"run it in fp32", agreement)
        return agreement


def builtin_frame(model: ExportedModel) -> Tuple[np.ndarray, np.ndarray]:
    """A real-looking dark scene of the model's modality (a night street for thermal, else a room with depth) at
    its fixed input size or its training crop, preprocessed as the model's metadata says: 1 x 3 x H x W each. An HHA
    model's room is HHA-encoded (trial 14 #245)."""
    from smmcl.deploy.check_frame import builtin_scene

    cfg = model.metadata.config
    fixed = model.input_shape[2:]
    size = tuple(fixed) if None not in fixed else tuple(cfg.data.crop_size)
    rgb, aux = builtin_scene(cfg.data.aux_kind, size)
    r, a = model.metadata.preprocessing.pair_arrays(rgb, aux, source="the built-in frame", on_units=lambda _: None)
    return r[None], a[None]


def __getattr__(name: str) -> Any:
    # `OpenVinoSegmentor(path, device="cpu", threads=None, precision="fp32")`: the PyTorch face of `OpenVinoModel`.
    if name == "OpenVinoSegmentor":
        return torch_face(OpenVinoModel)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
