"""Two same-architecture encoders interleaved stage by stage through cross-modal modules (paper Fig. 3)."""

from __future__ import annotations

from typing import Callable, Iterator, List, Optional, Tuple

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
        projector_stage: int = 4,
    ) -> None:
        super().__init__()
        self.vis = make_backbone()
        self.aux = make_backbone()
        if list(self.vis.out_channels) != list(self.aux.out_channels):
            raise ValueError("make_backbone must build the same architecture for both branches")
        self.out_channels: List[int] = list(self.vis.out_channels)
        self.in_channels: int = _in_channels(self.vis)
        if not 1 <= projector_stage <= len(self.out_channels):
            raise ValueError(f"projector stage must be 1..{len(self.out_channels)}, got {projector_stage}")
        self.projector_stage = projector_stage
        self.cross_modal = nn.ModuleList(CrossModalModule(c, scale) for c in self.out_channels)
        self.fusions = nn.ModuleList(FusionConv(c) for c in self.out_channels)
        width = self.out_channels[projector_stage - 1]
        self.projector_vis = Projector(width, projector_dim, norm_layer)
        self.projector_aux = Projector(width, projector_dim, norm_layer)

    def _stages(self, rgb: Tensor, aux: Tensor) -> Iterator[Tuple[int, Tensor, Tensor, Tensor]]:
        """Per stage m (1-based): the stage outputs F_vis^m, F_aux^m (before the cross-modal module)
        and the fusion feature F_fus^m."""
        if aux.shape[1] == 1 and self.in_channels != 1:
            aux = aux.expand(-1, self.in_channels, -1, -1)
        vis = rgb
        for m, (stage_vis, stage_aux, module, fusion) in enumerate(
            zip(self.vis.stages, self.aux.stages, self.cross_modal, self.fusions), start=1
        ):
            f_vis, f_aux = stage_vis(vis), stage_aux(aux)
            vis, aux = module(f_vis, f_aux)  # Eq. 1-2
            yield m, f_vis, f_aux, fusion(vis, aux)

    def forward(
        self, rgb: Tensor, aux: Tensor, with_embeddings: bool = False
    ) -> Tuple[List[Tensor], Optional[Tensor], Optional[Tensor]]:
        """Fused features of all stages and, on request, the projector outputs R_vis, R_aux."""
        fused: List[Tensor] = []
        vis_embed = aux_embed = None
        for m, f_vis, f_aux, f_fus in self._stages(rgb, aux):
            if with_embeddings and m == self.projector_stage:
                # The released code projects the stage-4 features before the last cross-modal module.
                vis_embed, aux_embed = self.projector_vis(f_vis), self.projector_aux(f_aux)
            fused.append(f_fus)
        return fused, vis_embed, aux_embed

    def stage_features(self, rgb: Tensor, aux: Tensor, stage: int = 4) -> Tuple[Tensor, Tensor]:
        """F_vis^stage, F_aux^stage: the encoder features the paper's Fig. 8 shows (stage 4)."""
        if not 1 <= stage <= len(self.out_channels):
            raise ValueError(f"stage must be 1..{len(self.out_channels)}, got {stage}")
        for m, f_vis, f_aux, _ in self._stages(rgb, aux):
            if m == stage:
                return f_vis, f_aux
        raise AssertionError("unreachable")


def _in_channels(backbone: nn.Module) -> int:
    """Input channels of a backbone: its `in_channels` attribute or its first conv's."""
    if hasattr(backbone, "in_channels"):
        return int(backbone.in_channels)
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f"cannot tell the input channels of {type(backbone).__name__}")
