"""What `benchmarks/realtime.py` measures: its models, frame sizes, inference paths and budgets, full and --quick."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = ROOT / "runs" / "bench-realtime"
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"

# SegNeXt's LightHam head widths per MSCAN size (its T and S heads are 256 wide, B's 512); the preset fills the
# encoder, so the demo config's own slim widths and depths are cleared.
DECODER_CHANNELS = {"T": 256, "S": 256, "B": 512}

# Inference paths, in the order each round runs them (rotated per round). "file": which model file the path reads;
# "bf16_autocast": PyTorch's InferenceProtocol(precision="bf16"); "precision": the Predictor's (OpenVINO only).
PATHS = {
    "torch-fp32": dict(label="PyTorch fp32 eager", file="weights", backend="torch", precision="fp32", bf16_autocast=False),
    "torch-bf16": dict(label="PyTorch bf16 autocast", file="weights", backend="torch", precision="fp32", bf16_autocast=True),
    "ort-fp32": dict(label="ONNX Runtime fp32", file="onnx", backend="onnxruntime", precision="fp32", bf16_autocast=False),
    "ort-int8": dict(label="ONNX Runtime int8", file="int8", backend="onnxruntime", precision="fp32", bf16_autocast=False),
    "ov-fp32": dict(label="OpenVINO fp32", file="onnx", backend="openvino", precision="fp32", bf16_autocast=False),
    "ov-bf16": dict(label="OpenVINO bf16", file="onnx", backend="openvino", precision="bf16", bf16_autocast=False),
}
BASELINE = "torch-fp32"

# The goals (issue 28, item 5).
MIN_AGREEMENT = 0.995
GOAL_SPEEDUP = 3.0
GOAL_SECONDS = 0.45
GOAL_FPS = 30.0

FULL = dict(
    presets=["T", "S", "B"],
    sizes=[(240, 320), (480, 640)],
    frames=30,            # bag frames per size (1 s of a 30 fps camera; 3 rounds x 6 paths go over it)
    calibration=6,        # int8 calibration scenes of the bag's size (4 calibrate, 2 verify: smmcl.deploy.quantize)
    # Iterations per model: the demo's 900 for MSCAN-T, fewer for the larger ones so each trains in 6-8 minutes
    # on 2 idle cores (a Base step at 120x160, batch 4: ~0.4 s for T, ~0.75 s for S, ~1.35 s for B; measured
    # 1.1 / 2.1 / 3.75 s on 1 thread beside other jobs, and B's matches docs/benchmarks.md's idle 1.39 s step of
    # the same pixel count).
    iters={"T": 900, "S": 600, "B": 300},
    train_scenes=400,     # the demo's data: 300 train / 100 test rooms of 120x160, seed 0
    train_size=(120, 160),
    rounds=3,
    timeout=5400.0,       # seconds for one model and size, all its paths and rounds
    probe_timeout=300.0,  # seconds for one path to load and return its first frame
)

QUICK = dict(
    presets=["T"],
    sizes=[(60, 80)],
    frames=6,
    calibration=6,
    iters={"T": 20},
    train_scenes=40,
    train_size=(120, 160),
    rounds=1,
    timeout=600.0,
    probe_timeout=120.0,
)


def model_name(preset: str) -> str:
    return f"MSCAN-{preset}"


def size_name(size) -> str:
    return f"{size[0]}x{size[1]}"
