"""SegNeXt LightHam decoder: multi-level concat, Hamburger (NMF matrix decomposition), classifier.

Module names follow mmcv's ConvModule (`squeeze.conv`, `squeeze.gn`, `hamburger.ham_in.conv`,
`hamburger.ham_out.conv`, `hamburger.ham_out.gn`, `align.conv`, `align.gn`, `conv_seg`) so that
released checkpoints load by stripping the `decode_head.` prefix.
"""

from __future__ import annotations

import contextlib
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import init_weights


class ConvGN(nn.Module):
    """1x1 conv, optionally GroupNorm(32) and ReLU; the conv has a bias only when there is no norm."""

    def __init__(self, in_channels: int, out_channels: int, norm: bool = True, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=not norm)
        self.gn: Optional[nn.GroupNorm] = nn.GroupNorm(32, out_channels) if norm else None
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.gn is not None:
            x = self.gn(x)
        return F.relu(x) if self.relu else x


class NMF2D(nn.Module):
    """Non-negative matrix factorisation X ~ D C^T by multiplicative updates (HamNet, Geng et al. 2021).

    Bases are random: drawn from the global RNG per sample in training; in eval mode one set shared by
    the batch, drawn once from a generator seeded with `eval_seed` and kept as a buffer (not saved in
    state dicts: it follows from the seed), so evaluation is deterministic, independent of batch
    composition, and exportable (no generator in the graph).
    """

    def __init__(
        self,
        rank: int = 64,
        train_steps: int = 6,
        eval_steps: int = 7,
        eval_seed: int = 0,
        one_step_grad: bool = False,
        eps: float = 1e-6,
        dim: int = 512,
    ) -> None:
        super().__init__()
        self.rank = rank
        self.train_steps = train_steps
        self.eval_steps = eval_steps
        self.eval_seed = eval_seed
        # HamNet's one-step gradient; SegNeXt and the released SMMCL code backpropagate through all steps.
        self.one_step_grad = one_step_grad
        self.eps = eps
        # NMF2D overrides HamNet's inv_t = 100 with 1: a soft, nearly uniform initial coefficient.
        self.inv_t = 1.0
        # On the CPU and in float32 whatever the default device, so the draw is the same everywhere.
        generator = torch.Generator().manual_seed(eval_seed)
        bases = F.normalize(torch.rand(1, dim, rank, generator=generator, device="cpu"), dim=1)
        self.register_buffer("eval_bases", bases, persistent=False)

    def _initial_bases(self, x: Tensor) -> Tensor:
        batch, dim, _ = x.shape
        if self.training:
            bases = torch.rand(batch, dim, self.rank, device=x.device, dtype=x.dtype)
            return F.normalize(bases, dim=1)
        if dim != self.eval_bases.shape[1]:
            raise ValueError(f"NMF2D was built for {self.eval_bases.shape[1]} channels, got {dim}")
        return self.eval_bases.to(device=x.device, dtype=x.dtype).expand(batch, -1, -1)

    def _update_coef(self, x: Tensor, bases: Tensor, coef: Tensor) -> Tensor:
        # C <- C * (X^T D) / (C D^T D)
        numerator = torch.bmm(x.transpose(1, 2), bases)
        denominator = coef.bmm(bases.transpose(1, 2).bmm(bases))
        return coef * numerator / (denominator + self.eps)

    def _update_bases(self, x: Tensor, bases: Tensor, coef: Tensor) -> Tensor:
        # D <- D * (X C) / (D C^T C)
        numerator = torch.bmm(x, coef)
        denominator = bases.bmm(coef.transpose(1, 2).bmm(coef))
        return bases * numerator / (denominator + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        # Multiplicative updates divide by small denominators: keep them out of half precision.
        with _no_autocast(x.device.type):
            flat = x.to(torch.promote_types(x.dtype, torch.float32)).reshape(b, c, h * w)
            bases = self._initial_bases(flat)
            steps = self.train_steps if self.training else self.eval_steps
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.one_step_grad):
                coef = torch.softmax(self.inv_t * torch.bmm(flat.transpose(1, 2), bases), dim=-1)
                for _ in range(steps):
                    coef = self._update_coef(flat, bases, coef)
                    bases = self._update_bases(flat, bases, coef)
            coef = self._update_coef(flat, bases, coef)
            out = torch.bmm(bases, coef.transpose(1, 2))
        return out.reshape(b, c, h, w).to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"rank={self.rank}, train_steps={self.train_steps}, eval_steps={self.eval_steps}, "
            f"eval_seed={self.eval_seed}, one_step_grad={self.one_step_grad}"
        )


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    # `meta` (used to count FLOPs without memory) has no autocast to disable.
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


class Hamburger(nn.Module):
    """ReLU(x + ham_out(NMF(ReLU(ham_in(x)))))."""

    def __init__(self, channels: int, ham: NMF2D, out_norm: bool = True) -> None:
        super().__init__()
        self.ham_in = ConvGN(channels, channels, norm=False, relu=True)
        self.ham = ham
        self.ham_out = ConvGN(channels, channels, norm=out_norm, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.ham_out(self.ham(self.ham_in(x))))


class LightHamHead(nn.Module):
    """LightHam head on stages 2-4: resize to stage-2 size, concat, squeeze, Hamburger, align, classify.

    Returns logits at stage-2 resolution; with `return_features`, (logits, features), the features being the
    map the classifier `conv_seg` reads (after dropout, as the region contrast [26]'s released code takes
    them). `ham_out_norm=False` reproduces the released SMMCL code,
    whose Hamburger output conv has a bias and no GroupNorm (its norm config is never passed on).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 512,
        dropout: float = 0.1,
        ham_rank: int = 64,
        train_steps: int = 6,
        eval_steps: int = 7,
        eval_seed: int = 0,
        in_index: Tuple[int, ...] = (1, 2, 3),
        ham_out_norm: bool = True,
        one_step_grad: bool = False,
    ) -> None:
        super().__init__()
        self.in_index = tuple(in_index)
        self.squeeze = ConvGN(sum(in_channels[i] for i in self.in_index), channels)
        ham = NMF2D(ham_rank, train_steps, eval_steps, eval_seed, one_step_grad, dim=channels)
        self.hamburger = Hamburger(channels, ham, out_norm=ham_out_norm)
        self.align = ConvGN(channels, channels)
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.apply(init_decoder_weights)

    def forward(self, features: Sequence[Tensor], return_features: bool = False):
        feats = [features[i] for i in self.in_index]
        size = feats[0].shape[-2:]
        feats = [feats[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]]
        x = self.squeeze(torch.cat(feats, dim=1))
        x = self.dropout(self.align(self.hamburger(x)))
        logits = self.conv_seg(x)
        return (logits, x) if return_features else logits


def init_decoder_weights(m: nn.Module) -> None:
    """Decoder initialisation of the released code: Kaiming-normal (fan_in, ReLU) convs; the rest as the backbone."""
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    else:
        init_weights(m)
