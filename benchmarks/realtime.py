"""`make bench-realtime`: frames per second END TO END over a recorded ROS 2 bag, on this CPU (issue 28, item 5).

For MSCAN-T, -S and -B with the LightHam decoder (trained briefly on the built-in synthetic rooms, weights cached
under runs/bench-realtime/), at 240x320 and 480x640 (a ROS 2 bag per size: rgb8 colour and 16UC1 depth in
millimetres aligned to colour, 30 fps), and for each inference path (PyTorch fp32 eager, the baseline; PyTorch
bf16 autocast; ONNX Runtime fp32 and int8; OpenVINO fp32 and bf16), what `smmcl predict --bag` does per frame:
decode, preprocessing, inference, overlay and video encode (`smmcl.deploy.recording.predict_recording`).

Reported per path: seconds per frame end to end and frames/s (median over rounds, with the min-max spread), the
Predictor's median latency per frame (preprocessing + inference), the paired ratio over fp32 eager (every round
runs every path once in turn; ratio = eager's seconds / the path's, median and range over rounds), and the pixel
agreement of its labels with fp32 eager's on the bag's frames. A refused path (int8 that does not win, OpenVINO
bf16 on a model it would hang on) is a row with the reason. Then the issue's goals, PASS / MISS.

Each model and size is measured in its own worker process; each path's load and first frame run under a watchdog,
so a path that hangs costs its own row only. Results go to benchmarks/results_realtime.json (--quick: to
runs/bench-realtime/quick/results.json, a smoke run of ~2 minutes: MSCAN-T, 60x80, 6 frames, 20 iterations).
"""

# The parts beside this file: realtime_settings.py (models, sizes, paths, budgets), realtime_data.py (data and
# bags), realtime_models.py (training, scores, exports, cached), realtime_measure.py (the worker) and
# realtime_report.py (rows, table, goals).

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from realtime_settings import BASELINE, CACHE, FULL, PATHS, QUICK, ROOT, model_name, size_name  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: MSCAN-T, 60x80, 6 frames, 20 iterations, 1 round")
    parser.add_argument("--out", help="results JSON (default benchmarks/results_realtime.json; --quick: "
                        "runs/bench-realtime/quick/results.json)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads of every backend (default: the cores this process may use)")
    parser.add_argument("--models", help="MSCAN presets, comma-separated (default T,S,B; --quick T)")
    parser.add_argument("--sizes", help="frame sizes HxW, comma-separated (default 240x320,480x640; --quick 60x80)")
    parser.add_argument("--frames", type=int, help="bag frames per size (default 60; --quick 6)")
    parser.add_argument("--rounds", type=int, help="timed passes over the bag per path (default 3; --quick 1)")
    parser.add_argument("--iters", type=int, help="training iterations of every model (default T 900, S 600, B 300)")
    parser.add_argument("--timeout", type=float, help="seconds for one model and size, all paths (default 5400)")
    parser.add_argument("--probe-timeout", type=float, help="seconds for one path to load and label its first frame")
    args = parser.parse_args()
    s = dict(QUICK if args.quick else FULL)
    if args.models:
        s["presets"] = [p.strip().upper() for p in args.models.split(",")]
        fallback = QUICK["iters"]["T"] if args.quick else 300
        s["iters"] = {p: s["iters"].get(p, fallback if args.quick else FULL["iters"].get(p, fallback)) for p in s["presets"]}
    if args.sizes:
        s["sizes"] = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes.split(",")]
    if args.iters:
        s["iters"] = {p: args.iters for p in s["presets"]}
    for key in ("frames", "rounds", "timeout", "probe_timeout"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    if s["frames"] < 2 or s["rounds"] < 1 or args.threads < 1:
        parser.error("--frames must be at least 2, --rounds and --threads at least 1")
    args.settings = s
    default_out = CACHE / "quick" / "results.json" if args.quick else HERE / "results_realtime.json"
    args.out = Path(args.out) if args.out else default_out
    return args


def versions() -> dict:
    found = {}
    for name in ("smmcl", "torch", "onnxruntime", "openvino", "onnx", "rosbags", "av", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _events(progress: Path) -> list[dict]:
    if not progress.is_file():
        return []
    return [json.loads(line) for line in progress.read_text().splitlines() if line.strip()]


def measure_model_size(files: dict, refusals: dict, bag: Path, s: dict, threads: int, log) -> tuple[dict, list[str]]:
    """The worker's result for one model at one size. A worker that dies while a path loads or labels its first
    frame (the watchdog ends a hang there) is started again without that path, whose row says why."""
    from machine import ForeignLoad

    excluded: dict[str, str] = {}
    notes: list[str] = []
    while True:
        paths = [p for p in PATHS if p not in excluded]
        with tempfile.TemporaryDirectory(prefix="smmcl-realtime-job-") as tmp:
            job_file, result_file, progress = Path(tmp) / "job.json", Path(tmp) / "result.json", Path(tmp) / "progress.jsonl"
            job_file.write_text(json.dumps({"bag": str(bag), "files": {k: str(v) for k, v in files.items()},
                                            "refusals": refusals, "paths": paths, "threads": threads,
                                            "rounds": s["rounds"], "probe_timeout": s["probe_timeout"],
                                            "progress": str(progress)}))
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
            load = ForeignLoad()
            load.start()
            t0 = time.perf_counter()
            # The worker's progress lines go straight to this terminal; its stderr (warnings, and the watchdog's
            # stack dump "Timeout (0:05:00)!" when a path hangs) to a file read afterwards.
            stderr_file = Path(tmp) / "stderr.txt"
            try:
                with open(stderr_file, "w") as err:
                    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(job_file),
                                           str(result_file)], stderr=err, text=True, timeout=s["timeout"], cwd=ROOT, env=env)
                stderr = stderr_file.read_text()
                failure = None if proc.returncode == 0 and result_file.is_file() else \
                    f"exit status {proc.returncode}: " + " | ".join(stderr.strip().splitlines()[-4:])
                hang = "Timeout (" in stderr
            except subprocess.TimeoutExpired:
                failure, hang = f"timed out after {s['timeout']:.0f} s", True
            wall, foreign = time.perf_counter() - t0, load.stop()
            events = _events(progress)
            if failure is None:
                result = json.loads(result_file.read_text())
                result["paths"].update({p: {"status": why} for p, why in excluded.items()})
                result.update(wall_s=round(wall, 1), foreign_load_cores=round(foreign, 3), restarts=notes)
                return result, notes
        started = [e["path"] for e in events if e["event"] == "start"]
        ended = {e["path"] for e in events if e["event"] == "end"}
        pending = [p for p in started if p not in ended]
        if not pending:  # it died after every path had loaded: nothing to leave out, every row fails
            log(f"    worker failed: {failure}")
            return {"paths": {p: {"status": f"error: worker {failure}"} for p in PATHS}, "wall_s": round(wall, 1)}, notes
        path = pending[-1]
        excluded[path] = (f"hung: no first frame within {s['probe_timeout']:.0f} s (stopped by the watchdog)" if hang
                          else f"error: the worker died loading it ({failure})")
        notes.append(f"{path}: {excluded[path]}")
        log(f"    {PATHS[path]['label']}: {excluded[path]}; measuring the other paths again without it")
        if path == BASELINE:
            return {"paths": {p: {"status": excluded.get(p, "error: no fp32 eager baseline")} for p in PATHS}}, notes


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        from realtime_measure import worker_main

        worker_main(sys.argv[2], sys.argv[3])
        return
    args = parse_args()
    s, threads = args.settings, args.threads
    import torch

    from machine import CONTENDED, cpu_info
    from realtime_data import ensure_dataset, write_bag
    from realtime_models import CachedModel
    from realtime_report import baseline_of, evaluate_goals, format_goals, format_table, make_row

    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    info = cpu_info()
    log = lambda text: print(text, flush=True)  # noqa: E731
    log(f"CPU {info['model']} ({info['usable_cpus']} usable cores, avx512_bf16 {info['flags']['avx512_bf16']}, "
        f"amx {info['flags']['amx_bf16']}); {threads} threads for every backend; torch {torch.__version__}")
    phases: dict[str, float] = {}

    # The demo's training data (same kind, count, size and seed), and per frame size the bag and int8's calibration.
    t0 = time.perf_counter()
    h, w = s["train_size"]
    data = ensure_dataset(CACHE / f"data-{s['train_scenes']}-{h}x{w}-seed0", s["train_scenes"], (h, w), 0, 0.25)
    bags, calibration = {}, {}
    for size in s["sizes"]:
        scenes = ensure_dataset(CACHE / "scenes" / f"{size_name(size)}-{s['frames']}", s["frames"], size, 1)
        bags[size] = write_bag(CACHE / "bags" / f"{size_name(size)}-{s['frames']}", scenes)
        calibration[size] = ensure_dataset(CACHE / "calibration" / f"{size_name(size)}-{s['calibration']}", s["calibration"],
                                           size, 2)
    phases["data_s"] = round(time.perf_counter() - t0, 1)
    log(f"data and bags ready in {phases['data_s']:.0f} s: {', '.join(str(b) for b in bags.values())}")

    # Models: trained, scored and exported once per setting (cached); int8 is kept only where export accepts it.
    models: dict[str, dict] = {}
    for preset in s["presets"]:
        t0 = time.perf_counter()
        m = CachedModel(preset, s["iters"][preset], data, log)
        m.train()
        miou = m.test_miou()
        files = {size: {"weights": m.weights, "onnx": m.onnx(size)} for size in s["sizes"]}
        refusals = {}
        for size in s["sizes"]:
            int8, refused = m.int8(size, calibration[size])
            if int8 is not None:
                files[size]["int8"] = int8
            else:
                refusals[size] = {"ort-int8": refused}
        models[preset] = {"dir": str(m.dir), "test_miou": miou, "files": files, "refusals": refusals, **m.cache}
        phases[f"prepare_{preset}_s"] = round(time.perf_counter() - t0, 1)
        log(f"{model_name(preset)} + LightHam: test mIoU {100 * miou:.2f}% ({m.iters} iterations); ready in "
            f"{phases[f'prepare_{preset}_s']:.0f} s")

    rows, measured = [], {}
    for preset in s["presets"]:
        for size in s["sizes"]:
            t0 = time.perf_counter()
            log(f"measuring {model_name(preset)} at {size_name(size)}: {len(PATHS)} paths, {s['rounds']} rounds of "
                f"{s['frames']} frames")
            result, _ = measure_model_size(models[preset]["files"][size], models[preset]["refusals"].get(size, {}),
                                           bags[size], s, threads, log)
            key = f"{model_name(preset)}/{size_name(size)}"
            measured[key] = result
            frames = result.get("frames", s["frames"])
            for name in PATHS:
                rows.append(make_row(model_name(preset), size, name, result["paths"].get(name, {}),
                                     baseline_of(result["paths"]), models[preset]["test_miou"], frames))
            phases[f"measure_{key}_s"] = round(time.perf_counter() - t0, 1)
            log(f"  done in {phases[f'measure_{key}_s']:.0f} s (other processes kept "
                f"{result.get('foreign_load_cores', float('nan')):.2f} cores busy meanwhile)")

    goals = evaluate_goals(rows)
    duration = time.perf_counter() - t_start
    print()
    print(format_table(rows))
    print()
    print(format_goals(goals))
    busy = {k: r["foreign_load_cores"] for k, r in measured.items() if r.get("foreign_load_cores", 0) > CONTENDED}
    if busy:
        print(f"\nNOTE: other processes kept cores busy while measuring ({', '.join(f'{k}: {v:.2f}' for k, v in busy.items())}"
              f" cores): these timings are not this machine's; multi-threaded PyTorch suffers most (its threads wait on"
              f" each other at every operator). Measure on an idle machine.")
    results = {
        "command": " ".join([Path(sys.executable).name, "benchmarks/realtime.py", *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "quick": args.quick,
        "cpu": info,
        "threads": threads,
        "versions": versions(),
        "settings": {**{k: v for k, v in s.items() if k != "sizes"}, "sizes": [size_name(z) for z in s["sizes"]],
                     "paths": {k: v["label"] for k, v in PATHS.items()}, "baseline": BASELINE,
                     "train": "configs/demo.yaml with MSCAN preset + LightHam, cross-entropy only (Base), 120x160 crops",
                     "end_to_end": "smmcl.deploy.recording.predict_recording(predictor, recording, out, video=True): "
                                   "decode, preprocessing, inference, overlay, H.264 encode, frames.csv"},
        "phases_s": phases,
        "models": {model_name(p): {k: v for k, v in m.items() if k not in ("files",)} | {
            "files": {size_name(z): {k: str(v) for k, v in f.items()} for z, f in m["files"].items()},
            "refusals": {size_name(z): r for z, r in m["refusals"].items()}} for p, m in models.items()},
        "rows": rows,
        "goals": goals,
        "contended": busy,
        "measured": measured,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nsaved {args.out} ({duration / 60:.1f} min)")


if __name__ == "__main__":
    main()
