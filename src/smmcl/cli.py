"""Command line: a thin layer over the Python API (`smmcl --help`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from smmcl.errors import SmmclError


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size '{text}': expected HxW, e.g. 120x160") from None
    return h, w


def _cmd_synth(args: argparse.Namespace) -> int:
    from smmcl.data.synth import generate_dataset

    summary = generate_dataset(args.kind, Path(args.out), args.num, size=args.size, seed=args.seed,
                               test_fraction=args.test_fraction, progress=True)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from smmcl.config import load_config
    from smmcl.engine.trainer import Trainer

    cfg = load_config(args.config, args.overrides)
    trainer = Trainer(cfg, resume=args.resume)
    if trainer.pretrained_report is not None:
        print(trainer.pretrained_report.summary())
    p = trainer.plan
    print(f"[smmcl] {cfg.name}: {p.total_iters} iterations ({p.iters_per_epoch}/epoch), warm-up {p.warmup_iters}, "
          f"from step {trainer.step}, device {trainer.device}, output {trainer.out_dir}")
    last = trainer.run()
    print(f"[smmcl] done at step {last.get('step')}: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "step"))
    if trainer.step == p.total_iters:
        print(f"[smmcl] weights for deployment: {trainer.out_dir / 'model.safetensors'}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from smmcl.api import evaluate_checkpoint
    from smmcl.config import load_config
    from smmcl.engine.evaluate import format_scores

    cfg = load_config(args.config, args.overrides)
    split = args.split or cfg.eval.split
    scores = evaluate_checkpoint(cfg, args.checkpoint, split=split)
    names = cfg.data.class_names or [str(k) for k in range(cfg.model.num_classes)]
    print(format_scores(names, {split: scores}))
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(f".{split}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"checkpoint": str(args.checkpoint), "split": split, "class_names": names, **scores}, indent=2))
    print(f"[smmcl] scores written to {out}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from smmcl.api import model_info, read_model_source
    from smmcl.models.factory import decoder_name, resolve_backbone

    cfg, origin = read_model_source(args.config, args.overrides)
    info = model_info(cfg, args.size)
    b = cfg.model.backbone
    preset = resolve_backbone(b)
    print(f"{origin}: {b.name} backbone (preset {b.preset}), {decoder_name(cfg.model)} decoder, "
          f"{cfg.model.num_classes} classes, stage channels {preset.get('embed_dims') or '-'}")
    h, w = args.size
    print(f"{'part':<28}{'parameters':>14}{'GFLOPs @ %dx%d' % (h, w):>20}")
    flops = info["flops"]
    for part, n in info["params"].items():
        f = flops.get(part)
        if part == "total":
            f = flops["inference total"]
        shown = "" if f is None else f"{f / 1e9:.2f}"
        print(f"{part:<28}{n:>14,}{shown:>20}")
    print("FLOPs count multiply and add separately (2 per MAC; halve for the GMACs many papers call GFLOPs).")
    print("Projector FLOPs are training-only; the total is one inference forward pass.")
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=2))
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from smmcl.api import convert
    from smmcl.config import load_config

    cfg = load_config(args.config, args.overrides)
    report = convert(args.source, args.fmt, cfg, args.out, strict=False if args.no_strict else None)
    print(report.summary())
    print(f"[smmcl] wrote {args.out} (weights + config; load with smmcl.load_pretrained)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from smmcl.demo import run_demo

    run_demo(Path(args.out), config=args.config, overrides=args.overrides)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smmcl", description="Dark-scene RGB-X segmentation with SMMCL.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="generate built-in synthetic dark scenes")
    synth.add_argument("--kind", required=True, help="indoor-rgbd | night-rgbt")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--num", type=int, default=200, help="number of scenes")
    synth.add_argument("--size", type=_size, default=(120, 160), help="HxW (default 120x160)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--test-fraction", type=float, default=0.25)
    synth.set_defaults(func=_cmd_synth)

    tr = sub.add_parser("train", help="train a model from a YAML config")
    tr.add_argument("config", help="YAML config, e.g. configs/demo.yaml")
    tr.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.lr=0.001 loss.cm_weight=0")
    tr.add_argument("--resume", default=None, help="checkpoint path, or 'auto' for the newest in the run folder")
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("eval", help="evaluate a checkpoint on a split")
    ev.add_argument("config")
    ev.add_argument("overrides", nargs="*")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--split", default=None, help="split name (default: eval.split of the config)")
    ev.add_argument("--out", default=None, help="JSON file for the scores (default: beside the checkpoint)")
    ev.set_defaults(func=_cmd_eval)

    info = sub.add_parser("info", help="parameters per part and GFLOPs of a model")
    info.add_argument("config", help="YAML config, or smmcl weights (.safetensors)")
    info.add_argument("overrides", nargs="*")
    info.add_argument("--size", type=_size, default=(480, 640), help="input HxW (default 480x640)")
    info.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    info.set_defaults(func=_cmd_info)

    cv = sub.add_parser("convert", help="outside checkpoint -> smmcl weights (.safetensors with config)")
    cv.add_argument("source", help="input file (.pth/.pt/.safetensors)")
    cv.add_argument("--from", dest="fmt", required=True,
                    help="official-smmcl (released SMMCL checkpoint) | mscan (SegNeXt ImageNet) | "
                         "mit (SegFormer ImageNet) | resnet (torchvision) | checkpoint (smmcl training checkpoint)")
    cv.add_argument("--config", required=True, help="YAML config of the model the weights belong to")
    cv.add_argument("--out", required=True, help="output .safetensors file")
    cv.add_argument("--no-strict", action="store_true", help="official-smmcl: allow missing/unexpected keys")
    cv.add_argument("overrides", nargs="*")
    cv.set_defaults(func=_cmd_convert)

    demo = sub.add_parser("demo", help="synthetic data -> train Base and SMMCL -> evaluate -> pictures")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--config", default=None, help="demo config (default: configs/demo.yaml)")
    demo.add_argument("overrides", nargs="*")
    demo.set_defaults(func=_cmd_demo)
    return parser


def _message(exc: BaseException) -> str:
    """The error's own words; an error re-raised from a DataLoader worker carries a traceback: keep its last line."""
    text = str(exc)
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[-1] if last.split(": ", 1)[0].endswith("Error") else last
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SmmclError, ValueError, FileNotFoundError) as exc:
        if os.environ.get("SMMCL_DEBUG"):
            raise
        print(f"smmcl: error: {_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("smmcl: interrupted (the last checkpoint is intact; resume with --resume auto)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
