"""What the measurements add up to: each model's summary, the lead model's goal figures checked against the
goals, and the state of the torch.compile candidates."""

from __future__ import annotations

import argparse
from typing import Optional

GOALS = [
    # (key, comparison, target, what it measures)
    ("smmcl_overhead", "<=", 1.05, "SMMCL step / Base step (fp32 eager, alternating in one process)"),
    ("train_speedup", ">=", 1.5, "fp32 eager train step / fastest train step"),
    ("infer_speedup", ">=", 2.0, "fp32 eager inference / fastest inference"),
    ("pixel_agreement", ">=", 0.995, "share of test pixels where the fastest inference path = fp32 eager"),
]
PIXEL_AGREEMENT_TARGET = 0.995


def ok(entry: Optional[dict]) -> bool:
    return entry is not None and "error" not in entry and "median_s" in entry


def fastest(entries: dict[str, Optional[dict]]) -> Optional[str]:
    timed = {p: e["median_s"] for p, e in entries.items() if ok(e) and "excluded" not in e}
    return min(timed, key=timed.__getitem__) if timed else None


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


def compile_status(args: argparse.Namespace, notes: dict[str, str]) -> dict:
    if args.compile == "none":
        return {"enabled": False, "note": "torch.compile candidates skipped in this run (enable with --compile lead|all; "
                "a compiled case that has not finished compiling within --compile-timeout is dropped)"}
    return {"enabled": args.compile, "timeout_s": args.compile_timeout, "cases": notes}
