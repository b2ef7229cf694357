"""The built-in frame an export is checked on (ONNX parity, OpenVINO bf16), in the model's auxiliary kind.

Torch-free: the OpenVINO runtime uses it where PyTorch is not installed."""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np


def builtin_scene(aux_kind: str, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """A real-looking dark synthetic scene of `size` (H, W), as raw frames of the model's `aux_kind`: thermal, a
    night street (uint16 thermal); depth, a room (uint16 mm); hha, that room's depth encoded as H x W x 3 uint8 HHA."""
    from smmcl.data.synth import render_scene

    kind = "night-rgbt" if aux_kind == "thermal" else "indoor-rgbd"
    rgb, aux, _ = render_scene(kind, seed=0, index=0, size=size)
    if aux_kind == "hha":
        # An HHA model reads H x W x 3 uint8 HHA, not raw depth: checking it on the scene's depth refused every HHA
        # export, telling the user to run `smmcl data hha` (trial 14 #245). The room is encoded as `smmcl data hha`
        # would encode it, with the synthetic camera's intrinsics (its field of view; principal point at the centre).
        from smmcl.data.hha import depth_to_hha
        from smmcl.data.synth.indoor_room import FOV_DEG

        height, width = aux.shape[:2]
        focal = 0.5 * width / math.tan(math.radians(FOV_DEG) / 2)
        aux = depth_to_hha(aux, (focal, focal, width / 2 - 0.5, height / 2 - 0.5))
    return rgb, aux
