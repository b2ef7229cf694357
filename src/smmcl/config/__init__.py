"""Typed experiment configuration: dataclasses (`schema`), loaded from YAML with `base:` chains and dotted
overrides (`loading`), value ranges checked at load (`rules`), named presets as plain data (`presets`).

This package is the bottom layer: it imports nothing from smmcl but `smmcl.errors`, so loading a config pulls
in no data, model or engine module.
"""

from smmcl.config.loading import BASE_KEY, as_config, load_config, load_model_config, parse_overrides, stated, to_dict, to_yaml
from smmcl.config.schema import (
    BackboneConfig,
    BackbonePreset,
    Config,
    CrossModalConfig,
    DataConfig,
    DatasetPreset,
    DecoderConfig,
    EMAConfig,
    EvalConfig,
    LossConfig,
    MODEL_OWNS,
    ModelConfig,
    PhotometricConfig,
    ProjectorConfig,
    TrainConfig,
)

__all__ = [
    "BASE_KEY", "BackboneConfig", "BackbonePreset", "Config", "CrossModalConfig", "DataConfig", "DatasetPreset",
    "DecoderConfig", "EMAConfig", "EvalConfig", "LossConfig", "MODEL_OWNS", "ModelConfig", "PhotometricConfig", "ProjectorConfig",
    "TrainConfig", "as_config", "load_config", "load_model_config", "parse_overrides", "stated", "to_dict", "to_yaml",
]
