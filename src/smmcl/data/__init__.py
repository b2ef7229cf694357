"""Datasets, augmentation and the built-in synthetic dark scenes."""

from smmcl.data.dataset import RGBXDataset

__all__ = ["RGBXDataset"]
