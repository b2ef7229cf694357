"""Our weights format: safetensors holding the model's tensors and the full resolved config.

A weights file rebuilds its model alone (`load_pretrained`); training checkpoints, which add the
optimizer and RNG state for resuming, are a separate pickle-free `torch.save` format.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from smmcl.config import MODEL_OWNS, Config, ModelConfig, load_config, to_dict
from smmcl.errors import CheckpointError, ConfigError, ConfigWarning

from smmcl.files import atomic_path, check_output_name, container, safetensors_metadata
from smmcl.outputs import check_path, output_file

from .loading import load_state_strict
from .reading import read_file

FORMAT = "smmcl-weights"
FORMAT_VERSION = "1"


def save_pretrained(model: nn.Module, config: Union[Config, ModelConfig], path: Union[str, Path],
                    overwrite: bool = False) -> Path:
    """Write `model`'s weights and its config to a .safetensors file, atomically; earlier smmcl weights there are
    replaced only with `overwrite`."""
    path = Path(path)
    check_output_name(path, "weights")
    # Never over a file smmcl did not write as weights (another library's .safetensors, say), nor over a run's own.
    check_path(path, "save_pretrained")
    _warn_other_config(model, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_file(path, "save_pretrained", ours=_is_smmcl_weights(path), overwrite=overwrite):
        return write_weights(model, config, path)


def _warn_other_config(model: nn.Module, config: Union[Config, ModelConfig]) -> None:
    """A `ConfigWarning` when a model `load_pretrained` read is saved with a config that says other `MODEL_OWNS`
    values than its file did (trial 17 PY10: depth weights saved as a thermal model, which every later check then
    trusted). Warned, not refused: a model fine-tuned since on other classes or images is saved so on purpose."""
    loaded = getattr(model, "smmcl_loaded_from", None)
    if loaded is None or not isinstance(config, Config):
        return
    source, own = loaded
    mine, theirs = to_dict(own), to_dict(config)

    def value(tree: dict, key: str):
        section, name = key.split(".")
        return tree[section][name]

    # An empty list states nothing (no names, the built-in palette).
    differ = [k for k in MODEL_OWNS if value(theirs, k) != value(mine, k) and value(theirs, k) != []]
    if differ:
        shown = "; ".join(f"{k}={value(mine, k)!r} there, {value(theirs, k)!r} here" for k in differ)
        warnings.warn(f"the model was loaded from {source}, whose config differs from the one it is saved with ({shown}): "
                      f"the file written says the latter, and every later check trusts it; unless the model was trained "
                      f"on such inputs since, save it with its own config (smmcl.open_model_file({source!r}).config)",
                      ConfigWarning, stacklevel=3)


def write_weights(model: nn.Module, config: Union[Config, ModelConfig], path: Union[str, Path],
                  trained_on: str = "", aux_dtype: Optional[str] = None, aux_top: Optional[float] = None) -> Path:
    """`save_pretrained` for the command that owns `path` (a training run writing its model.safetensors, listed in
    its folder's manifest): the same file, without the check that keeps other commands off it. `trained_on`: the
    digests of the images it was trained on (`smmcl.data.fingerprint.encode`), kept in the metadata; `aux_dtype`: the
    type of its auxiliary images when `data.aux_max` is unset (`Preprocessing.aux_dtype`); `aux_top`: the largest
    auxiliary value of its training images sampled, when it is set (`Preprocessing.aux_top`)."""
    from safetensors.torch import save_file

    from smmcl import __version__

    path = Path(path)
    check_output_name(path, "weights")
    cfg = config if isinstance(config, Config) else Config(model=config)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    _check_fits(state, cfg, path)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "smmcl_version": __version__,
        "config": json.dumps(to_dict(cfg), sort_keys=True),
        **({"trained_on": trained_on} if trained_on else {}),
        **({"aux_dtype": aux_dtype} if aux_dtype and cfg.data.aux_max is None else {}),
        **({"aux_top": repr(float(aux_top))} if aux_top and cfg.data.aux_max is not None else {}),
    }
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


def _is_smmcl_weights(path: Path) -> bool:
    try:
        return (path.is_file() and container(path) == "safetensors"
                and safetensors_metadata(path).get("format") == FORMAT)
    except CheckpointError:
        return False


def _check_fits(state: dict, cfg: Config, path: Path) -> None:
    """Refuse weights that the config cannot rebuild (a file `load_pretrained` would refuse), before writing them;
    the config's model is built on the meta device: shapes only, no memory."""
    from smmcl.models import build_model

    with torch.device("meta"):
        want = {k: tuple(v.shape) for k, v in build_model(cfg.model).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        differ = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
        raise CheckpointError(f"not writing {path}: the model does not fit the config given with it ({len(differ)} "
                              f"tensors differ, e.g. {differ[0]}: model {got.get(differ[0])}, config "
                              f"{want.get(differ[0])}); save it with the config it was built from")


def read_pretrained_config(path: Union[str, Path]) -> Config:
    """The config embedded in an smmcl weights file."""
    return _config_from(safetensors_metadata(_checked(path)), path)


def _checked(path: Union[str, Path]) -> Path:
    path = Path(path)
    kind = container(path)
    if kind == "onnx":
        raise CheckpointError(f"{path} is an ONNX export, which is run, not loaded as PyTorch weights: use "
                              f"smmcl.Predictor or smmcl.open_model (the weights it was exported from load here)")
    if kind != "safetensors":
        raise CheckpointError(
            f"{path}: smmcl weights are .safetensors files; convert other checkpoints with `smmcl convert`"
        )
    return path


def _config_from(metadata: dict, path: Union[str, Path]) -> Config:
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise CheckpointError(
            f"{path} is a safetensors file but not smmcl weights (no embedded smmcl config); "
            f"convert it with `smmcl convert`"
        )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: weights format version {metadata.get('format_version')!r}, this smmcl reads {FORMAT_VERSION!r}"
        )
    try:
        return load_config(json.loads(metadata["config"]))
    except (ConfigError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: the embedded config is not valid ({exc})") from None


def load_pretrained(path: Union[str, Path], device: Optional[Union[str, torch.device]] = None) -> nn.Module:
    """Rebuild the model of an smmcl weights file from the file alone; returned in eval mode."""
    from smmcl.models import build_model

    state, metadata = read_file(_checked(path))
    cfg = _config_from(metadata, path)
    model = build_model(cfg.model)
    load_state_strict(model, state, str(path), "its embedded config")
    if device is not None:
        model = model.to(device)
    model.smmcl_loaded_from = (str(path), cfg)  # what save_pretrained compares a config given with (PY10)
    return model.eval()
