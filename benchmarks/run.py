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

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from cases import INFER_ONLY, MODELS, PATHS, QUICK_MODELS, Case, demo_weights  # noqa: E402

GOALS = [
    # (key, comparison, target, what it measures)
    ("smmcl_overhead", "<=", 1.05, "SMMCL step / Base step (fp32 eager, alternating in one process)"),
    ("train_speedup", ">=", 1.5, "fp32 eager train step / fastest train step"),
    ("infer_speedup", ">=", 2.0, "fp32 eager inference / fastest inference"),
    ("pixel_agreement", ">=", 0.995, "share of test pixels where the fastest inference path = fp32 eager"),
]
PIXEL_AGREEMENT_TARGET = 0.995


# --- settings ------------------------------------------------------------------------------------------


def settings(args: argparse.Namespace) -> dict:
    if args.quick:
        return {
            "models": QUICK_MODELS,
            "train_size": (96, 128), "train_batch": 2, "infer_size": (96, 128), "infer_batch": 1,
            "scale": [((96, 128), 1), ((128, 160), 2)],
            "train_warmup": 1, "train_reps": 1, "infer_warmup": 1, "infer_reps": 1,
        }
    return {
        "models": MODELS,
        "train_size": (240, 320), "train_batch": 2, "infer_size": (480, 640), "infer_batch": 1,
        "scale": [((240, 320), 1), ((480, 640), 2)],
        "train_warmup": 2, "train_reps": args.reps or 3, "infer_warmup": 2, "infer_reps": args.reps or 5,
    }


def candidate_paths(model: str, args: argparse.Namespace, lead: str, infer: bool = True) -> list[str]:
    paths = [p for p in PATHS if infer or p not in INFER_ONLY]
    if args.compile == "all" or (args.compile == "lead" and model == lead):
        paths += [f"{p}+compile" for p in ("fp32-cl", "bf16-cl")]
    return paths


def train_name(model: str, loss: str, path: str, size: tuple[int, int], batch: int) -> str:
    return f"{model}/train/{loss}/{path}/{size[0]}x{size[1]}/b{batch}"


def infer_name(model: str, path: str, size: tuple[int, int], batch: int) -> str:
    return f"{model}/infer/{path}/{size[0]}x{size[1]}/b{batch}"


def profile_file(case_name: str) -> Path:
    return HERE / "profiles" / (case_name.replace("/", "_").replace("+", "_") + ".txt")


# --- running one case in a subprocess --------------------------------------------------------------------


def worker_main(case_file: str, result_file: str) -> None:
    from cases import run_case

    case = Case.from_json(json.loads(Path(case_file).read_text()))
    deadline = float(os.environ.get("BENCH_DEADLINE_S", "0"))
    if deadline > 10:
        # Print every thread's stack shortly before the parent gives up on this case, so a hang says where.
        faulthandler.dump_traceback_later(deadline - 5, exit=True)
    Path(result_file).write_text(json.dumps(run_case(case)))


# --- other processes' CPU use (this machine is shared; 2 threads on 2 busy cores are many times slower) ----


def busy_cpu_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class ForeignLoad:
    """Average number of cores other processes kept busy between start() and stop()."""

    def start(self) -> None:
        self.t, self.busy, self.own = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()

    def stop(self) -> float:
        wall = time.perf_counter() - self.t
        foreign = (busy_cpu_seconds() - self.busy) - (own_cpu_seconds() - self.own)
        return max(0.0, foreign / wall) if wall > 0 else 0.0


def wait_for_idle(max_wait: float, threshold: float = 0.25, window: float = 2.0) -> tuple[float, float]:
    """Wait (up to max_wait s) until other processes use < threshold cores over `window` s.

    Returns (seconds waited, the last window's foreign load)."""
    t0, load = time.perf_counter(), 0.0
    probe = ForeignLoad()
    while True:
        probe.start()
        time.sleep(window)
        load = probe.stop()
        waited = time.perf_counter() - t0
        if load < threshold or waited >= max_wait:
            return waited, load


def run_isolated(case: Case, timeout: float) -> dict:
    """Run `case` in a fresh interpreter; returns its measurements, or {"error": ...}."""
    with tempfile.TemporaryDirectory() as tmp:
        case_file, result_file = Path(tmp) / "case.json", Path(tmp) / "result.json"
        case_file.write_text(json.dumps(case.to_json()))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(case_file), str(result_file)]
        env = dict(os.environ, OMP_NUM_THREADS=str(case.threads), PYTHONUNBUFFERED="1", BENCH_DEADLINE_S=str(timeout))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, cwd=ROOT, env=env)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if proc.returncode != 0 or not result_file.is_file():
            log = (proc.stderr or proc.stdout).strip().splitlines()
            if any(line.startswith("Timeout (") for line in log):
                return {"error": f"timed out after {timeout:.0f} s (hung; stack in 'log')", "log": log[-80:]}
            return {"error": f"exit status {proc.returncode}: " + " | ".join(log[-6:]), "log": log[-80:]}
        return json.loads(result_file.read_text())


def run_inline(case: Case) -> dict:
    """--quick: in this process (no isolation; RSS figures are process-wide and not per case)."""
    from cases import run_case

    try:
        out = run_case(case)
    except Exception as exc:  # a smoke run reports every failure and goes on
        return {"error": f"{type(exc).__name__}: {exc}"}
    for key in ("peak_rss_mb", "rss_growth_mb", "rss_before_mb"):
        out.pop(key, None)
    return out


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.only = re.compile(args.only) if args.only else None
        self.results: dict[str, dict] = {}  # case name -> case fields + measurements
        self.order: list[str] = []

    def selected(self, name: str) -> bool:
        return self.only is None or bool(self.only.search(name))

    def run(self, case: Case, timeout: float = 1800.0, force: bool = False) -> Optional[dict]:
        if case.name in self.results:
            return self.results[case.name]
        if not force and not self.selected(case.name):
            return None
        waited, idle_load = (0.0, 0.0) if self.args.quick else wait_for_idle(self.args.idle_wait)
        if waited >= self.args.idle_wait > 0:
            print(f"  (machine still busy after {waited:.0f} s: other processes use {idle_load:.1f} cores; measuring anyway)", flush=True)
        load = ForeignLoad()
        load.start()
        t0 = time.perf_counter()
        # Agreement cases always get their own process: a path can hang on the demo model and needs a timeout.
        inline = self.args.quick and case.kind != "agreement"
        out = run_inline(case) if inline else run_isolated(case, timeout)
        entry = {k: v for k, v in case.to_json().items() if k not in ("model_spec", "profile", "demo", "paths", "threads", "seed")}
        entry["size"] = list(case.size)
        entry.update(out)
        if case.compile and out.get("compile_s", 0.0) > self.args.compile_timeout:
            entry["excluded"] = f"compiled in {out['compile_s']:.0f} s, over --compile-timeout {self.args.compile_timeout:.0f} s"
        entry["wall_s"] = round(time.perf_counter() - t0, 2)
        # Cores other processes kept busy while this case ran; above CONTENDED its timings are suspect.
        entry["foreign_load_cores"] = round(load.stop(), 3)
        entry["waited_for_idle_s"] = round(waited, 1)
        self.results[case.name] = entry
        self.order.append(case.name)
        print(progress_line(entry), flush=True)
        return entry


def progress_line(e: dict) -> str:
    if "error" in e:
        return f"  {e['name']:<46} ERROR {e['error'][:200]}"
    if e["kind"] == "overhead" or e["kind"].endswith("_speedup"):
        return f"  {e['name']:<46} {paired_result(e)}  ({e['wall_s']:.0f} s wall)"
    if e["kind"] == "agreement":
        return f"  {e['name']:<46} " + ", ".join(f"agreement {v['pixel_agreement']:.5f}" for v in e["paths"].values()) + f"  ({e['wall_s']:.0f} s wall)"
    extra = f"  compile {e['compile_s']:.0f} s" if "compile_s" in e else ""
    rss = f"  peak RSS {e['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in e else ""
    busy = f"  CONTENDED: other processes used {e['foreign_load_cores']:.2f} cores" if contended(e) else ""
    return f"  {e['name']:<46} {e['median_s']:8.3f} s{rss}{extra}  ({e['wall_s']:.0f} s wall){busy}"


CONTENDED = 0.2  # cores used by other processes during a case above which its timings are flagged


def contended(e: dict) -> bool:
    return e.get("foreign_load_cores", 0.0) > CONTENDED


def ok(entry: Optional[dict]) -> bool:
    return entry is not None and "error" not in entry and "median_s" in entry


def fastest(entries: dict[str, Optional[dict]]) -> Optional[str]:
    timed = {p: e["median_s"] for p, e in entries.items() if ok(e) and "excluded" not in e}
    return min(timed, key=timed.__getitem__) if timed else None


# --- the benchmark ---------------------------------------------------------------------------------------


def cpu_info() -> dict:
    import torch

    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", ""):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    interesting = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"]
    return {
        "model": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "flags": {f: f in flags for f in interesting},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
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
    print(format_report(results, runner))
    Path(args.out).write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    print(f"saved {args.out} ({duration / 60:.1f} min)")


def _json_default(o: Any) -> Any:
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o).__name__)


def model_summary(smmcl: dict, base: dict, infer: dict, best_train: Optional[str], best_infer: Optional[str]) -> dict:
    def med(e: Optional[dict]) -> Optional[float]:
        return e["median_s"] if ok(e) else None

    def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
        return a / b if a is not None and b else None

    s_fp32, b_fp32 = med(smmcl.get("fp32")), med(base.get("fp32"))
    s_best = med(smmcl.get(best_train)) if best_train else None
    b_best = med(base.get(best_train)) if best_train else None
    i_fp32 = med(infer.get("fp32"))
    i_best = med(infer.get(best_infer)) if best_infer else None
    return {
        "train": {
            "smmcl_fp32_s": s_fp32, "base_fp32_s": b_fp32, "smmcl_overhead": ratio(s_fp32, b_fp32),
            "fastest_path": best_train, "smmcl_fastest_s": s_best, "base_fastest_s": b_best,
            "smmcl_overhead_fastest": ratio(s_best, b_best), "speedup": ratio(s_fp32, s_best),
            "by_path_s": {p: med(e) for p, e in smmcl.items() if e is not None},
        },
        "infer": {
            "fp32_s": i_fp32, "fastest_path": best_infer, "fastest_s": i_best, "speedup": ratio(i_fp32, i_best),
            "fp32_peak_rss_mb": infer["fp32"].get("peak_rss_mb") if ok(infer.get("fp32")) else None,
            "fastest_peak_rss_mb": infer[best_infer].get("peak_rss_mb") if best_infer and ok(infer.get(best_infer)) else None,
            "by_path_s": {p: med(e) for p, e in infer.items() if e is not None},
        },
    }


def keeps_predictions(agreement: Optional[dict], path: str) -> bool:
    entry = (agreement or {}).get("paths", {}).get(path, {})
    return entry.get("pixel_agreement", 0.0) >= PIXEL_AGREEMENT_TARGET


def top_level(lead: dict, agreement: Optional[dict], agreement_note: Optional[str]) -> dict:
    """The goal figures of the lead model.

    Its fastest inference path is the fastest candidate that keeps >= 99.5% of the demo model's pixels
    (fp32 eager itself counts as 1.0): a faster path that changes the predictions is reported, not chosen.
    Speedups and the overhead come from the paired cases (both sides alternating in one process) where
    they ran, else from the separate cases.
    """
    train, infer = lead.get("train", {}), lead.get("infer", {})
    by_path = {p: t for p, t in infer.get("by_path_s", {}).items() if t is not None}
    path = infer.get("fastest_path")
    raw = min(by_path, key=by_path.__getitem__) if by_path else None
    value = None
    if agreement is not None and agreement.get("paths") and path is not None:
        value = 1.0 if path == "fp32" else agreement["paths"].get(path, {}).get("pixel_agreement")
        if raw != path:
            other = agreement["paths"].get(raw, {})
            agreement_note = (f"fastest path overall: {raw} (x{by_path['fp32'] / by_path[raw]:.2f} in the separate cases), "
                              f"which agrees on {other.get('pixel_agreement', float('nan')):.4f} of the pixels"
                              f"{' (' + other['error'][:80] + ')' if 'error' in other else ''}; "
                              f"the fastest path that keeps the predictions is {path}")
    if agreement_note is None and value is None:
        agreement_note = "not measured (the agreement case or the lead model's inference cases did not run)"
    return {
        "smmcl_overhead": train.get("smmcl_overhead_paired") or train.get("smmcl_overhead"),
        "train_speedup": train.get("speedup_paired") or train.get("speedup"),
        "infer_speedup": infer.get("speedup_paired") or infer.get("speedup"),
        "pixel_agreement": value,
        "fastest_train_path": train.get("fastest_path"),
        "fastest_infer_path": path,
        "fastest_infer_path_any_agreement": raw,
        "pixel_agreement_note": agreement_note,
    }


def evaluate_goals(top: dict) -> dict:
    goals = {}
    for key, op, target, what in GOALS:
        value = top.get(key)
        if key == "pixel_agreement" and value is None and "failed" in (top.get("pixel_agreement_note") or ""):
            status = "MISS"  # the fast path did not produce a prediction at all
        elif value is None:
            status = "N/A"
        else:
            met = value <= target if op == "<=" else value >= target
            status = "PASS" if met else "MISS"
        goals[key] = {"value": value, "target": f"{op} {target}", "status": status, "what": what}
    return goals


def write_profiles(goals: dict, top: dict, lead_summary: dict, agreement: Optional[dict], lead: str, case, cfg: dict,
                   runner: Runner) -> dict[str, list[str]]:
    """Re-run the cases behind each missed goal under torch.profiler (1 warm-up, 1 timed + profiled iteration)."""
    tsize, tb, isize, ib = cfg["train_size"], cfg["train_batch"], cfg["infer_size"], cfg["infer_batch"]

    def runner_up(by_path: dict) -> Optional[str]:
        timed = {p: s for p, s in by_path.items() if s is not None and p != "fp32"}
        return min(timed, key=timed.__getitem__) if timed else None

    wanted: dict[str, list[tuple[str, Case]]] = {}
    train, infer = lead_summary.get("train", {}), lead_summary.get("infer", {})
    for key, goal in goals.items():
        if goal["status"] != "MISS":
            continue
        items = []
        if key == "smmcl_overhead":
            for loss in ("base", "smmcl"):
                name = train_name(lead, loss, "fp32", tsize, tb)
                items.append((name, case(name, "train", lead, path="fp32", loss=loss, size=tsize, batch=tb, warmup=1, reps=1)))
        elif key == "train_speedup":
            for path in dict.fromkeys(["fp32", top.get("fastest_train_path") or runner_up(train.get("by_path_s", {})) or "fp32"]):
                name = train_name(lead, "smmcl", path, tsize, tb)
                items.append((name, case(name, "train", lead, path=path, loss="smmcl", size=tsize, batch=tb, warmup=1, reps=1)))
        elif key == "infer_speedup":
            for path in dict.fromkeys(["fp32", top.get("fastest_infer_path") or runner_up(infer.get("by_path_s", {})) or "fp32"]):
                name = infer_name(lead, path, isize, ib)
                items.append((name, case(name, "infer", lead, path=path, size=isize, batch=ib, warmup=1, reps=1)))
        elif key == "pixel_agreement" and agreement is not None:
            path = HERE / "profiles" / "pixel_agreement.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({p: {k: v for k, v in d.items() if k != "log"} for p, d in agreement["paths"].items()}, indent=2)
            for p, d in agreement["paths"].items():
                if d.get("log"):
                    text += f"\n\n--- {p}: end of the worker's stderr ---\n" + "\n".join(d["log"])
            path.write_text(text + "\n")
            wanted[key] = [(str(path), None)]  # type: ignore[list-item]
            continue
        wanted[key] = items
    out: dict[str, list[str]] = {}
    done: set[str] = set()
    for key, items in wanted.items():
        out[key] = []
        for name, c in items:
            if c is None:
                out[key].append(str(Path(name).relative_to(ROOT)))
                continue
            target = profile_file(name)
            if name not in done:
                c.name = f"profile:{name}"
                c.profile = str(target)
                print(f"  profiling {name} for {key} ...", flush=True)
                runner.run(c, force=True)
                done.add(name)
            if target.is_file():
                out[key].append(str(target.relative_to(ROOT)))
    return out


def compile_status(args: argparse.Namespace, notes: dict[str, str]) -> dict:
    if args.compile == "none":
        return {"enabled": False, "note": "torch.compile candidates skipped in this run (enable with --compile lead|all; "
                "a compiled case that has not finished compiling within --compile-timeout is dropped)"}
    return {"enabled": args.compile, "timeout_s": args.compile_timeout, "cases": notes}


# --- the printed report ----------------------------------------------------------------------------------


PAIRED_SECTIONS = (
    ("overhead", "SMMCL overhead (Base and SMMCL steps alternating on one model, fp32 eager)"),
    ("pairs", "Speedups (fp32 eager and the fastest path alternating in one process)"),
)


def paired_result(e: dict) -> str:
    """The two medians and their ratio of an overhead or speedup case."""
    if e["kind"] == "overhead":
        return f"Base {e['base_median_s']:.3f} s, SMMCL {e['smmcl_median_s']:.3f} s: x{e['overhead']:.3f}"
    return f"fp32 {e['fp32_median_s']:.3f} s, {e['path']} {e['median_s']:.3f} s: x{e['speedup']:.2f}"


def paired_lines(runner: Runner) -> list[str]:
    lines = []
    for group, title in PAIRED_SECTIONS:
        entries = [runner.results[n] for n in runner.order if runner.results[n].get("group") == group]
        if not entries:
            continue
        lines.append(title)
        for e in entries:
            result = f"ERROR: {e['error'][:120]}" if "error" in e else paired_result(e)
            lines.append(f"  {e['name']:<46} {result}")
        lines.append("")
    return lines


def format_report(results: dict, runner: Runner) -> str:
    lines = []
    header = f"{'case':<46} {'median s':>9} {'min s':>8} {'max s':>8} {'img/s':>7} {'peak RSS MB':>11} {'RSS +MB':>8}  note"
    for group, title in (("train", "Training step"), ("infer", "Inference"), ("scale", "Scaling (lead model, SMMCL, fp32 eager)")):
        if group == "infer":
            lines += paired_lines(runner)
        entries = [runner.results[n] for n in runner.order if runner.results[n].get("group") == group]
        if not entries:
            continue
        lines += [title, header, "-" * len(header)]
        for e in entries:
            if "error" in e:
                lines.append(f"{e['name']:<46} {'-':>9}  ERROR: {e['error'][:120]}")
                continue
            note = f"compile {e['compile_s']:.0f} s" if "compile_s" in e else ""
            if "excluded" in e:
                note += f" (not a candidate: {e['excluded']})"
            if contended(e):
                note += f" CONTENDED ({e['foreign_load_cores']:.2f} other cores)"
            rss = f"{e['peak_rss_mb']:>11.0f} {e['rss_growth_mb']:>8.0f}" if "peak_rss_mb" in e else f"{'-':>11} {'-':>8}"
            lines.append(f"{e['name']:<46} {e['median_s']:>9.3f} {e['min_s']:>8.3f} {e['max_s']:>8.3f} {e['images_per_s']:>7.2f} {rss}  {note}")
        lines.append("")
    lines.append("Per model")
    for model, s in results["models"].items():
        t, i = s["train"], s["infer"]
        lines.append(
            f"  {model:<11} train: fp32 {_f(t['smmcl_fp32_s'])} s, fastest {t['fastest_path']} {_f(t['smmcl_fastest_s'])} s "
            f"(x{_f(t['speedup'], 2)}; paired x{_f(t.get('speedup_paired'), 2)}); SMMCL/Base {_f(t.get('smmcl_overhead_paired'))} paired | "
            f"infer: fp32 {_f(i['fp32_s'])} s, fastest {i['fastest_path']} {_f(i['fastest_s'])} s (x{_f(i['speedup'], 2)}; paired x{_f(i.get('speedup_paired'), 2)})"
        )
    if results["agreement"] and "test_images" in results["agreement"]:
        a = results["agreement"]
        lines.append(f"Pixel agreement with fp32 eager ({a['test_images']} demo test images {a['image_size'][0]}x{a['image_size'][1]}, "
                     f"{Path(a['weights']).name}; fp32 pixel accuracy {a['fp32_pixel_accuracy']:.4f})")
        for p, v in a["paths"].items():
            if "error" in v:
                lines.append(f"  {p:<14} ERROR {v['error'][:150]}")
                continue
            lines.append(f"  {p:<14} {v['pixel_agreement']:.5f} ({v['differing_pixels']} pixels differ; accuracy {v['pixel_accuracy']:.4f})")
    elif results.get("pixel_agreement_note"):
        lines.append(f"Pixel agreement: {results['pixel_agreement_note']}")
    lines.append("")
    lead = results["lead_model"]
    lines.append(f"Goals ({lead}; fastest train path {results['fastest_train_path']}, fastest inference path {results['fastest_infer_path']})")
    for key, g in results["goals"].items():
        lines.append(f"  {key:<16} {_f(g['value']):>8}  target {g['target']:<8} {g['status']:<5} {g['what']}")
        if key == "pixel_agreement" and results.get("pixel_agreement_note"):
            lines.append(f"      {results['pixel_agreement_note'][:200]}")
        for p in results["profiles"].get(key, []):
            lines.append(f"      profile: {p}")
    c = results["compile"]
    lines.append(f"torch.compile: {c.get('note') or json.dumps(c.get('cases'))}")
    return "\n".join(lines)


def _f(v: Optional[float], digits: int = 3) -> str:
    return "null" if v is None else f"{v:.{digits}f}"


if __name__ == "__main__":
    main()
