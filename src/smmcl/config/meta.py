"""A dataset's own description, `ROOT/meta.json` (written by `smmcl data synth`), as config layers.

Four of its values say what the data *is* (`STATED`: classes, their number, the auxiliary folder and the raw value
mapped to 1.0); training against other ones mislabels or misscales every image. `load_config` reads them for a
config file (`dataset_meta`, smmcl.config.loading) as a layer over the dataset preset and under the config files
and overrides (`stated_layer`): they fill what the config leaves unset, and

- a config file (or a named dataset preset) that contradicts one is refused, naming the key and both values;
- an explicit override wins, with a `ConfigWarning` naming the key, meta.json's value and the value used.

Its other values (palette, folder names, ignore index) describe the layout: `smmcl data check` takes them too
(`meta_layer`) for a folder it is given without a preset. A training config is left to state those itself, so
that it resolves alike whether the data exists yet or not (a study settles its configs before generating data).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict, Optional

from smmcl.errors import ConfigError, ConfigWarning, DatasetError
from smmcl.files import read_text

# The auxiliary modality of each built-in kind, as `data.aux_kind` names it.
_AUX_KIND = {"Depth": "depth", "Thermal": "thermal", "HHA": "hha"}
# The dotted keys whose meta.json value a config may not silently contradict.
STATED = ("data.class_names", "model.num_classes", "data.aux_dir", "data.aux_max")


def read_meta(root: str | Path) -> Optional[dict]:
    """The parsed `ROOT/meta.json`, or None when there is none."""
    path = Path(root) / "meta.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(read_text(path, "a JSON object describing the dataset"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return meta


def meta_layer(meta: dict) -> Dict[str, Any]:
    """Config values a `meta.json` fixes: classes (and so `model.num_classes`), palette, folders, aux range."""
    data: Dict[str, Any] = {}
    for key in ("class_names", "palette", "rgb_dir", "aux_dir", "label_dir", "ignore_index", "aux_max"):
        if key in meta:
            data[key] = meta[key]
    if meta.get("aux_dir") in _AUX_KIND:
        data["aux_kind"] = _AUX_KIND[meta["aux_dir"]]
    layer: Dict[str, Any] = {"data": data}
    if isinstance(meta.get("class_names"), list):
        layer["model"] = {"num_classes": len(meta["class_names"])}
    return layer


def stated_layer(meta: dict) -> Dict[str, Any]:
    """The `STATED` values of a meta.json as a config layer, with the `data.aux_kind` its aux_dir names."""
    layer: Dict[str, Any] = {}
    for key, value in stated_values(meta).items():
        section, name = key.split(".")
        layer.setdefault(section, {})[name] = value
    if meta.get("aux_dir") in _AUX_KIND:
        layer.setdefault("data", {})["aux_kind"] = _AUX_KIND[meta["aux_dir"]]
    return layer


def stated_values(meta: dict) -> Dict[str, Any]:
    """The `STATED` keys a meta.json gives a value for, dotted key -> value."""
    layer = meta_layer(meta)
    out = {}
    for key in STATED:
        section, name = key.split(".")
        if name in layer.get(section, {}):
            out[key] = layer[section][name]
    return out


def reconcile(path: Path, stated: Dict[str, Any], config: Dict[str, tuple[Any, str]], overrides: Dict[str, Any],
              palette: Optional[list] = None) -> None:
    """Refuse a config value (key -> (value, where it was set)) that contradicts meta.json's `stated` one; warn of
    an override that does (it is used). Keys neither sets are left to meta.json. Every contradiction is named in one
    error."""
    clashes: list = []
    count = overrides.get("model.num_classes")
    lists = {"data.class_names": stated.get("data.class_names"), "data.palette": palette}  # `palette`: meta.json's
    per_class = [k for k, v in lists.items() if v and k not in overrides and count is not None and len(v) != count]
    if per_class:
        # The dataset's names (and colours) stay while the count departs: said as such, not as names "given with
        # overrides" (trial 17 D-synth-k).
        keys = " and ".join(f"{k}=[...]" for k in per_class)
        raise ConfigError(f"model.num_classes={count!r} (override) departs from the {len(lists[per_class[0]])} "
                          f"classes {path} gives: give {keys} with {count} entries as well ([] for none), or leave "
                          f"model.num_classes to the dataset")
    for key, want in stated.items():
        if key in overrides:
            if overrides[key] != want:
                warnings.warn(f"{key}={overrides[key]!r} (override) departs from {path}, which says {key}={want!r}; "
                              f"the override is used", ConfigWarning, stacklevel=2)
            continue
        if key in config and config[key][0] != want:  # 10000 (JSON) == 10000.0 (YAML)
            clashes.append((key, want))
    if not clashes:
        return
    said = []
    for key, want in clashes:
        value, origin = config[key]
        unset = (" (unset: each image scaled by its file type's maximum, which is 255 only for 8-bit files)"
                 if key == "data.aux_max" and value is None else "")
        said.append(f"{origin}: {key}={value!r}{unset} contradicts {path}, which says {key}={want!r}")
    clear = (" (data.class_names: [] clears a base config's names)" if any(k == "data.class_names" for k, _ in clashes)
             else "")
    sets = ", ".join(f"{key}: {json.dumps(want)}" for key, want in clashes)
    keys = ", ".join(f"{key}=..." for key, _ in clashes)
    # Every clash at once (trial 15 TH1: fixed one by one, each rerun found the next). "Leave it out" alone fails
    # where a base config sets the key (trial 7 #158b): name the value that works.
    raise ConfigError(f"{'; '.join(said)}; set {sets} in the config (or leave the "
                      f"{'key' if len(clashes) == 1 else 'keys'} out where no base config sets "
                      f"{'it' if len(clashes) == 1 else 'them'}){clear}, or give {keys} as "
                      f"{'an override' if len(clashes) == 1 else 'overrides'} to train with "
                      f"{'another value' if len(clashes) == 1 else 'other values'} anyway")
