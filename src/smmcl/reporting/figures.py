"""The report's matplotlib figures: training curves, per-class IoU bars, confusion heat maps and the
auxiliary-image tile with its colour bar. Agg backend, PNGs at 100 dpi."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Mapping, Sequence

import numpy as np

from smmcl.errors import SmmclError

DPI = 100
# One colour per run, the same in every figure and on the page (matplotlib's tab10).
RUN_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
# Logged figures that are not loss terms (see `engine.step.train_step` and `engine.run_log`).
NOT_LOSS = {"step", "lr", "images_per_s", "rows", "pairs", "classes", "contrast_zero"}
TERM_TITLES = {"loss": "loss (weighted total)", "ce": "ce (cross-entropy)", "cm": "cm (cross-modal term)",
               "vis": "vis (visible-modality term)", "aux": "aux (auxiliary-modality term)"}
# Cell values are written into heat maps and delta bars only while they stay readable.
MAX_ANNOTATED = 20


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); a missing matplotlib is a clear error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SmmclError("the run report draws its figures with matplotlib, which is not installed: "
                         "pip install 'smmcl[analysis]'") from None
    return plt


def run_colour(i: int) -> str:
    return RUN_COLOURS[i % len(RUN_COLOURS)]


def plain(text: str) -> str:
    """Text shown as written: matplotlib would read `$...$` in a run or class name as mathtext."""
    return str(text).replace("$", r"\$")


def loss_terms(log: Sequence[dict]) -> List[str]:
    """Numeric loss terms of the training rows, in the order they first appear (`loss` and `ce` first)."""
    seen: List[str] = []
    for row in log:
        if "loss" not in row:
            continue
        for key, value in row.items():
            if (key not in seen and key not in NOT_LOSS and not key.startswith(("grad_", "val_"))
                    and isinstance(value, (int, float)) and not isinstance(value, bool)):
                seen.append(key)
    first = [k for k in ("loss", "ce") if k in seen]
    return first + [k for k in seen if k not in first]


def series(log: Sequence[dict], key: str) -> tuple[list, list]:
    """Steps and values of one logged key (training or validation rows alike)."""
    rows = [r for r in log if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    return [r["step"] for r in rows], [float(r[key]) for r in rows]


def training_curves(logs: Mapping[str, Sequence[dict]], path: Path) -> dict:
    """Every loss term, the learning rate and validation mIoU against iterations, runs overlaid.
    Returns what was drawn: the panel keys and whether any run was validated."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    names = list(logs)
    terms: List[str] = []
    for log in logs.values():
        terms += [t for t in loss_terms(log) if t not in terms]
    validated = any(series(log, "val_miou")[0] for log in logs.values())
    panels = terms + ["lr"] + (["val_miou"] if validated else [])
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 2.9 * rows + 0.4), squeeze=False)
    for ax, key in zip(axes.flat, panels):
        absent = []
        for i, (name, log) in enumerate(logs.items()):
            steps, values = series(log, key)
            if not steps:
                absent.append(name)
                continue
            scale = 100.0 if key == "val_miou" else 1.0
            # The reference widest and underneath: a run that follows it exactly (same lr schedule) still
            # shows both lines.
            ax.plot(steps, [scale * v for v in values], color=run_colour(i), lw=2.6 if i == 0 and len(names) > 1 else 1.3,
                    zorder=2 + i, marker="o" if key == "val_miou" else None, ms=3)
            # A resume with a changed config is recorded in the log: mark where it happened.
            for row in log:
                if "config_change" in row:
                    ax.axvline(row["step"], color=run_colour(i), ls=":", lw=1)
        title = {"lr": "learning rate", "val_miou": "validation mIoU (%)"}.get(key, TERM_TITLES.get(key, key))
        ax.set_title(plain(title), fontsize=10)
        # e.g. Base logs no contrastive terms: its weights are 0 and the projectors are not run.
        missing = f" (not logged by {', '.join(absent)})" if absent and len(absent) < len(names) else ""
        ax.set_xlabel(plain("iteration" + missing), fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    top = 1.0
    if len(names) > 1:
        handles = [plt.Line2D([], [], color=run_colour(i), lw=2, label=plain(n)) for i, n in enumerate(names)]
        fig.legend(handles=handles, loc="upper center", ncol=min(len(names), 6), frameon=False, fontsize=9)
        top = 1 - 0.45 / (2.9 * rows + 0.4)
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return {"panels": panels, "validated": validated}


def class_iou_bars(class_names: Sequence[str], excluded: Sequence[int], ious: Mapping[str, Sequence[float]],
                   path: Path) -> None:
    """Per-class IoU (%) as bars, runs side by side; with several runs a second panel holds each run's
    difference from the first (points). Classes left out of mIoU have grey labels."""
    plt = pyplot()
    names = list(ious)
    k, n = len(class_names), len(names)
    values = np.array([[np.nan if v is None else 100 * float(v) for v in ious[r]] for r in names])
    width = 0.8 / n
    x = np.arange(k)
    fig_w = min(16.0, max(7.5, 0.2 * k * (n + 2)))
    panels = 2 if n > 1 else 1
    fig, axes = plt.subplots(panels, 1, figsize=(fig_w, 3.3 * panels + 1.0), sharex=True, squeeze=False)
    top = axes[0][0]
    for i, name in enumerate(names):
        top.bar(x + (i - (n - 1) / 2) * width, np.nan_to_num(values[i]), width, color=run_colour(i), label=plain(name))
    for c in range(k):
        if np.isnan(values[:, c]).all():
            top.text(c, 2, "no pixels", rotation=90, ha="center", va="bottom", fontsize=8, color="#666")
    top.set_ylim(0, 100)
    top.set_ylabel("IoU (%)")
    top.grid(axis="y", alpha=0.3)
    top.set_title("per-class IoU" + (" (grey classes: not in mIoU)" if excluded else ""), fontsize=10, loc="left")
    if n > 1:
        # Above the plot, right-aligned: inside it would hide tall bars.
        top.legend(fontsize=9, ncol=min(n, 6), loc="lower right", bbox_to_anchor=(1, 1.0), frameon=False)
        delta = axes[1][0]
        others = n - 1
        dw = min(0.8 / others, 0.55)
        for j in range(1, n):
            d = values[j] - values[0]
            pos = x + (j - 1 - (others - 1) / 2) * dw
            delta.bar(pos, np.nan_to_num(d), dw, color=run_colour(j))
            if k * others <= MAX_ANNOTATED * 2:
                for p, v in zip(pos, d):
                    if not np.isnan(v):
                        delta.text(p, v, f"{v:+.1f}", ha="center", va="bottom" if v >= 0 else "top", fontsize=8)
        delta.axhline(0, color="#333", lw=0.8)
        delta.set_ylabel(plain(f"IoU − {names[0]} (points)"))
        delta.grid(axis="y", alpha=0.3)
        lo, hi = np.nanmin(values[1:] - values[0], initial=0), np.nanmax(values[1:] - values[0], initial=0)
        pad = max(2.0, 0.18 * (hi - lo))
        delta.set_ylim(lo - pad, hi + pad)
        delta.set_title(plain(f"difference from the reference, {names[0]}"), fontsize=10, loc="left")
    bottom = axes[-1][0]
    bottom.set_xticks(x, [plain(c) for c in class_names], rotation=35, ha="right", fontsize=9)
    for c, label in enumerate(bottom.get_xticklabels()):
        if c in set(excluded):
            label.set_color("#999")
    bottom.set_xlim(-0.6, k - 0.4)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def confusion_heatmap(conf: Sequence[Sequence[float]], class_names: Sequence[str], title: str, path: Path) -> None:
    """Row-normalised confusion matrix (% of each ground-truth class's pixels), class names on both axes."""
    plt = pyplot()
    counts = np.asarray(conf, dtype=np.float64)
    k = len(class_names)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.full_like(counts, np.nan)
    np.divide(100 * counts, totals, out=share, where=totals > 0)
    side = max(5.0, 0.36 * k + 2.4)
    fig, ax = plt.subplots(figsize=(side + 0.8, side))
    cmap = plt.get_cmap("Blues").with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(share), cmap=cmap, vmin=0, vmax=100)
    if k <= MAX_ANNOTATED:
        for r in range(k):
            for c in range(k):
                v = share[r, c]
                if not np.isnan(v) and v >= 0.5:
                    ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=7 if k > 12 else 8,
                            color="white" if v > 55 else "#223")
    rows = [plain(n) + ("" if totals[i, 0] > 0 else " (no pixels)") for i, n in enumerate(class_names)]
    ax.set_xticks(range(k), [plain(n) for n in class_names], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), rows, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("ground-truth class")
    ax.set_title(plain(title), fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("% of the ground-truth class's pixels", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def aux_tile(aux: np.ndarray, kind: str, path: Path, width: int) -> None:
    """The auxiliary image drawn `width` pixels wide: one channel (depth, thermal) on a colour ramp with its
    colour bar in the file's values, holes black; three channels (HHA) as an RGB picture (no bar: one
    ramp cannot describe three channels)."""
    plt = pyplot()
    h, w = aux.shape[:2]
    height = max(1, round(width * h / w))
    multi = aux.ndim == 3 and aux.shape[2] >= 3
    bar = 0 if multi else 80
    fig = plt.figure(figsize=((width + bar) / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((0, 0, width / (width + bar), 1))
    ax.set_axis_off()
    if multi:
        x = aux[..., :3].astype(np.float64)
        hi = max(float(np.nanmax(x)), 1.0) if np.isfinite(x).any() else 1.0
        ax.imshow(np.clip(np.nan_to_num(x) / hi, 0, 1), interpolation="nearest", aspect="auto")
    else:
        x = (aux[..., 0] if aux.ndim == 3 else aux).astype(np.float64)
        # Depth 0 is "no measurement" in every supported dataset; thermal 0 is a temperature.
        valid = np.isfinite(x) & ((x > 0) if kind == "depth" else True)
        lo, hi = np.percentile(x[valid], [1, 99]) if valid.any() else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1.0
        cmap = plt.get_cmap("turbo").with_extremes(bad="black")
        im = ax.imshow(np.ma.masked_where(~valid, x), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest",
                       aspect="auto")
        margin = min(9, height // 6) / height
        cax = fig.add_axes(((width + 6) / (width + bar), margin, 11 / (width + bar), 1 - 2 * margin))
        cb = fig.colorbar(im, cax=cax)
        cb.ax.tick_params(labelsize=8, length=2, pad=2)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)

