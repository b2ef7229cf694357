"""Deployment: recordings, ONNX export (int8 too) and checkpoint conversion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from smmcl.api._shared import CONVERT_FORMATS, _renamed, _size
from smmcl.config import Config, load_config, to_dict
from smmcl.deploy.predictor import Predictor
from smmcl.errors import CheckpointError, DatasetError
from smmcl.files import as_path
from smmcl.model_file import ModelFile, open_model_file
from smmcl.outputs import check_output_file, output_file

if TYPE_CHECKING:
    from smmcl.weights import LoadReport


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
    from smmcl.deploy.recording import aux_scale_for, predict_recording as run
    from smmcl.recordings import open_recording

    cfg = open_model_file(checkpoint).require_config()
    # The model's modality, so that a topic, video or folder named for another is refused before anything else
    # (trial 12 #241, trial 13 #134).
    opened = open_recording(recording, rgb_topic, aux_topic, aux_path=aux_path, tolerance=tolerance, align=align,
                            aux_units=aux_units, aux_kind=cfg.data.aux_kind)
    if aux_scale is None:
        aux_scale, how = aux_scale_for(opened.aux_units, cfg.data.aux_kind, cfg.data.aux_max,
                                       stated=aux_units is not None)
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
        frames = _calibration_frames(cfg, calibration, calibration_split, file) if calibration is not None else None
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


# What export --int8 does with calibration frames whose range is noted.
CALIBRATED = "int8 is calibrated (and verified) on them as given, so it fits frames in their units, not the model's"


def _calibration_frames(cfg: Config, root: str | Path, split: str, file: Optional[ModelFile] = None) -> list:
    """The calibration frames of `export --int8`, in the model's preprocessing (see `export`). Their range is judged
    as eval judges a dataset's (`engine.loading.check_aux_range`, against the model `file`'s training range): frames
    in other units would calibrate int8 to them, and silently so (trial 12 #117)."""
    from smmcl.data.dataset import RGBXDataset, own_suffixes
    from smmcl.data.preprocess import Preprocessing
    from smmcl.deploy.quantize import dataset_frames, image_frames
    from smmcl.engine.loading import aux_range_watch, check_aux_range, warn_aux_range
    from smmcl.engine.predict import pair_inputs

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"--calibration {root} is a file; give a folder of frames (a dataset, or the model's RGB "
                           f"and auxiliary folders)" if root.exists() else f"calibration folder not found: {root}")
    if (root / f"{split}.txt").is_file():
        data = load_config(to_dict(cfg), [f"data.root={root}"], dataset_meta=False).data
        data = load_config(to_dict(cfg), [f"data.root={root}", *own_suffixes(data, split)], dataset_meta=False).data
        dataset = RGBXDataset(data, split, cfg.model.num_classes, train=False)
        check_aux_range(file, data, split, done=CALIBRATED)
        return dataset_frames(dataset)
    lists = sorted(p.stem for p in root.glob("*.txt"))
    if lists:  # a dataset, so the split asked for was meant: all its images unlabelled would be another thing
        raise DatasetError(f"calibration folder {root} has no split list {split}.txt (it has {', '.join(lists)}): "
                           f"choose one with --calibration-split")
    rgb, aux = root / cfg.data.rgb_dir, root / cfg.data.aux_dir
    if not (rgb.is_dir() and aux.is_dir()):
        raise DatasetError(f"calibration folder {root}: expected a dataset with {split}.txt, or the model's image "
                           f"folders {cfg.data.rgb_dir}/ and {cfg.data.aux_dir}/ in it")
    watch = aux_range_watch(file, cfg.data.aux_max)
    frames = image_frames(pair_inputs(rgb, aux), Preprocessing.from_data_config(cfg.data), watch)
    if cfg.data.aux_max is not None:
        warn_aux_range(watch, "calibration images", CALIBRATED)
    return frames



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
