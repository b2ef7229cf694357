"""Trained models: opening, scoring, predicting on files, analysing features, reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Sequence, Tuple

from smmcl.api._shared import _checkpoint_first, _renamed, _size, inference_protocol
from smmcl.config import Config, as_config, load_config, to_dict
from smmcl.data.classes import class_names, dataset_palette
from smmcl.deploy.predictor import Predictor, load_backend
from smmcl.errors import CheckpointError
from smmcl.files import as_path, distinct
from smmcl.model_file import ModelFile, is_model_file, open_model_file

if TYPE_CHECKING:
    import torch


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


def model_config(checkpoint: str | Path, overrides: Sequence[str] = ()) -> Config:
    """The config a model file carries (smmcl weights, a training checkpoint, an ONNX export), with `overrides`; an
    override of what the model owns (`smmcl.config.MODEL_OWNS`: classes, palette, input scaling) is refused, naming the
    model's own value (trial 17 E16: answered of class names)."""
    from smmcl.engine.loading import check_owned_stated

    file = open_model_file(checkpoint)
    own = to_dict(file.require_config())
    check_owned_stated(file, own, overrides, "an override")
    return load_config(own, overrides)


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
    # Named, not an AttributeError or pathlib's TypeError from inside (trial 18 G054, G046).
    if not isinstance(checkpoints, dict):
        raise TypeError(f"checkpoints must be a mapping of name -> model file, e.g. {{'smmcl': 'run/model.safetensors'}}, "
                        f"got a {type(checkpoints).__name__}")
    as_path(out, "out")
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
