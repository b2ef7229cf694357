"""This machine: its CPU, and the CPU use of other processes (the machine is shared; 2 threads on 2 busy cores
are many times slower), which the runner waits out before a case and records during it."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path


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


CONTENDED = 0.2  # cores used by other processes during a case above which its timings are flagged


def contended(e: dict) -> bool:
    return e.get("foreign_load_cores", 0.0) > CONTENDED
