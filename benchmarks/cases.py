"""Benchmark cases for `benchmarks/run.py`: the models, seeded inputs, and the code that measures one case.

Every function here runs inside the worker process of a single case (see `run.py --worker`), so each case
starts from a fresh interpreter: its peak RSS is its own, and no allocator or oneDNN primitive cache is
shared between cases.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

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


# --- process measurements ----------------------------------------------------------------------------


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def time_calls(fn: Callable[[], Any], warmup: int, reps: int) -> tuple[list[float], list[float]]:
    """Seconds of `warmup` untimed-for-the-median calls, then of `reps` timed calls."""
    warm, times = [], []
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return warm, times


def write_profile(fn: Callable[[], Any], path: str, title: str, iters: int = 1) -> None:
    """Profile `iters` calls of an already warmed-up `fn`; write phase totals and the top ops by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        for _ in range(iters):
            fn()
    events = prof.key_averages()
    phases = [e for e in events if e.key.startswith("bench::")]
    total_self = sum(e.self_cpu_time_total for e in events)
    lines = [title, f"torch {torch.__version__}, {torch.get_num_threads()} threads, {iters} profiled iteration(s)", ""]
    if phases:
        lines.append("phases (CPU time incl. children, per iteration):")
        for e in sorted(phases, key=lambda e: -e.cpu_time_total):
            lines.append(f"  {e.key:<28} {e.cpu_time_total / 1e3 / iters:10.1f} ms")
        lines.append("")
    lines.append(f"sum of self CPU time over all ops: {total_self / 1e3 / iters:.1f} ms per iteration")
    lines.append("")
    lines.append(events.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines))


# --- the cases ---------------------------------------------------------------------------------------


def _model(case: Case) -> torch.nn.Module:
    from smmcl.models import build_model

    torch.manual_seed(case.seed)
    return build_model(case.model_spec)


def train_step(case: Case) -> tuple[Callable[[str], None], float]:
    """`step(loss)` for loss "base" | "smmcl": one call of `smmcl.engine.step.train_step` (forward, Eq. 7
    with CE [+ 0.2 x each SMMCL term], backward, AdamW step); and the setup seconds. Both losses share
    one model and optimizer, so they can be timed side by side."""
    from smmcl.config import LossConfig, TrainConfig
    from smmcl.engine.optim import build_optimizer
    from smmcl.engine.precision import prepare_model, to_channels_last
    from smmcl.engine.step import train_step as one_step
    from smmcl.losses import Objective, build_objective

    t_setup = time.perf_counter()
    model = prepare_model(_model(case).train(), channels_last=case.channels_last, compile=False)
    optimizer = build_optimizer(model, TrainConfig())  # the paper's AdamW groups (6e-5, wd 0.01 on weights)
    net = torch.compile(model) if case.compile else model
    weights = LossConfig(cm_weight=SMMCL_WEIGHT, vis_weight=SMMCL_WEIGHT, aux_weight=SMMCL_WEIGHT)
    objectives = {
        "base": Objective(None, {}, IGNORE_INDEX),  # Base never runs the projectors
        "smmcl": build_objective(weights, NUM_CLASSES, IGNORE_INDEX, model.encoder.projector_vis.project[-1].out_channels),
    }
    generator = torch.Generator().manual_seed(case.seed)
    rgb, aux, labels = make_inputs(case.batch, case.size, case.seed)
    rgb, aux = to_channels_last(rgb, case.channels_last), to_channels_last(aux, case.channels_last)

    def step(loss_kind: str) -> None:
        with torch.profiler.record_function(f"bench::step_{loss_kind}"):
            one_step(net, objectives[loss_kind], optimizer, rgb, aux, labels, lr=TrainConfig().lr,
                     precision=case.precision, generator=generator)

    return step, time.perf_counter() - t_setup


def run_train(case: Case) -> dict:
    """Median seconds of one training step of `case.loss`."""
    step, setup_s = train_step(case)

    def call() -> None:
        step(case.loss)

    rss_before = current_rss_mb()
    warm, times = time_calls(call, case.warmup, case.reps)
    out = _summary(case, warm, times, setup_s, rss_before)
    if case.profile:
        write_profile(call, case.profile, f"case {case.name}: training step")
    return out


def run_overhead(case: Case) -> dict:
    """SMMCL step / Base step from alternating steps of one model in one process.

    Separate processes differ by up to ~10% on this shared machine (allocator and cache luck), more than the
    few percent the SMMCL terms cost; alternating the two steps on the same model cancels that out.
    """
    step, setup_s = train_step(case)
    times: dict[str, list[float]] = {"base": [], "smmcl": []}
    for _ in range(case.warmup):
        step("smmcl")
        step("base")
    for _ in range(case.reps):
        for kind in ("smmcl", "base"):
            t0 = time.perf_counter()
            step(kind)
            times[kind].append(time.perf_counter() - t0)
    base, smmcl = statistics.median(times["base"]), statistics.median(times["smmcl"])
    return {
        "median_s": smmcl, "base_median_s": base, "smmcl_median_s": smmcl, "overhead": smmcl / base,
        "times_s": times["smmcl"], "base_times_s": times["base"], "setup_s": setup_s,
        "images_per_s": case.batch / smmcl, "peak_rss_mb": peak_rss_mb(),
    }


@torch.no_grad()
def calibrated(model: torch.nn.Module, target_std: float = 4.0) -> torch.nn.Module:
    """The model with its classifier scaled so that logits spread like a trained model's (std ~4).

    Randomly initialised, the paper's ResNet-101 gives logits of ~1e6 (std 3.3e5 at 512x608): fp32
    rounding alone then moves its probabilities by ~1e-3 against fp64 (measured), and the export's
    parity check (<= 1e-3) refuses a faithful graph. Scaling the last 1x1 conv changes no timing.
    """
    head = model.decoder
    last = getattr(head, "conv_seg", None) or getattr(head, "linear_pred")
    x = torch.randn(1, 3, 128, 160, generator=torch.Generator().manual_seed(0))
    scale = target_std / float(model.eval()(x, x).std())
    last.weight.mul_(scale)
    if last.bias is not None:
        last.bias.mul_(scale)
    return model


def onnx_model(model: torch.nn.Module, cfg, size: tuple[int, int], threads: int) -> torch.nn.Module:
    """`model` exported as `smmcl export` does (parity checked there) and opened in ONNX Runtime."""
    import tempfile

    from smmcl.deploy.onnx_export import export_onnx
    from smmcl.deploy.onnx_runtime import OnnxSegmentor

    folder = tempfile.mkdtemp(prefix="smmcl-bench-")
    path = export_onnx(calibrated(model), cfg, Path(folder) / "model.onnx", size=size).path
    return OnnxSegmentor(path, threads=threads)


def infer_call(case: Case) -> tuple[Callable[[], None], float]:
    """One inference pass `model(rgb, aux)` in eval mode under no_grad, and the setup seconds."""
    from smmcl.config import load_config
    from smmcl.engine.precision import autocast, prepare_model, to_channels_last

    cpu = torch.device("cpu")
    t_setup = time.perf_counter()
    model = _model(case).eval()
    if case.path == "onnxruntime":
        model = onnx_model(model, load_config({"model": case.model_spec}), case.size, case.threads)
    else:
        model = prepare_model(model, channels_last=case.channels_last, compile=case.compile, freeze=True)
    rgb, aux, _ = make_inputs(case.batch, case.size, case.seed)
    rgb, aux = to_channels_last(rgb, case.channels_last), to_channels_last(aux, case.channels_last)

    def call() -> None:
        with torch.no_grad(), autocast(cpu, case.precision), torch.profiler.record_function("bench::forward"):
            model(rgb, aux)

    return call, time.perf_counter() - t_setup


def run_infer(case: Case) -> dict:
    """Median seconds of one inference pass."""
    call, setup_s = infer_call(case)
    rss_before = current_rss_mb()
    warm, times = time_calls(call, case.warmup, case.reps)
    out = _summary(case, warm, times, setup_s, rss_before)
    if case.profile:
        write_profile(call, case.profile, f"case {case.name}: inference", iters=2)
    return out


def run_speedup(case: Case) -> dict:
    """fp32 eager / `case.path` from alternating calls of both in one process (kind train_speedup: SMMCL
    training steps; infer_speedup: inference passes); both models start from the same seeded weights.

    As for the overhead, alternating cancels the process-to-process spread of this shared machine.
    """
    train = case.kind == "train_speedup"
    fns: dict[str, Callable[[], None]] = {}
    for path in ("fp32", case.path):
        c = replace(case, path=path)
        if train:
            step, _ = train_step(c)
            fns[path] = (lambda step=step: step("smmcl"))
        else:
            fns[path], _ = infer_call(c)
    warm: dict[str, list[float]] = {p: [] for p in fns}
    times: dict[str, list[float]] = {p: [] for p in fns}
    for _ in range(case.warmup):
        for p, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            warm[p].append(time.perf_counter() - t0)
    for _ in range(case.reps):
        for p, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[p].append(time.perf_counter() - t0)
    ref, fast = statistics.median(times["fp32"]), statistics.median(times[case.path])
    return {
        "median_s": fast, "fp32_median_s": ref, "speedup": ref / fast, "times_s": times[case.path],
        "fp32_times_s": times["fp32"], "warmup_s": warm[case.path], "images_per_s": case.batch / fast,
        "peak_rss_mb": peak_rss_mb(),
    }


def _summary(case: Case, warm: list[float], times: list[float], setup_s: float, rss_before: float) -> dict:
    median = statistics.median(times)
    out = {
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "times_s": times,
        "warmup_s": warm,
        "setup_s": setup_s,
        "images_per_s": case.batch / median,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }
    out["rss_growth_mb"] = out["peak_rss_mb"] - rss_before
    if case.compile and warm:
        # The first call traces and compiles (forward and, for training, backward graphs).
        out["compile_s"] = max(0.0, warm[0] - median)
    return out


# --- pixel agreement on the trained demo model -------------------------------------------------------


def demo_weights(demo: Path) -> Optional[Path]:
    """The demo SMMCL model's weights: model.safetensors, else the newest training checkpoint."""
    run = demo / "smmcl"
    if (run / "model.safetensors").is_file():
        return run / "model.safetensors"
    ckpts = sorted((run / "checkpoints").glob("ckpt_*.pt"))
    return ckpts[-1] if ckpts else None


def run_agreement(case: Case) -> dict:
    """Share of test pixels where each path's argmax equals fp32 eager's, for the demo's trained SMMCL model."""
    from smmcl.api import load_trained
    from smmcl.config import load_config
    from smmcl.data.dataset import RGBXDataset
    from smmcl.engine.precision import autocast, prepare_model, to_channels_last

    cpu = torch.device("cpu")
    demo = Path(case.demo)
    weights = demo_weights(demo)
    cfg = load_config(demo / "smmcl" / "config.yaml", [f"data.root={demo / 'data'}", "train.device=cpu"])
    dataset = RGBXDataset(cfg.data, "test", cfg.model.num_classes)
    batches = []
    for start in range(0, len(dataset), 16):
        samples = [dataset[i] for i in range(start, min(start + 16, len(dataset)))]
        batches.append({k: torch.stack([s[k] for s in samples]) for k in ("rgb", "aux", "label")})

    def predict(path: str) -> list[torch.Tensor]:
        precision, channels_last = PATHS[path.replace("+compile", "")]
        if path == "onnxruntime":
            model = onnx_model(load_trained(cfg, weights, device=cpu), cfg, tuple(batches[0]["rgb"].shape[-2:]), case.threads)
        else:
            model = prepare_model(load_trained(cfg, weights, device=cpu), channels_last, path.endswith("+compile"), freeze=True)
        preds = []
        with torch.no_grad(), autocast(cpu, precision):
            for b in batches:
                logits = model(to_channels_last(b["rgb"], channels_last), to_channels_last(b["aux"], channels_last))
                preds.append(logits.float().argmax(1))
        return preds

    reference = predict("fp32")
    labels = torch.cat([b["label"] for b in batches])
    ref = torch.cat(reference)
    known = labels != cfg.data.ignore_index
    out: dict[str, Any] = {
        "weights": str(weights),
        "test_images": len(dataset),
        "image_size": list(batches[0]["rgb"].shape[-2:]),
        "pixels": ref.numel(),
        "fp32_pixel_accuracy": float((ref == labels)[known].float().mean()),
        "paths": {},
    }
    for path in case.paths:
        fast = torch.cat(predict(path))
        same = fast == ref
        differ = ~same
        per_class = {}
        for k in range(cfg.model.num_classes):
            mask = ref == k
            if mask.any():
                per_class[cfg.data.class_names[k] if cfg.data.class_names else str(k)] = round(float(same[mask].float().mean()), 6)
        out["paths"][path] = {
            "pixel_agreement": float(same.float().mean()),
            "differing_pixels": int(differ.sum()),
            "pixel_accuracy": float((fast == labels)[known].float().mean()),
            "agreement_by_fp32_class": per_class,
        }
    return out


RUNNERS: dict[str, Callable[[Case], dict]] = {
    "train": run_train, "overhead": run_overhead, "infer": run_infer, "agreement": run_agreement,
    "train_speedup": run_speedup, "infer_speedup": run_speedup,
}


def run_case(case: Case) -> dict:
    torch.set_num_threads(case.threads)
    return RUNNERS[case.kind](case)
