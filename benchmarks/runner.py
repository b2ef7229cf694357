"""Running the cases: each in a fresh subprocess (`run.py --worker`) with a timeout, or in this process for
--quick, after waiting for the machine to go quiet; every result is kept and printed as it comes."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from cases import Case
from machine import ForeignLoad, wait_for_idle
from plan import HERE, ROOT
from report import progress_line


def run_isolated(case: Case, timeout: float) -> dict:
    """Run `case` in a fresh interpreter; returns its measurements, or {"error": ...}."""
    with tempfile.TemporaryDirectory() as tmp:
        case_file, result_file = Path(tmp) / "case.json", Path(tmp) / "result.json"
        case_file.write_text(json.dumps(case.to_json()))
        cmd = [sys.executable, str(HERE / "run.py"), "--worker", str(case_file), str(result_file)]
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
    from worker import run_case

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
