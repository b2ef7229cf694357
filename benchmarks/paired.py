"""Paired cases: two variants alternating in one process, so that their ratio is free of the spread between
processes: the SMMCL overhead (`overhead`) and the speedup of the fastest path over fp32 eager
(`train_speedup`, `infer_speedup`)."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Callable

from cases import Case
from steps import infer_call, train_step
from timing import peak_rss_mb


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
