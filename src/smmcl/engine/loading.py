"""Trained models for PyTorch from model files (`smmcl.model_file`): smmcl weights and training checkpoints, which
carry their config, and released SMMCL checkpoints, which take one."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Tuple

from smmcl.config import MODEL_OWNS, Config, load_config, stated, to_dict
from smmcl.data.classes import dataset_palette
from smmcl.errors import AuxUnitsWarning, CheckpointError, ConfigWarning, DatasetError, HeldOutWarning
from smmcl.model_file import ModelFile, open_model_file

if TYPE_CHECKING:  # the config rules below serve ONNX exports too, which run without PyTorch
    import torch


def load_trained(cfg: Config, checkpoint: str | Path | ModelFile, device: str | torch.device | None = None) -> torch.nn.Module:
    """A model with trained weights, in eval mode: from smmcl weights (which carry their own model config), a
    training checkpoint (model built from `cfg`; the weight average when the run kept one, `train.ema`, as in its
    model.safetensors) or a released SMMCL checkpoint (model built from `cfg`). `cfg.train.channels_last` and
    `cfg.train.compile` apply as in training (compiled with frozen weights, for no_grad inference)."""
    from smmcl.engine.checkpoint import evaluation_weights, load_checkpoint
    from smmcl.engine.runtime import resolve_device
    from smmcl.models import build_model
    from smmcl.models.compiled import prepare_model
    from smmcl.weights import load_official_smmcl
    from smmcl.weights.loading import load_state_strict
    from smmcl.weights.pretrained import load_pretrained

    file = checkpoint if isinstance(checkpoint, ModelFile) else open_model_file(checkpoint)
    file.backend("torch")  # an ONNX export or a bare state dict is refused here, by name
    dev = resolve_device(cfg.train.device if device is None else device)
    if file.kind == "weights":
        model = load_pretrained(file.path, device=dev)
    else:
        model = build_model(cfg.model)
        if file.kind == "released":
            load_official_smmcl(model, file.path, strict=True)
        else:
            ckpt = file.checkpoint if file.checkpoint is not None else load_checkpoint(file.path)
            load_state_strict(model, evaluation_weights(ckpt), str(file.path))
    # Compiled for inference: weights frozen into the graph; the wrapper forwards attribute access.
    return prepare_model(model.to(dev).eval(), channels_last=cfg.train.channels_last, compile=cfg.train.compile, freeze=True)


def check_owned_stated(file: ModelFile, source, overrides: Sequence[str], where: str, units_fix: str = "") -> None:
    """Refuse a config (`source`: a YAML path or a dict) or `overrides` that state other `MODEL_OWNS` values than the
    model file, naming the key; judged before the config is loaded, which would refuse it in other words (trial 16
    #272, trial 17 E16: "model.num_classes=7" answered of class names). `units_fix`: said of `data.aux_max`."""
    own = file.config
    if own is None:
        return
    said = stated(source, overrides)
    mine = stated(to_dict(own), dataset_meta=False)
    if said.get("data.palette"):  # colours compared as drawn: an unset palette draws its classes' built-in one
        k, names = own.model.num_classes, own.data.class_names
        said["data.palette"] = [list(c) for c in dataset_palette(names, said["data.palette"], k)]
        mine["data.palette"] = [list(c) for c in dataset_palette(names, own.data.palette, k)]
    for key in MODEL_OWNS:
        # An empty list states nothing (no names, a generated palette); null aux_max does state the dtype's maximum.
        if key in said and said[key] != [] and said[key] != mine[key]:
            fix = units_fix if key == "data.aux_max" else ""
            raise CheckpointError(f"{file.path} was trained with {key}={mine[key]!r} but {where} gives {key}={said[key]!r}: "
                                  f"a model's classes, palette and input scaling come from its file; give a config of "
                                  f"its own dataset, or none (the file carries one){fix}")


def model_and_config(checkpoint: str | Path | ModelFile, config: Config | str | Path | None = None,
                     overrides: Sequence[str] = (), device: str | torch.device | None = None) -> Tuple[torch.nn.Module, Config]:
    """A trained model and the config it runs under: `config` (a Config, or a YAML file) replaces the one that
    weights files and training checkpoints carry (a released checkpoint needs one); `overrides` apply to either."""
    file = checkpoint if isinstance(checkpoint, ModelFile) else open_model_file(checkpoint)
    if isinstance(config, Config):
        cfg = load_config(to_dict(config), overrides) if overrides else config
    else:
        cfg = load_config(config if config is not None else to_dict(file.require_config()), overrides)
    return load_trained(cfg, file, device=device), cfg


# A config given to run a model (predict --config) sets how it runs: `eval.*` (the inference protocol) and these
# `train.*` switches; what the model file fixes is `smmcl.config.MODEL_OWNS`.
RUNTIME_KEYS = ("device", "precision", "channels_last", "compile")


def config_for_model(file: ModelFile, config: Config | str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """The config to predict with: the model file's own, with `eval.*` and the `RUNTIME_KEYS` of `config` and
    `overrides`. A config (or override) that says other `MODEL_OWNS` values than the file is refused, naming the
    key: labels would be drawn with another dataset's names and colours, and inputs scaled to another range. A
    released checkpoint carries no config: the one given is used whole."""
    own = file.config
    if own is None or config is None and not overrides:
        if config is None:
            return file.require_config()  # the file's own, or a named error for a released checkpoint without one
        return load_config(to_dict(config) if isinstance(config, Config) else config, overrides)
    source = to_dict(config) if isinstance(config, Config) else config if config is not None else to_dict(own)
    where = "an override" if config is None else "the config given" if isinstance(config, Config) else f"the config {config}"
    check_owned_stated(file, source, overrides, where, "; for frames in other units pass aux_scale instead")
    given = load_config(source, overrides)  # (trial 16 #272: model.num_classes=3 was answered of class names)
    merged = to_dict(own)
    merged["eval"] = to_dict(given)["eval"]
    merged["train"].update({k: getattr(given.train, k) for k in RUNTIME_KEYS})
    return load_config(merged)


def check_dataset_classes(file: ModelFile, cfg: Config) -> None:
    """The dataset at `cfg.data.root` against the model's classes: a meta.json naming other classes (or the same in
    another order) is refused; another folder than the one the model was trained on without a meta.json gets a
    `ConfigWarning`: nothing then says its classes, and its label ids are scored as the model's."""
    from smmcl.config.meta import read_meta

    own = file.config
    if own is None or not Path(cfg.data.root).is_dir():
        return
    meta = read_meta(cfg.data.root)
    if meta is not None:
        # The dataset says its classes: they must be the model's, in the model's order (ids are scored by position).
        theirs, mine = meta.get("class_names"), list(own.data.class_names)
        if isinstance(theirs, list) and mine and list(theirs) != mine:
            raise CheckpointError(f"{Path(cfg.data.root) / 'meta.json'} names the classes {theirs} but {file.path} was "
                                  f"trained on {mine}: its label ids would be scored as other classes; evaluate the "
                                  f"model on data of its own classes")
        return
    if Path(own.data.root).resolve() == Path(cfg.data.root).resolve():
        return
    names = list(own.data.class_names)
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    warnings.warn(f"data.root {cfg.data.root} is not the dataset {file.path} was trained on ({own.data.root}) and has "
                  f"no meta.json naming its classes: its label ids are scored as the model's "
                  f"{own.model.num_classes} classes ({shown}); if they mean other classes the scores are meaningless "
                  f"(a meta.json with its class names would be checked against the model's)", ConfigWarning,
                  stacklevel=3)


def warn_trained_on(file: ModelFile, cfg: Config, split: str, subset: Optional[str] = None) -> None:
    """A `HeldOutWarning` when images of `split` are byte for byte images the model was trained on (its weights'
    `trained_on` digests, `smmcl.data.fingerprint`), in whatever folder and under whatever name; those its own
    dataset's train list names too are left to the evaluation's own warning (`shared_with_train`)."""
    from smmcl.data.dataset import shared_with_train
    from smmcl.data.fingerprint import decode, split_digests

    trained = decode(file.metadata.get("trained_on"))
    if not trained:
        return  # a file from before the digests, a checkpoint or a model saved outside a run: nothing to compare
    digests = split_digests(cfg.data, split, subset)
    listed = set(shared_with_train(cfg.data, split, list(digests)))
    seen = [name for name, digest in digests.items() if digest in trained and name not in listed]
    if seen:
        warnings.warn(f"{len(seen)} of the {len(digests)} {split} images scored in {cfg.data.root} are byte for byte "
                      f"images {file.path} was trained on (e.g. {seen[0]!r}): their scores are not of held-out "
                      f"images", HeldOutWarning, stacklevel=3)


def check_aux_dtype(file: ModelFile, cfg: Config, split: str, subset: Optional[str] = None) -> None:
    """Refuse a split whose auxiliary files are of another type than those of a model trained with `data.aux_max`
    unset (its `aux_dtype` metadata): each file is scaled by its type's maximum, so another type is another scale
    (16-bit depth scored by a model trained on 8-bit thermal). From the files' headers; predict and the Predictor
    check frames by the same rule (`smmcl.data.modality.check_aux`)."""
    from smmcl.data.dataset import aux_dtypes, split_names

    # Through the one reading of what a model file records: an ONNX export keeps it in its preprocessing.
    trained = file.preprocessing.aux_dtype if file.config is not None else None
    if not trained or cfg.data.aux_max is not None:
        return
    for dtype, path in aux_dtypes(cfg.data, split, split_names(cfg.data, split, subset)).items():
        if dtype != trained:
            raise DatasetError(f"{path}: {dtype} auxiliary image for {file.path}, trained on {trained} ones "
                               f"with data.aux_max unset (each image scaled by its type's maximum): another bit depth "
                               f"or modality than it was trained on")


def check_aux_range(file: Optional[ModelFile], data, split: str, subset: Optional[str] = None,
                    done: str = "scored as given") -> None:
    """An `AuxUnitsWarning` when the auxiliary values of a split's images, sampled as training samples its own, stay
    under a tenth of the model's `aux_max` or go over ten times the largest its training images held (its `aux_top`):
    other units that still fit the scale (centimetres for millimetres, or the reverse). The rule of predict and the
    Predictor (`smmcl.data.modality.RangeWatch`), which judge the frames they are given. `data`: the `DataConfig`
    of the images scored; `done`: what is done with them all the same (eval scores them; export calibrates on them)."""
    from smmcl.data.dataset import sample_aux_range, split_names

    if data.aux_max is None:
        return
    watch = sample_aux_range(data, split, split_names(data, split, subset), aux_range_watch(file, data.aux_max))
    warn_aux_range(watch, f"{split} images sampled", done)


def aux_range_watch(file: Optional[ModelFile], aux_max: float):
    """The `RangeWatch` stored images are judged by for the model of `file`: its `aux_max`, and the largest value its
    training images held where it records one."""
    from smmcl.data.modality import RangeWatch

    trained = file.preprocessing if file is not None and file.config is not None else None
    return RangeWatch(aux_max, trained_top=trained.aux_top if trained is not None else None)


def warn_aux_range(watch, unit: str, done: str) -> None:
    """`check_aux_range`'s note on a `watch` that has seen stored images (`unit`: what they are), in its words: the
    remedy converts the files, for these commands take no aux_scale (trial 12 #117: export --int8 said nothing)."""
    problem = watch.problem(for_model=True, unit=unit, files=True)
    if problem is not None:
        warnings.warn(f"{problem}; {done}", AuxUnitsWarning, stacklevel=4)


def check_folder_named(file: ModelFile, data) -> None:
    """Refuse scoring a model on an auxiliary folder named for another modality than it was trained on, as training
    and predict refuse it (trial 12 #238: a depth model scored radiometric thermal from `Thermal/`, which fits a
    millimetre scale). `data`: the `DataConfig` of the images scored."""
    from smmcl.data.names import check_folder_kind, check_rgb_named, folder_kind

    if data.layout != "packed":
        check_rgb_named(data.rgb_dir, "data.rgb_dir names the folder of colour images, data.aux_dir the auxiliary one",
                        what=f"data.rgb_dir={data.rgb_dir!r}")
    kind = file.config.data.aux_kind if file.config is not None else None
    if kind is not None and data.layout != "packed":
        check_folder_kind(data.aux_dir, kind, f"{file.path} was trained on {kind} images",
                          f"score it on {kind} images (or a model trained on {folder_kind(data.aux_dir)} images on "
                          f"these)", what=f"data.aux_dir={data.aux_dir!r}")


def check_scored_data(file: ModelFile, cfg: Config, split: str, subset: Optional[str] = None,
                      where: str = "the evaluation's config") -> None:
    """Everything that decides whether a model file may be scored (or its features read) on a config's split, one
    list for eval and `analyze features` alike: the classes and input scaling it owns, the dataset's class names,
    whether it trained on that split, its images' type and their range against the model's training range."""
    from smmcl.data.dataset import warn_flat_rgb

    check_model_owned(file, cfg, where)
    check_folder_named(file, cfg.data)
    check_dataset_classes(file, cfg)
    warn_trained_on(file, cfg, split, subset)
    check_aux_dtype(file, cfg, split, subset)
    check_aux_range(file, cfg.data, split, subset)
    warn_flat_rgb(cfg.data, split, cfg.model.num_classes, subset=subset)  # label maps as RGB (trial 12 #153-155)


def check_model_owned(file: ModelFile, cfg: Config, where: str = "the config",
                      remedy: str = "evaluate it on data in its own units and classes") -> None:
    """Refuse a resolved config (e.g. `smmcl eval`'s dataset config) that says other `MODEL_OWNS` values than the
    model file: its scores would be of inputs scaled, or classes named, as the model was not trained."""
    own = file.config
    if own is None:
        return
    k = own.model.num_classes
    mine = {"model.num_classes": k, "data.aux_max": own.data.aux_max, "data.class_names": list(own.data.class_names),
            "data.palette": [list(c) for c in dataset_palette(own.data.class_names, own.data.palette, k)],
            "data.aux_kind": own.data.aux_kind}
    theirs = {"model.num_classes": cfg.model.num_classes, "data.aux_max": cfg.data.aux_max,
              "data.aux_kind": cfg.data.aux_kind,
              "data.class_names": list(cfg.data.class_names) or mine["data.class_names"],
              "data.palette": [list(c) for c in dataset_palette(cfg.data.class_names or own.data.class_names,
                                                                cfg.data.palette, cfg.model.num_classes)]}
    for key in MODEL_OWNS:
        if theirs[key] != mine[key]:
            raise CheckpointError(f"{file.path} was trained with {key}={mine[key]!r} but {where} gives "
                                  f"{key}={theirs[key]!r}: a model's classes and input scaling come from its file; "
                                  f"{remedy}")
