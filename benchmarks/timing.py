"""Clocks and memory of a benchmark case: timed calls, the process's RSS, the summary of one case's times and
a torch.profiler table of its calls."""

from __future__ import annotations

import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from cases import Case


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


def summarize(case: Case, warm: list[float], times: list[float], setup_s: float, rss_before: float) -> dict:
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
