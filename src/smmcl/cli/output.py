"""What commands print: a human summary on stdout by default, JSON with --json, one line with --quiet."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

# --- output: a human summary on stdout by default, JSON with --json, one line with --quiet -------------------
# Progress (bars on a terminal, plain lines in a log) goes to stderr through smmcl.progress; warnings and
# errors to stderr as `smmcl: warning: ...` / `smmcl: error: ...`.

def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def say(args: argparse.Namespace, *lines: str) -> None:
    """Informational lines: left out with --quiet and --json (stdout is then the result alone)."""
    if not (args.quiet or wants_json(args)):
        for line in lines:
            print(line)


def print_json(data) -> None:
    # Standard JSON has no NaN (a class absent from the split has no IoU): null, which every parser reads.
    print(json.dumps(_finite(json.loads(json.dumps(data, default=plain))), indent=2, allow_nan=False))


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def plain(value):
    """JSON for the few non-JSON values a result may hold (paths, numpy numbers and arrays)."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def warn(message: str) -> None:
    print(f"smmcl: warning: {message}", file=sys.stderr)
