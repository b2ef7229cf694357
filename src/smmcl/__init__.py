"""smmcl: dark-scene semantic segmentation from RGB + depth/thermal with SMMCL (WACV 2024).

Public API (see README): `build_model`, `load_config`, `train`, `dry_run`, `evaluate_checkpoint`, `load_trained`,
`load_pretrained`, `save_pretrained`, `run_study`, `analyze_features`, `report` (a run's static report page), `export` (ONNX), `Predictor` (frame streams), `smmcl.weights.load_official_smmcl`,
and `smmcl.losses` (`contrastive_terms`, `SMMCLLoss`, `build_objective`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Resolved on first use, so `import smmcl.data.synth` does not pay for the model and engine imports.
_API = {
    "build_model": "smmcl.models",
    "load_config": "smmcl.config",
    "Config": "smmcl.config",
    "train": "smmcl.api",
    "dry_run": "smmcl.api",
    "evaluate_checkpoint": "smmcl.api",
    "load_trained": "smmcl.api",
    "load_pretrained": "smmcl.weights",
    "save_pretrained": "smmcl.weights",
    "run_study": "smmcl.api",
    "analyze_features": "smmcl.api",
    "report": "smmcl.api",
    "export": "smmcl.api",
    "Predictor": "smmcl.deploy.predictor",
}

__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'smmcl' has no attribute {name!r}")
