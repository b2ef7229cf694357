"""The report's HTML: one static page that opens from disk (inline CSS, no script, PNGs beside it).

Every text that comes from outside this module (run and class names, paths, config text, versions) goes
through `html.escape`; the only unescaped strings are this module's own markup and numbers it formats.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from smmcl.reporting.collect import Run, ScoredSplit
from smmcl.reporting.figures import run_colour
from smmcl.reporting.grid import TILE, GridRow

CSS = f"""
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0 24px 40px;
       max-width: 1700px; }}
h1 {{ font-size: 22px; margin: 18px 0 4px; }} h2 {{ font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }}
h3 {{ font-size: 15px; margin: 16px 0 6px; }}
nav a {{ margin-right: 14px; }} .muted {{ color: #666; }} .note {{ color: #555; font-style: italic; }}
table {{ border-collapse: collapse; margin: 6px 0; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: right; vertical-align: top; }}
th {{ background: #f4f4f4; }} td.l, th.l {{ text-align: left; }}
.pos {{ color: #1a7f37; }} .neg {{ color: #c62828; }}
.dot {{ display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }}
img.fig {{ max-width: 100%; height: auto; }}
.figs {{ display: flex; flex-wrap: wrap; gap: 12px; }} .figs img {{ max-width: calc(50% - 12px); height: auto; }}
.legend {{ display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 6px 0 10px; }}
.key {{ white-space: nowrap; }} .sw {{ display: inline-block; width: 16px; height: 12px; border: 1px solid #333;
       vertical-align: -1px; margin-right: 5px; }}
table.grid td, table.grid th {{ border: none; padding: 2px 3px; text-align: center; }}
table.grid th {{ background: none; font-weight: 600; font-size: 13px; }}
.scroll {{ overflow-x: auto; }}
img.tile {{ width: {TILE}px; height: auto; display: block; }} img.labels {{ image-rendering: pixelated; }}
.cap {{ font-size: 12px; color: #444; }}
pre {{ background: #f7f7f7; border: 1px solid #e3e3e3; padding: 8px; overflow-x: auto; font-size: 12px; }}
details {{ margin: 6px 0; }} summary {{ cursor: pointer; }}
"""


def e(text: object) -> str:
    return html.escape(str(text))


def real(x: object) -> bool:
    """A number worth printing (a features.json of another version may hold anything)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: object) -> str:
    return f"{100 * x:.2f}" if real(x) else "-"  # type: ignore[operator]


def delta(x: object, ref: object) -> str:
    """A difference in points, green when higher, red when lower."""
    if not (real(x) and real(ref)):
        return "<td>-</td>"
    d = 100 * (x - ref)  # type: ignore[operator]
    return f'<td class="{"pos" if d > 0 else "neg" if d < 0 else ""}">{d:+.2f}</td>'


def dot(i: int) -> str:
    return f'<span class="dot" style="background:{run_colour(i)}"></span>'


@dataclass
class Page:
    """What the page shows; the files named here are in the report folder."""

    runs: List[Run]
    split: ScoredSplit
    curves: str
    validated: bool
    iou_figure: str
    confusion: List[str]
    grid: List[GridRow]
    tsne: Dict[str, str]  # run name -> copied figure
    environment: Dict[str, str]
    overrides: Sequence[str] = ()
    config_diff: List[tuple] = field(default_factory=list)  # (key, reference value, [value per other run])
    written: str = ""


def _scores(p: Page) -> str:
    ref = p.runs[0].scores
    metrics = [("miou", "mIoU")] + ([("miou_all", "mIoU (all classes)")] if p.split.excluded else []) + \
              [("pixel_acc", "pixel acc"), ("mean_acc", "mean acc")]
    compare = len(p.runs) > 1
    head = '<tr><th class="l">run</th><th class="l">folder</th><th>iterations</th>'
    head += "".join(f"<th>{e(label)} (%)</th>" + ("<th>&Delta;</th>" if compare else "") for _, label in metrics)
    rows = [head + "</tr>"]
    for i, run in enumerate(p.runs):
        cells = [f'<td class="l">{dot(i)}{e(run.name)}{" <span class=muted>(reference)</span>" if compare and i == 0 else ""}</td>',
                 f'<td class="l">{e(run.folder)}</td>', f"<td>{run.iterations}</td>"]
        for key, _ in metrics:
            cells.append(f"<td>{pct(run.scores.get(key))}</td>")
            if compare:
                cells.append("<td>-</td>" if i == 0 else delta(run.scores.get(key), ref.get(key)))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    excluded = ", ".join(p.split.class_names[k] for k in p.split.excluded if k < len(p.split.class_names))
    protocols = sorted({run.scores.get("protocol_text", "") for run in p.runs})
    how = (f"Scored on the <b>{e(p.split.split_name)}</b> split"
           + (f", subset <b>{e(p.split.subset)}</b>" if p.split.subset else "")
           + f" of {e(p.split.dataset.cfg.root)} ({len(p.split.dataset)} images, one confusion matrix over all of them)"
           + (f"; mIoU without {e(excluded)}" if excluded else "")
           + f"; inference: {e('; '.join(protocols))}"
           + ("; &Delta;: points against the reference (the first run)" if compare else "") + ".")
    return f"<table>{''.join(rows)}</table><p class=muted>{how}</p>"


def _per_class(p: Page) -> str:
    compare = len(p.runs) > 1
    head = '<tr><th class="l">class</th>' + "".join(
        f"<th>{dot(i)}{e(r.name)}</th>" + ("<th>&Delta;</th>" if compare and i else "") for i, r in enumerate(p.runs))
    rows = [head + "</tr>"]
    ref = p.runs[0].scores["iou"]
    for k, name in enumerate(p.split.class_names):
        mark = " <span class=muted>(not in mIoU)</span>" if k in p.split.excluded else ""
        cells = [f'<td class="l">{e(name)}{mark}</td>']
        for i, run in enumerate(p.runs):
            cells.append(f"<td>{pct(run.scores['iou'][k])}</td>")
            if compare and i:
                cells.append(delta(run.scores["iou"][k], ref[k]))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<details><summary>per-class IoU as a table (%)</summary><table>{''.join(rows)}</table></details>"


def _legend(p: Page) -> str:
    keys = [f'<span class="key"><span class="sw" style="background:rgb{tuple(int(v) for v in p.split.palette[k])}"></span>'
            f"{e(name)}</span>" for k, name in enumerate(p.split.class_names)]
    return f'<div class="legend">{"".join(keys)}</div>'


def _grid(p: Page) -> str:
    if not p.grid:
        return "<p class=note>No pictures: none were asked for (num_images=0), or the split is empty.</p>"
    head = "<tr>" + "".join(f"<th>{e(c.title)}</th>" for c in p.grid[0].cells) + "</tr>"
    rows = [head]
    for row in p.grid:
        cells = []
        for c in row.cells:
            kind = "" if c.natural else ' class="tile' + (' labels"' if c.labels else '"')
            caption = f'<div class="cap">{e(c.caption)}</div>' if c.caption else ""
            cells.append(f'<td><img src="{e(c.file)}"{kind} alt="{e(c.title)}: {e(row.name)}">{caption}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    # Wider than the window (many runs): the grid scrolls on its own, the page does not.
    return _legend(p) + f'<div class="scroll"><table class="grid">{"".join(rows)}</table></div>'


def _features(p: Page) -> str:
    if not p.tsne:
        return ("<p class=note>No t-SNE figure: no run folder holds one (it appears here once "
                "<code>smmcl analyze features CONFIG --checkpoint RUN/model.safetensors --out RUN/features</code> "
                "has written <code>tsne.png</code> and <code>features.json</code> there).</p>")
    parts = []
    for run in p.runs:
        if run.name not in p.tsne:
            parts.append(f"<h3>{e(run.name)}</h3><p class=note>no t-SNE figure in {e(run.folder)}</p>")
            continue
        numbers = run.features.numbers if run.features else None
        parts.append(f"<h3>{e(run.name)}</h3><p class=muted>from {e(run.features.figure if run.features else '')}</p>")
        if numbers and isinstance(numbers.get("scores"), dict):
            rows = ['<tr><th class="l">model</th><th class="l">modality</th><th>k-NN accuracy (%)</th>'
                    "<th>silhouette</th><th>points</th></tr>"]
            for model, by_mod in numbers["scores"].items():
                for mod, s in (by_mod.items() if isinstance(by_mod, dict) else ()):
                    if not isinstance(s, dict):
                        continue
                    sil = s.get("silhouette")
                    rows.append(f'<tr><td class="l">{e(model)}</td><td class="l">{e(mod)}</td>'
                                f"<td>{pct(s.get('knn_accuracy'))}</td>"
                                f"<td>{f'{sil:+.3f}' if real(sil) else '-'}</td><td>{e(s.get('points', '-'))}</td></tr>")
            facts = ", ".join(f"{e(k)} {e(numbers[k])}" for k in ("stage", "k", "images", "split", "metric") if k in numbers)
            parts.append(f"<table>{''.join(rows)}</table><p class=muted>{facts}</p>")
        parts.append(f'<img class="fig" src="{e(p.tsne[run.name])}" alt="t-SNE of {e(run.name)}">')
    return "".join(parts)


def _config(p: Page) -> str:
    parts = []
    if p.overrides:
        parts.append(f"<p>Overrides applied for this report: <code>{e(' '.join(p.overrides))}</code></p>")
    if p.config_diff:
        head = '<tr><th class="l">key</th>' + "".join(f'<th class="l">{dot(i)}{e(r.name)}</th>' for i, r in enumerate(p.runs))
        rows = [head + "</tr>"] + [f'<tr><td class="l">{e(key)}</td><td class="l">{e(ref)}</td>'
                                   + "".join(f'<td class="l">{e(v)}</td>' for v in others) + "</tr>"
                                   for key, ref, others in p.config_diff]
        parts.append(f"<h3>Where the configs differ</h3><table>{''.join(rows)}</table>")
    for run in p.runs:
        parts.append(f"<details><summary>{e(run.name)}: {e(run.folder / 'config.yaml')}</summary>"
                     f"<pre>{e(run.config_text)}</pre></details>")
    return "".join(parts)


def _environment(p: Page) -> str:
    rows = "".join(f'<tr><th class="l">{e(k)}</th><td class="l">{e(v)}</td></tr>' for k, v in p.environment.items())
    return f"<table>{rows}</table><p class=muted>Report written {e(p.written)}.</p>"


def render(p: Page) -> str:
    """The whole page as one HTML string."""
    names = [r.name for r in p.runs]
    title = "smmcl run report: " + (names[0] if len(names) == 1 else " vs ".join(names))
    sections = [
        ("scores", "Scores", _scores(p)),
        ("training", "Training", f'<img class="fig" src="{e(p.curves)}" alt="training curves">'
         + ("" if p.validated else "<p class=note>No validation mIoU in the logs (train.val_every was 0).</p>")),
        ("classes", "Per-class IoU", f'<img class="fig" src="{e(p.iou_figure)}" alt="per-class IoU">' + _per_class(p)),
        ("confusion", "Confusion matrices", "<p class=muted>Rows: ground truth, normalised to 100%; "
         "columns: predicted class.</p><div class=figs>"
         + "".join(f'<img src="{e(f)}" alt="confusion matrix of {e(r.name)}">' for f, r in zip(p.confusion, p.runs))
         + "</div>"),
        ("predictions", "Test predictions", _grid(p)),
        ("features", "Feature space (t-SNE)", _features(p)),
        ("config", "Configuration", _config(p)),
        ("environment", "Environment", _environment(p)),
    ]
    nav = "".join(f'<a href="#{key}">{e(label)}</a>' for key, label, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{e(label)}</h2>{content}</section>' for key, label, content in sections)
    folders = ", ".join(str(r.folder) for r in p.runs)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,"><title>{e(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{e(title)}</h1><p class=muted>{e(folders)}</p>"
            f"<nav>{nav}</nav>{body}</body></html>\n")
