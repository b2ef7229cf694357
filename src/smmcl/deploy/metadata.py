"""What an exported ONNX file says about itself, so that a deployed model needs nothing else.

Stored as the ONNX model's `metadata_props` (strings; ONNX Runtime returns them from
`session.get_modelmeta().custom_metadata_map`):

    smmcl_format    "smmcl-onnx/1"
    smmcl_version   the exporting smmcl's version
    num_classes     K, the channels of the `logits` output
    class_names     JSON list of K names
    palette         JSON list of K [r, g, b] colours
    ignore_index    the label value that marks unlabelled pixels in the training data
    preprocessing   JSON: mean, std, aux_max, rgb_order, rgb_scale, layout (`smmcl.data.preprocess`)
    inputs          a one-line description of `rgb`, `aux` and `logits`
    config          JSON of the full training config
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from smmcl.config import Config, load_config, to_dict
from smmcl.data.classes import class_names, dataset_palette
from smmcl.data.preprocess import Preprocessing
from smmcl.errors import CheckpointError, ConfigError

FORMAT = "smmcl-onnx/1"
INPUTS = ("rgb: N x 3 x H x W float32, aux: N x 3 x H x W float32, both normalised as `preprocessing` says; "
          "logits: N x K x H x W float32 (argmax over K = class id)")


@dataclass(frozen=True)
class OnnxMetadata:
    num_classes: int
    class_names: List[str]
    palette: List[List[int]]
    ignore_index: int
    preprocessing: Preprocessing
    config: Config
    smmcl_version: str


def metadata_for(cfg: Config, trained_on: str = "", trained: Optional[Preprocessing] = None) -> Dict[str, str]:
    """The metadata strings of an export of a model trained with `cfg` (and, as its weights name them, the digests
    of the images it was trained on: `smmcl.data.fingerprint`; and the type and largest value of its auxiliary
    images, `trained`: `Preprocessing.aux_dtype`, `aux_top`)."""
    from smmcl import __version__

    k = cfg.model.num_classes
    names = class_names(cfg)
    return {
        "smmcl_format": FORMAT,
        "smmcl_version": __version__,
        "num_classes": str(k),
        "class_names": json.dumps(names),
        "palette": json.dumps([list(c) for c in dataset_palette(cfg.data.class_names, cfg.data.palette, k)]),
        "ignore_index": str(cfg.data.ignore_index),
        "preprocessing": Preprocessing.from_data_config(cfg.data, *((trained.aux_dtype, trained.aux_top)
                                                                   if trained is not None else ())).to_json(),
        "inputs": INPUTS,
        "config": json.dumps(to_dict(cfg), sort_keys=True),
        **({"trained_on": trained_on} if trained_on else {}),
    }


def parse_metadata(props: Dict[str, str], source: object) -> OnnxMetadata:
    """`OnnxMetadata` from the strings of an export; a file smmcl did not write is a named error."""
    if props.get("smmcl_format") != FORMAT:
        found = props.get("smmcl_format")
        raise CheckpointError(f"{source} is not an smmcl ONNX export ({'format ' + repr(found) if found else 'no smmcl metadata'}; "
                              f"expected {FORMAT}); write one with `smmcl export`")
    try:
        cfg = load_config(json.loads(props["config"]))
        return OnnxMetadata(int(props["num_classes"]), json.loads(props["class_names"]), json.loads(props["palette"]),
                            int(props["ignore_index"]), Preprocessing.from_json(props["preprocessing"]), cfg,
                            props.get("smmcl_version", "?"))
    except (KeyError, ValueError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{source}: smmcl metadata is incomplete or damaged ({type(exc).__name__}: {exc})") from None


def read_metadata(path: str | Path) -> OnnxMetadata:
    """The metadata of an ONNX file, read without loading its weights (and without the `onnx` package)."""
    from smmcl.model_file import read_onnx_header

    try:
        props, _ = read_onnx_header(path)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable ONNX file ({exc})") from None
    return parse_metadata(props, path)
