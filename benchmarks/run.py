"""`make bench`: training-step and inference timings of the paper's three dual models on this machine.

Cases (each in a fresh subprocess, so peak RSS and caches are its own):
  * training step (forward, CE [+ 0.2 x (cm + vis + aux)], backward, AdamW step) at 240x320, batch 2, for
    MSCAN-B, MiT-B2 and ResNet-101 with their paper decoders: SMMCL under every fast-path candidate
    (fp32 eager, bf16 autocast, channels_last, both; torch.compile with --compile), then Base (CE only)
    under fp32 eager and under the fastest SMMCL path;
  * inference `model(rgb, aux)` at 480x640, batch 1, eval mode, no_grad, under every candidate;
  * scaling of the MSCAN-B SMMCL step: batch 1 and 2 at 240x320, batch 2 at 480x640 (fp32 eager);
  * pixel agreement between fp32 eager and each candidate for the demo's trained model on its test split.

The figures of the first model (MSCAN-B) are checked against the goals and printed PASS/MISS; for a MISS a
torch.profiler table of the cases concerned is written to benchmarks/profiles/. Results go to
benchmarks/results.json.
"""

# This file holds the command line and the order of the cases; the parts live beside it: plan.py (settings and
# case names), runner.py and machine.py (running cases, waiting out other processes), worker.py with steps.py,
# paired.py, agreement.py, onnx_candidate.py and timing.py (measuring one case in its process; cases.py says
# what a case is), goals.py (summaries and goals), profiling.py (profiles of missed goals) and report.py.

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from agreement import demo_weights  # noqa: E402
from cases import PATHS, Case  # noqa: E402
from goals import compile_status, evaluate_goals, fastest, keeps_predictions, model_summary, ok, top_level  # noqa: E402
from machine import contended, cpu_info  # noqa: E402
from plan import candidate_paths, infer_name, settings, train_name  # noqa: E402
from profiling import write_profiles  # noqa: E402
from report import format_report  # noqa: E402
from runner import Runner  # noqa: E402


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        from worker import worker_main

        worker_main(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: small models, tiny sizes, 1 repeat, in-process (< 1 min)")
    parser.add_argument("--only", metavar="PATTERN", help="run only the cases whose name matches this regular expression "
                        "(names: MODEL/train/LOSS/PATH/HxW/bB, MODEL/infer/PATH/HxW/bB, demo/agreement)")
    parser.add_argument("--reps", type=int, help="timed repeats per case (default 3 for training, 5 for inference)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads (default: usable cores)")
    parser.add_argument("--compile", choices=("none", "lead", "all"), default="none",
                        help="add torch.compile candidates (fp32, bf16-cl) for no model, MSCAN-B only, or all models")
    parser.add_argument("--compile-timeout", type=float, default=180.0, help="seconds a compiled case may spend compiling")
    parser.add_argument("--agreement-timeout", type=float,
                        help="seconds one path may take to predict the demo test split (default 300, --quick 15); a hang is reported, not waited for")
    parser.add_argument("--demo", default=str(ROOT / "runs" / "demo"), help="demo output folder with the trained model")
    parser.add_argument("--idle-wait", type=float, default=300.0,
                        help="before each case wait up to this many seconds for other processes to leave the CPU idle")
    parser.add_argument("--no-profiles", action="store_true", help="do not profile the cases of missed goals")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args()
    if args.quick and args.compile != "none":
        parser.error("--quick does not compile")
    if args.agreement_timeout is None:
        args.agreement_timeout = 15.0 if args.quick else 300.0

    import torch

    t_start = time.perf_counter()
    cfg = settings(args)
    models = cfg["models"]
    lead = next(iter(models))
    runner = Runner(args)
    info = cpu_info()
    print(f"torch {torch.__version__}, {args.threads} threads, CPU {info['model']} "
          f"(capability {info['torch_cpu_capability']}, avx512_bf16 {info['flags']['avx512_bf16']}, amx {info['flags']['amx_bf16']})")

    def case(name: str, kind: str, model: str, **kw: Any) -> Case:
        return Case(name=name, kind=kind, model=model, model_spec=models[model], threads=args.threads, **kw)

    tsize, tb, isize, ib = cfg["train_size"], cfg["train_batch"], cfg["infer_size"], cfg["infer_batch"]
    tw, tr, iw, ir = cfg["train_warmup"], cfg["train_reps"], cfg["infer_warmup"], cfg["infer_reps"]
    summary: dict[str, dict] = {}
    compile_notes: dict[str, str] = {}

    def compile_timeout(fp32: Optional[dict], warmup: int, reps: int) -> float:
        step = fp32["median_s"] if ok(fp32) else 60.0
        return args.compile_timeout + 120 + (warmup + reps + 2) * 3 * step

    # Pixel agreement of every candidate with fp32 eager, on the trained demo model; first, because it decides
    # which inference paths of the lead model may count as its fastest.
    demo = Path(args.demo)
    agreement: Optional[dict] = None
    agreement_note = None
    lead_paths = [p for p in candidate_paths(lead, args, lead) if p != "fp32"]
    if demo_weights(demo) is None or not (demo / "smmcl" / "config.yaml").is_file() or not (demo / "data").is_dir():
        agreement_note = f"no trained demo model in {demo}: run `make demo` first (pixel_agreement is null)"
        print(f"  demo/agreement: {agreement_note}")
    else:
        # One subprocess per path, so a path that hangs on this model (see the timeout) costs only its own case.
        agreement = {"paths": {}}
        for path in lead_paths:
            c = Case(name=f"demo/agreement/{path}", kind="agreement", model="demo", demo=str(demo.resolve()), paths=[path],
                     threads=args.threads, group="agreement", warmup=0, reps=1)
            e = runner.run(c, timeout=args.agreement_timeout + (args.compile_timeout if c.compile else 0))
            if e is None:
                continue
            if "error" in e:
                agreement["paths"][path] = {"error": e["error"], "log": e.get("log", [])}
                continue
            agreement.update({k: v for k, v in e.items() if k in ("weights", "test_images", "image_size", "pixels", "fp32_pixel_accuracy")})
            agreement["paths"].update(e["paths"])
        if not agreement["paths"]:
            agreement = None


    for model in models:
        paths = candidate_paths(model, args, lead, infer=False)
        # Training: SMMCL under every candidate, then Base under fp32 eager and the fastest SMMCL path.
        smmcl: dict[str, Optional[dict]] = {}
        for path in paths:
            c = case(train_name(model, "smmcl", path, tsize, tb), "train", model, path=path, loss="smmcl",
                     size=tsize, batch=tb, warmup=tw, reps=tr, group="train")
            limit = compile_timeout(smmcl.get("fp32"), tw, tr) if c.compile else 1800.0
            smmcl[path] = runner.run(c, timeout=limit)
        best_train = fastest(smmcl)
        base: dict[str, Optional[dict]] = {}
        for path in dict.fromkeys(["fp32", best_train or "fp32"]):
            c = case(train_name(model, "base", path, tsize, tb), "train", model, path=path, loss="base",
                     size=tsize, batch=tb, warmup=tw, reps=tr, group="train")
            limit = compile_timeout(smmcl.get("fp32"), tw, tr) if c.compile else 1800.0
            base[path] = runner.run(c, timeout=limit)
        # The overhead itself: Base and SMMCL steps alternating on one model (fp32 eager).
        c = case(f"{model}/train/overhead/fp32/{tsize[0]}x{tsize[1]}/b{tb}", "overhead", model, path="fp32",
                 size=tsize, batch=tb, warmup=1, reps=tr + 2, group="overhead")
        paired = runner.run(c)
        # Inference under every candidate.
        infer: dict[str, Optional[dict]] = {}
        for path in candidate_paths(model, args, lead):
            c = case(infer_name(model, path, isize, ib), "infer", model, path=path, size=isize, batch=ib,
                     warmup=iw, reps=ir, group="infer")
            limit = compile_timeout(infer.get("fp32"), iw, ir) if c.compile else 1800.0
            infer[path] = runner.run(c, timeout=limit)
        best_infer = fastest(infer)
        if model == lead and agreement is not None:
            best_infer = fastest({p: e for p, e in infer.items() if p == "fp32" or keeps_predictions(agreement, p)})
        # The speedups themselves: fp32 eager and the fastest path alternating in one process.
        pairs: dict[str, Optional[dict]] = {}
        for kind, best, size, batch, warm, reps, fp32 in (("train", best_train, tsize, tb, tw, tr + 2, smmcl.get("fp32")),
                                                           ("infer", best_infer, isize, ib, iw, ir, infer.get("fp32"))):
            if best is None or best == "fp32":
                continue
            c = case(f"{model}/{kind}/speedup/{best}/{size[0]}x{size[1]}/b{batch}", f"{kind}_speedup", model, path=best,
                     size=size, batch=batch, warmup=warm, reps=reps, group="pairs")
            pairs[kind] = runner.run(c, timeout=compile_timeout(fp32, warm, 2 * reps) if c.compile else 1800.0)
        for kind, entries in (("train", smmcl), ("infer", infer)):
            for path, e in entries.items():
                if path.endswith("+compile") and e is not None and not ok(e):
                    compile_notes[f"{model}/{kind}/{path}"] = f"skipped: {e['error']}"
                elif path.endswith("+compile") and e is not None and "excluded" in e:
                    compile_notes[f"{model}/{kind}/{path}"] = f"not a candidate: {e['excluded']}"
                elif path.endswith("+compile") and ok(e):
                    compile_notes[f"{model}/{kind}/{path}"] = f"measured: compiled in {e.get('compile_s', 0):.0f} s"
        summary[model] = model_summary(smmcl, base, infer, best_train, best_infer)
        summary[model]["train"]["smmcl_overhead_paired"] = paired["overhead"] if ok(paired) else None
        for kind in ("train", "infer"):
            e = pairs.get(kind)
            summary[model][kind]["speedup_paired"] = e["speedup"] if ok(e) else (1.0 if summary[model][kind]["fastest_path"] == "fp32" else None)

    # Scaling of the lead model's SMMCL step (fp32 eager); the 240x320 batch-2 point is the training case above.
    scaling = []
    for size, batch in [(tsize, tb), *cfg["scale"]]:
        c = case(train_name(lead, "smmcl", "fp32", size, batch), "train", lead, path="fp32", loss="smmcl",
                 size=size, batch=batch, warmup=1 if size != tsize else tw, reps=tr, group="scale")
        e = runner.run(c)
        if ok(e):
            scaling.append({"case": c.name, "size": list(size), "batch": batch, "median_s": e["median_s"],
                            "s_per_image": e["median_s"] / batch, "megapixels_per_s": batch * size[0] * size[1] / e["median_s"] / 1e6,
                            "peak_rss_mb": e.get("peak_rss_mb")})
    scaling.sort(key=lambda s: (s["size"][0] * s["size"][1], s["batch"]))

    top = top_level(summary.get(lead, {}), agreement, agreement_note)
    goals = evaluate_goals(top)

    # Profiles of the cases behind every missed goal.
    profiles: dict[str, list[str]] = {}
    if not args.no_profiles and not args.quick:
        profiles = write_profiles(goals, top, summary.get(lead, {}), agreement, lead, case, cfg, runner)

    duration = time.perf_counter() - t_start
    results = {
        "torch": torch.__version__,
        "cpu": info,
        "threads": args.threads,
        "command": " ".join([Path(sys.executable).name, "benchmarks/run.py", *sys.argv[1:]]),
        "quick": args.quick,
        "only": args.only,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "lead_model": lead,
        "settings": {
            "train": {"size": list(tsize), "batch": tb, "warmup": tw, "reps": tr, "optimizer": "AdamW (TrainConfig defaults)",
                      "loss": f"CE + {0.2} x (cm + vis + aux) for SMMCL, CE only for Base"},
            "infer": {"size": list(isize), "batch": ib, "warmup": iw, "reps": ir},
            "inputs": "torch.randn RGB/aux with a fixed seed; labels: 2x3 blocks of six distinct classes per image plus an ignore strip",
            "candidates": {p: {"precision": PATHS[p][0], "channels_last": PATHS[p][1]} for p in PATHS},
            "isolation": "in-process (--quick)" if args.quick else "one fresh subprocess per case",
        },
        "compile": compile_status(args, compile_notes),
        **top,
        "goals": goals,
        "models": summary,
        "scaling": scaling,
        "agreement": agreement,
        "profiles": profiles,
        "contended_cases": [n for n in runner.order if contended(runner.results[n])],
        "cases": [runner.results[n] for n in runner.order],
    }
    print()
    print(format_report(results, [runner.results[n] for n in runner.order]))
    Path(args.out).write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    print(f"saved {args.out} ({duration / 60:.1f} min)")


def _json_default(o: Any) -> Any:
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o).__name__)


if __name__ == "__main__":
    main()
