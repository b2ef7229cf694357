"""A dataset's own description, `meta.json` (written by `smmcl data synth`), as a config layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

from smmcl.errors import DatasetError

# The auxiliary modality of each built-in kind, as `data.aux_kind` names it.
_AUX_KIND = {"Depth": "depth", "Thermal": "thermal", "HHA": "hha"}


def read_meta(root: str | Path) -> Optional[dict]:
    """The parsed `ROOT/meta.json`, or None when there is none."""
    path = Path(root) / "meta.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
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
    if "class_names" in meta:
        layer["model"] = {"num_classes": len(meta["class_names"])}
    return layer
