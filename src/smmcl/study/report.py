"""A study's results: `results.json` (every run, mean / std, paired deltas with 95% CIs), `results.md`
(a table like the paper's Tables 5-6, per-class deltas) and `results.png` (scores and paired deltas)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from smmcl.config import Config
from smmcl.data.classes import class_names
from smmcl.outputs import read_manifest, record
from smmcl.study.imports import config_digest
from smmcl.study.spec import StudySpec
from smmcl.study.stats import mean_std, paired_difference, verdict


def _finite(x) -> Optional[float]:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _run_entry(record: dict) -> dict:
    summary = record.get("summary") or {}
    return {
        "miou": record["miou"], "miou_all": record.get("miou_all"), "pixel_acc": record.get("pixel_acc"),
        "mean_acc": record.get("mean_acc"), "iou": [_finite(v) for v in record.get("iou", [])],
        "iterations": record.get("iterations"), "train_seconds": record.get("train_seconds"),
        "contrast_zero_fraction": summary.get("contrast_zero_fraction"),
        "classes_per_step": summary.get("classes"), "rows_per_step": summary.get("rows"),
        "grad_ratio": summary.get("grad_ratio"), "grad_cos": summary.get("grad_cos"),
        "warnings": summary.get("warnings") or [],
        **({"retrieval_top1": summary["retrieval_top1"]} if summary.get("retrieval_top1") is not None else {}),
        **({"test_miou": summary["test_miou"]} if summary.get("test_miou") else {}),
        **({"imported_from": record["imported_from"]} if record.get("imported_from") else {}),
        **({"config_digest": config_digest(record["config"])} if record.get("config") else {}),
    }


def summarize_trajectory(runs: Mapping[int, dict], reference: Mapping[int, dict]) -> List[dict]:
    """Per logged step that every run has (`train.test_every`): test mIoU mean and std over the seeds and, when
    `reference` holds runs, the paired difference from it (mean and 95% CI over the seeds both have)."""
    per_seed = {s: {int(step): v for step, v in r["test_miou"]} for s, r in runs.items() if r.get("test_miou")}
    ref_seed = {s: {int(step): v for step, v in r["test_miou"]} for s, r in reference.items() if r.get("test_miou")}
    if not per_seed:
        return []
    steps = sorted(set.intersection(*(set(t) for t in per_seed.values())))
    rows = []
    for step in steps:
        mean, std = mean_std([t[step] for t in per_seed.values()])
        row = {"step": step, "mean": mean, "std": std, "n": len(per_seed)}
        theirs = {s: t[step] for s, t in ref_seed.items() if step in t}
        if theirs:
            d = paired_difference({s: t[step] for s, t in per_seed.items()}, theirs)
            row.update(delta_mean=d["delta_mean"], delta_ci95=d["delta_ci95"])
        rows.append(row)
    return rows


def summarize_study(spec: StudySpec, records: Mapping[str, Mapping[int, dict]], class_names: List[str]) -> dict:
    """Per variant: every run's scores, mean and std of mIoU; against the reference, the paired mIoU
    difference (mean, std, 95% CI) and the mean paired difference of every class's IoU."""
    ref = {s: r["miou"] for s, r in records.get(spec.reference, {}).items()}
    variants: Dict[str, dict] = {}
    for name, overrides in spec.variants.items():
        runs = {s: _run_entry(r) for s, r in sorted(records.get(name, {}).items())}
        entry: dict = {"overrides": list(overrides), "runs": runs, "n": len(runs)}
        if runs:
            mean, std = mean_std([r["miou"] for r in runs.values()])
            # One seed has no spread: null, not 0 (trial 16 #133: "+- 0.00 (1 seeds)" claimed one).
            entry.update(miou_mean=mean, miou_std=std if len(runs) > 1 else None)
            zeros = [r["contrast_zero_fraction"] for r in runs.values() if r["contrast_zero_fraction"] is not None]
            entry["contrast_zero_fraction"] = sum(zeros) / len(zeros) if zeros else None
            classes = [r["classes_per_step"] for r in runs.values() if r["classes_per_step"] is not None]
            entry["classes_per_step"] = sum(classes) / len(classes) if classes else None
            retrieval = [r["retrieval_top1"] for r in runs.values() if r.get("retrieval_top1") is not None]
            if retrieval:
                entry["retrieval_top1"] = sum(retrieval) / len(retrieval)
            trajectory = summarize_trajectory(runs, {} if name == spec.reference else
                                              {s: _run_entry(r) for s, r in records.get(spec.reference, {}).items()})
            if trajectory:
                entry["trajectory"] = trajectory
        if name != spec.reference and runs:
            paired = paired_difference({s: r["miou"] for s, r in runs.items()}, ref)
            entry.update({k: paired[k] for k in ("delta_mean", "delta_std", "delta_ci95")})
            entry["paired_seeds"] = paired["seeds"]
            entry["verdict"] = verdict(paired["delta_ci95"])
            per_class = {}
            for k, cls in enumerate(class_names):
                mine = {s: r["iou"][k] for s, r in runs.items() if k < len(r["iou"]) and r["iou"][k] is not None}
                theirs = {s: records[spec.reference][s]["iou"][k] for s in mine
                          if s in records.get(spec.reference, {}) and _finite(records[spec.reference][s]["iou"][k]) is not None}
                d = paired_difference(mine, theirs)
                per_class[cls] = d["delta_mean"]
            entry["per_class_delta"] = per_class
        variants[name] = entry
    return {"reference": spec.reference, "seeds": list(spec.seeds), "metric": "miou", "variants": variants}


def _pct(x: Optional[float], signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def _share(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def format_markdown(results: dict, spec: StudySpec, study_path: str, cfg: Config) -> str:
    """The results page: setup, the main table, per-class deltas."""
    ref = results["reference"]
    excluded = [cfg.data.class_names[k] for k in cfg.eval.exclude_classes if k < len(cfg.data.class_names)]
    lines = [f"# Study `{study_path}`", ""]
    non_paper = results.get("non_paper")
    if non_paper:
        lines += [f"**{non_paper['headline']}.**", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    lines += [
        f"- base config `{spec.base}`; overrides for every variant: `{' '.join(spec.overrides) or '-'}`",
        f"- seeds {', '.join(map(str, spec.seeds))}; scores on the `{results['split']}` split "
        f"({results['num_images']} images), mIoU in %{' without ' + ', '.join(excluded) if excluded else ''}, "
        f"the last checkpoint of every run (none is picked on a score)",
        f"- delta: the paired (same-seed) difference from `{ref}`; CI: 95% t interval of its mean over the seeds",
    ]
    imported = sorted({r["imported_from"] for v in results["variants"].values() for r in v["runs"].values()
                       if r.get("imported_from")})
    if imported:
        count = sum(1 for v in results["variants"].values() for r in v["runs"].values() if r.get("imported_from"))
        lines.append(f"- {count} of the runs were imported from {', '.join(f'`{p}`' for p in imported)} "
                     f"(trained by an earlier run of this study; `smmcl study --import`)")
    if results.get("runs_finished", 0) < results.get("runs_planned", 0):
        lines.append(f"- **partial**: {results['runs_finished']} of {results['runs_planned']} runs have finished; "
                     f"the table holds those only")
    if non_paper and non_paper["variants"]:
        lines += ["- non-paper choices of single variants: " + "; ".join(
            f"`{name}`: {', '.join(items)}" for name, items in non_paper["variants"].items())]
    retrieval = any(v.get("retrieval_top1") is not None for v in results["variants"].values())
    lines += [
        "",
        f"Scores of `{study_path}`" + (f". {non_paper['headline']}:" if non_paper else ":"),
        "",
        "| variant | overrides | mIoU mean ± std | per seed | delta vs " + ref + " | 95% CI | verdict | zero-contrast steps | classes / step |"
        + (" [36] positive retrieved top-1 |" if retrieval else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if retrieval else ""),
    ]
    for name, v in results["variants"].items():
        if not v["runs"]:
            lines.append(f"| {name} | `{' '.join(v['overrides']) or '-'}` | not run yet | | | | | | |")
            continue
        seeds = " / ".join(_pct(r["miou"]) for r in v["runs"].values())
        ci = v.get("delta_ci95")
        zero = v.get("contrast_zero_fraction")
        classes = v.get("classes_per_step")
        lines.append(
            f"| {name} | `{' '.join(v['overrides']) or '-'}` | {_pct(v['miou_mean']) + (' ± ' + _pct(v['miou_std']) if v['n'] > 1 else '')} | {seeds} | "
            f"{_pct(v.get('delta_mean'), True) if name != ref else 'reference'} | "
            f"{'[' + _pct(ci[0], True) + ', ' + _pct(ci[1], True) + ']' if ci else '-'} | {v.get('verdict', '-')} | "
            f"{'-' if zero is None else f'{100 * zero:.0f}%'} | {'-' if classes is None else f'{classes:.1f}'} |"
            + (f" {_share(v.get('retrieval_top1'))} |" if retrieval else "")
        )
    others = [n for n, v in results["variants"].items() if n != ref and v.get("per_class_delta")]
    if others:
        lines += ["", f"Per-class IoU, mean paired difference from `{ref}` (points):", "",
                  "| class | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
        for k, cls in enumerate(cfg.data.class_names):
            if k in cfg.eval.exclude_classes:
                continue
            lines.append(f"| {cls} | " + " | ".join(_pct(results['variants'][n]['per_class_delta'].get(cls), True) for n in others) + " |")
    lines += format_trajectory(results)
    warned = sorted({w for v in results["variants"].values() for r in v["runs"].values() for w in r["warnings"]})
    if warned:
        lines += ["", "Warnings from the runs:", ""] + [f"- {w}" for w in warned]
    lines += ["", "![scores and paired deltas](results.png)", ""]
    return "\n".join(lines)


def format_trajectory(results: dict) -> List[str]:
    """The table of test mIoU during training (`train.test_every`), when the runs logged it."""
    ref = results["reference"]
    tracked = [n for n, v in results["variants"].items() if v.get("trajectory")]
    if not tracked:
        return []
    names = [ref] + [n for n in tracked if n != ref] if ref in tracked else tracked
    steps = sorted({row["step"] for n in names for row in results["variants"][n]["trajectory"]})
    at = {n: {row["step"]: row for row in results["variants"][n]["trajectory"]} for n in names}
    lines = ["", "Test mIoU during training (`train.test_every`; mean over the seeds, paired difference from "
             f"`{ref}` with its 95% CI). Monitoring only: no checkpoint or setting was chosen by it.", "",
             "| iteration | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for step in steps:
        cells = []
        for n in names:
            row = at[n].get(step)
            if row is None:
                cells.append("-")
                continue
            cell = _pct(row["mean"]) + (f" ± {_pct(row['std'])}" if row["n"] > 1 else "")
            if row.get("delta_mean") is not None:
                ci = row.get("delta_ci95")
                cell += f" ({_pct(row['delta_mean'], True)}" + (f" [{_pct(ci[0], True)}, {_pct(ci[1], True)}])" if ci else ")")
            cells.append(cell)
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines


def plot_results(results: dict, path: Path, title: str = "") -> None:
    """mIoU per variant on a 0-100 axis (mean ± std bars, one dot per seed, hollow for imported runs), the
    paired deltas with their CIs and, when the runs logged it, the test mIoU over training; `title` above all."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the study chart needs matplotlib: pip install 'smmcl[analysis]'") from None
    ref = results["reference"]
    names = [n for n, v in results["variants"].items() if v["runs"]]
    tracked = [n for n in names if results["variants"][n].get("trajectory")]
    fig, axes = plt.subplots(1, 3 if tracked else 2, figsize=(16 if tracked else 11, 4.6))
    left, right = axes[0], axes[1]
    imported_any = False
    for i, name in enumerate(names):
        v = results["variants"][name]
        left.bar(i, 100 * v["miou_mean"], yerr=100 * v["miou_std"] if v["miou_std"] is not None else None, color="#9ab" if name != ref else "#ccc",
                 edgecolor="#345", capsize=4)
        for r in v["runs"].values():
            imported = bool(r.get("imported_from"))
            imported_any |= imported
            left.scatter([i], [100 * r["miou"]], s=16, zorder=3, color="#123", facecolors="none" if imported else "#123")
    left.set_xticks(range(len(names)), names, rotation=20, ha="right")
    left.set_ylabel("mIoU (%)")
    left.set_ylim(0.0, 100.0)
    left.set_title("mIoU: mean ± std; dots = seeds" + ("\n(hollow: imported from an earlier results.json)" if imported_any else ""),
                   fontsize=9)
    deltas = [n for n in names if n != ref and results["variants"][n].get("delta_mean") is not None]
    for i, name in enumerate(deltas):
        v = results["variants"][name]
        ci = v.get("delta_ci95")
        err = None if ci is None else [[100 * (v["delta_mean"] - ci[0])], [100 * (ci[1] - v["delta_mean"])]]
        right.errorbar(i, 100 * v["delta_mean"], yerr=err, fmt="o", color="#a33" if v["delta_mean"] < 0 else "#3a3", capsize=5)
    right.axhline(0.0, color="#555", lw=1)
    right.set_xlim(-0.5, max(len(deltas), 1) - 0.5)
    right.set_xticks(range(len(deltas)), deltas, rotation=20, ha="right")
    right.set_ylabel(f"mIoU - {ref} (points)")
    right.set_title("paired difference from the reference, 95% CI", fontsize=9)
    if tracked:
        ax = axes[2]
        for name in tracked:
            rows = results["variants"][name]["trajectory"]
            steps = [r["step"] for r in rows]
            mean = [100 * r["mean"] for r in rows]
            std = [100 * r["std"] for r in rows]
            line, = ax.plot(steps, mean, marker="o", ms=3, label=name)
            ax.fill_between(steps, [m - e for m, e in zip(mean, std)], [m + e for m, e in zip(mean, std)],
                            color=line.get_color(), alpha=0.15)
        ax.set_ylim(0.0, 100.0)
        ax.set_xlabel("iteration")
        ax.set_ylabel("test mIoU (%)")
        ax.set_title("test mIoU during training (mean ± std; monitoring only)", fontsize=9)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(spec: StudySpec, study_path: str, records: Mapping[str, Mapping[int, dict]], cfg: Config, out: Path,
                  planned: Optional[int] = None, non_paper: Optional[dict] = None) -> dict:
    """Write results.json, results.md and results.png under `out`; returns the results. `planned`: the
    number of runs the study has, when some may not have finished (the page then says how many did).
    `non_paper`: the study's departures from the paper (`smmcl.study.disclosure`), named on the page, in the
    chart's title and in results.json."""
    results = summarize_study(spec, records, class_names(cfg))
    first = next((r for runs in records.values() for r in runs.values()), {})
    finished = sum(len(runs) for runs in records.values())
    results.update(study=study_path, base=spec.base, overrides=list(spec.overrides), description=spec.description,
                   split=first.get("split"), num_images=first.get("num_images"), class_names=list(cfg.data.class_names),
                   excluded=list(cfg.eval.exclude_classes), runs_finished=finished,
                   runs_planned=finished if planned is None else planned,
                   **({"non_paper": non_paper} if non_paper else {}))
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(format_markdown(results, spec, study_path, cfg))
    if any(v["runs"] for v in results["variants"].values()):
        plot_results(results, out / "results.png", title=f"{study_path}: {non_paper['headline']}" if non_paper else study_path)
    if read_manifest(out) is not None:  # the study's folder (smmcl.outputs): its files are listed once written
        record(out, [name for name in ("results.json", "results.md", "results.png") if (out / name).exists()])
    return results
