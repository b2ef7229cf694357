"""Benchmark cases for `benchmarks/run.py`: the models, the fast-path candidates, what one case measures and
its seeded inputs.

Every case is measured inside a worker process of its own (see `run.py --worker` and worker.py), so each case
starts from a fresh interpreter: its peak RSS is its own, and no allocator or oneDNN primitive cache is
shared between cases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch

NUM_CLASSES = 14
IGNORE_INDEX = 255
SMMCL_WEIGHT = 0.2  # Eq. 7 weight of each contrastive term (paper, low-light indoor)

# The paper's three dual models: backbone preset "auto" and decoder "auto" resolve to MSCAN-B + LightHam,
# MiT-B2 + SegFormer MLP head and ResNet-101 + MLP head.
MODELS: dict[str, dict] = {
    "mscan-b": {"num_classes": NUM_CLASSES, "backbone": {"name": "mscan", "preset": "auto"}, "decoder": {"name": "auto"}, "projector": {"dim": 256}},
    "mit-b2": {"num_classes": NUM_CLASSES, "backbone": {"name": "mit", "preset": "auto"}, "decoder": {"name": "auto"}, "projector": {"dim": 256}},
    "resnet-101": {"num_classes": NUM_CLASSES, "backbone": {"name": "resnet", "preset": "auto"}, "decoder": {"name": "auto"}, "projector": {"dim": 256}},
}

# `--quick` (a smoke run of the pipeline, not a measurement): the small members of the same families.
QUICK_MODELS: dict[str, dict] = {
    "mscan-t": {"num_classes": NUM_CLASSES, "backbone": {"name": "mscan", "preset": "T"}, "decoder": {"name": "auto", "channels": 64, "ham_rank": 8}, "projector": {"dim": 32}},
    "mit-b0": {"num_classes": NUM_CLASSES, "backbone": {"name": "mit", "preset": "B0"}, "decoder": {"name": "auto", "channels": 64}, "projector": {"dim": 32}},
    "resnet-18": {"num_classes": NUM_CLASSES, "backbone": {"name": "resnet", "preset": "18"}, "decoder": {"name": "auto", "channels": 64}, "projector": {"dim": 32}},
}

# Fast-path candidates: (autocast precision, channels_last). torch.compile variants add "+compile".
PATHS: dict[str, tuple[str, bool]] = {
    "fp32": ("fp32", False),
    "bf16": ("bf16", False),
    "fp32-cl": ("fp32", True),
    "bf16-cl": ("bf16", True),
    # Inference only: the model exported by `smmcl export` (dynamic H x W, torchscript exporter, verified for
    # parity at export) and run by ONNX Runtime with smmcl's session options, `threads` intra-op threads.
    "onnxruntime": ("fp32", False),
}
INFER_ONLY = ("onnxruntime",)


@dataclass
class Case:
    """One measurement. `kind`: train | overhead | train_speedup | infer | infer_speedup | agreement. `path`: a PATHS key, optionally + "+compile"."""

    name: str
    kind: str
    model: str = "mscan-b"
    path: str = "fp32"
    loss: str = "smmcl"  # train only: base | smmcl
    size: tuple[int, int] = (240, 320)
    batch: int = 2
    warmup: int = 2
    reps: int = 3
    seed: int = 0
    threads: int = 2
    group: str = ""  # train | infer | scale: which table the case belongs to
    profile: Optional[str] = None  # write a torch.profiler table of one timed iteration here
    demo: Optional[str] = None  # agreement only: the demo folder
    paths: list[str] = field(default_factory=list)  # agreement only: the paths to compare with fp32 eager
    model_spec: dict = field(default_factory=dict)  # build_model's dict (MODELS[model] or QUICK_MODELS[model])

    @property
    def precision(self) -> str:
        return PATHS[self.path.replace("+compile", "")][0]

    @property
    def channels_last(self) -> bool:
        return PATHS[self.path.replace("+compile", "")][1]

    @property
    def compile(self) -> bool:
        return self.path.endswith("+compile")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Case":
        data = dict(data)
        data["size"] = tuple(data["size"])
        return cls(**data)


# --- inputs ------------------------------------------------------------------------------------------


def block_labels(batch: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """B x H x W labels shaped like scenes: each image is split into 2 x 3 blocks at random positions, every
    block one of six distinct classes of that image, and a strip along the bottom is ignore_index (unlabelled).

    At the projector's 1/32 resolution every block still covers >= 5 pixels at 240x320, so SMMCL's sampling
    sees six classes per image, as it would on real data, rather than one or none.
    """
    h, w = size
    labels = torch.empty(batch, h, w, dtype=torch.long)
    for b in range(batch):
        classes = torch.randperm(NUM_CLASSES, generator=generator)[:6]
        row = int(h * (0.4 + 0.2 * torch.rand((), generator=generator).item()))
        c1 = int(w * (0.25 + 0.1 * torch.rand((), generator=generator).item()))
        c2 = int(w * (0.6 + 0.1 * torch.rand((), generator=generator).item()))
        k = 0
        for r0, r1 in ((0, row), (row, h)):
            for q0, q1 in ((0, c1), (c1, c2), (c2, w)):
                labels[b, r0:r1, q0:q1] = classes[k]
                k += 1
        labels[b, h - max(1, h // 24):, :] = IGNORE_INDEX
    return labels


def make_inputs(batch: int, size: tuple[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randn(batch, 3, *size, generator=g)
    aux = torch.randn(batch, 3, *size, generator=g)
    return rgb, aux, block_labels(batch, size, g)
