"""Configs from YAML files (with `base:` chains), mappings and dotted overrides, into the typed `Config`.

Unknown keys, values of the wrong type and choices outside their list are rejected with a `ConfigError` that
names the file (or the override) and the offending key; values out of range by `smmcl.config.rules`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, List, Mapping, Sequence, Tuple, Union

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from smmcl.config.presets import preset_layer
from smmcl.config.rules import check_values
from smmcl.config.schema import Config, ModelConfig
from smmcl.errors import ConfigError


def _explain(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None)
    msg = (getattr(exc, "msg", None) or str(exc)).splitlines()[0]
    return f"key '{key}': {msg}" if key else msg


def _merge(schema: Any, layer: Any, origin: str) -> DictConfig:
    try:
        return OmegaConf.merge(schema, layer)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{origin}: {_explain(exc)}") from None


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = OmegaConf.load(path)
    except Exception as exc:  # yaml syntax errors come in several exception types
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, DictConfig):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if len(data) == 0:
        # All defaults would be the paper's full model at 480x640, batch 16: never what an empty file meant.
        raise ConfigError(f"{path}: the config is empty; start from one under configs/ (e.g. configs/demo.yaml)")
    return data


# A config file may start from another: `base: PATH` names it, relative to the file that says so (in a mapping
# given to load_config, relative to the current folder). The base is read first, with its own base, and the
# file is merged over it with OmegaConf's merge: mappings merge key by key, lists and values replace
# (docs/configuration.md). The key is read here and never reaches the Config, so a run's config.yaml and a weights
# file's embedded config hold every resolved value and no `base`.
BASE_KEY = "base"

Layers = List[Tuple[DictConfig, str]]


def _with_bases(layer: DictConfig, origin: str, folder: Path, chain: Tuple[Path, ...]) -> Layers:
    """The layer and its chain of bases as (layer, where it came from), the deepest base first."""
    if BASE_KEY not in layer:
        return [(layer, origin)]
    base = layer[BASE_KEY]
    del layer[BASE_KEY]
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{origin}: key '{BASE_KEY}': expected the path of one YAML config (relative to this file), "
                          f"got {OmegaConf.to_container(base) if isinstance(base, (DictConfig, ListConfig)) else base!r}")
    path = folder / base
    shown = Path(os.path.normpath(path))
    if any(path.resolve() == seen.resolve() for seen in chain):
        cycle = " -> ".join(str(Path(os.path.normpath(p))) for p in (*chain, path))
        raise ConfigError(f"config bases form a cycle: {cycle}")
    if not path.is_file():
        raise ConfigError(f"{origin}: base config {base!r} not found (looked for {shown})")
    return [*_with_bases(_read_yaml(shown), str(shown), path.parent, (*chain, path)), (layer, origin)]


def _normalise_choices(layer: Any, model_only: bool = False) -> Any:
    """Spellings that mean one of the typed choices: YAML reads `preset: 101` as a number, and dataset preset names
    are taken in any case. Everything else is left to the types."""
    if not isinstance(layer, DictConfig):
        return layer
    model = layer if model_only else layer.get("model")
    backbone = model.get("backbone") if isinstance(model, DictConfig) else None
    if isinstance(backbone, DictConfig):
        preset = backbone.get("preset")
        if isinstance(preset, int) and not isinstance(preset, bool):
            backbone.preset = str(preset)
    data = None if model_only else layer.get("data")
    if isinstance(data, DictConfig) and isinstance(data.get("preset"), str):
        data.preset = data.preset.lower()
    return layer


def _layers(source: Union[str, Path, Mapping[str, Any], DictConfig, None]) -> Layers:
    """The config layers of a source, bases first; each a fresh copy, so the caller's mapping is never changed."""
    if source is None:
        return [(OmegaConf.create({}), "defaults")]
    if isinstance(source, (str, Path)):
        path = Path(source)
        return _with_bases(_read_yaml(path), str(source), path.parent, (path,))
    if isinstance(source, DictConfig):
        return _with_bases(copy.deepcopy(source), "config", Path.cwd(), ())
    if isinstance(source, Mapping):
        return _with_bases(OmegaConf.create(copy.deepcopy(dict(source))), "config dict", Path.cwd(), ())
    raise ConfigError(f"expected a YAML path or a mapping, got {type(source).__name__}")


def parse_overrides(overrides: Sequence[str]) -> DictConfig:
    """Turn `a.b=c` strings into a config layer; values are parsed as YAML."""
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}': expected key=value, e.g. train.lr=0.001")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"overrides: {_explain(exc)}") from None


def _resolve(layers: Layers) -> DictConfig:
    """The layers merged in order over the schema, and over the dataset preset they name, if any."""
    schema = OmegaConf.structured(Config)
    layers = [(_normalise_choices(layer), origin) for layer, origin in layers]

    def merge_all(start: DictConfig) -> DictConfig:
        for layer, origin in layers:
            start = _merge(start, layer, origin)
        return start

    merged = merge_all(schema)
    if merged.data.preset is None:
        return merged
    # The preset sits under every file and the overrides, so any of them can still change its values.
    return merge_all(_merge(schema, preset_layer(merged.data.preset), f"preset {merged.data.preset}"))


def load_config(
    source: Union[str, Path, Mapping[str, Any], DictConfig, None] = None,
    overrides: Sequence[str] = (),
) -> Config:
    """Load an experiment config (YAML path or mapping, with its chain of `base:` files) and apply dotted overrides."""
    layers = _layers(source)
    origin = layers[-1][1]
    if overrides:
        named = [item for item in overrides if item.split("=", 1)[0].strip() == BASE_KEY]
        if named:
            raise ConfigError(f"override '{named[0]}': a base config is named inside a config file, not as an override")
        layers.append((parse_overrides(overrides), "override"))
        origin = f"{origin} with overrides"
    cfg: Config = OmegaConf.to_object(_resolve(layers))  # type: ignore[assignment]
    check_values(cfg, origin)
    return cfg


def load_model_config(source: Union[str, Path, Mapping[str, Any], ModelConfig, Config]) -> ModelConfig:
    """Model section from a ModelConfig, a full Config, a YAML path or a mapping.

    A mapping or file with a top-level `model` or `base` key is read as a full experiment config (bases and the
    dataset preset applied, e.g. NYUDv2's 40 classes); otherwise it is read as the model section itself.
    """
    if isinstance(source, ModelConfig):
        return source
    if isinstance(source, Config):
        return source.model
    layers = _layers(source)
    if len(layers) > 1 or "model" in layers[0][0]:
        return OmegaConf.to_object(_resolve(layers)).model  # type: ignore[union-attr]
    layer, origin = layers[0]
    return OmegaConf.to_object(_merge(OmegaConf.structured(ModelConfig), _normalise_choices(layer, model_only=True), origin))


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (for checkpoints and JSON)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
