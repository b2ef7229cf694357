"""The printed output: a progress line per case as it finishes, and the final report's tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from machine import contended


def progress_line(e: dict) -> str:
    if "error" in e:
        return f"  {e['name']:<46} ERROR {e['error'][:200]}"
    if e["kind"] == "overhead" or e["kind"].endswith("_speedup"):
        return f"  {e['name']:<46} {paired_result(e)}  ({e['wall_s']:.0f} s wall)"
    if e["kind"] == "agreement":
        return f"  {e['name']:<46} " + ", ".join(f"agreement {v['pixel_agreement']:.5f}" for v in e["paths"].values()) + f"  ({e['wall_s']:.0f} s wall)"
    extra = f"  compile {e['compile_s']:.0f} s" if "compile_s" in e else ""
    rss = f"  peak RSS {e['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in e else ""
    busy = f"  CONTENDED: other processes used {e['foreign_load_cores']:.2f} cores" if contended(e) else ""
    return f"  {e['name']:<46} {e['median_s']:8.3f} s{rss}{extra}  ({e['wall_s']:.0f} s wall){busy}"


# --- the printed report ----------------------------------------------------------------------------------


PAIRED_SECTIONS = (
    ("overhead", "SMMCL overhead (Base and SMMCL steps alternating on one model, fp32 eager)"),
    ("pairs", "Speedups (fp32 eager and the fastest path alternating in one process)"),
)


def paired_result(e: dict) -> str:
    """The two medians and their ratio of an overhead or speedup case."""
    if e["kind"] == "overhead":
        return f"Base {e['base_median_s']:.3f} s, SMMCL {e['smmcl_median_s']:.3f} s: x{e['overhead']:.3f}"
    return f"fp32 {e['fp32_median_s']:.3f} s, {e['path']} {e['median_s']:.3f} s: x{e['speedup']:.2f}"


def paired_lines(measured: Sequence[dict]) -> list[str]:
    lines = []
    for group, title in PAIRED_SECTIONS:
        entries = [e for e in measured if e.get("group") == group]
        if not entries:
            continue
        lines.append(title)
        for e in entries:
            result = f"ERROR: {e['error'][:120]}" if "error" in e else paired_result(e)
            lines.append(f"  {e['name']:<46} {result}")
        lines.append("")
    return lines


def format_report(results: dict, measured: Sequence[dict]) -> str:
    """The report's tables; `measured`: the cases' entries in the order they ran."""
    lines = []
    header = f"{'case':<46} {'median s':>9} {'min s':>8} {'max s':>8} {'img/s':>7} {'peak RSS MB':>11} {'RSS +MB':>8}  note"
    for group, title in (("train", "Training step"), ("infer", "Inference"), ("scale", "Scaling (lead model, SMMCL, fp32 eager)")):
        if group == "infer":
            lines += paired_lines(measured)
        entries = [e for e in measured if e.get("group") == group]
        if not entries:
            continue
        lines += [title, header, "-" * len(header)]
        for e in entries:
            if "error" in e:
                lines.append(f"{e['name']:<46} {'-':>9}  ERROR: {e['error'][:120]}")
                continue
            note = f"compile {e['compile_s']:.0f} s" if "compile_s" in e else ""
            if "excluded" in e:
                note += f" (not a candidate: {e['excluded']})"
            if contended(e):
                note += f" CONTENDED ({e['foreign_load_cores']:.2f} other cores)"
            rss = f"{e['peak_rss_mb']:>11.0f} {e['rss_growth_mb']:>8.0f}" if "peak_rss_mb" in e else f"{'-':>11} {'-':>8}"
            lines.append(f"{e['name']:<46} {e['median_s']:>9.3f} {e['min_s']:>8.3f} {e['max_s']:>8.3f} {e['images_per_s']:>7.2f} {rss}  {note}")
        lines.append("")
    lines.append("Per model")
    for model, s in results["models"].items():
        t, i = s["train"], s["infer"]
        lines.append(
            f"  {model:<11} train: fp32 {_f(t['smmcl_fp32_s'])} s, fastest {t['fastest_path']} {_f(t['smmcl_fastest_s'])} s "
            f"(x{_f(t['speedup'], 2)}; paired x{_f(t.get('speedup_paired'), 2)}); SMMCL/Base {_f(t.get('smmcl_overhead_paired'))} paired | "
            f"infer: fp32 {_f(i['fp32_s'])} s, fastest {i['fastest_path']} {_f(i['fastest_s'])} s (x{_f(i['speedup'], 2)}; paired x{_f(i.get('speedup_paired'), 2)})"
        )
    if results["agreement"] and "test_images" in results["agreement"]:
        a = results["agreement"]
        lines.append(f"Pixel agreement with fp32 eager ({a['test_images']} demo test images {a['image_size'][0]}x{a['image_size'][1]}, "
                     f"{Path(a['weights']).name}; fp32 pixel accuracy {a['fp32_pixel_accuracy']:.4f})")
        for p, v in a["paths"].items():
            if "error" in v:
                lines.append(f"  {p:<14} ERROR {v['error'][:150]}")
                continue
            lines.append(f"  {p:<14} {v['pixel_agreement']:.5f} ({v['differing_pixels']} pixels differ; accuracy {v['pixel_accuracy']:.4f})")
    elif results.get("pixel_agreement_note"):
        lines.append(f"Pixel agreement: {results['pixel_agreement_note']}")
    lines.append("")
    lead = results["lead_model"]
    lines.append(f"Goals ({lead}; fastest train path {results['fastest_train_path']}, fastest inference path {results['fastest_infer_path']})")
    for key, g in results["goals"].items():
        lines.append(f"  {key:<16} {_f(g['value']):>8}  target {g['target']:<8} {g['status']:<5} {g['what']}")
        if key == "pixel_agreement" and results.get("pixel_agreement_note"):
            lines.append(f"      {results['pixel_agreement_note'][:200]}")
        for p in results["profiles"].get(key, []):
            lines.append(f"      profile: {p}")
    c = results["compile"]
    lines.append(f"torch.compile: {c.get('note') or json.dumps(c.get('cases'))}")
    return "\n".join(lines)


def _f(v: Optional[float], digits: int = 3) -> str:
    return "null" if v is None else f"{v:.{digits}f}"
