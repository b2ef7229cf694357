"""A study file: a base config, variants as lists of overrides, seeds; read, typed and checked up front.

    base: configs/demo.yaml            # every path is taken relative to the current folder
    reference: base                    # the variant the others are compared with, seed by seed
    seeds: [0, 1, 2]
    overrides: [train.max_iters=3000]  # applied to every variant (and to the pretraining run)
    variants:
      base:  [loss.cm_weight=0, loss.vis_weight=0, loss.aux_weight=0]
      smmcl: []
    synth:                             # optional: built-in data, generated once when missing
      kind: indoor-rgbd
      root: runs/data/indoor-study
    pretrain:                          # optional: one run whose weights start every variant
      overrides: [loss.cm_weight=0, loss.vis_weight=0, loss.aux_weight=0]
      load: branches                   # all (the default) or the encoder branches only

Every variant's config is loaded when the study is read, so a wrong key fails before hours of training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from smmcl.config import Config, load_config
from smmcl.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass
class SynthSpec:
    """Built-in synthetic data for the study (`smmcl data synth`), written to `root` if it is not there."""

    # The kinds of smmcl.data.synth.KINDS, spelled out for the type (a test keeps them equal).
    kind: Literal["indoor-rgbd", "indoor-rgbd-lit", "night-rgbt"] = "indoor-rgbd"
    root: str = "runs/data/indoor-study"
    num: int = 500
    size: List[int] = field(default_factory=lambda: [120, 160])
    seed: int = 0
    test_fraction: float = 0.2
    # Held out for choosing run lengths and regimes, never for the reported scores.
    val_fraction: float = 0.2


@dataclass
class PretrainSpec:
    """One training run (the study's overrides, then these) whose final weights every variant starts from."""

    overrides: List[str] = field(default_factory=list)
    seed: int = 0
    # Data of its own (e.g. other scenes than the study's); default: the study's data.
    synth: Optional[SynthSpec] = None
    # What every variant takes from it (model.pretrained_parts): all (decoder too: fine-tuning a whole model) or
    # branches (the two encoder branches only, the rest from scratch: the paper's start from ImageNet encoders).
    load: Literal["all", "branches"] = "all"


@dataclass
class StudySpec:
    base: str = ""
    reference: str = ""
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    overrides: List[str] = field(default_factory=list)
    variants: Dict[str, List[str]] = field(default_factory=dict)
    description: str = ""
    synth: Optional[SynthSpec] = None
    pretrain: Optional[PretrainSpec] = None
    # Scores used for the table: the eval split of the base config (never a split that chose anything).
    split: Optional[str] = None


def read_study(path: str | Path) -> StudySpec:
    """A `StudySpec` from YAML: unknown keys, wrong types and inconsistent entries are `ConfigError`s naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study file not found: {path}")
    try:
        raw = OmegaConf.load(path)
        # A training config may name a base config too: its own sections tell it (trial 16 #208).
        if isinstance(raw, DictConfig) and "variants" not in raw and set(raw) & {"model", "train", "data", "loss",
                                                                               "eval", "name"}:
            raise ConfigError(f"{path} is a training config, not a study file: a study names its 'base' config, its "
                              f"'variants' (name -> overrides) and 'seeds' (docs/study.md); train this one with "
                              f"`smmcl train {path}`")
        spec: StudySpec = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(StudySpec), raw))  # type: ignore[assignment]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        msg = (getattr(exc, "msg", None) or str(exc)).splitlines()[0]
        raise ConfigError(f"{path}: {'key ' + repr(key) + ': ' if key else ''}{msg}") from None
    except ConfigError:
        raise
    except Exception as exc:  # YAML syntax errors come in several types
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    _check(spec, path)
    return spec


def _check(spec: StudySpec, path: Path) -> None:
    if not spec.base:
        raise ConfigError(f"{path}: 'base' must name the config every variant starts from")
    if not spec.variants:
        raise ConfigError(f"{path}: 'variants' is empty; give at least the reference and one variant")
    for name in spec.variants:
        if not _NAME.match(name):
            raise ConfigError(f"{path}: variant name {name!r}: use letters, digits and _ . + - (it names a folder)")
    if spec.reference not in spec.variants:
        raise ConfigError(f"{path}: reference {spec.reference!r} is not one of the variants ({', '.join(spec.variants)})")
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds) or any(s < 0 for s in spec.seeds):
        raise ConfigError(f"{path}: seeds must be distinct non-negative integers, got {spec.seeds}")
    for key in ("train.seed", "train.out_dir"):
        for where, items in [("overrides", spec.overrides), *((f"variant {n}", o) for n, o in spec.variants.items())]:
            if any(item.split("=", 1)[0].strip() == key for item in items):
                raise ConfigError(f"{path}: {where} sets {key}; the study sets it for every run")


def variant_config(spec: StudySpec, variant: str, seed: int, run_dir: Path, extra: List[str] = ()) -> Config:
    """The resolved config of one run: base, the study's overrides, the variant's, then the study's own."""
    own = [f"train.seed={seed}", f"train.out_dir={run_dir}", f"name={variant}-seed{seed}", "train.progress=false"]
    if spec.synth is not None:
        own.append(f"data.root={spec.synth.root}")
    return load_config(spec.base, [*spec.overrides, *spec.variants[variant], *extra, *own])


def pretrain_config(spec: StudySpec, run_dir: Path) -> Config:
    """The pretraining run's config: base, the study's overrides, then the pretraining ones."""
    assert spec.pretrain is not None
    own = [f"train.seed={spec.pretrain.seed}", f"train.out_dir={run_dir}", "name=pretrain", "train.progress=false"]
    synth = spec.pretrain.synth or spec.synth
    if synth is not None:
        own.append(f"data.root={synth.root}")
    return load_config(spec.base, [*spec.overrides, *spec.pretrain.overrides, *own])
