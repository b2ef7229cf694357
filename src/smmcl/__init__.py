"""smmcl: dark-scene semantic segmentation from RGB + depth/thermal with SMMCL (WACV 2024).

Public API (README, "Python API"): every name of `__all__` (`dir(smmcl)` lists them), resolved on first use;
deeper modules the README names (`smmcl.losses`, `smmcl.weights`, `smmcl.engine.inference`, ...) for more.
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
    "predict": "smmcl.api",
    "predict_recording": "smmcl.api",
    "list_topics": "smmcl.api",
    "convert": "smmcl.api",
    "model_info": "smmcl.api",
    "open_model": "smmcl.api",
    "class_names": "smmcl.api",
    "evaluate": "smmcl.engine.evaluate",
    "open_model_file": "smmcl.model_file",
    "Predictor": "smmcl.deploy.predictor",
}

__all__ = [*_API, "__version__"]


def __dir__() -> list:
    return sorted([*globals(), *_API])


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'smmcl' has no attribute {name!r}")
