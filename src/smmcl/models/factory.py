"""Build a `Segmentor` from a model config through small explicit name -> factory tables."""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Sequence, Union

from torch import nn

from ..config import BackboneConfig, Config, DecoderConfig, ModelConfig, load_model_config
from .cpu_guard import guard_cpu_depthwise
from .dual_encoder import DualEncoder
from .lightham_head import LightHamHead
from .mit import MIT_PRESETS, MiT
from .mlp_head import MLPHead
from .mscan import MSCAN, MSCAN_PRESETS
from .resnet import RESNET_PRESETS, ResNet
from .segmentor import Segmentor

NormLayer = Callable[[int], nn.Module]
ConfigSource = Union[ModelConfig, Config, str, Path, Mapping[str, Any]]


@dataclass(frozen=True)
class BackboneEntry:
    """A backbone family: constructor, named presets (constructor kwargs), the paper's preset and decoder."""

    build: Callable[..., nn.Module]
    presets: Mapping[str, Mapping[str, Any]]
    paper_preset: str
    paper_decoder: str


# A backbone only needs `.stages` and `.out_channels` to slot into the dual encoder.
BACKBONES: Dict[str, BackboneEntry] = {
    "mscan": BackboneEntry(MSCAN, MSCAN_PRESETS, paper_preset="B", paper_decoder="lightham"),
    "mit": BackboneEntry(MiT, MIT_PRESETS, paper_preset="B2", paper_decoder="mlp"),
    "resnet": BackboneEntry(ResNet, RESNET_PRESETS, paper_preset="101", paper_decoder="mlp"),
}

NORMS: Dict[str, NormLayer] = {
    "bn": nn.BatchNorm2d,
    "syncbn": nn.SyncBatchNorm,
}

# BackboneConfig fields that override a preset when set.
_BACKBONE_FIELDS = ("embed_dims", "depths", "mlp_ratios", "drop_path_rate", "num_heads", "sr_ratios", "block")


def _lightham(in_channels: Sequence[int], num_classes: int, cfg: DecoderConfig, norm_layer: NormLayer) -> nn.Module:
    # LightHam normalises with GroupNorm regardless of the model's norm choice (SegNeXt).
    return LightHamHead(
        in_channels,
        num_classes,
        channels=cfg.channels,
        dropout=cfg.dropout,
        ham_rank=cfg.ham_rank,
        train_steps=cfg.ham_train_steps,
        eval_steps=cfg.ham_eval_steps,
        eval_seed=cfg.ham_eval_seed,
        ham_out_norm=cfg.ham_out_norm,
    )


def _mlp(in_channels: Sequence[int], num_classes: int, cfg: DecoderConfig, norm_layer: NormLayer) -> nn.Module:
    return MLPHead(in_channels, num_classes, channels=cfg.channels, dropout=cfg.dropout, norm_layer=norm_layer)


DECODERS: Dict[str, Callable[[Sequence[int], int, DecoderConfig, NormLayer], nn.Module]] = {
    "lightham": _lightham,
    "mlp": _mlp,
}


def _lookup(table: Mapping[str, Any], name: Any, what: str) -> Any:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(sorted(table))}")
    return table[name]


def _backbone_config(cfg: Union[BackboneConfig, ConfigSource]) -> BackboneConfig:
    if isinstance(cfg, BackboneConfig):
        return cfg
    return load_model_config(cfg).backbone


def resolve_backbone(cfg: Union[BackboneConfig, ConfigSource]) -> Dict[str, Any]:
    """Constructor arguments of the configured backbone: the preset's values, overridden by set fields."""
    bcfg = _backbone_config(cfg)
    entry: BackboneEntry = _lookup(BACKBONES, bcfg.name, "backbone")
    params: Dict[str, Any] = {}
    if bcfg.preset is not None:
        preset = entry.paper_preset if bcfg.preset == "auto" else bcfg.preset
        params = copy.deepcopy(dict(_lookup(entry.presets, preset, f"{bcfg.name} preset")))
    accepted = inspect.signature(entry.build).parameters
    for key in _BACKBONE_FIELDS:
        value = getattr(bcfg, key)
        if value is None:
            continue
        if key not in accepted:
            raise ValueError(f"backbone {bcfg.name!r} does not take {key!r}")
        params[key] = list(value) if isinstance(value, (list, tuple)) else value
    missing = [
        name
        for name, p in accepted.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and name not in params
        and name != "norm_layer"
    ]
    if missing:
        raise ValueError(
            f"backbone {bcfg.name!r} needs {', '.join(missing)}: set them or choose a preset "
            f"({', '.join(sorted(entry.presets))})"
        )
    return params


def decoder_name(cfg: ModelConfig) -> str:
    """The configured decoder, with "auto" resolved to the backbone's paper decoder."""
    if cfg.decoder.name != "auto":
        return cfg.decoder.name
    return _lookup(BACKBONES, cfg.backbone.name, "backbone").paper_decoder


def build_model(config: ConfigSource) -> Segmentor:
    """Segmentor from a ModelConfig, a full Config, a YAML path or a nested dict."""
    cfg = load_model_config(config)
    norm_layer: NormLayer = _lookup(NORMS, cfg.norm, "norm")
    entry: BackboneEntry = _lookup(BACKBONES, cfg.backbone.name, "backbone")
    make_decoder = _lookup(DECODERS, decoder_name(cfg), "decoder")
    params = resolve_backbone(cfg.backbone)
    # The norm is injected wherever the backbone has batch norms; MiT only uses LayerNorm.
    if "norm_layer" in inspect.signature(entry.build).parameters:
        params["norm_layer"] = norm_layer

    def make_backbone() -> nn.Module:
        return entry.build(**params)

    encoder = DualEncoder(
        make_backbone,
        scale=cfg.cross_modal.scale,
        projector_dim=cfg.projector.dim,
        norm_layer=norm_layer,
        projector_stage=cfg.projector.stage,
    )
    decoder = make_decoder(encoder.out_channels, cfg.num_classes, cfg.decoder, norm_layer)
    model = Segmentor(encoder, decoder, cfg.num_classes)
    guard_cpu_depthwise(model)
    return model
