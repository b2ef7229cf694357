"""Configs from YAML files (with `base:` chains), mappings and dotted overrides, into the typed `Config`.

Unknown keys, values of the wrong type and choices outside their list are rejected with a `ConfigError` that
names the file (or the override) and the offending key; values out of range by `smmcl.config.rules`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from smmcl.config.meta import meta_layer, read_meta, reconcile, stated_layer, stated_values
from smmcl.config.presets import preset_layer
from smmcl.config.rules import check_values
from smmcl.config.schema import Config, ModelConfig
from smmcl.errors import ConfigError


def _explain(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None)
    msg = (getattr(exc, "msg", None) or str(exc)).splitlines()[0]
    if "is not a ListConfig" in msg:  # OmegaConf's words for a scalar given where the schema holds a list
        msg = f"expected a list such as [a, b], got {getattr(exc, 'value', None)!r}"
    elif "is not Optional" in msg:  # null given for a key that always has a value
        msg = "expected a value, not null (an empty list [] where the key holds a list: e.g. no class names)"
    return f"key '{key}': {msg}" if key else msg


def _merge(schema: Any, layer: Any, origin: str) -> DictConfig:
    try:
        return OmegaConf.merge(schema, layer)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{origin}: {_explain(exc)}") from None


def _read_yaml(path: Path) -> Any:
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; a YAML config file is expected (a dataset folder goes in the config, "
                          f"as data.root)")
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
        return _with_bases(OmegaConf.create(copy.deepcopy(dict(source))), "the settings given", Path.cwd(), ())
    raise ConfigError(f"expected a YAML path or a mapping, got {type(source).__name__}")


def parse_overrides(overrides: Sequence[str]) -> DictConfig:
    """Turn `a.b=c` strings into a config layer; values are parsed as YAML."""
    if isinstance(overrides, (str, bytes)):  # one string would be read a character at a time (trial 17 PY09)
        raise ConfigError(f"overrides must be a list of key=value strings, e.g. [{overrides!r}], got a string")
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}': expected key=value, e.g. train.lr=0.001")
        if not item.split("=", 1)[1].strip():  # YAML reads nothing as null (trial 16 #051: "value 'None'")
            raise ConfigError(f"override '{item}': an empty value; give a value after '=' (null to unset a key; "
                              f"an unset shell variable?)")
    layers = []
    for item in overrides:  # one at a time, so an error names the override at fault
        try:
            layers.append(OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as exc:
            raise ConfigError(f"override '{item}': {_explain(exc)}") from None
        except Exception as exc:  # YAML's own errors for a value it cannot parse (`[1,,2]`)
            reason = str(getattr(exc, "problem", None) or exc).splitlines()[0]
            raise ConfigError(f"override '{item}': the value is not valid YAML ({reason})") from None
    return OmegaConf.merge(*layers) if layers else OmegaConf.create({})


_UNSET = object()
_CLEARED = object()


def _stated(layer: Any, key: str) -> Any:
    """The value `layer` gives the dotted `key`, as plain data; `_UNSET` where it gives none, `_CLEARED` where it
    gives an empty class list (no names: it clears a base file's names and states none)."""
    value = OmegaConf.select(layer, key, default=_UNSET)
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    return _CLEARED if value == [] else value


def _with_meta(base: DictConfig, root: str, layers: Layers, overrides: Any, preset: Any) -> Tuple[DictConfig, Optional[dict]]:
    """`base` (schema and preset) with `root`/meta.json merged over it, after `smmcl.config.meta.reconcile` has
    refused the config values that contradict it and warned of the overrides that do; and the meta.json read."""
    meta = read_meta(root)
    if meta is None:
        return base, None
    path = Path(root) / "meta.json"
    # A named dataset's preset states its classes as a config file would; the generic one only has defaults.
    stating = layers if preset in (None, "generic") else [(OmegaConf.create(preset_layer(preset)), f"preset {preset}"), *layers]
    stated = stated_values(meta)
    config = {}
    for key in stated:
        for layer, origin in stating:  # the last layer that sets a key decides it
            value = _stated(layer, key)
            if value is _CLEARED:
                config.pop(key, None)
            elif value is not _UNSET:
                config[key] = (value, origin)
    given = {key: _stated(overrides, key) for key in stated} if overrides is not None else {}
    for key in [k for k, v in given.items() if v is _CLEARED]:
        config.pop(key, None)
    palette = _stated(overrides, "data.palette") if overrides is not None else _UNSET
    reconcile(path, {k: v for k, v in stated.items() if given.get(k) is not _CLEARED}, config,
              {k: v for k, v in given.items() if v is not _UNSET and v is not _CLEARED},
              palette=None if palette is not _UNSET else meta_layer(meta).get("data", {}).get("palette"))
    return _merge(base, stated_layer(meta), str(path)), meta


def _resolve(layers: Layers, overrides: Any = None, dataset_meta: bool = False) -> DictConfig:
    """The layers (then the `overrides` layer) merged in order over the schema, over the dataset preset they name,
    if any, and with `dataset_meta` over the dataset's meta.json between the two."""
    schema = OmegaConf.structured(Config)
    layers = [(_normalise_choices(layer), origin) for layer, origin in layers]
    overrides = _normalise_choices(overrides)
    every = [*layers, (overrides, "override")] if overrides is not None else layers

    def merge_all(start: DictConfig) -> DictConfig:
        for layer, origin in every:
            start = _merge(start, layer, origin)
        return start

    merged = merge_all(schema)
    preset = merged.data.preset
    # The preset (and meta.json) sit under every file and the overrides, so any of them can still change its values.
    base = schema if preset is None else _merge(schema, preset_layer(preset), f"preset {preset}")
    meta = None
    if dataset_meta:
        base, meta = _with_meta(base, merged.data.root, layers, overrides, preset)
    result = merged if base is schema else merge_all(base)
    if meta is not None and not result.data.class_names:  # `[]` states no names: the dataset's own fill them
        names = meta.get("class_names")
        if isinstance(names, list) and len(names) == result.model.num_classes:
            result.data.class_names = names
    return result


def _reads_meta(source: Any, dataset_meta: Optional[bool]) -> bool:
    """`dataset_meta`, where None means: for a config file or none (a run being set up), not for a mapping."""
    return dataset_meta if dataset_meta is not None else source is None or isinstance(source, (str, Path))


def load_config(
    source: Union[str, Path, Mapping[str, Any], DictConfig, None] = None,
    overrides: Sequence[str] = (),
    dataset_meta: Optional[bool] = None,
) -> Config:
    """Load an experiment config (YAML path or mapping, with its chain of `base:` files) and apply dotted overrides.

    `dataset_meta`: read the dataset's own `data.root/meta.json` (`smmcl.config.meta`): its class_names /
    num_classes / aux_dir / aux_max fill what the config leaves unset; a config file contradicting one is refused,
    an override doing so is used with a `ConfigWarning`. None (the default): read
    for a config file or none (a run to set up), not for a mapping (a resolved config, as a model file or a
    checkpoint carries it, records what its run used and is taken as it is)."""
    layers = _layers(source)
    origin = layers[-1][1]
    override_layer = None
    if overrides:
        named = [item for item in overrides if item.split("=", 1)[0].strip() == BASE_KEY]
        if named:
            raise ConfigError(f"override '{named[0]}': a base config is named inside a config file, not as an override")
        override_layer = parse_overrides(overrides)
        origin = f"{origin} with overrides"
    cfg: Config = OmegaConf.to_object(_resolve(layers, override_layer, _reads_meta(source, dataset_meta)))  # type: ignore[assignment]
    check_values(cfg, origin)
    return cfg


def as_config(config: Any, what: str = "config") -> Config:
    """`config` as a `Config`: one as it is, or the YAML file a path names (`load_config`); a TypeError for anything
    else (a dict is a config only through `load_config`, which resolves and checks it)."""
    if isinstance(config, Config):
        return config
    if isinstance(config, (str, os.PathLike)) and str(config):
        return load_config(config)
    raise TypeError(f"{what} must be a Config (smmcl.load_config) or the path of a YAML config, "
                    f"got {type(config).__name__}")


def _flatten(d: Any, prefix: str = "") -> dict:
    if not isinstance(d, dict) or not d:
        return {prefix[:-1]: d} if prefix else {}
    out: dict = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}."))
    return out


def stated(
    source: Union[str, Path, Mapping[str, Any], DictConfig, None] = None,
    overrides: Sequence[str] = (),
    dataset_meta: Optional[bool] = None,
) -> dict:
    """What a config itself says, as dotted key -> value: its files (with their bases), the dataset preset they name,
    meta.json (where `load_config` reads it) and the overrides, not the schema's defaults. A key missing here is one
    the config leaves to the defaults; a resolved config (a mapping such as `to_dict(cfg)`) says every key. Load it
    with `load_config` first: this reads what it says, and checks (and warns of) nothing."""
    override_layer = parse_overrides(overrides) if overrides else None
    layers: list = [layer for layer, _ in _layers(source)] + ([override_layer] if override_layer is not None else [])
    # Where the dataset is and which preset it has, as load_config finds them (meta.json sets neither).
    merged = _resolve([(layer, "config") for layer in layers])
    if _reads_meta(source, dataset_meta):
        meta = read_meta(merged.data.root)
        if meta is not None:
            layers.insert(0, OmegaConf.create(stated_layer(meta)))
    if merged.data.preset is not None:
        layers.insert(0, OmegaConf.create(preset_layer(merged.data.preset)))
    return _flatten(OmegaConf.to_container(OmegaConf.merge(*layers)) if layers else {})


def load_model_config(source: Union[str, Path, Mapping[str, Any], ModelConfig, Config]) -> ModelConfig:
    """Model section from a ModelConfig, a full Config, a YAML path or a mapping.

    A mapping or file with a top-level `model` or `base` key is read as a full experiment config (bases and the
    dataset preset applied, e.g. NYUDv2's 40 classes); otherwise it is read as the model section itself.
    """
    if isinstance(source, ModelConfig):
        return source
    if isinstance(source, Config):
        return source.model
    if source is None:  # a model built from nothing would be the 14-class default, which no one asked for
        raise ConfigError("a model config is needed (a YAML path, a mapping, a ModelConfig or a Config), got None; "
                          "load_config() gives the default one")
    layers = _layers(source)
    if len(layers) > 1 or "model" in layers[0][0]:
        model = OmegaConf.to_object(_resolve(layers)).model  # type: ignore[union-attr]
    else:
        layer, origin = layers[0]
        model = OmegaConf.to_object(_merge(OmegaConf.structured(ModelConfig), _normalise_choices(layer, model_only=True), origin))
    # The model's rows of the one rule table (the rest of a default Config passes them): num_classes=0 never builds.
    check_values(Config(model=model), layers[-1][1])
    return model


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (for checkpoints and JSON)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
