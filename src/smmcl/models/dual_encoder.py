"""Two same-architecture encoders interleaved stage by stage through cross-modal modules (paper Fig. 3)."""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from torch import Tensor, nn

from .cross_modal import CrossModalModule, FusionConv
from .projector import Projector


class DualEncoder(nn.Module):
    """Visible and auxiliary branches, a cross-modal module and a fusion conv after every stage.

    A backbone is any module with `.stages` (applied in order, each B x C x H x W -> B x C_i x H_i x W_i)
    and `.out_channels` (one int per stage).
    """

    def __init__(
        self,
        make_backbone: Callable[[], nn.Module],
        scale: float = 0.5,
        projector_dim: int = 256,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.vis = make_backbone()
        self.aux = make_backbone()
        if list(self.vis.out_channels) != list(self.aux.out_channels):
            raise ValueError("make_backbone must build the same architecture for both branches")
        self.out_channels: List[int] = list(self.vis.out_channels)
        self.in_channels: int = _in_channels(self.vis)
        self.cross_modal = nn.ModuleList(CrossModalModule(c, scale) for c in self.out_channels)
        self.fusions = nn.ModuleList(FusionConv(c) for c in self.out_channels)
        self.projector_vis = Projector(self.out_channels[-1], projector_dim, norm_layer)
        self.projector_aux = Projector(self.out_channels[-1], projector_dim, norm_layer)

    def forward(
        self, rgb: Tensor, aux: Tensor, with_embeddings: bool = False
    ) -> Tuple[List[Tensor], Optional[Tensor], Optional[Tensor]]:
        """Fused features of all stages and, on request, the projector outputs R_vis, R_aux."""
        if aux.shape[1] == 1 and self.in_channels != 1:
            aux = aux.expand(-1, self.in_channels, -1, -1)
        vis = rgb
        fused: List[Tensor] = []
        vis_embed = aux_embed = None
        last = len(self.out_channels) - 1
        for m, (stage_vis, stage_aux, module, fusion) in enumerate(
            zip(self.vis.stages, self.aux.stages, self.cross_modal, self.fusions)
        ):
            vis, aux = stage_vis(vis), stage_aux(aux)
            if with_embeddings and m == last:
                # The released code projects the stage-4 features before the last cross-modal module.
                vis_embed, aux_embed = self.projector_vis(vis), self.projector_aux(aux)
            vis, aux = module(vis, aux)
            fused.append(fusion(vis, aux))
        return fused, vis_embed, aux_embed


def _in_channels(backbone: nn.Module) -> int:
    """Input channels of a backbone: its `in_channels` attribute or its first conv's."""
    if hasattr(backbone, "in_channels"):
        return int(backbone.in_channels)
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f"cannot tell the input channels of {type(backbone).__name__}")
