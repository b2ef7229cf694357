"""The picture grid: per test image, the RGB as captured and brightened, the auxiliary image with its colour
bar, the ground truth and every run's prediction, in the dataset's one palette (`dataset_palette`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

import numpy as np
from PIL import Image

from smmcl.data.classes import colorize
from smmcl.reporting.collect import Run, ScoredSplit
from smmcl.reporting.figures import aux_tile
from smmcl.visualize import brighten

# Width of every tile on the page, in CSS pixels; the auxiliary tile is drawn at this width plus its bar.
TILE = 220
# Larger images are stored downscaled: the page shows them TILE wide anyway, and the PNGs stay small.
MAX_STORED = 2 * TILE


@dataclass
class Cell:
    """One picture of a grid row: its file in the report folder, a caption, and whether it is a label map
    (drawn with hard pixel edges, not smoothed)."""

    title: str
    file: str
    caption: str = ""
    labels: bool = False
    natural: bool = False  # shown at its own size (the auxiliary tile already is TILE wide)


@dataclass
class GridRow:
    name: str
    cells: List[Cell]


def _save(image: np.ndarray, path: Path, labels: bool) -> None:
    picture = Image.fromarray(image)
    if picture.width > MAX_STORED:
        size = (MAX_STORED, max(1, round(MAX_STORED * picture.height / picture.width)))
        # Nearest for label maps: an interpolated colour would be no class's colour.
        picture = picture.resize(size, Image.NEAREST if labels else Image.BILINEAR)
    picture.save(path, optimize=True)


def _miou(value: float) -> str:
    return "mIoU -" if value is None or math.isnan(value) else f"mIoU {100 * value:.1f}%"


def write_grid(out: Path, split: ScoredSplit, runs: Sequence[Run]) -> List[GridRow]:
    """Write the tiles of every image the runs predicted (`Run.predictions`) and describe the rows."""
    kind = split.dataset.cfg.aux_kind
    aux_title = f"{kind} (file values" + (", black: none)" if kind == "depth" else ")")
    rows = []
    for i in range(min(len(r.predictions) for r in runs)):
        rgb, aux, label = split.dataset.load_raw(i)
        stem = f"img{i:02d}"
        cells = []
        name = split.dataset.names[i]
        for suffix, title, picture in (("rgb", "RGB (as captured)", rgb), ("bright", "RGB (brightened)", brighten(rgb))):
            _save(picture, out / f"{stem}_{suffix}.png", labels=False)
            cells.append(Cell(title, f"{stem}_{suffix}.png", name if suffix == "rgb" else ""))
        aux_tile(aux, kind, out / f"{stem}_aux.png", TILE)
        cells.append(Cell(aux_title, f"{stem}_aux.png", natural=True))
        _save(colorize(label, split.palette), out / f"{stem}_gt.png", labels=True)
        cells.append(Cell("ground truth", f"{stem}_gt.png", labels=True))
        for r, run in enumerate(runs):
            _save(colorize(run.predictions[i], split.palette), out / f"{stem}_pred{r}.png", labels=True)
            cells.append(Cell(run.name, f"{stem}_pred{r}.png", _miou(run.image_miou[i]), labels=True))
        rows.append(GridRow(name, cells))
    return rows
