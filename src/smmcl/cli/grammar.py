"""The pieces every command's grammar is made of: argument types (sizes, positive numbers, scales), shared flags
(protocol, backend, --json, --overwrite, --quiet), the parser class with its clearer errors, and the help layout."""

from __future__ import annotations

import argparse
import re
import textwrap
from typing import Sequence


def size_type(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size '{text}': expected HxW, e.g. 120x160") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"size '{text}': height and width must be at least 1")
    return h, w


def positive_type(kind: type, at_least: float):
    """An argparse type: a number of `kind`, at least `at_least` (the flag is named in argparse's message)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}': expected a number") from None
        if not value >= at_least:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"'{text}': expected a number >= {at_least:g}")
        return value
    return parse


def scales_type(text: str) -> str:
    """`--scales`: positive numbers separated by commas, kept as written for the `eval.scales` override."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales '{text}': expected positive numbers separated by commas, "
                                         f"e.g. 0.75,1,1.25") from None
    if not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"scales '{text}': every scale must be above 0")
    return ",".join(str(v) for v in values)


def add_protocol_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=["whole", "slide"], type=str.lower, default=None,
                   help="whole: one pass per image; slide: windows of eval.crop_size (default: eval.mode)")
    p.add_argument("--scales", type=scales_type, default=None,
                   help="multi-scale testing, e.g. 0.75,1,1.25 (default: eval.scales)")
    p.add_argument("--flip", action="store_true", help="add horizontally flipped passes")


def add_backend_flag(p: argparse.ArgumentParser) -> None:
    from smmcl.api import BACKENDS  # the one table of backends (smmcl.deploy.predictor.BACKENDS)

    p.add_argument("--backend", choices=list(BACKENDS), type=str.lower, default=None,
                   help="torch for weights and checkpoints; onnxruntime or openvino (the openvino extra) for ONNX "
                        "exports (default: by the file's content: torch, or onnxruntime for an export)")
    p.add_argument("--precision", choices=["fp32", "bf16"], type=str.lower, default="fp32",
                   help="bf16: OpenVINO's bf16 (refused for models where it is unsafe) or PyTorch's autocast; "
                        "ONNX Runtime runs an export as written (default fp32)")


def add_json_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout, and nothing else there (for scripts)")


def version_text() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("smmcl")
    except PackageNotFoundError:  # run from a source tree that was not installed
        import smmcl

        return getattr(smmcl, "__version__", "unknown")


def wrap_text(text: str) -> str:
    """Paragraphs (blank-line separated) filled to 78 columns: descriptions are printed as written."""
    return "\n\n".join(textwrap.fill(" ".join(par.split()), 78) for par in text.strip().split("\n\n"))


def examples_text(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


QUIET_HELP = "no progress, only warnings, errors and the one-line result (also before the command: smmcl --quiet ...)"


class Parser(argparse.ArgumentParser):
    """argparse's parser; its subcommands' parsers are of this class too (`add_subparsers` makes them so)."""

    def error(self, message: str):
        # argparse reads a value that starts with '-' (`--size -48x64`, `--intrinsics -60,...`) as an option and says
        # only "expected one argument": say how such a value is given, so the value itself gets checked.
        match = re.match(r"argument (\S+?)(?:/\S+)?: expected one argument$", message)
        if match:
            message += f" (a value that starts with '-' is given joined to its option: {match.group(1)}=VALUE)"
        super().error(message)


def common_options() -> argparse.ArgumentParser:
    """Options every command takes; --quiet here leaves a global --quiet given before the command alone."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP)
    return common


def subcommand(sub, name: str, help: str, examples: Sequence[str], description: str | None = None,
             func=None, group: bool = False) -> argparse.ArgumentParser:
    """A (sub)command with its help, a description and an epilog of examples."""
    p = sub.add_parser(name, help=help, description=wrap_text(description or help[:1].upper() + help[1:] + "."),
                       epilog=examples_text(*examples), formatter_class=argparse.RawDescriptionHelpFormatter,
                       parents=[] if group else [common_options()])
    if func is not None:
        p.set_defaults(func=func)
    p.set_defaults(command_parser=p)  # a command's own usage for its mistakes (trial 11 #183: the top-level one)
    return p


def add_overwrite_flag(p: argparse.ArgumentParser, earlier: str) -> None:
    """--overwrite for a command whose earlier output of the same kind is otherwise refused (`smmcl.outputs`)."""
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {earlier} at --out (only what smmcl wrote there); without it, it is refused")


OUTPUT_HELP = """Output: a short summary on stdout; progress on stderr, as a bar on a terminal and as a plain line
every tenth of the way in a log or pipe; --quiet shows no progress, only warnings, errors and the one-line
result; --json ({json}) prints the result as JSON on stdout for scripts. Errors end with `smmcl: error: ...` and exit status 2."""
