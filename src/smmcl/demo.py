"""`smmcl demo`: synthetic low-light RGB-D rooms -> train Base and SMMCL alike -> evaluate -> pictures."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from smmcl.config import Config, load_config, to_yaml
from smmcl.config.meta import stated_values
from smmcl.data.classes import class_names as names_of, colorize, dataset_palette
from smmcl.data.dataset import RGBXDataset
from smmcl.data.synth import generate_dataset, get_kind
from smmcl.engine.evaluate import evaluate, format_scores
from smmcl.engine.trainer import Trainer
from smmcl.errors import ConfigError
from smmcl.outputs import record, writing
from smmcl.reporting import write_report
from smmcl.visualize import beside, brighten, legend, panel, scalar_tile

# The two models differ only in the SMMCL weights (Eq. 7): 0 gives the paper's Base.
RUNS = {
    "Base": ["loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0"],
    "SMMCL": [],
}


# The built-in data the demo generates and trains on.
DEMO_KIND = "indoor-rgbd"

# What the demo writes in its folder (the data and each run are claimed again by what writes them).
DEMO_FILES = ("data", "base", "smmcl", "predictions", "report", "summary.json")


def study_note(iterations: int, stage: int, crop: Sequence[int]) -> tuple:
    """What the demo is not, printed after its scores with the figures of the run it made (README, "Does SMMCL
    help?", and docs/study.md)."""
    side = 2 ** (stage + 1)  # a stage-s feature map is 1/2^(s+1) of the input (1/4 .. 1/32)
    where = "the paper's stage" if stage == 4 else "stage"
    return (
        f"This demo shows the pipeline, not whether SMMCL helps: {iterations} iterations from scratch with",
        f"{where} {stage} projectors, which see a {-(-crop[0] // side)}x{-(-crop[1] // side)} map here. The fair comparison, "
        f"with",
        "longer training, 3 seeds and paired confidence intervals, is the study (18 runs, about 5 h on 2 cores):",
        "  smmcl study studies/synthetic_tables5_6.yaml --jobs 2",
        # Not "too": this run's own sign may be either (trial 17 DM6: said after SMMCL had scored above Base).
        "There SMMCL scores below Base at this scale, whatever one short run shows (README and docs/study.md give "
        "the table and reasons).",
    )


def default_config_path() -> Path:
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / "configs" / "demo.yaml").is_file():
            return root / "configs" / "demo.yaml"
    raise ConfigError("configs/demo.yaml not found: run from the smmcl repository or pass --config")


def _ensure_data(root: Path, num: int, size: tuple[int, int], seed: int) -> dict:
    meta_path = root / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("num") == num and list(meta.get("size", [])) == list(size) and meta.get("seed") == seed:
            print(f"[demo] reusing synthetic data in {root}")
            return meta
    t0 = time.perf_counter()
    # The demo's own folder: a dataset it generated with other values is replaced (anything else there is refused).
    generate_dataset(DEMO_KIND, root, num, size=size, seed=seed, progress=True, overwrite=True)
    print(f"[demo] generated {num} indoor RGB-D scenes of {size[0]}x{size[1]} in {time.perf_counter() - t0:.1f} s -> {root}")
    return json.loads(meta_path.read_text())


def _train(cfg: Config) -> tuple[Trainer, float]:
    out = Path(cfg.train.out_dir)
    saved = out / "config.yaml"
    # Resume a run of the same config (a re-run finishes at once); start over if the config changed, removing only
    # what the run wrote (a file of anyone else's in the folder is refused, never deleted).
    changed = saved.is_file() and saved.read_text() != to_yaml(cfg)
    trainer = Trainer(cfg, overwrite=True) if changed else Trainer(cfg, resume="auto")
    t0 = time.perf_counter()
    print(f"[demo] training {cfg.name}: {trainer.plan.total_iters} iterations from step {trainer.step}")
    trainer.run()
    return trainer, time.perf_counter() - t0


def _pictures(out: Path, dataset: RGBXDataset, models: dict, cfg: Config, count: int) -> list[str]:
    """Per test image: RGB as captured and brightened, depth with its colour bar, ground truth, each model's
    prediction, and the legend; colours from the dataset's palette, as `predict` and `report` use."""
    pred_dir = out / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    names = list(cfg.data.class_names)
    palette = dataset_palette(names, cfg.data.palette, cfg.model.num_classes)
    key = legend(names, palette)
    key.save(pred_dir / "legend.png")
    written = []
    for i in range(min(count, len(dataset))):
        sample = dataset[i]
        rgb_raw, depth_raw, label = dataset.load_raw(i)
        # Depth PNGs hold millimetres (configs/demo.yaml, aux_max); the bar reads in metres.
        tiles = [rgb_raw, brighten(rgb_raw), scalar_tile(depth_raw, depth_raw > 0, unit=" m", factor=1e-3),
                 colorize(label, palette)]
        titles = ["RGB (as captured)", "RGB (brightened)", "depth", "ground truth"]
        for name, model in models.items():
            device = next(model.parameters()).device
            with torch.no_grad():
                logits = model.eval()(sample["rgb"][None].to(device), sample["aux"][None].to(device))
            tiles.append(colorize(logits.argmax(1)[0].cpu().numpy().astype(np.uint8), palette))
            titles.append(name)
        path = pred_dir / f"{sample['name']}.png"
        beside(panel(tiles, titles), key).save(path)
        written.append(str(path))
    return written


def _finished_before(out: Path, earlier: dict, results: dict, trainers: list) -> bool:
    """Whether `out` holds this demo finished: every run trained before, its summary scoring each model as now, and
    every file the summary names still there."""
    models = earlier.get("models", {})
    same = all(t.finished_before for t in trainers) and set(models) == set(results) and all(
        models[name].get("miou") == scores["miou"] for name, scores in results.items())
    files = [*earlier.get("pictures", []), *([earlier["report"]] if earlier.get("report") else [])]
    return same and all(Path(f).is_file() for f in files) and bool(earlier.get("report") or earlier.get("pictures"))


def _check_fits_data(cfg: Config, cfg_path: Path, overrides: Sequence[str]) -> None:
    """Refuse, before any data is generated, a config that contradicts the data the demo generates (its classes,
    auxiliary folder or scale), as training would refuse it after generating them; overrides are the user's own."""
    kind = get_kind(DEMO_KIND)
    given = {item.split("=", 1)[0].strip() for item in overrides}
    stated = stated_values({"class_names": list(kind.classes), "aux_dir": kind.aux_dir, "aux_max": kind.aux_max})
    values = {"data.class_names": list(cfg.data.class_names) or stated["data.class_names"],
              "model.num_classes": cfg.model.num_classes, "data.aux_dir": cfg.data.aux_dir, "data.aux_max": cfg.data.aux_max}
    for key, want in stated.items():
        if key not in given and values[key] != want:
            raise ConfigError(f"{cfg_path}: {key}={values[key]!r}, but the demo trains on its built-in {DEMO_KIND} data "
                              f"({len(kind.classes)} classes, {kind.aux_dir} up to {kind.aux_max:g}), where {key}={want!r}: "
                              f"give a config for that data (configs/demo.yaml, or one based on it)")


def run_demo(
    out: Path = Path("runs/demo"),
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    num_scenes: int = 400,
    size: tuple[int, int] = (120, 160),
    seed: int = 0,
    num_pictures: int = 8,
    overwrite: bool = False,
) -> dict:
    """Run the whole demo under `out`; returns (and writes to out/summary.json) each model's scores. A demo of the
    same settings there is finished (nothing retrained); one of other settings is replaced only with `overwrite`."""
    t_start = time.perf_counter()
    out = Path(out)
    cfg_path = Path(config) if config else default_config_path()
    # The demo replaces its own data and runs when their settings change: only in a folder it wrote itself.
    checked = load_config(cfg_path, [f"data.root={out / 'data'}", *overrides], dataset_meta=False)  # before any data
    _check_fits_data(checked, cfg_path, overrides)
    # again: a rerun writes the demo again in place (its data and runs resumed or replaced as `prepare` found them).
    if not overwrite:  # trial 15 DM3: a demo of other settings was retrained over without being asked
        for name, extra in RUNS.items():
            saved = out / name.lower() / "config.yaml"
            run_overrides = [f"name={name.lower()}", f"data.root={out / 'data'}", f"train.out_dir={out / name.lower()}"]
            if saved.is_file() and saved.read_text() != to_yaml(load_config(cfg_path, [*run_overrides, *extra,
                                                                                         *overrides])):
                raise ConfigError(f"--out {out} holds a demo of other settings ({saved} differs from this one's); "
                                  f"nothing was changed: --overwrite (overwrite=True) replaces it, or choose another "
                                  f"--out")
    with writing(out, "demo", "--out", inputs=[cfg_path], names=DEMO_FILES, again=True):
        meta = _ensure_data(out / "data", num_scenes, size, seed)
        results, models, trainers = {}, {}, []
        earlier = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
        for name, extra in RUNS.items():
            run_overrides = [f"name={name.lower()}", f"data.root={out / 'data'}", f"train.out_dir={out / name.lower()}"]
            cfg = load_config(cfg_path, [*run_overrides, *extra, *overrides])
            trainer, seconds = _train(cfg)
            test_set = RGBXDataset(cfg.data, cfg.eval.split, cfg.model.num_classes, train=False, subset=cfg.eval.subset)
            scores = evaluate(trainer.evaluation_model, cfg, dataset=test_set, progress=cfg.train.progress)
            # A run finished before trained nothing now: its training time is the one the earlier demo measured.
            scores["train_seconds"] = (earlier.get("models", {}).get(name, {}).get("train_seconds")
                                       if trainer.finished_before else round(seconds, 1))
            scores["iterations"] = trainer.plan.total_iters
            scores["contrast"] = {k: v for k, v in trainer.summary.items() if k != "warnings"}
            results[name], models[name] = scores, trainer.evaluation_model
            trainers.append(trainer)
        class_names = names_of(cfg)
        print()
        print(format_scores(class_names, results))
        if _finished_before(out, earlier, results, trainers):
            # The same settings, trained before and scored alike: the finished demo is left as it was (trial 15 DM5,
            # DM7: a rerun rewrote its summary.json for a new total time).
            print(f"\n[demo] the demo in {out} was finished before with these settings and scores the same: its "
                  f"files are left as they were ({out / 'summary.json'}); --overwrite runs it again from the start")
            return earlier
        (out / "predictions").mkdir(exist_ok=True)
        record(out, ["predictions"])  # the demo's from now on (smmcl.outputs: a name is listed once it exists)
        pictures = _pictures(out, test_set, models, cfg, num_pictures)
        summary = {
            "dataset": {k: meta[k] for k in ("kind", "num", "size", "seed") if k in meta},
            "test_images": len(test_set),
            "class_names": class_names,
            "excluded_from_miou": [class_names[k] for k in cfg.eval.exclude_classes],
            "models": {
                name: {
                    "miou": s["miou"],
                    "miou_all": s["miou_all"],
                    "pixel_acc": s["pixel_acc"],
                    "mean_acc": s["mean_acc"],
                    "per_class_iou": dict(zip(class_names, s["iou"])),
                    "train_seconds": s["train_seconds"],
                    "iterations": s["iterations"],
                    "contrast": s["contrast"],
                }
                for name, s in results.items()
            },
            "pictures": pictures,
            "total_seconds": round(time.perf_counter() - t_start, 1),
        }
        # The page a person looks at (docs/cli.md, "report"): curves, per-class IoU, confusion, predictions.
        page = None
        if importlib.util.find_spec("matplotlib") is not None:  # the `analysis` extra, which `make` installs
            page = write_report([out / name.lower() for name in RUNS], out / "report", names=list(RUNS),
                                progress=cfg.train.progress, overwrite=True)  # the demo's own page, of these runs
        summary["report"] = str(page) if page else None
        summary["total_seconds"] = round(time.perf_counter() - t_start, 1)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        record(out, ["summary.json"])
        print("\n[demo] mIoU (without void): " + ", ".join(f"{n} {100 * s['miou']:.2f}%" for n, s in results.items()))
        print(f"[demo] {len(pictures)} prediction panels in {out / 'predictions'}, summary in {out / 'summary.json'}"
              f" ({summary['total_seconds']:.0f} s)")
        print(f"[demo] report comparing Base and SMMCL: {page} (open it in a browser)" if page else
              "[demo] no report page: it needs matplotlib (pip install 'smmcl[analysis]'), then: smmcl report "
              f"{out / 'base'} --compare {out / 'smmcl'}")
        for line in study_note(trainer.plan.total_iters, cfg.model.projector.stage, cfg.data.crop_size):
            print(f"[demo] {line}")
        return summary
