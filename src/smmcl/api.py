"""The small public Python API; the CLI calls these and nothing deeper.

Importing it imports no PyTorch: what needs PyTorch (training, PyTorch models, evaluation, export) imports it
inside the function, so that a runtime without it (numpy and ONNX Runtime or OpenVINO: `Predictor`, `open_model`
on an ONNX export) can use the API.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from smmcl.config import Config, as_config, load_config, to_dict
from smmcl.data.classes import class_names, dataset_palette
from smmcl.deploy.predictor import BACKENDS as _BACKENDS, Predictor, load_backend  # noqa: F401  (Predictor: frame streams)
from smmcl.errors import CheckpointError, DatasetError
from smmcl.files import as_path, distinct
from smmcl.model_file import ModelFile, is_model_file, open_model_file  # noqa: F401  (is_model_file: for the CLI)
from smmcl.outputs import check_output_file, output_file

if TYPE_CHECKING:
    import torch

    from smmcl.weights import LoadReport

# One name for each thing across the API: a model file is `checkpoint`, a config (a `Config` or its YAML file where
# a path is taken) is `config`. The 0.2 spellings (`cfg=`, config before checkpoint) still work for one release.
def _renamed(**old_to_new: str) -> Callable:
    """Take the 0.2 keyword names (`cfg=`, `source=`) as today's, with a deprecation message."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"smmcl.{fn.__name__}() got both {new}= and its old spelling {old}=")
                    warnings.warn(f"smmcl.{fn.__name__}({old}=...) is deprecated and goes in the next release; "
                                  f"write {new}=", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def _checkpoint_first(name: str, checkpoint: Any, config: Any) -> Tuple[Any, Any]:
    """(checkpoint, config), also from a 0.2 call that gave the config first (with a deprecation message)."""
    old = isinstance(checkpoint, Config) or (checkpoint is None and config is not None) or (
        isinstance(checkpoint, (str, Path)) and isinstance(config, (str, Path))
        and not is_model_file(checkpoint) and is_model_file(config))
    if not old:
        return checkpoint, config
    warnings.warn(f"smmcl.{name}(config, checkpoint) is deprecated and goes in the next release; the model file comes "
                  f"first: smmcl.{name}(checkpoint, config)", DeprecationWarning, stacklevel=3)
    return config, checkpoint


def _size(size: Any, what: str) -> Tuple[int, int]:
    """(height, width) from a pair of whole numbers, each at least 32 (the encoder downsamples 32x); a ValueError
    naming `what` for anything else ("64x80" is the command line's spelling, not the API's)."""
    ok = isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
    if not ok:
        raise ValueError(f"{what} must be (height, width), e.g. (480, 640), got {size!r}")
    h, w = int(size[0]), int(size[1])
    if min(h, w) < 32:
        raise ValueError(f"{what} must be at least 32x32 (the encoder downsamples 32x), got {h}x{w}")
    return h, w


# `smmcl convert --from` choices: released SMMCL checkpoints, ImageNet files of each backbone's release
# (named after our backbone), and our own training checkpoints.
CONVERT_FORMATS = ("official-smmcl", "mscan", "mit", "resnet", "checkpoint")


def inference_protocol(cfg: Config):
    """The evaluation protocol of `cfg.eval`: whole or sliding window, scales, flip."""
    from smmcl.engine.inference import InferenceProtocol

    return InferenceProtocol.from_config(cfg)


# The backends' names, from their one table (`smmcl.deploy.predictor.BACKENDS`): torch, onnxruntime, openvino.
BACKENDS = tuple(_BACKENDS)


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


def open_model(checkpoint: str | Path | ModelFile, config: Config | str | Path | None = None, overrides: Sequence[str] = (),
               device: str | None = None, backend: str | None = None, threads: int | None = None,
               precision: str = "fp32") -> Tuple[torch.nn.Module, Config]:
    """A trained model ready for inference and its config, from smmcl weights, a training checkpoint, a released
    SMMCL checkpoint with a config (PyTorch) or an ONNX export (ONNX Runtime, or OpenVINO with `backend="openvino"`,
    in fp32 or `precision="bf16"`); each but the released one carries its config, which `config` replaces. An
    export comes as an `nn.Module` (its runtime's PyTorch face), for the evaluation and inference protocols."""
    file = checkpoint if isinstance(checkpoint, ModelFile) else open_model_file(checkpoint)
    return load_backend(file.backend(backend), file, config, overrides, device, threads, precision)


def load_trained(checkpoint: str | Path | ModelFile, config: Config | None = None,
                 device: str | torch.device | None = None) -> torch.nn.Module:
    """A trained PyTorch model in eval mode from smmcl weights, a training checkpoint or a released SMMCL
    checkpoint, on `device` (default `config.train.device`), with `config`'s precision, layout and compile
    settings; `config` None: the one the file carries (a released checkpoint carries none)."""
    checkpoint, config = _checkpoint_first("load_trained", checkpoint, config)
    from smmcl.engine import loading

    file = checkpoint if isinstance(checkpoint, ModelFile) else open_model_file(checkpoint)
    if config is None:
        config = file.require_config()
    else:  # as eval: another dataset's classes or input scaling would give the model inputs it was not trained on
        config = as_config(config)
        loading.check_model_owned(file, config, "the config")
    return loading.load_trained(config, file, device=device)


def evaluate_checkpoint(checkpoint: str | Path, config: Config | str | Path | None = None, split: str | None = None,
                        subset: str | None = None, progress: bool = True, backend: str | None = None,
                        precision: str = "fp32") -> dict:
    """Scores of a checkpoint (or an ONNX export) on a split (or a named subset of it) with the protocol of
    `config.eval`, from one confusion matrix over the whole split. `config` None: the one the file carries.
    `precision`: as `Predictor`'s (bf16 on OpenVINO or PyTorch)."""
    from smmcl.engine import loading
    from smmcl.engine.evaluate import evaluate

    checkpoint, config = _checkpoint_first("evaluate_checkpoint", checkpoint, config)
    file = open_model_file(checkpoint)
    model, cfg = open_model(file, None if config is None else as_config(config),
                            backend=backend, precision=precision)
    split = split or cfg.eval.split
    subset = subset if subset is not None else cfg.eval.subset
    own = file.num_classes or cfg.model.num_classes
    if own != cfg.model.num_classes:
        raise CheckpointError(f"{checkpoint} predicts {own} classes but the config's dataset has "
                              f"model.num_classes={cfg.model.num_classes}")
    loading.check_scored_data(file, cfg, split, subset)
    return evaluate(model, cfg, split, subset, progress=progress)


def predict(checkpoint: str | Path, rgb: str | Path | None, aux: str | Path | None, out: str | Path,
            config: str | Path | None = None, list_file: str | Path | None = None, overrides: Sequence[str] = (),
            device: str | None = None, progress: bool = True, backend: str | None = None, aux_scale: float = 1.0,
            precision: str = "fp32", overwrite: bool = False) -> list:
    """Label PNGs and overlays for image files, folders (paired by name) or a list file; see `pair_inputs`.
    `checkpoint` may be an ONNX export (run by ONNX Runtime). The model file's classes, palette and input scaling
    (`data.aux_max`) always apply: `config` and `overrides` give the protocol (`eval.*`) and the run-time switches
    (`engine.loading.config_for_model`), and one that says other classes or scaling is refused. `aux_scale`: the
    auxiliary images' units in the model's, multiplied in before its aux_max applies (1000: depth in metres for a
    model trained on millimetres); images whose values do not fit are refused, naming the likely cause.
    `precision`: as `Predictor`'s (bf16 on OpenVINO or PyTorch). An earlier prediction in `out` is replaced (whole)
    only with `overwrite`."""
    from smmcl.data.modality import check_aux_scale
    from smmcl.engine.loading import config_for_model
    from smmcl.engine.predict import pair_inputs, predict_files

    aux_scale = check_aux_scale(aux_scale)
    given = {name: None if value is None else as_path(value, name)
             for name, value in (("rgb", rgb), ("aux", aux), ("list_file", list_file))}
    as_path(out, "out")
    as_path(checkpoint, "the model file")
    file = open_model_file(checkpoint)  # first: a folder given as the model (arguments swapped) is named as such
    pairs = pair_inputs(given["rgb"], given["aux"], given["list_file"])
    cfg = config_for_model(file, config, overrides)
    palette = dataset_palette(cfg.data.class_names, cfg.data.palette, cfg.model.num_classes)
    inputs = [rgb, aux, list_file, checkpoint]
    name, e = file.backend(backend), cfg.eval
    trained = file.preprocessing if file.config is not None else None  # what it records of its training images
    if name != "torch" and e.mode == "whole" and list(e.scales) == [1.0] and not e.flip:
        # One whole-frame pass on an export: its runtime on numpy, as the Predictor runs it (no PyTorch needed).
        predictor = Predictor(file.path, device=device or cfg.train.device, backend=name, aux_scale=aux_scale,
                              precision=precision)
        return predict_files(None, pairs, Path(out), palette, class_names(cfg), cfg.data.aux_max, progress=progress,
                             aux_scale=aux_scale, inputs=inputs, labels_of=lambda r, a: predictor(r, a),
                             aux_kind=cfg.data.aux_kind, overwrite=overwrite, trained=trained)
    model, cfg = open_model(file, cfg, (), device, backend, precision=precision)
    return predict_files(model, pairs, Path(out), palette, class_names(cfg), cfg.data.aux_max, inference_protocol(cfg),
                         progress=progress, aux_scale=aux_scale, inputs=inputs, aux_kind=cfg.data.aux_kind,
                         overwrite=overwrite, trained=trained)


def predict_recording(checkpoint: str | Path, recording: str | Path, out: str | Path, rgb_topic: str | None = None,
                      aux_topic: str | None = None, aux_path: str | Path | None = None, aux_units: str | None = None,
                      tolerance: float | None = None, align: bool | None = None, aux_scale: float | None = None,
                      video: bool = True, labels: bool = False, device: str | None = None, threads: int | None = None,
                      progress: bool = True, log: Callable[[str], None] = lambda _: None, backend: str | None = None,
                      precision: str = "fp32", overwrite: bool = False) -> dict:
    """Segment a recording: a ROS 1 / ROS 2 bag (RealSense recordings included; `rgb_topic` / `aux_topic`, else
    the only ones) or an RGB video with its auxiliary stream at `aux_path` (a second video or an image folder,
    in `aux_units`). Frames pair by time within `tolerance` seconds; unaligned depth is aligned by the
    recording's calibration (`align`: see `smmcl.recordings.open_recording`). Writes `out/overlay.mp4`,
    `frames.csv`, `summary.json` (and `labels/` with `labels`; see `smmcl.deploy.recording`); returns the
    summary. `aux_scale` None: from the recording's units into the model's. `backend`, `precision`: as
    `Predictor`'s. An earlier output in `out` is replaced (whole) only with `overwrite`."""
    from smmcl.data.modality import check_folder_kind
    from smmcl.deploy.recording import aux_scale_for, predict_recording as run
    from smmcl.recordings import open_recording

    opened = open_recording(recording, rgb_topic, aux_topic, aux_path=aux_path, tolerance=tolerance, align=align,
                            aux_units=aux_units)
    cfg = open_model_file(checkpoint).require_config()
    if aux_path is not None:  # a folder (or a video in one) named for another modality, as predict refuses it
        check_folder_kind(aux_path if Path(aux_path).is_dir() else Path(aux_path).parent, cfg.data.aux_kind,
                          f"{checkpoint} was trained on {cfg.data.aux_kind} images",
                          "give it a recording of the images it was trained on")
    if aux_scale is None:
        aux_scale, how = aux_scale_for(opened.aux_units, cfg.data.aux_kind, cfg.data.aux_max)
    else:
        how = f"x{aux_scale:g} as given (aux_scale), whatever the recording's units ({opened.aux_units})"
    log(f"[smmcl] auxiliary values: {how}")
    predictor = Predictor(checkpoint, device=device, threads=threads, aux_scale=aux_scale, backend=backend,
                          precision=precision)
    return run(predictor, opened, out, video=video, labels=labels, progress=progress, log=log, overwrite=overwrite)


def list_topics(recording: str | Path) -> list:
    """A bag's topics (`name`, `msgtype`, `count`), to choose `predict_recording`'s two image topics from."""
    from smmcl.recordings import list_topics as topics

    return topics(recording)


def _smmcl_file(path: str | Path, kinds: Sequence[str]) -> bool:
    """Whether `path` is a model file smmcl wrote, of one of `kinds` (which a new one of that kind may replace)."""
    try:
        return Path(path).is_file() and open_model_file(path).kind in kinds
    except CheckpointError:
        return False


def export(checkpoint: str | Path, out: str | Path, size: Sequence[int] = (480, 640), dynamic: bool = True,
           opset: int | None = None, exporter: str = "torchscript", calibration: str | Path | None = None,
           calibration_split: str = "train", overwrite: bool = False):
    """Export smmcl weights or a training checkpoint to a self-describing ONNX file, verified with ONNX
    Runtime before it is written (see `smmcl.deploy.onnx_export`); returns the `ExportReport`.

    With `calibration` (a folder: a dataset in the model's layout, whose `calibration_split` list with labels is
    used, or a folder holding the model's RGB and auxiliary folders, paired by name), the file is an int8 model
    instead (`smmcl.deploy.quantize`): written only when it agrees with fp32 on the held-out frames, keeps their
    mIoU, and is faster here; the return value is then its `Int8Report`. An earlier export at `out` is replaced
    only with `overwrite`."""
    from smmcl.deploy.onnx_export import DEFAULT_OPSET, export_onnx
    from smmcl.engine import loading

    as_path(checkpoint, "the model file")
    file = open_model_file(checkpoint)
    if file.kind in ("onnx", "onnx-int8"):
        raise CheckpointError(f"{checkpoint} is an ONNX export already: export takes smmcl weights (.safetensors) or a "
                              f"training checkpoint (.pt); an export runs as it is (predict, eval, Predictor)")
    cfg = load_config(to_dict(file.require_config()))
    with output_file(as_path(out, "out"), "--out", [checkpoint, calibration],
                     ours=_smmcl_file(out, ("onnx", "onnx-int8")), overwrite=overwrite):
        frames = _calibration_frames(cfg, calibration, calibration_split) if calibration is not None else None
        plain = load_config(to_dict(cfg), ["train.compile=false", "train.channels_last=false", "train.device=cpu"])
        model = loading.load_trained(plain, file, device="cpu")
        # What the run's weights say of its training images goes on into the export.
        options = dict(size=_size(size, "size"), dynamic=dynamic, opset=opset or DEFAULT_OPSET, exporter=exporter,
                       trained_on=file.metadata.get("trained_on", ""), trained=file.preprocessing)
        if frames is None:
            return export_onnx(model, cfg, out, **options)  # type: ignore[arg-type]
        import tempfile

        from smmcl.deploy.quantize import quantize_export

        with tempfile.TemporaryDirectory(prefix="smmcl-export-") as tmp:
            fp32 = export_onnx(model, cfg, Path(tmp) / "fp32.onnx", **options)  # type: ignore[arg-type]
            return quantize_export(fp32.path, out, frames, ignore_index=cfg.data.ignore_index,
                                   exclude=cfg.eval.exclude_classes)


def _calibration_frames(cfg: Config, root: str | Path, split: str) -> list:
    """The calibration frames of `export --int8`, in the model's preprocessing (see `export`)."""
    from smmcl.data.dataset import RGBXDataset, own_suffixes
    from smmcl.data.preprocess import Preprocessing
    from smmcl.deploy.quantize import dataset_frames, image_frames
    from smmcl.engine.predict import pair_inputs

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"--calibration {root} is a file; give a folder of frames (a dataset, or the model's RGB "
                           f"and auxiliary folders)" if root.exists() else f"calibration folder not found: {root}")
    if (root / f"{split}.txt").is_file():
        data = load_config(to_dict(cfg), [f"data.root={root}"], dataset_meta=False).data
        data = load_config(to_dict(cfg), [f"data.root={root}", *own_suffixes(data, split)], dataset_meta=False).data
        return dataset_frames(RGBXDataset(data, split, cfg.model.num_classes, train=False))
    lists = sorted(p.stem for p in root.glob("*.txt"))
    if lists:  # a dataset, so the split asked for was meant: all its images unlabelled would be another thing
        raise DatasetError(f"calibration folder {root} has no split list {split}.txt (it has {', '.join(lists)}): "
                           f"choose one with --calibration-split")
    rgb, aux = root / cfg.data.rgb_dir, root / cfg.data.aux_dir
    if not (rgb.is_dir() and aux.is_dir()):
        raise DatasetError(f"calibration folder {root}: expected a dataset with {split}.txt, or the model's image "
                           f"folders {cfg.data.rgb_dir}/ and {cfg.data.aux_dir}/ in it")
    return image_frames(pair_inputs(rgb, aux), Preprocessing.from_data_config(cfg.data))


@_renamed(source="checkpoint", cfg="config")
def convert(
    checkpoint: str | Path, fmt: str, config: Config, out: str | Path, strict: bool | None = None,
    overwrite: bool = False,
) -> LoadReport:
    """Load an outside checkpoint into the model of `config` and write it as smmcl weights (.safetensors); earlier
    smmcl weights at `out` are replaced only with `overwrite`."""
    import torch

    from smmcl.engine.checkpoint import evaluation_weights, load_checkpoint
    from smmcl.models import build_model
    from smmcl.weights import LoadReport, load_backbone_weights, load_official_smmcl, save_pretrained
    from smmcl.weights.loading import load_state_strict

    if fmt not in CONVERT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(CONVERT_FORMATS)}")
    as_path(checkpoint, "checkpoint")
    try:  # what the file is, from its content: smmcl's own files are not converted from another format
        file: Optional[ModelFile] = open_model_file(checkpoint)
    except CheckpointError:
        file = None  # the format's own loader names what is wrong with it
    kind = file.kind if file is not None else None
    if kind in ("weights", "checkpoint", "onnx", "onnx-int8") and not (fmt == kind == "checkpoint"):
        hint = ("--from checkpoint writes its evaluation weights" if kind == "checkpoint" else
                "it needs no conversion: every command that reads a model file takes it as it is"
                + (" (an ONNX export runs in predict, eval and the Predictor; it cannot be trained from)"
                   if kind in ("onnx", "onnx-int8") else ""))
        raise CheckpointError(f"{checkpoint} is an smmcl {kind} file, not {fmt!r} weights: {hint}")
    if fmt in ("mscan", "mit", "resnet") and fmt != config.model.backbone.name:
        raise ValueError(
            f"--from {fmt} holds {fmt} weights but the config builds a {config.model.backbone.name!r} backbone"
        )
    check_output_file(as_path(out, "out"), "--out", [checkpoint], ours=_smmcl_file(out, ("weights",)),
                      overwrite=overwrite)
    if fmt == "checkpoint":  # it carries its run's config: the weights keep its classes and input scaling
        from smmcl.engine.loading import check_model_owned

        check_model_owned(file, config, "--config", "a converted checkpoint keeps them: give the config of its own run "
                                                    "(config.yaml in its run folder)")
    # Parts the file does not hold keep a reproducible initialisation.
    torch.manual_seed(config.train.seed)
    model = build_model(config.model)
    if fmt == "official-smmcl":
        report = load_official_smmcl(model, checkpoint, strict=True if strict is None else strict)
    elif fmt == "checkpoint":
        load_state_strict(model, evaluation_weights(load_checkpoint(Path(checkpoint))), str(checkpoint))
        report = LoadReport(str(checkpoint), "smmcl training checkpoint", loaded=len(model.state_dict()))
    else:
        report = load_backbone_weights(model, checkpoint, strict=bool(strict))
    if report.loaded == 0:  # trial 9 #194: with --no-strict, weights of a freshly initialised model were written
        raise CheckpointError(f"{checkpoint}: no tensor of it fits the model as {fmt!r} weights (0 loaded; e.g. "
                              f"{', '.join(report.unexpected_keys[:3]) or 'no keys'}): another format (--from), or "
                              f"another model's file; nothing was written")
    save_pretrained(model, config, out, overwrite=overwrite)
    return report


@_renamed(cfg="config")
def model_info(config: Config, size: Sequence[int] = (480, 640)) -> Dict[str, Any]:
    """What `config` builds (backbone, preset, decoder, classes, stage channels), its parameters per part and FLOPs
    at `size` (HxW), computed on the meta device (no memory, no weights)."""
    config = as_config(config)
    import torch

    from smmcl.models import build_model
    from smmcl.models.factory import decoder_name, resolve_backbone
    from smmcl.models.summary import flop_counts, parameter_counts

    size = _size(size, "size")
    with torch.device("meta"):
        model = build_model(config.model)
    b = config.model.backbone
    return {"backbone": b.name, "preset": b.preset, "decoder": decoder_name(config.model), "num_classes": config.model.num_classes,
            "stage_channels": resolve_backbone(b).get("embed_dims"),
            "params": parameter_counts(model), "flops": flop_counts(model, size), "size": list(size)}


def read_model_source(source: str | Path, overrides: Sequence[str] = (), model_file: bool = False) -> Tuple[Config, str]:
    """A config from a YAML file, or the one a model file carries (`smmcl.model_file`: smmcl weights, a training
    checkpoint, an ONNX export). An ONNX export takes overrides (its eval settings); the others fix their model."""
    if model_file:  # given as --checkpoint: a model file or a named error, never read as a YAML config
        open_model_file(source)
    if not is_model_file(source):
        if Path(source).is_file() and Path(source).stat().st_size == 0:
            open_model_file(source)  # an empty file: said as such, whichever of the two it was meant to be
        return load_config(source, overrides), str(source)
    file = open_model_file(source)
    if overrides and file.kind in ("weights", "checkpoint"):
        raise CheckpointError(f"{source}: {file.description} fixes its config; overrides are not accepted")
    return load_config(to_dict(file.require_config()), overrides), str(source)


@_renamed(cfg="config")
def analyze_features(config: Config, checkpoints: Dict[str, str | Path], out: str | Path, split: str | None = None,
                     stage: int = 4, per_class: int = 200, max_images: int | None = None, seed: int = 0,
                     overwrite: bool = False) -> dict:
    """The paper's Fig. 8 for one or more trained models (name -> weights or checkpoint): t-SNE of the
    stage-`stage` encoder features of both modalities on held-out images, with k-NN accuracy and
    silhouette per modality; writes `out/tsne.png` and `out/features.json`. Classes in
    `eval.exclude_classes` (and ignored pixels) are left out. An earlier analysis in `out` is replaced only with
    `overwrite`."""
    config = as_config(config)
    from smmcl.analysis import analyze_models
    from smmcl.data.dataset import RGBXDataset
    from smmcl.engine import loading

    distinct(checkpoints.values(), "the models of an analysis")
    files = {name: open_model_file(path) for name, path in checkpoints.items()}
    split = split or config.eval.split
    for file in files.values():  # as eval: another dataset's classes, scaling or units would score the wrong thing
        loading.check_scored_data(file, config, split, where="the analysis config")
    models = {name: loading.load_trained(config, file) for name, file in files.items()}
    dataset = RGBXDataset(config.data, split, config.model.num_classes, train=False)
    names = class_names(config)
    keep = [k for k in range(config.model.num_classes) if k not in set(config.eval.exclude_classes)]
    result = analyze_models(models, dataset, names, dataset_palette(config.data.class_names, config.data.palette, config.model.num_classes), keep, out, stage=stage, per_class=per_class,
                            max_images=max_images, seed=seed, inputs=[config.data.root, *checkpoints.values()],
                            overwrite=overwrite)
    result["checkpoints"] = {name: str(path) for name, path in checkpoints.items()}
    result["split"] = split
    (Path(out) / "features.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(run_dir: str | Path, compare: Sequence[str | Path] = (), out: str | Path | None = None,
           num_images: int = 6, names: Sequence[str] | None = None, overrides: Sequence[str] = (),
           device: str | None = None, progress: bool = True, log: Callable[[str], None] = lambda _: None,
           overwrite: bool = False) -> Path:
    """A static page (index.html + PNGs, opens from disk) on a finished run, or comparing it with the
    `compare` runs (`run_dir` is the reference): scores on its eval split with deltas, training curves,
    per-class IoU, confusion matrices, test predictions, the t-SNE of `analyze features` when the run holds
    one, config and environment. Written to `out` (default RUN_DIR/report/); returns index.html's path.
    `overrides` apply to every run's config (e.g. `data.root=...`); needs matplotlib (`analysis` extra). An
    earlier report in `out` is replaced (whole) only with `overwrite`."""
    from smmcl.reporting import write_report

    others = [compare] if isinstance(compare, (str, Path)) else list(compare)
    as_path(run_dir, "run_dir")
    return write_report([run_dir, *others], Path(run_dir) / "report" if out is None else as_path(out, "out"), num_images,
                        names=names, overrides=overrides, device=device, progress=progress, log=log, overwrite=overwrite)


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
    from smmcl.data.hha import convert_folder, parse_intrinsics

    text = intrinsics if isinstance(intrinsics, str) else ",".join(str(v) for v in intrinsics)
    return convert_folder(Path(depth_dir), Path(out), parse_intrinsics(text), **options)


def run_demo(out: str | Path = "runs/demo", config: str | Path | None = None, overrides: Sequence[str] = ()) -> dict:
    """The whole demo (synthetic data, Base and SMMCL trained alike, scores, pictures, report page)."""
    from smmcl.demo import run_demo as demo

    return demo(Path(out), config=config, overrides=overrides)
