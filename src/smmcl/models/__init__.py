"""Models: MSCAN, MiT and ResNet backbones, cross-modal dual encoder, projectors, decoders and the model factory."""

from .cross_modal import CrossModalModule, FusionConv
from .dual_encoder import DualEncoder
from .factory import BACKBONES, DECODERS, NORMS, build_model, resolve_backbone
from .lightham_head import LightHamHead
from .mlp_head import MLPHead
from .mit import MIT_PRESETS, MiT
from .mscan import MSCAN, MSCAN_PRESETS
from .projector import Projector
from .resnet import RESNET_PRESETS, ResNet
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
    "MIT_PRESETS",
    "MSCAN",
    "MSCAN_PRESETS",
    "MiT",
    "Projector",
    "RESNET_PRESETS",
    "ResNet",
    "Segmentor",
    "build_model",
    "resolve_backbone",
]
