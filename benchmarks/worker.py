"""The worker process of one case (`run.py --worker CASE_FILE RESULT_FILE`): measures the case described in
CASE_FILE with the runner of its kind and writes the measurements to RESULT_FILE as JSON."""

from __future__ import annotations

import faulthandler
import json
import os
from pathlib import Path
from typing import Callable

import torch

from agreement import run_agreement
from cases import Case
from paired import run_overhead, run_speedup
from steps import run_infer, run_train


RUNNERS: dict[str, Callable[[Case], dict]] = {
    "train": run_train, "overhead": run_overhead, "infer": run_infer, "agreement": run_agreement,
    "train_speedup": run_speedup, "infer_speedup": run_speedup,
}


def run_case(case: Case) -> dict:
    torch.set_num_threads(case.threads)
    return RUNNERS[case.kind](case)


def worker_main(case_file: str, result_file: str) -> None:
    case = Case.from_json(json.loads(Path(case_file).read_text()))
    deadline = float(os.environ.get("BENCH_DEADLINE_S", "0"))
    if deadline > 10:
        # Print every thread's stack shortly before the parent gives up on this case, so a hang says where.
        faulthandler.dump_traceback_later(deadline - 5, exit=True)
    Path(result_file).write_text(json.dumps(run_case(case)))
