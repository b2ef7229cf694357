"""Weights in and out: outside checkpoint formats, released SMMCL models, and our safetensors format."""

from .loading import LoadReport, load_backbone_weights, load_official_smmcl, load_weights
from .pretrained import load_pretrained, read_pretrained_config, save_pretrained

__all__ = [
    "LoadReport",
    "load_backbone_weights",
    "load_official_smmcl",
    "load_pretrained",
    "load_weights",
    "read_pretrained_config",
    "save_pretrained",
]
