"""Dataset presets: the on-disk layout, label coding and scoring of each release, as config layers.

They are plain data in `smmcl.config_presets` (described there and in README "Data layout"), below
`smmcl.config`, which applies them at load; re-exported here for the data code and the CLI.
"""

from __future__ import annotations

from smmcl.config_presets import DATASET_PRESETS, preset_layer

__all__ = ["DATASET_PRESETS", "preset_layer"]
