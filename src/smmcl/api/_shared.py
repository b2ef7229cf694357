"""What the API's modules share: the 0.2 keyword spellings, size checks, the inference protocol, backend names."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence, Tuple

import numpy as np

from smmcl.config import Config
from smmcl.deploy.predictor import BACKENDS as _BACKENDS
from smmcl.model_file import is_model_file


# One name for each thing across the API: a model file is `checkpoint`, a config (a `Config` or its YAML file where
# a path is taken) is `config`. The 0.2 spellings (`cfg=`, config before checkpoint) still work for one release.
def _renamed(**old_to_new: str) -> Callable:
    """Take the 0.2 keyword names (`cfg=`, `source=`) as today's, with a deprecation message."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"smmcl.{fn.__name__}() got both {new}= and its old spelling {old}=")
                    warnings.warn(f"smmcl.{fn.__name__}({old}=...) is deprecated and goes in the next release; "
                                  f"write {new}=", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def _checkpoint_first(name: str, checkpoint: Any, config: Any) -> Tuple[Any, Any]:
    """(checkpoint, config), also from a 0.2 call that gave the config first (with a deprecation message)."""
    old = isinstance(checkpoint, Config) or (checkpoint is None and config is not None) or (
        isinstance(checkpoint, (str, Path)) and isinstance(config, (str, Path))
        and not is_model_file(checkpoint) and is_model_file(config))
    if not old:
        return checkpoint, config
    warnings.warn(f"smmcl.{name}(config, checkpoint) is deprecated and goes in the next release; the model file comes "
                  f"first: smmcl.{name}(checkpoint, config)", DeprecationWarning, stacklevel=3)
    return config, checkpoint


def _size(size: Any, what: str) -> Tuple[int, int]:
    """(height, width) from a pair of whole numbers, each at least 32 (the encoder downsamples 32x); a ValueError
    naming `what` for anything else ("64x80" is the command line's spelling, not the API's)."""
    ok = isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
    if not ok:
        raise ValueError(f"{what} must be (height, width), e.g. (480, 640), got {size!r}")
    h, w = int(size[0]), int(size[1])
    if min(h, w) < 32:
        raise ValueError(f"{what} must be at least 32x32 (the encoder downsamples 32x), got {h}x{w}")
    return h, w


# `smmcl convert --from` choices: released SMMCL checkpoints, ImageNet files of each backbone's release
# (named after our backbone), and our own training checkpoints.
CONVERT_FORMATS = ("official-smmcl", "mscan", "mit", "resnet", "checkpoint")


def inference_protocol(cfg: Config):
    """The evaluation protocol of `cfg.eval`: whole or sliding window, scales, flip."""
    from smmcl.engine.inference import InferenceProtocol

    return InferenceProtocol.from_config(cfg)


# The backends' names, from their one table (`smmcl.deploy.predictor.BACKENDS`): torch, onnxruntime, openvino.
BACKENDS = tuple(_BACKENDS)
