"""Supervised multi-modal contrastive loss (SMMCL, paper Sec. 3.2)."""

from .contrastive import contrastive_terms
from .sampling import sample_embeddings
from .smmcl import SMMCLLoss

__all__ = ["contrastive_terms", "sample_embeddings", "SMMCLLoss"]
