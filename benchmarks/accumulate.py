"""Gradient accumulation at the paper's scale (README "Configuration", `train.accumulate`): the paper's batch of
16 at 480x640 as 16 x 1, 8 x 2, 4 x 4 and 2 x 8 micro-batches on one device, with peak memory and time per
iteration; the update of 4 x 4 against 16 x 1; fp16 with the loss scaler; and an exact resume with
accumulation and the average of weights (`train.ema`). Meant for a GPU:

    python benchmarks/accumulate.py --device cuda --out accumulate.json

Inputs are seeded random tensors of the paper's shape (the timing and memory do not depend on content);
MSCAN-B + LightHam with the SMMCL objective (Eq. 7) and the engine's own `train_step`.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

from smmcl.config import load_config
from smmcl.data.synth import generate_dataset
from smmcl.engine.optim import build_optimizer
from smmcl.engine.precision import grad_scaler
from smmcl.engine.step import train_step
from smmcl.engine.trainer import Trainer
from smmcl.losses import build_objective
from smmcl.models import build_model

REPO = Path(__file__).resolve().parents[1]
PAPER = {"model.backbone.name": "mscan", "model.backbone.preset": "B", "model.num_classes": 14}


def _config(device: str, precision: str, *extra: str):
    return load_config(REPO / "configs" / "demo.yaml", [f"{k}={v}" for k, v in PAPER.items()] + [
        f"train.device={device}", f"train.precision={precision}", "model.backbone.drop_path_rate=0",
        "model.projector.dim=256", *extra])


def _inputs(batch: int, size: tuple[int, int], device: torch.device, k: int = 14):
    g = torch.Generator().manual_seed(0)
    rgb = torch.randn(batch, 3, *size, generator=g)
    aux = torch.randn(batch, 1, *size, generator=g)
    # Blocks of classes, so the contrast samples several classes per image as on real scenes.
    blocks = torch.randint(0, k, (batch, -(-size[0] // 32), -(-size[1] // 32)), generator=g)
    label = blocks.repeat_interleave(32, 1).repeat_interleave(32, 2)[:, :size[0], :size[1]]
    return rgb.to(device), aux.to(device), label.to(device)


def _setup(cfg, device):
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device)
    objective = build_objective(cfg.loss, cfg.model.num_classes, cfg.data.ignore_index, cfg.model.projector.dim).to(device)
    return model, objective, build_optimizer(model, cfg.train)


def _measure(cfg, device: torch.device, size, micro: int, accumulate: int, iters: int) -> dict:
    """One split's peak memory and median time per iteration, after 2 warm-up iterations. Its model and optimizer
    are freed on return, before the next split is built."""
    precision = cfg.train.precision
    model, objective, opt = _setup(cfg, device)
    scaler = grad_scaler(device, precision)
    rgb, aux, label = _inputs(micro * accumulate, size, device)
    gen = torch.Generator(device=device).manual_seed(0)

    def step():
        return train_step(model, objective, opt, rgb, aux, label, lr=6e-5, precision=precision, scaler=scaler,
                          generator=gen, accumulate=accumulate)

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        stats = step()
        float(stats["loss"])  # waits for the step
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    median = sorted(times)[len(times) // 2]
    print(f"  {precision} {micro:>2} x {accumulate}: peak {peak:6.2f} GiB, {median:.3f} s/iteration "
          f"(median of {iters}), loss {float(stats['loss']):.4f}", flush=True)
    return {"precision": precision, "micro_batch": micro, "accumulate": accumulate, "peak_gib": round(peak, 2),
            "seconds_per_iter": round(median, 4), "loss": round(float(stats["loss"]), 4)}


def memory_and_time(device: torch.device, size, splits, precision: str, iters: int) -> list[dict]:
    cfg = _config(str(device), precision)
    rows = []
    for micro, accumulate in splits:
        rows.append(_measure(cfg, device, size, micro, accumulate, iters))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def same_update(device: torch.device, size) -> dict:
    """The gradient of one iteration as 16 x 1 and as 4 x 4 from the same weights, with the model held in eval
    mode (no BatchNorm batch statistics, which are per micro-batch by design; no dropout; LightHam's fixed
    NMF bases instead of random ones per forward) and no contrast (its sampling is per micro-batch too). Read through a plain SGD step at learning rate 1, so the weight change is the gradient:
    the relative difference of the two gradients (norm over all parameters)."""
    cfg = _config(str(device), "fp32", "loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0")
    model, objective, _ = _setup(cfg, device)
    model.eval()
    model.train = lambda mode=True: model  # the step calls net.train(); the model stays in eval mode
    before = copy.deepcopy(model.state_dict())
    rgb, aux, label = _inputs(16, size, device)
    grads = {}
    for accumulate in (1, 4):
        model.load_state_dict(before)
        train_step(model, objective, torch.optim.SGD(model.parameters(), lr=1.0), rgb, aux, label, lr=1.0, accumulate=accumulate)
        after = model.state_dict()
        grads[accumulate] = torch.cat([(before[k] - after[k]).double().flatten() for k in before if before[k].is_floating_point()])
    rel = ((grads[1] - grads[4]).norm() / grads[1].norm()).item()
    print(f"  16 x 1 vs 4 x 4, fp32: relative difference of the iteration's gradient {rel:.3g}")
    return {"relative_gradient_difference": rel}


def exact_resume(device: torch.device, deterministic: bool = False) -> dict:
    """A tiny run with accumulation and the average of weights, stopped inside training and resumed, against
    the same run uninterrupted: the weights, average, and optimizer state compared."""
    root = Path(tempfile.mkdtemp())
    generate_dataset("indoor-rgbd", root / "data", num=24, size=(64, 80), seed=3)
    common = [f"data.root={root / 'data'}", f"train.device={device}", "train.max_iters=6", "train.checkpoint_every=2",
              "train.batch_size=2", "train.accumulate=2", "train.ema.enabled=true", "train.ema.decay=0.5",
              "train.tensorboard=false", "train.progress=false", f"train.deterministic={str(deterministic).lower()}"]
    tiny = REPO / "tests" / "support" / "tiny.yaml"
    full = Trainer(load_config(tiny, [*common, f"train.out_dir={root / 'full'}"]))
    full.run()
    # The same run again, uninterrupted: how far the device's own kernels let two identical runs drift apart.
    again = Trainer(load_config(tiny, [*common, f"train.out_dir={root / 'again'}"]))
    again.run()
    cfg = load_config(tiny, [*common, f"train.out_dir={root / 'killed'}"])
    Trainer(cfg).run(stop_at=3)  # the newest checkpoint is step 2
    resumed = Trainer(cfg, resume="auto")
    resumed.run()
    def gap(a, b):
        return max((a[k].float() - b[k].float()).abs().max().item() for k in a if a[k].is_floating_point())
    out = {"weights": gap(full.model.state_dict(), resumed.model.state_dict()),
           "ema": gap(full.ema.state_dict(), resumed.ema.state_dict()),
           "bitwise": all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in full.model.state_dict().items()),
           "repeat_run_weights": gap(full.model.state_dict(), again.model.state_dict())}
    print(f"  train.deterministic={deterministic}: resumed vs uninterrupted on {device}: weights differ by at most {out['weights']:.3g}, average by "
          f"{out['ema']:.3g}, bitwise equal: {out['bitwise']}; two uninterrupted runs differ by "
          f"{out['repeat_run_weights']:.3g}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--size", default="480x640")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--precisions", default="fp32,bf16,fp16")
    p.add_argument("--sections", default="memory,update,resume", help="which checks to run")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    device = torch.device(args.device)
    size = tuple(int(v) for v in args.size.split("x"))
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__,
              "size": list(size), "model": "MSCAN-B + LightHam, SMMCL (Eq. 7)"}
    print(f"[accumulate] {result['device']}, torch {torch.__version__}, {size[0]}x{size[1]}, effective batch 16")
    splits = [(16, 1), (8, 2), (4, 4), (2, 8)]
    sections = args.sections.split(",")
    if "memory" in sections:
        result["rows"] = [r for prec in args.precisions.split(",") for r in memory_and_time(device, size, splits, prec, args.iters)]
    if "update" in sections:
        result["same_update"] = same_update(device, size)
    if "resume" in sections:
        import warnings

        # Deterministic first: the cuBLAS setting it makes is read when cuBLAS starts, as in a fresh `smmcl train`.
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            result["exact_resume_deterministic"] = exact_resume(device, deterministic=True)
        ops = sorted({str(w.message).split(" does not have")[0] for w in seen if "deterministic" in str(w.message)})
        result["nondeterministic_ops"] = ops
        print("  ops without a deterministic kernel (warned, not failed): " + ("; ".join(ops) or "none"))
        result["exact_resume"] = exact_resume(device)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
