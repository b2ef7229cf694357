"""Model size and cost by part: parameters per branch, module kind and decoder; FLOPs at an input size."""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Sequence, Tuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# Report rows: label -> module paths inside a Segmentor.
PARTS: "OrderedDict[str, Tuple[str, ...]]" = OrderedDict(
    [
        ("visible encoder branch", ("encoder.vis",)),
        ("auxiliary encoder branch", ("encoder.aux",)),
        ("cross-modal modules", ("encoder.cross_modal",)),
        ("fusion convs", ("encoder.fusions",)),
        ("projectors", ("encoder.projector_vis", "encoder.projector_aux")),
        ("decoder", ("decoder",)),
    ]
)


def _owner(name: str) -> str:
    for label, prefixes in PARTS.items():
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return label
    return "other"


def parameter_counts(model: nn.Module) -> Dict[str, int]:
    """Parameters per part, plus `dual encoder` (everything but the decoder) and `total`."""
    counts: Dict[str, int] = {label: 0 for label in PARTS}
    for name, p in model.named_parameters():
        label = _owner(name)
        counts[label] = counts.get(label, 0) + p.numel()
    counts["dual encoder"] = sum(v for k, v in counts.items() if k != "decoder")
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def flop_counts(model: nn.Module, size: Sequence[int], batch: int = 1) -> Dict[str, int]:
    """FLOPs (multiply and add counted separately, so 2 per MAC) per part for one forward pass.

    Inference runs without the projectors; their cost is measured on the training forward.
    Counted by PyTorch's `FlopCounterMode` (convolutions, matrix products, attention); element-wise
    operations are not counted, as in fvcore and mmcv. Runs on whatever device the model is on;
    a model on the `meta` device costs no memory or time.
    """
    device = next(model.parameters()).device
    h, w = int(size[0]), int(size[1])
    rgb = torch.zeros(batch, 3, h, w, device=device)
    aux = torch.zeros(batch, 3, h, w, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            counter = FlopCounterMode(display=False)
            with counter:
                model(rgb, aux)
            inference = counter.get_flop_counts()
            counter = FlopCounterMode(display=False)
            with counter:
                model.encoder(rgb, aux, with_embeddings=True)
            # Called directly, the encoder is the root: rename its rows to Segmentor paths.
            encode = {_reroot(k, type(model.encoder).__name__, "encoder"): v for k, v in counter.get_flop_counts().items()}
    finally:
        model.train(was_training)
    root = type(model).__name__
    out: Dict[str, int] = {}
    for label, prefixes in PARTS.items():
        table = encode if label == "projectors" else inference
        out[label] = sum(_module_total(table, f"{root}.{p}" if table is inference else p) for p in prefixes)
    out["inference total"] = _module_total(inference, "Global")
    return out


def _reroot(name: str, root: str, path: str) -> str:
    return path + name[len(root):] if name == root or name.startswith(root + ".") else name


def _module_total(table: Dict[str, Dict], name: str) -> int:
    """FLOPs under a module path; modules that are only iterated (ModuleLists) are summed over their
    outermost called descendants, so nothing is counted twice."""
    inside = [k for k in table if k == name or k.startswith(name + ".")]
    outermost = [k for k in inside if not any(k.startswith(o + ".") for o in inside)]
    return int(sum(sum(table[k].values()) for k in outermost))
