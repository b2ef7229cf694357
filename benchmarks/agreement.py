"""Pixel agreement on the trained demo model (`agreement`): the share of test pixels where each candidate
path predicts what fp32 eager predicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from cases import PATHS, Case
from onnx_candidate import onnx_model


def demo_weights(demo: Path) -> Optional[Path]:
    """The demo SMMCL model's weights: model.safetensors, else the newest training checkpoint."""
    run = demo / "smmcl"
    if (run / "model.safetensors").is_file():
        return run / "model.safetensors"
    ckpts = sorted((run / "checkpoints").glob("ckpt_*.pt"))
    return ckpts[-1] if ckpts else None


def run_agreement(case: Case) -> dict:
    """Share of test pixels where each path's argmax equals fp32 eager's, for the demo's trained SMMCL model."""
    from smmcl.api import load_trained
    from smmcl.config import load_config
    from smmcl.data.dataset import RGBXDataset
    from smmcl.engine.precision import autocast
    from smmcl.models.compiled import prepare_model, to_channels_last

    cpu = torch.device("cpu")
    demo = Path(case.demo)
    weights = demo_weights(demo)
    cfg = load_config(demo / "smmcl" / "config.yaml", [f"data.root={demo / 'data'}", "train.device=cpu"])
    dataset = RGBXDataset(cfg.data, "test", cfg.model.num_classes)
    batches = []
    for start in range(0, len(dataset), 16):
        samples = [dataset[i] for i in range(start, min(start + 16, len(dataset)))]
        batches.append({k: torch.stack([s[k] for s in samples]) for k in ("rgb", "aux", "label")})

    def predict(path: str) -> list[torch.Tensor]:
        precision, channels_last = PATHS[path.replace("+compile", "")]
        if path == "onnxruntime":
            model = onnx_model(load_trained(weights, cfg, device=cpu), cfg, tuple(batches[0]["rgb"].shape[-2:]), case.threads)
        else:
            model = prepare_model(load_trained(weights, cfg, device=cpu), channels_last, path.endswith("+compile"), freeze=True)
        preds = []
        with torch.no_grad(), autocast(cpu, precision):
            for b in batches:
                logits = model(to_channels_last(b["rgb"], channels_last), to_channels_last(b["aux"], channels_last))
                preds.append(logits.float().argmax(1))
        return preds

    reference = predict("fp32")
    labels = torch.cat([b["label"] for b in batches])
    ref = torch.cat(reference)
    known = labels != cfg.data.ignore_index
    out: dict[str, Any] = {
        "weights": str(weights),
        "test_images": len(dataset),
        "image_size": list(batches[0]["rgb"].shape[-2:]),
        "pixels": ref.numel(),
        "fp32_pixel_accuracy": float((ref == labels)[known].float().mean()),
        "paths": {},
    }
    for path in case.paths:
        fast = torch.cat(predict(path))
        same = fast == ref
        differ = ~same
        per_class = {}
        for k in range(cfg.model.num_classes):
            mask = ref == k
            if mask.any():
                per_class[cfg.data.class_names[k] if cfg.data.class_names else str(k)] = round(float(same[mask].float().mean()), 6)
        out["paths"][path] = {
            "pixel_agreement": float(same.float().mean()),
            "differing_pixels": int(differ.sum()),
            "pixel_accuracy": float((fast == labels)[known].float().mean()),
            "agreement_by_fp32_class": per_class,
        }
    return out
