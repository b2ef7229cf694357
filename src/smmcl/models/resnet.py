"""ResNet (He et al., CVPR 2016) in torchvision's v1.5 form, built stage by stage for the dual encoder.

v1.5 puts a bottleneck's stride on its 3x3 conv rather than on the first 1x1. Submodule names inside a
block follow torchvision (`conv1`, `bn1`, ..., `downsample.0` / `downsample.1`), so the keys of its
`resnet*.pth` checkpoints map onto ours by replacing `conv1` / `bn1` at the top level with
`stages.0.stem.conv1` / `stages.0.stem.bn1`, and `layer{i}.{j}` with `stages.{i-1}.blocks.{j}`
(torchvision's `fc` classifier has no counterpart here).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Type

from torch import Tensor, nn

from .layers import StagedBackbone

NormLayer = Callable[[int], nn.Module]

# Presets as data: block type and blocks per stage (He et al., Table 1).
RESNET_PRESETS: Dict[str, Dict[str, object]] = {
    "18": dict(block="basic", depths=[2, 2, 2, 2]),
    "34": dict(block="basic", depths=[3, 4, 6, 3]),
    "50": dict(block="bottleneck", depths=[3, 4, 6, 3]),
    "101": dict(block="bottleneck", depths=[3, 4, 23, 3]),
    "152": dict(block="bottleneck", depths=[3, 8, 36, 3]),
}


def _downsample(
    in_channels: int, out_channels: int, stride: int, norm_layer: NormLayer
) -> Optional[nn.Module]:
    """Projection shortcut (1x1 conv + norm) when the residual branch changes the shape, else None."""
    if stride == 1 and in_channels == out_channels:
        return None
    conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
    return nn.Sequential(conv, norm_layer(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm_layer(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, width, stride, norm_layer)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        # In place is safe: `out` is a fresh norm output, never the caller's input.
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, v1.5), 1x1 expand by 4, with a shortcut (ResNet-50+)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, norm_layer: NormLayer) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = norm_layer(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = norm_layer(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, out_channels, stride, norm_layer)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


RESNET_BLOCKS: Dict[str, Type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class Stem(nn.Module):
    """7x7 stride-2 conv, norm, ReLU, 3x3 stride-2 max pool (overall stride 4)."""

    def __init__(self, in_channels: int, out_channels: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))


class ResNetStage(nn.Module):
    """One stage: the stem (first stage only), then `depth` blocks, the first carrying the stride."""

    def __init__(
        self,
        in_channels: int,
        width: int,
        depth: int,
        stride: int,
        block: Type[nn.Module],
        norm_layer: NormLayer,
        stem: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        self.stem = stem
        blocks: List[nn.Module] = []
        for j in range(depth):
            blocks.append(block(in_channels, width, stride if j == 0 else 1, norm_layer))
            in_channels = width * block.expansion
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        if self.stem is not None:
            x = self.stem(x)
        return self.blocks(x)


class ResNet(StagedBackbone):
    """ResNet encoder without the classifier: four stages at strides 4, 8, 16, 32."""

    def __init__(
        self,
        depths: Sequence[int],
        block: str = "bottleneck",
        widths: Sequence[int] = (64, 128, 256, 512),
        in_channels: int = 3,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if block not in RESNET_BLOCKS:
            raise ValueError(f"unknown ResNet block {block!r}; expected one of {sorted(RESNET_BLOCKS)}")
        if len(depths) != len(widths):
            raise ValueError(
                f"depths and widths must have the same length, got {list(depths)}, {list(widths)}"
            )
        if any(d < 1 for d in depths):
            # An empty stage would leave its channel count unchanged and `out_channels` wrong.
            raise ValueError(f"every stage needs at least one block, got depths {list(depths)}")
        block_cls = RESNET_BLOCKS[block]
        # torchvision's stem is 64 wide, the first stage's width; tying the two keeps its layout.
        stem = Stem(in_channels, widths[0], norm_layer)
        stages: List[nn.Module] = []
        prev = widths[0]
        for i, (width, depth) in enumerate(zip(widths, depths)):
            # The stem already reduced by 4, so the first stage keeps its resolution.
            stride = 1 if i == 0 else 2
            stage_stem = stem if i == 0 else None
            stages.append(ResNetStage(prev, width, depth, stride, block_cls, norm_layer, stage_stem))
            prev = width * block_cls.expansion
        self.stages = nn.ModuleList(stages)
        self.in_channels = in_channels
        self.out_channels: List[int] = [w * block_cls.expansion for w in widths]
        self.apply(_init_weights)


def _init_weights(m: nn.Module) -> None:
    """torchvision's ResNet initialisation: conv ~ Kaiming normal (fan_out, ReLU), norms 1/0."""
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)) and m.weight is not None:
        # _BatchNorm rather than BatchNorm2d so an injected SyncBatchNorm is covered too.
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
