"""What every auxiliary contrastive objective returns: its loss terms and what its sampling admitted."""

from __future__ import annotations

from typing import Dict, NamedTuple

from torch import Tensor


class ContrastResult(NamedTuple):
    """`terms`: named 0-dim losses, weighted in Eq. 7 by `loss.<name>_weight` (`cm`, `vis`, `aux`);
    `stats`: 0-dim tensors for the logs (e.g. `rows`, `pairs`, `classes`), never host-synchronised here."""

    terms: Dict[str, Tensor]
    stats: Dict[str, Tensor]
