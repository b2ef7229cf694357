"""smmcl: dark-scene semantic segmentation from RGB + depth/thermal with SMMCL (WACV 2024)."""

__version__ = "0.1.0"
