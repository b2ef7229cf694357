"""Training, studies, datasets and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Tuple

from smmcl.api._shared import _renamed
from smmcl.config import Config, as_config, load_config
from smmcl.errors import DatasetError
from smmcl.files import as_path


@_renamed(cfg="config")
def train(config: Config, resume: str | Path | None = None, overwrite: bool = False, allow_config_change: bool = False,
          log: Callable[[str], None] = lambda _: None) -> dict:
    """Train (or continue) the run of `config` to its planned end; one process, or one rank under `torchrun`.

    `resume`: a checkpoint path or `auto` (the newest in `train.out_dir`, a fresh start when none). A folder
    holding another run is refused unless `overwrite`; a resume with changed training keys is refused unless
    `allow_config_change`. `log` receives the plan and the weights' path (rank 0 only). Returns the last
    logged figures (`last`), `step`, `total_iters`, `out_dir`, `weights` (model.safetensors when finished),
    `warnings` (the contrast's, from summary.json), `rank` and `world_size`."""
    from smmcl.engine import distributed
    from smmcl.engine.trainer import Trainer

    config, trainer = as_config(config), None
    try:
        trainer = Trainer(config, resume=resume, overwrite=overwrite, allow_config_change=allow_config_change)
        main = trainer.ctx.is_main
        say = log if main else (lambda _: None)
        if trainer.pretrained_report is not None:
            say(trainer.pretrained_report.summary())
        p, world = trainer.plan, trainer.ctx.world_size
        ranks = f", {world} processes x batch {trainer.local_batch_size}" if world > 1 else ""
        say(f"[smmcl] {config.name}: {p.total_iters} iterations ({p.iters_per_epoch}/epoch), warm-up {p.warmup_iters}, "
            f"from step {trainer.step}, device {trainer.device}{ranks}, output {trainer.out_dir}")
        last = trainer.run()
    finally:
        distributed.cleanup(keep=trainer)
    finished = trainer.step == p.total_iters
    weights = trainer.out_dir / "model.safetensors" if finished else None
    if weights is not None:
        say(f"[smmcl] weights for deployment: {weights}")
    return {"last": last, "step": trainer.step, "total_iters": p.total_iters, "out_dir": trainer.out_dir,
            "weights": weights, "warnings": list(trainer.summary.get("warnings", [])),
            "rank": trainer.ctx.rank, "world_size": world}


@_renamed(cfg="config")
def dry_run(config: Config, resume: str | Path | None = None, allow_config_change: bool = False,
            overwrite: bool = False) -> dict:
    """Build everything a run of `config` needs and take one step on one batch, writing nothing: the data, the
    plan (iterations, effective batch, warm-up, learning rates), the model's size, the loss, the batch
    warning (`train.paper_batch`) and the step's figures, as a dict; `rank` / `world_size` under torchrun.
    `resume`, `overwrite` and `allow_config_change` as for `train`: the folder the run would write is checked
    as the run checks it."""
    from smmcl.engine import distributed
    from smmcl.engine.plan import batch_warning, effective_batch, lr_points
    from smmcl.engine.trainer import Trainer
    from smmcl.models.summary import parameter_counts

    config, trainer = as_config(config), None
    try:
        trainer = Trainer(config, resume=resume, overwrite=overwrite, allow_config_change=allow_config_change)
        p, t, d = trainer.plan, config.train, config.data
        result = {
            "name": config.name, "rank": trainer.ctx.rank, "world_size": trainer.ctx.world_size,
            "device": str(trainer.device), "from_step": trainer.step,
            "pretrained": trainer.pretrained_report.summary() if trainer.pretrained_report is not None else None,
            "data": {"root": d.root, "preset": d.preset, "train_images": len(trainer.train_set),
                     "crop_size": list(d.crop_size), "scales": list(d.scales)},
            "plan": {"total_iters": p.total_iters, "iters_per_epoch": p.iters_per_epoch, "warmup_iters": p.warmup_iters,
                     "checkpoint_every": p.checkpoint_every, "effective_batch": effective_batch(config),
                     "batch_size": t.batch_size, "accumulate": t.accumulate, "local_batch_size": trainer.local_batch_size},
            "lr": lr_points(p, config),
            "batch_warning": batch_warning(config),
            "params": parameter_counts(trainer.model),
            "loss": {"formula": trainer.objective.formula(), "contrast": config.loss.contrast if trainer.objective.contrast is not None else None,
                     # The contrast's own temperature (region_released has one of its own); Base: the config's.
                     "temperature": getattr(trainer.objective.contrast, "temperature", config.loss.temperature)},
        }
        result["step"] = trainer.dry_run()
    finally:
        distributed.cleanup(keep=trainer)
    return result


def run_study(path: str | Path, out: str | Path | None = None, jobs: int = 1, report_only: bool = False,
              imports: Sequence[str | Path] = (), log: Callable[[str], None] = print,
              threads: Optional[int] = None) -> dict:
    """Run or continue a study file (variants x seeds, see `smmcl.study`); returns its results.
    `report_only`: train nothing, write the results of the runs finished so far. `imports`: results.json
    files of earlier runs of the same study; the runs they hold are not trained again. `log` receives
    the study's progress lines (runs finished, files written). `threads`: torch threads per job (default:
    the CPU cores shared out among the jobs)."""
    from smmcl.study import run_study as _run

    as_path(path, "the study file")
    return _run(path, out, jobs, log=log, report_only=report_only, imports=imports, threads=threads)


def make_synthetic(kind: str, out: str | Path, num: int, size: Sequence[int], seed: int = 0, test_fraction: float = 0.25,
                   val_fraction: float = 0.0, progress: bool = True, overwrite: bool = False) -> dict:
    """Write a built-in synthetic dark-scene dataset (`smmcl.data.synth`) to `out`; returns its summary. A dataset
    generated there before with other values is replaced only with `overwrite`."""
    from smmcl.data.synth import generate_dataset

    return generate_dataset(kind, Path(out), num, size=size, seed=seed, test_fraction=test_fraction,
                            val_fraction=val_fraction, progress=progress, overwrite=overwrite)


def check_data(root: str | Path, preset: str | None = None, splits: Sequence[str] | None = None,
               overrides: Sequence[str] = ()) -> Tuple[Config, Any, bool]:
    """Check a dataset folder against a layout preset (default: `generic` when it holds a meta.json). A meta.json is
    read as training reads it (`smmcl.config.meta`: its classes and auxiliary folder and range fill the config, a
    preset contradicting them is refused, an override doing so is used with a warning); read as generic, the folder's
    whole description (palette, folders, ignore index) fills the generic defaults too. Returns the config used, the
    `DatasetReport` and whether the layout came from meta.json."""
    from smmcl.config.meta import meta_layer, read_meta
    from smmcl.config.presets import DATASET_PRESETS
    from smmcl.data.check import check_dataset

    if not Path(root).is_dir():
        raise DatasetError(f"dataset folder not found: {root}" if not Path(root).exists() else
                           f"{root} is a file; give the dataset's folder (the one holding its image folders and lists)")
    meta = read_meta(root)
    preset = (preset or ("generic" if meta else "")).lower()
    if not preset:
        raise ValueError(f"{root} has no meta.json: say how it is laid out with --preset ({', '.join(DATASET_PRESETS)})")
    layer: dict = {"data": {"preset": preset, "root": str(root)}}
    from_meta = bool(meta) and preset == "generic"
    if from_meta:
        # The dataset describes itself (classes, folders, auxiliary range): that beats the generic defaults.
        described = meta_layer(meta)
        layer = {"model": described.get("model", {}), "data": {**described["data"], **layer["data"]}}
    cfg = load_config(layer, overrides, dataset_meta=True)
    return cfg, check_dataset(cfg.data, cfg.model.num_classes, splits=list(splits) if splits else None), from_meta


def convert_hha(depth_dir: str | Path, out: str | Path, intrinsics: str | Sequence[float], **options: Any) -> int:
    """Encode every depth image of `depth_dir` as HHA (`smmcl.data.hha`: disparity, height, angle) into `out`;
    `intrinsics` as "fx,fy,cx,cy" or four numbers; options: depth_scale, normal_radius, camera_height, overwrite
    (replace an earlier HHA in `out`, whole). Returns the number of images written."""
    from smmcl.data.hha import parse_intrinsics
    from smmcl.data.hha_folder import convert_folder

    text = intrinsics if isinstance(intrinsics, str) else ",".join(str(v) for v in intrinsics)
    return convert_folder(Path(depth_dir), Path(out), parse_intrinsics(text), **options)


def run_demo(out: str | Path = "runs/demo", config: str | Path | None = None, overrides: Sequence[str] = (),
             overwrite: bool = False) -> dict:
    """The whole demo (synthetic data, Base and SMMCL trained alike, scores, pictures, report page). Run again with
    the same settings, it trains nothing; a demo of other settings in `out` is replaced only with `overwrite`."""
    from smmcl.demo import run_demo as demo

    return demo(Path(out), config=config, overrides=overrides, overwrite=overwrite)
