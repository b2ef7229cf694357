"""`smmcl.report`: the static run report page, for one run and for a comparison, and its refusals."""

from __future__ import annotations

import json
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import smmcl
from smmcl.config import load_config
from smmcl.data.classes import dataset_palette
from smmcl.errors import CheckpointError, ConfigError, SmmclError
from smmcl.outputs import OutputError

from support import TINY_CONFIG


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def _images(page: str) -> list[str]:
    parser = _Images()
    parser.feed(page)
    return parser.sources


def _check_self_contained(index: Path) -> str:
    """Every picture the page names is a PNG beside it, and nothing is fetched from a network."""
    page = index.read_text(encoding="utf-8")
    sources = _images(page)
    assert sources
    for src in sources:
        assert "/" not in src and src.endswith(".png"), src
        with Image.open(index.parent / src) as picture:
            assert picture.width > 0 and picture.height > 0
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "<script" not in page
    return page


def test_report_of_one_run(tiny_runs):
    run = tiny_runs["smmcl"]
    index = smmcl.report(run, num_images=2, progress=False)
    assert index == run / "report" / "index.html"  # the default place
    page = _check_self_contained(index)
    sources = _images(page)
    assert {"curves.png", "class_iou.png", "confusion_0.png"} <= set(sources)
    # Per image: RGB, brightened, auxiliary, ground truth and the one run's prediction.
    assert [s for s in sources if s.startswith("img")] == [f"img{i:02d}_{t}.png" for i in range(2)
                                                           for t in ("rgb", "bright", "aux", "gt", "pred0")]
    cfg = load_config(TINY_CONFIG)
    for name in cfg.data.class_names:
        assert f">{name}<" in page  # in the legend and the per-class table
    # One palette: the legend's swatches and the colours of the label pictures are the dataset's.
    palette = dataset_palette(cfg.data.class_names, cfg.data.palette, cfg.model.num_classes)
    swatches = re.findall(r'class="sw" style="background:rgb\((\d+), (\d+), (\d+)\)"></span>([^<]+)<', page)
    assert [(tuple(map(int, c[:3])), c[3]) for c in swatches] == list(zip(palette, cfg.data.class_names))
    for tile in ("img00_gt.png", "img00_pred0.png", "img01_pred0.png"):
        colours = np.unique(np.asarray(Image.open(index.parent / tile).convert("RGB")).reshape(-1, 3), axis=0)
        assert {tuple(int(v) for v in c) for c in colours} <= set(palette)
    assert "&Delta;" not in page  # nothing to compare with
    assert "No t-SNE figure" in page and "max_iters: 4" in page  # config.yaml as written
    for key in ("python", "torch", "numpy", "device", "torch threads", "platform"):
        assert f">{key}<" in page


def test_comparison_shows_deltas_and_escapes_text(tiny_runs, tmp_path):
    base, other = tiny_runs["base"], tiny_runs["smmcl"]
    # A folder name and run names that are HTML: the page must show them, not interpret them.
    odd = tmp_path / "run <b>&"
    shutil.copytree(other, odd, ignore=shutil.ignore_patterns("report"))
    index = smmcl.report(base, compare=[odd], out=tmp_path / "cmp", num_images=2, progress=False,
                         names=["Base <ref>", "SMMCL & <i>x</i>"])
    page = _check_self_contained(index)
    assert "Base &lt;ref&gt;" in page and "SMMCL &amp; &lt;i&gt;x&lt;/i&gt;" in page and "run &lt;b&gt;&amp;" in page
    assert "<ref>" not in page and "<i>x</i>" not in page and "<b>&" not in page
    sources = _images(page)
    assert {"confusion_0.png", "confusion_1.png", "img00_pred0.png", "img00_pred1.png"} <= set(sources)
    # The scores and their delta are the project's own evaluation of each run's weights.
    ref = smmcl.evaluate_checkpoint(base / "model.safetensors", progress=False)
    mine = smmcl.evaluate_checkpoint(other / "model.safetensors", progress=False)
    for key in ("miou", "pixel_acc", "mean_acc"):
        assert f"<td>{100 * ref[key]:.2f}</td>" in page and f"<td>{100 * mine[key]:.2f}</td>" in page
        shown = f"{100 * (mine[key] - ref[key]):+.2f}"
        assert re.search(rf'<td class="(pos|neg)">{re.escape(shown)}</td>', page) and shown != "+0.00"
    assert "Where the configs differ" in page and "loss.cm_weight" in page
    assert "No validation" not in page  # the tiny runs validate every 2 iterations: the curves show it


def test_t_sne_of_analyze_features_is_shown(tiny_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_runs["smmcl"], run, ignore=shutil.ignore_patterns("report"))
    (run / "features").mkdir()
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(run / "features" / "tsne.png")
    # What `smmcl analyze features` writes (smmcl.analysis.features.analyze_models).
    scores = {"vis": {"knn_accuracy": 0.731, "silhouette": 0.21, "points": 90, "classes": 9},
              "aux": {"knn_accuracy": 0.741, "silhouette": -0.01, "points": 90, "classes": 9}}
    (run / "features" / "features.json").write_text(json.dumps({"stage": 3, "k": 10, "images": 12, "scores": {"SMMCL": scores}}))
    page = _check_self_contained(smmcl.report(run, out=tmp_path / "out", num_images=1, progress=False))
    assert "tsne_0.png" in _images(page) and (tmp_path / "out" / "tsne_0.png").is_file()
    assert "<td>73.10</td>" in page and "<td>+0.210</td>" in page and "<td>-0.010</td>" in page and "stage 3" in page


def test_a_second_report_replaces_the_first_only_with_overwrite(tiny_runs, tmp_path):
    out = tmp_path / "out"
    smmcl.report(tiny_runs["base"], out=out, num_images=2, progress=False)
    assert (out / "img01_gt.png").is_file()
    with pytest.raises(OutputError, match="earlier output.*--overwrite"):
        smmcl.report(tiny_runs["base"], out=out, num_images=1, progress=False)
    assert (out / "img01_gt.png").is_file()
    smmcl.report(tiny_runs["base"], out=out, num_images=1, progress=False, overwrite=True)
    assert not (out / "img01_gt.png").exists() and (out / "img00_gt.png").is_file()


def test_bad_run_folders_are_named(tiny_runs, tmp_path):
    with pytest.raises(CheckpointError, match=r"run folder not found: .*nowhere.*model\.safetensors"):
        smmcl.report(tmp_path / "nowhere")
    half = tmp_path / "half"
    shutil.copytree(tiny_runs["base"], half, ignore=shutil.ignore_patterns("report"))
    (half / "log.jsonl").unlink()
    with pytest.raises(CheckpointError, match=r"half: no log\.jsonl \(expected a finished `smmcl train` run folder"):
        smmcl.report(half)
    shutil.copy(tiny_runs["base"] / "log.jsonl", half / "log.jsonl")
    (half / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"half: no model\.safetensors .*--resume auto"):
        smmcl.report(tiny_runs["base"], compare=[half])


def test_missing_matplotlib_says_what_to_install(tiny_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    with pytest.raises(SmmclError, match=r"pip install 'smmcl\[analysis\]'"):
        smmcl.report(tiny_runs["base"], out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_api_function_survives_its_package_import():
    import smmcl.reporting  # noqa: F401  (a subpackage named `report` would have replaced the function)

    assert callable(smmcl.report) and smmcl.report.__module__ == "smmcl.api.models"


def test_runs_reading_other_inputs_are_not_compared(tiny_runs, tmp_path):
    """Trial 9 #143: every run is scored on the reference's images, read with its auxiliary scaling, so a run trained
    on another modality or scale (a thermal model beside a depth one) is refused, not scored on depth."""
    import yaml

    for key, value in (("aux_kind", "thermal"), ("aux_max", 255.0)):
        other = tmp_path / f"other_{key}"
        shutil.copytree(tiny_runs["smmcl"], other, ignore=shutil.ignore_patterns("report"))
        cfg = yaml.safe_load((other / "config.yaml").read_text())
        cfg["data"][key] = value
        (other / "config.yaml").write_text(yaml.safe_dump(cfg))
        with pytest.raises(ConfigError, match=rf"other_{key} cannot be compared with .*base: data.{key} is {value} there "
                                              r"and .* in the reference \(every run is scored on the reference's images"):
            smmcl.report(tiny_runs["base"], compare=[other], out=tmp_path / f"report_{key}")
        assert not (tmp_path / f"report_{key}").exists()


def test_a_report_says_when_its_test_images_are_images_a_run_was_trained_on(tiny_runs, indoor_data, tmp_path):
    """Trial 15 RP10: test images byte for byte training images (a copied folder) were scored in a report without the
    warning eval gives: the report runs eval's one list of checks on every run."""
    from smmcl.errors import HeldOutWarning

    data = tmp_path / "copy"
    shutil.copytree(indoor_data, data)
    trained = (data / "train.txt").read_text().split()[0]
    tested = (data / "test.txt").read_text().split()[0]
    for sub in ("RGB", "Depth", "Label"):
        shutil.copyfile(data / sub / f"{trained}.png", data / sub / f"{tested}.png")
    with pytest.warns(HeldOutWarning, match=rf"1 of the \d+ test images scored in {data} are byte for byte images "
                                            rf".*model.safetensors was trained on \(e.g. '{tested}'\)"):
        smmcl.report(tiny_runs["base"], out=tmp_path / "page", overrides=[f"data.root={data}"], progress=False)
