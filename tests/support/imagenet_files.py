"""Random state dicts under the exact key names and shapes of two backbones' released ImageNet files: SegFormer's
`mit_b*.pth` (NVlabs) and torchvision's `resnet*.pth`. Written from the architectures, not from our models, so they
check our key layouts (models/test_mit.py, models/test_resnet.py) and the weight loaders (weights/test_weights.py).
"""

from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import torch
from torch import Tensor


def official_mit_state_dict(
    embed_dims: Sequence[int],
    depths: Sequence[int],
    num_heads: Sequence[int],
    sr_ratios: Sequence[int],
    mlp_ratios: Sequence[float],
    in_channels: int = 3,
    num_classes: int = 1000,
    seed: int = 0,
) -> Dict[str, Tensor]:
    """Random tensors under the key names and shapes of a released NVlabs `mit_b*.pth` (ImageNet head included).

    `num_heads` does not change any shape; it is taken so the signature mirrors the architecture.
    """
    gen = torch.Generator().manual_seed(seed)
    shapes: Dict[str, Tuple[int, ...]] = {}

    def linear(name: str, n_in: int, n_out: int) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (n_out, n_in), (n_out,)

    def norm(name: str, c: int) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (c,), (c,)

    prev = in_channels
    for i, (c, depth, heads, sr, ratio) in enumerate(zip(embed_dims, depths, num_heads, sr_ratios, mlp_ratios), 1):
        assert c % heads == 0
        k = 7 if i == 1 else 3
        shapes[f"patch_embed{i}.proj.weight"], shapes[f"patch_embed{i}.proj.bias"] = (c, prev, k, k), (c,)
        norm(f"patch_embed{i}.norm", c)
        hidden = int(c * ratio)
        for j in range(depth):
            b = f"block{i}.{j}"
            norm(f"{b}.norm1", c)
            linear(f"{b}.attn.q", c, c)
            linear(f"{b}.attn.kv", c, 2 * c)
            linear(f"{b}.attn.proj", c, c)
            if sr > 1:
                shapes[f"{b}.attn.sr.weight"], shapes[f"{b}.attn.sr.bias"] = (c, c, sr, sr), (c,)
                norm(f"{b}.attn.norm", c)
            norm(f"{b}.norm2", c)
            linear(f"{b}.mlp.fc1", c, hidden)
            shapes[f"{b}.mlp.dwconv.dwconv.weight"] = (hidden, 1, 3, 3)
            shapes[f"{b}.mlp.dwconv.dwconv.bias"] = (hidden,)
            linear(f"{b}.mlp.fc2", hidden, c)
        norm(f"norm{i}", c)
        prev = c
    linear("head", embed_dims[-1], num_classes)
    return {name: torch.randn(shape, generator=gen) for name, shape in shapes.items()}


def torchvision_resnet_state_dict(
    depths: Sequence[int], block: str, num_classes: int = 1000, seed: int = 0
) -> Dict[str, Tensor]:
    """Random tensors under the exact keys and shapes of a torchvision ResNet v1.5 `state_dict()`.

    Written from the architecture, not from our model, so it can check our key layout and a weight loader.
    """
    gen = torch.Generator().manual_seed(seed)
    sd: Dict[str, Tensor] = {}

    def conv(name: str, cout: int, cin: int, k: int) -> None:
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=gen) * math.sqrt(2.0 / (cout * k * k))

    def bn(name: str, c: int) -> None:
        sd[f"{name}.weight"] = torch.rand(c, generator=gen) + 0.5
        sd[f"{name}.bias"] = torch.randn(c, generator=gen) * 0.1
        sd[f"{name}.running_mean"] = torch.randn(c, generator=gen) * 0.1
        sd[f"{name}.running_var"] = torch.rand(c, generator=gen) + 0.5
        sd[f"{name}.num_batches_tracked"] = torch.randint(0, 10**6, (), generator=gen, dtype=torch.long)

    expansion = {"basic": 1, "bottleneck": 4}[block]
    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    inplanes = 64
    for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths), start=1):
        for j in range(depth):
            stride = 2 if i > 1 and j == 0 else 1
            p = f"layer{i}.{j}"
            if block == "basic":
                conv(f"{p}.conv1", planes, inplanes, 3)
                bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3)
                bn(f"{p}.bn2", planes)
            else:
                conv(f"{p}.conv1", planes, inplanes, 1)
                bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3)
                bn(f"{p}.bn2", planes)
                conv(f"{p}.conv3", planes * 4, planes, 1)
                bn(f"{p}.bn3", planes * 4)
            if stride != 1 or inplanes != planes * expansion:
                conv(f"{p}.downsample.0", planes * expansion, inplanes, 1)
                bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    sd["fc.weight"] = torch.randn(num_classes, 512 * expansion, generator=gen) * 0.01
    sd["fc.bias"] = torch.zeros(num_classes)
    return sd
