"""Command line: a thin layer over the Python API (`smmcl --help`). `parser` holds the grammar, `commands` what
each command calls and prints, `output` the printing conventions."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Sequence

from smmcl.cli.parser import build_parser, parse_args
from smmcl.errors import (AuxUnitsWarning, ConfigWarning, HeldOutWarning, InputWarning, NonFiniteWarning, SmmclError,
                          StaleOutputWarning)
from smmcl.memory import keep_freed_memory
from smmcl.progress import set_quiet

__all__ = ["build_parser", "main", "parse_args"]

# The optional dependencies (pyproject's extras): the module a missing one is imported as -> the extra that installs it.
# Without the `torch` extra smmcl still runs ONNX exports (`smmcl.Predictor` on ONNX Runtime or OpenVINO).
EXTRAS = {"torch": "torch", "tensorboard": "torch", "safetensors": "torch",
          "onnx": "deploy", "onnxruntime": "deploy", "onnxscript": "deploy", "openvino": "openvino",
          "matplotlib": "analysis", "sklearn": "analysis", "scipy": "analysis", "rosbags": "recordings", "av": "recordings"}


def _missing_extra(exc: ImportError) -> str | None:
    """The error line for a missing optional dependency, naming the extra to install; None for any other ImportError."""
    module = (exc.name or "").split(".")[0]
    if module not in EXTRAS:
        return None
    what = "PyTorch" if module == "torch" else module
    hint = " (without it, smmcl.Predictor runs ONNX exports on ONNX Runtime or OpenVINO)" if EXTRAS[module] == "torch" else ""
    return f"this needs {what}, which is not installed: pip install 'smmcl[{EXTRAS[module]}]'{hint}"


def _message(exc: BaseException) -> str:
    """The error's own words; an error re-raised from a DataLoader worker carries a traceback: keep its last line."""
    text = str(exc)
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[-1] if last.split(": ", 1)[0].endswith("Error") else last
    return text


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings read like our errors; others keep Python's format."""
    if issubclass(category, (NonFiniteWarning, AuxUnitsWarning, ConfigWarning, StaleOutputWarning, HeldOutWarning,
                             InputWarning)):
        print(f"smmcl: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr, end="")


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the `smmcl` program itself, which owns its process (not a call from Python)
        keep_freed_memory()
    args = parse_args(build_parser(), argv)
    warnings.showwarning = _show_warning
    previous = set_quiet(args.quiet)
    try:
        return args.func(args)
    except (SmmclError, ValueError, FileNotFoundError) as exc:
        if os.environ.get("SMMCL_DEBUG"):
            raise
        print(f"smmcl: error: {_message(exc)}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # numpy's allocation failures; PyTorch's CPU ones are RuntimeErrors, left as they are
        if os.environ.get("SMMCL_DEBUG"):
            raise
        print(f"smmcl: error: not enough memory for this command ({_message(exc)}): a smaller image size, batch "
              f"or number of images needs less", file=sys.stderr)
        return 2
    except ImportError as exc:
        missing = _missing_extra(exc)
        if missing is None or os.environ.get("SMMCL_DEBUG"):
            raise
        print(f"smmcl: error: {missing}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("smmcl: interrupted (the last checkpoint is intact; resume with --resume auto)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`smmcl ... --json | head`): no traceback; stdout to /dev/null so the exit flush is quiet.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 141
    finally:
        set_quiet(previous)


if __name__ == "__main__":
    sys.exit(main())
