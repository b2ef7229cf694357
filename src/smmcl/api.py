"""The small public Python API; the CLI calls these and nothing deeper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

import torch

from smmcl.config import Config, load_config, to_dict
from smmcl.data.dataset import RGBXDataset
from smmcl.engine.checkpoint import load_checkpoint, load_model_state
from smmcl.engine.evaluate import evaluate
from smmcl.engine.precision import prepare_model
from smmcl.engine.runtime import resolve_device
from smmcl.errors import CheckpointError
from smmcl.models import build_model
from smmcl.weights import LoadReport, load_backbone_weights, load_official_smmcl, save_pretrained
from smmcl.weights.pretrained import load_pretrained, read_pretrained_config

# `smmcl convert --from` choices: released SMMCL checkpoints, ImageNet files of each backbone's release
# (named after our backbone), and our own training checkpoints.
CONVERT_FORMATS = ("official-smmcl", "mscan", "mit", "resnet", "checkpoint")


def load_trained(cfg: Config, checkpoint: str | Path, device: str | torch.device | None = None) -> torch.nn.Module:
    """A model with trained weights, in eval mode: from smmcl weights (.safetensors, which carry their
    own model config) or from a training checkpoint (model built from `cfg`). `cfg.train.channels_last`
    and `cfg.train.compile` apply as in training (compiled with frozen weights, for no_grad inference)."""
    dev = resolve_device(cfg.train.device) if device is None else torch.device(device)
    if Path(checkpoint).suffix == ".safetensors":
        model = load_pretrained(checkpoint, device=dev)
    else:
        model = build_model(cfg.model)
        load_model_state(model, load_checkpoint(Path(checkpoint))["model"], checkpoint)
        model.aux_max = cfg.data.aux_max
    # Compiled for inference: weights frozen into the graph; the wrapper forwards attribute access.
    return prepare_model(model.to(dev).eval(), channels_last=cfg.train.channels_last, compile=cfg.train.compile, freeze=True)


def inference_protocol(cfg: Config):
    """The evaluation protocol of `cfg.eval`: whole or sliding window, scales, flip."""
    from smmcl.engine.inference import InferenceProtocol

    return InferenceProtocol.from_config(cfg)


def evaluate_checkpoint(cfg: Config | str | Path, checkpoint: str | Path, split: str | None = None,
                        subset: str | None = None, progress: bool = True) -> dict:
    """Scores of a checkpoint on a split (or a named subset of it) with the protocol of `cfg.eval`,
    from one confusion matrix over the whole split."""
    cfg = cfg if isinstance(cfg, Config) else load_config(cfg)
    split = split or cfg.eval.split
    subset = subset if subset is not None else cfg.eval.subset
    if Path(checkpoint).suffix == ".safetensors":
        own = read_pretrained_config(checkpoint).model.num_classes
        if own != cfg.model.num_classes:
            raise CheckpointError(
                f"{checkpoint} predicts {own} classes but the config's dataset has model.num_classes="
                f"{cfg.model.num_classes}"
            )
    model = load_trained(cfg, checkpoint)
    dataset = RGBXDataset(cfg.data, split, cfg.model.num_classes, train=False, subset=subset)
    scores = evaluate(
        model, dataset, cfg.model.num_classes, batch_size=cfg.eval.batch_size, ignore_index=cfg.data.ignore_index,
        exclude=cfg.eval.exclude_classes, progress=progress, protocol=inference_protocol(cfg),
    )
    scores["split"], scores["subset"] = split, subset
    return scores


def model_and_config(checkpoint: str | Path, config: str | Path | None = None, overrides: Sequence[str] = (),
                     device: str | None = None) -> Tuple[torch.nn.Module, Config]:
    """A trained model and its config: weights files and training checkpoints carry their config;
    `config` (a YAML) replaces it."""
    if config is not None:
        cfg = load_config(config, overrides)
    elif Path(checkpoint).suffix == ".safetensors":
        cfg = load_config(to_dict(read_pretrained_config(checkpoint)), overrides)
    else:
        cfg = load_config(load_checkpoint(Path(checkpoint)).get("config") or {}, overrides)
    return load_trained(cfg, checkpoint, device=device), cfg


def predict(checkpoint: str | Path, rgb: str | Path | None, aux: str | Path | None, out: str | Path,
            config: str | Path | None = None, list_file: str | Path | None = None, overrides: Sequence[str] = (),
            device: str | None = None, progress: bool = True) -> list:
    """Label PNGs and overlays for image files, folders (paired by name) or a list file; see `pair_inputs`."""
    from smmcl.engine.predict import pair_inputs, predict_files

    pairs = pair_inputs(Path(rgb) if rgb else None, Path(aux) if aux else None, Path(list_file) if list_file else None)
    model, cfg = model_and_config(checkpoint, config, overrides, device)
    return predict_files(model, pairs, Path(out), cfg.model.num_classes, cfg.data.palette, cfg.data.aux_max,
                         inference_protocol(cfg), progress=progress)


def convert(
    source: str | Path, fmt: str, cfg: Config, out: str | Path, strict: bool | None = None
) -> LoadReport:
    """Load an outside checkpoint into the model of `cfg` and write it as smmcl weights (.safetensors)."""
    if fmt not in CONVERT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(CONVERT_FORMATS)}")
    if fmt in ("mscan", "mit", "resnet") and fmt != cfg.model.backbone.name:
        raise ValueError(
            f"--from {fmt} holds {fmt} weights but the config builds a {cfg.model.backbone.name!r} backbone"
        )
    # Parts the file does not hold keep a reproducible initialisation.
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model)
    if fmt == "official-smmcl":
        report = load_official_smmcl(model, source, strict=True if strict is None else strict)
    elif fmt == "checkpoint":
        load_model_state(model, load_checkpoint(Path(source))["model"], source)
        report = LoadReport(str(source), "smmcl training checkpoint", loaded=len(model.state_dict()))
    else:
        report = load_backbone_weights(model, source, strict=bool(strict))
    save_pretrained(model, cfg, out)
    return report


def model_info(cfg: Config, size: Sequence[int] = (480, 640)) -> Dict[str, Any]:
    """Parameters per part and FLOPs at `size` (HxW), computed on the meta device (no memory, no weights)."""
    from smmcl.models.summary import flop_counts, parameter_counts

    with torch.device("meta"):
        model = build_model(cfg.model)
    return {"params": parameter_counts(model), "flops": flop_counts(model, size), "size": list(size)}


def read_model_source(source: str | Path, overrides: Sequence[str] = ()) -> Tuple[Config, str]:
    """A config from a YAML file, from the config embedded in smmcl weights, or from a training checkpoint."""
    suffix = Path(source).suffix
    if suffix in (".safetensors", ".pt", ".pth"):
        if overrides:
            raise CheckpointError(f"{source}: a weights file or checkpoint fixes its config; overrides are not accepted")
        if suffix == ".safetensors":
            return read_pretrained_config(source), str(source)
        config = load_checkpoint(Path(source)).get("config")
        if not config:
            raise CheckpointError(f"{source}: this checkpoint holds no config (not written by smmcl train?)")
        return load_config(config), str(source)
    return load_config(source, overrides), str(source)


def class_palette(cfg: Config) -> list:
    """Colours per class: `data.palette`, else the built-in palette of the dataset's classes, else a generated one."""
    from smmcl.data.classes import LLRGBD_CLASSES, LLRGBD_PALETTE, MFNET_CLASSES, MFNET_PALETTE, bit_palette

    if cfg.data.palette:
        return [tuple(c) for c in cfg.data.palette]
    names = list(cfg.data.class_names)
    if names == list(LLRGBD_CLASSES):
        return list(LLRGBD_PALETTE)
    if names == list(MFNET_CLASSES):
        return list(MFNET_PALETTE)
    return bit_palette(cfg.model.num_classes)


def analyze_features(cfg: Config, checkpoints: Dict[str, str | Path], out: str | Path, split: str | None = None,
                     stage: int = 4, per_class: int = 200, max_images: int | None = None, seed: int = 0) -> dict:
    """The paper's Fig. 8 for one or more trained models (name -> weights or checkpoint): t-SNE of the
    stage-`stage` encoder features of both modalities on held-out images, with k-NN accuracy and
    silhouette per modality; writes `out/tsne.png` and `out/features.json`. Classes in
    `eval.exclude_classes` (and ignored pixels) are left out."""
    from smmcl.analysis import analyze_models

    models = {name: load_trained(cfg, path) for name, path in checkpoints.items()}
    dataset = RGBXDataset(cfg.data, split or cfg.eval.split, cfg.model.num_classes, train=False)
    names = list(cfg.data.class_names) or [str(k) for k in range(cfg.model.num_classes)]
    keep = [k for k in range(cfg.model.num_classes) if k not in set(cfg.eval.exclude_classes)]
    result = analyze_models(models, dataset, names, class_palette(cfg), keep, out, stage=stage, per_class=per_class,
                            max_images=max_images, seed=seed)
    result["checkpoints"] = {name: str(path) for name, path in checkpoints.items()}
    result["split"] = split or cfg.eval.split
    (Path(out) / "features.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def run_study(path: str | Path, out: str | Path | None = None, jobs: int = 1, report_only: bool = False,
              imports: Sequence[str | Path] = ()) -> dict:
    """Run or continue a study file (variants x seeds, see `smmcl.study`); returns its results.
    `report_only`: train nothing, write the results of the runs finished so far. `imports`: results.json
    files of earlier runs of the same study; the runs they hold are not trained again."""
    from smmcl.study import run_study as _run

    return _run(path, out, jobs, report_only=report_only, imports=imports)


def study_plan(path: str | Path, out: str | Path | None = None) -> list[str]:
    """What a study would run, in lines of text; every config is resolved, nothing is trained or written."""
    from smmcl.study.runner import describe_plan

    return describe_plan(path, out)
