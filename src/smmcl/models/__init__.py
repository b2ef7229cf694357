"""Models: MSCAN backbone, cross-modal dual encoder, projectors, decoders and the model factory."""

from .cross_modal import CrossModalModule, FusionConv
from .dual_encoder import DualEncoder
from .factory import BACKBONES, DECODERS, NORMS, build_model, resolve_backbone
from .lightham_head import LightHamHead
from .mlp_head import MLPHead
from .mscan import MSCAN, MSCAN_PRESETS
from .projector import Projector
from .segmentor import Segmentor

__all__ = [
    "BACKBONES",
    "DECODERS",
    "NORMS",
    "CrossModalModule",
    "DualEncoder",
    "FusionConv",
    "LightHamHead",
    "MLPHead",
    "MSCAN",
    "MSCAN_PRESETS",
    "Projector",
    "Segmentor",
    "build_model",
    "resolve_backbone",
]
