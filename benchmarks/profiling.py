"""torch.profiler tables of the cases behind every missed goal (benchmarks/profiles/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from cases import Case
from plan import HERE, ROOT, infer_name, profile_file, train_name
from runner import Runner


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
