"""`make bench`: training-step and inference timings of dual MSCAN models, printed and saved as JSON.

Each case reports the median of several timed repetitions after warm-up. The SMMCL overhead is the
ratio of a step with the contrastive terms to a Base step of the same model (same data, same seed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from smmcl.config import LossConfig, TrainConfig
from smmcl.engine.optim import build_optimizer
from smmcl.losses import SMMCLLoss
from smmcl.models import build_model

MODELS = {
    "mscan-t": {"num_classes": 14, "backbone": {"name": "mscan", "preset": "T"}, "decoder": {"name": "lightham", "channels": 256, "ham_rank": 16}},
    "mscan-b": {"num_classes": 14, "backbone": {"name": "mscan", "preset": "B"}, "decoder": {"name": "lightham", "channels": 512}},
}


def _median_seconds(fn, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_step_case(name: str, smmcl: bool, size: tuple[int, int], batch: int, reps: int) -> float:
    torch.manual_seed(0)
    model = build_model(MODELS[name]).train()
    opt = build_optimizer(model, TrainConfig(lr=1e-4))
    loss_fn = SMMCLLoss.from_config(LossConfig(), 14, 255) if smmcl else None
    rgb, aux = torch.randn(batch, 3, *size), torch.randn(batch, 3, *size)
    # Blocky labels: a few classes per image, like real scenes at the projector's resolution.
    label = F.interpolate(torch.randint(0, 14, (batch, 1, 6, 8)).float(), size=size, mode="nearest")[:, 0].long()

    def step():
        if loss_fn is None:
            loss = F.cross_entropy(model(rgb, aux), label, ignore_index=255)
        else:
            logits, v, a = model.forward_train(rgb, aux)
            terms = loss_fn(v, a, label)
            loss = F.cross_entropy(logits, label, ignore_index=255) + 0.2 * sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _median_seconds(step, warmup=1, reps=reps)


@torch.no_grad()
def inference_case(name: str, size: tuple[int, int], reps: int) -> float:
    model = build_model(MODELS[name]).eval()
    rgb, aux = torch.randn(1, 3, *size), torch.randn(1, 3, *size)
    return _median_seconds(lambda: model(rgb, aux), warmup=1, reps=reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    results: dict = {"device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__, "cases": []}
    print(f"{'case':<44} {'median s':>10}")
    for name in args.models:
        base = train_step_case(name, False, (240, 320), 2, args.reps)
        contrast = train_step_case(name, True, (240, 320), 2, args.reps)
        infer = inference_case(name, (480, 640), args.reps)
        for case, secs in ((f"{name} train step Base 240x320 b2", base), (f"{name} train step SMMCL 240x320 b2", contrast),
                           (f"{name} inference 480x640 b1", infer)):
            results["cases"].append({"case": case, "median_s": round(secs, 4)})
            print(f"{case:<44} {secs:>10.4f}")
        results[f"{name}_smmcl_overhead"] = round(contrast / base, 4)
        print(f"{name + ' SMMCL step / Base step':<44} {contrast / base:>10.3f}")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
