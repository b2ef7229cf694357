"""`write_report`: read the runs, score them, draw the figures and write `index.html` beside its PNGs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from smmcl.config import to_dict
from smmcl.engine.run_dir import flatten
from smmcl.errors import ConfigError
from smmcl.files import distinct
from smmcl.outputs import writing
from smmcl.reporting.collect import Run, check_comparable, environment, open_run, run_names, score_run, scored_split
from smmcl.reporting.figures import class_iou_bars, confusion_heatmap, pyplot, training_curves
from smmcl.reporting.grid import write_grid
from smmcl.reporting.page import Page, render

def _report_files(num_runs: int, num_images: int) -> List[str]:
    """Every name a report of `num_runs` runs and `num_images` pictures may write (`grid.write_grid` included)."""
    tiles = ["rgb", "bright", "aux", "gt", *(f"pred{r}" for r in range(num_runs))]
    return ["index.html", "curves.png", "class_iou.png", *(f"confusion_{i}.png" for i in range(num_runs)),
            *(f"tsne_{i}.png" for i in range(num_runs)), *(f"img{i:02d}_{t}.png" for i in range(num_images) for t in tiles)]


def _config_diff(runs: Sequence[Run]) -> List[tuple]:
    """Dotted config keys whose values differ between the reference and any other run."""
    flat = [flatten(to_dict(r.cfg)) for r in runs]
    keys = sorted(set().union(*flat))
    return [(k, flat[0].get(k, "-"), [f.get(k, "-") for f in flat[1:]]) for k in keys
            if any(f.get(k, "-") != flat[0].get(k, "-") for f in flat[1:])]


def write_report(run_dirs: Sequence[str | Path], out: str | Path, num_images: int = 6,
                 names: Optional[Sequence[str]] = None, overrides: Sequence[str] = (), device: Optional[str] = None,
                 progress: bool = True, log: Callable[[str], None] = lambda _: None, overwrite: bool = False) -> Path:
    """Write the report of one run, or a comparison of several (the first is the reference), into `out` (an
    earlier report there is replaced, whole, only with `overwrite`); returns the path of its `index.html`. `overrides` apply to every run's config (e.g. `data.root=...`
    when the data has moved); every run is scored on the reference run's split."""
    if not run_dirs:
        raise ConfigError("a report needs at least one run folder")
    if num_images < 0:
        raise ConfigError(f"num_images must be >= 0, got {num_images}")
    pyplot()  # refuse before any evaluation when matplotlib is missing
    folders = [Path(d) for d in run_dirs]
    distinct(folders, "the runs of a report")
    runs = [open_run(f, n, overrides) for f, n in zip(folders, run_names(folders, names))]
    check_comparable(runs)
    split = scored_split(runs[0])
    out = Path(out)
    # Before any scoring: a folder of an earlier report is replaced (its files alone) with overwrite, any other refused.
    # The datasets the runs are scored on are inputs: a report never lands inside one (the run folders are not:
    # a run's own report/ is the default place).
    with writing(out, "report", "--out", inputs=[r.cfg.data.root for r in runs],
                 names=_report_files(len(runs), num_images), overwrite=overwrite):
        for run in runs:
            log(f"scoring {run.name} ({run.folder}) on {len(split.dataset)} {split.split_name} images")
            score_run(run, split, num_images, device=device, progress=progress)

        drawn = training_curves({r.name: r.log for r in runs}, out / "curves.png")
        class_iou_bars(split.class_names, split.excluded, {r.name: r.scores["iou"] for r in runs}, out / "class_iou.png")
        confusion = []
        for i, run in enumerate(runs):
            confusion_heatmap(run.scores["confusion"], split.class_names, f"{run.name}: confusion matrix", out / f"confusion_{i}.png")
            confusion.append(f"confusion_{i}.png")
        grid = write_grid(out, split, runs)
        tsne = {}
        for i, run in enumerate(runs):
            if run.features is not None:
                # Copied, so the page still shows it where the run folder is not (a report sent on its own).
                shutil.copyfile(run.features.figure, out / f"tsne_{i}.png")
                tsne[run.name] = f"tsne_{i}.png"
        page = Page(runs=runs, split=split, curves="curves.png", validated=drawn["validated"], iou_figure="class_iou.png",
                    confusion=confusion, grid=grid, tsne=tsne, environment=environment([r.device for r in runs]),
                    overrides=list(overrides), config_diff=_config_diff(runs) if len(runs) > 1 else [],
                    written=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
        index = out / "index.html"
        index.write_text(render(page), encoding="utf-8")
        return index
