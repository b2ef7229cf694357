"""Why fp32 eager PyTorch inference of MSCAN-B + LightHam (480x640, batch 1, 2 threads) swings up to 2x between
runs and within a run on a 2-core CPU: each condition below changes one suspect (allocator, oneDNN primitive
cache, thread placement, thread count) and runs in its own fresh process, since most of them are environment
variables read at process start. Per call it records the wall time beside what could explain it: page faults,
own CPU time, involuntary context switches, the CPU time other processes (and the hypervisor, as steal) took
meanwhile, and RSS. Rounds interleave the conditions so that a change in the machine's load hits them alike.

    python benchmarks/eager_swing.py [--quick] [--rounds R] [--calls N] [--size HxW] [--out PATH] [--conditions a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BIG = str(16 * 2**30)
# One suspect each. MALLOC_ARENA_MAX is left as it is everywhere: the question is glibc's mmap/trim of the large
# activation buffers, which otherwise are unmapped after each call and page-faulted in again the next.
CONDITIONS = {
    "default": dict(),
    "malloc-no-trim": dict(env={"MALLOC_MMAP_THRESHOLD_": BIG, "MALLOC_TRIM_THRESHOLD_": BIG}),
    # smmcl's own remedy (smmcl.memory.keep_freed_memory, what its commands do): mallopt called in the process.
    "smmcl-keep-memory": dict(call="keep_freed_memory"),
    "jemalloc": dict(preload="jemalloc"),
    "tcmalloc": dict(preload="tcmalloc"),
    "onednn-cache-off": dict(env={"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "0"}),
    "pinned": dict(env={"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}, taskset=True),
    # Not in the original list: libgomp's idle threads spin before they sleep, and a thread spinning at a barrier
    # while its partner is descheduled by a foreign process would waste the one core this process gets.
    # Passive waiting sleeps at once, which tests that suspect with 2 threads kept.
    "omp-passive": dict(env={"OMP_WAIT_POLICY": "PASSIVE"}),
    # With 1 thread a second core kept busy by another process costs far less than with 2 threads that
    # wait for each other at every parallel region's barrier.
    "one-thread": dict(threads=1),
}
FULL = dict(rounds=3, calls=20, warmup=3, size=(480, 640), timeout=600.0)
# Warm-up 2, not 3: the third warm-up call of MSCAN-B costs seconds and the smoke run should stay near 2 minutes.
QUICK = dict(rounds=1, calls=6, warmup=2, size=(240, 320), timeout=120.0)
PRELOAD_GLOBS = {"jemalloc": "libjemalloc.so*", "tcmalloc": "libtcmalloc*.so*"}


def find_preload(kind: str) -> str | None:
    """The first shared library of the allocator `kind` in the system's library folder or this venv's packages."""
    roots = [Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib64"), Path("/usr/local/lib")]
    hits = [p for r in roots if r.is_dir() for p in sorted(r.glob(PRELOAD_GLOBS[kind]))]
    site = Path(sysconfig.get_paths()["platlib"])
    hits += sorted(site.rglob(PRELOAD_GLOBS[kind])) if site.is_dir() else []
    return str(hits[0]) if hits else None


def proc_stat() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat's first line."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in open("/proc/stat").readline().split()[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, steal / tick


def run_delay() -> float:
    """Seconds this process's threads have spent runnable but waiting for a CPU (the scheduler's run delay)."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError):  # a thread that ended meanwhile
            pass
    return total / 1e9


def child(spec: dict) -> dict:
    """Build the model, warm it up and time its calls, each with the counters that might explain its time."""
    import torch

    from realtime_models import train_overrides
    from realtime_settings import DEMO_CONFIG
    from smmcl.config import load_config
    from smmcl.models import build_model
    from timing import current_rss_mb

    if spec.get("call") == "keep_freed_memory":
        from smmcl.memory import keep_freed_memory

        if not keep_freed_memory():
            raise RuntimeError("smmcl.memory.keep_freed_memory() did not take effect here")
    torch.manual_seed(0)
    torch.set_num_threads(spec["threads"])
    cfg = load_config(DEMO_CONFIG, train_overrides("B", 1, Path("unused")), dataset_meta=False)
    model = build_model(cfg.model).eval()
    rgb, aux = torch.randn(1, 3, *spec["size"]), torch.randn(1, 3, *spec["size"])
    rows = []
    with torch.inference_mode():
        for i in range(spec["warmup"] + spec["calls"]):
            r0, (busy0, steal0), d0 = resource.getrusage(resource.RUSAGE_SELF), proc_stat(), run_delay()
            t0 = time.perf_counter()
            model(rgb, aux)
            wall = time.perf_counter() - t0
            (busy1, steal1), d1, r1 = proc_stat(), run_delay(), resource.getrusage(resource.RUSAGE_SELF)
            own = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
            rows.append({"warmup": i < spec["warmup"], "seconds": wall, "minflt": r1.ru_minflt - r0.ru_minflt,
                         "majflt": r1.ru_majflt - r0.ru_majflt, "own_cpu_s": own,
                         "invol_switches": r1.ru_nivcsw - r0.ru_nivcsw,
                         "other_load_cores": max(0.0, (busy1 - busy0 - own) / wall),
                         "steal_cores": (steal1 - steal0) / wall, "run_wait_cores": (d1 - d0) / wall, "rss_mb": current_rss_mb()})
    maps = Path("/proc/self/maps").read_text()
    return {"threads": torch.get_num_threads(), "rows": rows,
            "allocator_loaded": {k: f"lib{k}" in maps for k in PRELOAD_GLOBS}}


def run_child(name: str, settings: dict, timeout: float) -> dict:
    """One condition in a fresh process: its rows, or the reason there are none (absent allocator, crash, timeout)."""
    cond = CONDITIONS[name]
    env = {**os.environ, **cond.get("env", {})}
    prefix: list[str] = []
    if cond.get("preload"):
        lib = find_preload(cond["preload"])
        if lib is None:
            return {"error": f"not available: no {PRELOAD_GLOBS[cond['preload']]} on this system or in the venv"}
        env["LD_PRELOAD"] = " ".join(filter(None, [lib, env.get("LD_PRELOAD")]))
    threads = cond.get("threads", 2)
    if cond.get("taskset") and shutil.which("taskset"):
        prefix = ["taskset", "-c", ",".join(map(str, sorted(os.sched_getaffinity(0))[:threads]))]
    spec = {"threads": threads, "size": settings["size"], "calls": settings["calls"], "warmup": settings["warmup"],
            "call": cond.get("call")}
    command = [*prefix, sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    meta = {"command": command, "env": cond.get("env", {}), "ld_preload": env.get("LD_PRELOAD")}
    t0 = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**meta, "error": f"timed out after {timeout:.0f} s"}
    meta["process_seconds"] = round(time.perf_counter() - t0, 1)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {**meta, "error": f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"}
    return {**meta, **json.loads(lines[-1])}


def spearman(x: list[float], y: list[float]) -> float | None:
    """Rank correlation (ties broken by order: the counters here rarely tie), None where it is undefined."""
    import numpy as np

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    rank = lambda v: np.argsort(np.argsort(np.asarray(v, dtype=float)))  # noqa: E731
    return float(np.corrcoef(rank(x), rank(y))[0, 1])


def summarize(runs: dict[str, list[dict]]) -> tuple[dict, dict]:
    """Per condition: the spread of its timed calls and the medians of their counters; and the correlations of
    time with page faults and with other load, pooled over all calls and within each condition (time divided
    by its condition's median, so that a condition's own level does not pass for a correlation)."""
    per, pooled = {}, {"seconds": [], "relative": [], "faults": [], "other": [], "steal": [], "invol": [], "wait": []}
    for name, children in runs.items():
        ok = [c for c in children if "rows" in c]
        rows = [r for c in ok for r in c["rows"] if not r["warmup"]]
        if not rows:
            per[name] = {"error": next((c["error"] for c in children if "error" in c), "no calls")}
            continue
        t = sorted(r["seconds"] for r in rows)
        med = statistics.median(t)
        child_medians = [statistics.median(r["seconds"] for r in c["rows"] if not r["warmup"]) for c in ok]
        per[name] = {
            "calls": len(t), "median_s": med, "min_s": t[0], "max_s": t[-1],
            "p90_s": t[min(len(t) - 1, int(round(0.9 * (len(t) - 1))))], "max_over_min": t[-1] / t[0],
            "cv": statistics.pstdev(t) / statistics.mean(t),
            "between_runs_max_over_min": max(child_medians) / min(child_medians),
            "median_page_faults": statistics.median(r["minflt"] + r["majflt"] for r in rows),
            "median_major_faults": statistics.median(r["majflt"] for r in rows),
            "median_other_load_cores": statistics.median(r["other_load_cores"] for r in rows),
            "median_steal_cores": statistics.median(r["steal_cores"] for r in rows),
            "median_run_wait_cores": statistics.median(r["run_wait_cores"] for r in rows),
            "median_invol_switches": statistics.median(r["invol_switches"] for r in rows),
            "median_cpu_per_wall": statistics.median(r["own_cpu_s"] / r["seconds"] for r in rows),
            "median_rss_mb": statistics.median(r["rss_mb"] for r in rows),
            "allocator_loaded": ok[0].get("allocator_loaded"),
        }
        for r in rows:
            for key, value in (("seconds", r["seconds"]), ("relative", r["seconds"] / med),
                               ("faults", r["minflt"] + r["majflt"]), ("other", r["other_load_cores"]),
                               ("steal", r["steal_cores"]), ("invol", r["invol_switches"]),
                               ("wait", r["run_wait_cores"])):
                pooled[key].append(value)
    corr = {f"{time_key}_vs_{factor}": spearman(pooled[time_key], pooled[factor])
            for time_key in ("seconds", "relative") for factor in ("faults", "other", "steal", "invol", "wait")}
    corr["calls"] = len(pooled["seconds"])
    slow = [i for i, v in enumerate(pooled["relative"]) if v > 1.25]
    rest = [i for i, v in enumerate(pooled["relative"]) if v <= 1.25]
    for group, idx in (("slow", slow), ("rest", rest)):
        corr[f"{group}_calls"] = {"n": len(idx), **{k: statistics.median(pooled[k][i] for i in idx) if idx else None
                                                    for k in ("other", "steal", "faults", "invol", "wait")}}
    return per, corr


def fmt(v, spec=".2f") -> str:
    return "-" if v is None else format(v, spec)


def report(per: dict, corr: dict) -> list[str]:
    """The table and one line per factor, every word of it computed from the numbers."""
    head = f"{'condition':<17}{'median':>8}{'min':>7}{'max':>7}{'p90':>7}{'max/min':>8}{'cv':>6}{'runs':>6}" \
           f"{'faults':>9}{'other':>7}{'steal':>7}{'wait':>6}{'invcs':>7}{'cpu/wall':>9}{'rss MB':>8}"
    lines = [head]
    for name, s in per.items():
        if "error" in s:
            lines.append(f"{name:<17}{s['error'][:110]}")
            continue
        lines.append(f"{name:<17}{s['median_s']:>8.3f}{s['min_s']:>7.3f}{s['max_s']:>7.3f}{s['p90_s']:>7.3f}"
                     f"{s['max_over_min']:>8.2f}{s['cv']:>6.2f}{s['between_runs_max_over_min']:>6.2f}"
                     f"{s['median_page_faults']:>9.0f}{s['median_other_load_cores']:>7.2f}"
                     f"{s['median_steal_cores']:>7.2f}{s['median_run_wait_cores']:>6.2f}{s['median_invol_switches']:>7.0f}"
                     f"{s['median_cpu_per_wall']:>9.2f}{s['median_rss_mb']:>8.0f}")
    lines.append("(seconds per call; runs: max/min of the per-process medians; faults: minor+major per call; other/"
                 "steal: cores other processes / the hypervisor took during the call (on a saturated machine other "
                 "= cores - own cpu/wall by construction); wait: this process's threads runnable but not running, in "
                 "cores; invcs: involuntary context switches per call)")
    base = per.get("default", {})
    for name, s in per.items():
        if name == "default" or "error" in s or "error" in base or not base:
            continue
        lines.append(f"{name}: median x{s['median_s'] / base['median_s']:.2f} of default "
                     f"({base['median_s']:.3f} -> {s['median_s']:.3f} s), max/min {base['max_over_min']:.2f} -> "
                     f"{s['max_over_min']:.2f}, page faults per call {base['median_page_faults']:.0f} -> "
                     f"{s['median_page_faults']:.0f}, run-queue wait {base['median_run_wait_cores']:.2f} -> "
                     f"{s['median_run_wait_cores']:.2f} cores, cpu/wall {base['median_cpu_per_wall']:.2f} -> "
                     f"{s['median_cpu_per_wall']:.2f}, other load {base['median_other_load_cores']:.2f} -> "
                     f"{s['median_other_load_cores']:.2f} cores")
    lines.append(f"time vs page faults: Spearman {fmt(corr['seconds_vs_faults'])} pooled, "
                 f"{fmt(corr['relative_vs_faults'])} within conditions ({corr['calls']} calls)")
    lines.append(f"time vs other load: Spearman {fmt(corr['seconds_vs_other'])} pooled, "
                 f"{fmt(corr['relative_vs_other'])} within conditions; vs run-queue wait {fmt(corr['relative_vs_wait'])}, vs steal {fmt(corr['relative_vs_steal'])}, "
                 f"vs involuntary switches {fmt(corr['relative_vs_invol'])} within conditions")
    s, r = corr["slow_calls"], corr["rest_calls"]
    lines.append(f"calls over 1.25x their condition's median: {s['n']} of {s['n'] + r['n']}; their median other load "
                 f"{fmt(s['other'])} vs {fmt(r['other'])} cores, steal {fmt(s['steal'])} vs {fmt(r['steal'])}, "
                 f"page faults {fmt(s['faults'], '.0f')} vs {fmt(r['faults'], '.0f')}, "
                 f"run-queue wait {fmt(s['wait'])} vs {fmt(r['wait'])} cores, "
                 f"involuntary switches {fmt(s['invol'], '.0f')} vs {fmt(r['invol'], '.0f')}")
    return lines


def measure(names: list[str], settings: dict, runs: dict[str, list[dict]]) -> None:
    """Every condition once per round, the order rotated each round, into `runs`."""
    for r in range(settings["rounds"]):
        for name in names[r % len(names):] + names[:r % len(names)]:
            result = {"round": r, **run_child(name, settings, settings["timeout"])}
            runs[name].append(result)
            times = [row["seconds"] for row in result.get("rows", []) if not row["warmup"]]
            print(f"round {r + 1}/{settings['rounds']} {name:<17}"
                  + (f"median {statistics.median(times):.3f} s over {len(times)} calls" if times
                     else result["error"].splitlines()[-1][:150]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 6 calls at 240x320")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--calls", type=int)
    parser.add_argument("--size", help="HxW, e.g. 480x640")
    parser.add_argument("--out", type=Path, default=HERE / "results_eager_swing.json")
    parser.add_argument("--conditions", help=f"comma-separated subset of: {', '.join(CONDITIONS)}")
    parser.add_argument("--background-load", type=int, default=0, metavar="N",
                        help="keep N busy-looping processes running throughout (a robot's other work, reproducibly)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in (("rounds", args.rounds), ("calls", args.calls)) if v is not None})
    if args.size:
        settings["size"] = tuple(int(v) for v in args.size.lower().split("x"))
    names = args.conditions.split(",") if args.conditions else list(CONDITIONS)
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        parser.error(f"unknown conditions {unknown}; known: {', '.join(CONDITIONS)}")

    import torch
    from machine import cpu_info

    runs: dict[str, list[dict]] = {n: [] for n in names}
    t0 = time.perf_counter()
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.background_load)]
    try:
        measure(names, settings, runs)
    finally:
        for proc in load:
            proc.kill()
    per, corr = summarize(runs)
    lines = report(per, corr)
    print("\n".join(["", *lines]))
    inherited = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "OMP_", "KMP_", "LD_PRELOAD",
                                                                      "ONEDNN_", "DNNL_", "MKL_"))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join(sys.argv), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": "MSCAN-B + LightHam, random weights, batch 1, fp32 eager, torch.inference_mode",
        "settings": settings, "background_load_processes": args.background_load, "cpu": cpu_info(),
        "torch": torch.__version__, "inherited_env": inherited,
        "seconds": round(time.perf_counter() - t0, 1), "summary": per, "correlations": corr, "report": lines,
        "runs": runs}, indent=1) + "\n")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
