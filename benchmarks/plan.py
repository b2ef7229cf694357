"""What `make bench` measures: the settings of a full or a --quick run, the candidate paths of each model, and
the names of the cases and of their profiles."""

from __future__ import annotations

import argparse
from pathlib import Path

from cases import INFER_ONLY, MODELS, PATHS, QUICK_MODELS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


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
