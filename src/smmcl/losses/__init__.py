"""Training objectives: Eq. 7 (`Objective`), SMMCL (Sec. 3.2, Eq. 3-6) and the Table 6 baselines."""

from .contrastive import contrastive_terms, info_nce, label_masks
from .objective import CONTRASTS, Objective, ObjectiveOutput, build_objective, contrast_scale
from .pixel_contrast import CrossModalPixelLoss
from .region_contrast import RegionContrastLoss
from .region_released import ReleasedRegionContrastLoss
from .result import ContrastResult
from .sampling import sample_embeddings
from .smmcl import SMMCLLoss

__all__ = [
    "CONTRASTS",
    "ContrastResult",
    "CrossModalPixelLoss",
    "Objective",
    "ObjectiveOutput",
    "RegionContrastLoss",
    "ReleasedRegionContrastLoss",
    "SMMCLLoss",
    "build_objective",
    "contrast_scale",
    "contrastive_terms",
    "info_nce",
    "label_masks",
    "sample_embeddings",
]
