"""The commands on trained models (eval, predict, recordings, export, info, convert, analyze features, report):
each parses nothing and computes nothing itself; it calls `smmcl.api` and prints the result."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from smmcl.cli.output import print_json, say, wants_json, warn
from smmcl.outputs import output_file



def _protocol_overrides(args: argparse.Namespace) -> list:
    extra = []
    if args.mode:
        extra.append(f"eval.mode={args.mode}")
    if args.scales:
        extra.append(f"eval.scales=[{args.scales}]")
    if args.flip:
        extra.append("eval.flip=true")
    return extra


def _eval_config(args: argparse.Namespace):
    """The config of `smmcl eval`: the YAML given, else the one the model file carries (weights, checkpoint, ONNX)."""
    from smmcl.config import load_config

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).is_file():
        config, overrides = None, [config, *overrides]  # no YAML given: the first word is an override
    extra = [*overrides, *_protocol_overrides(args)]
    if config is not None:
        return load_config(config, extra)
    from smmcl.api import model_config

    return model_config(args.checkpoint, extra)  # weights, checkpoint or ONNX: the config it carries


def _earlier_scores(path: Path) -> bool:
    """Whether `path` holds scores `smmcl eval` wrote (which a new evaluation may replace)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and {"checkpoint", "split", "miou", "protocol_text"} <= set(record)


def cmd_eval(args: argparse.Namespace) -> int:
    from smmcl.api import class_names, evaluate_checkpoint
    from smmcl.engine.evaluate import format_scores

    cfg = _eval_config(args)
    split = args.split or cfg.eval.split
    subset = args.subset if args.subset is not None else cfg.eval.subset
    label = f"{split}/{subset}" if subset else split
    tag = f"{split}_{subset}" if subset else split
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(f".{tag}.json")
    # Before the evaluation: scores never replace an input or a file that is not earlier scores.
    what = "--out" if args.out else "the scores file (by default beside the checkpoint; choose one with --out)"
    with output_file(out, what, [args.checkpoint, cfg.data.root], ours=_earlier_scores(out), overwrite=args.overwrite):
        scores = evaluate_checkpoint(args.checkpoint, cfg, split=split, subset=subset, backend=args.backend,
                                     precision=args.precision)
        names = class_names(cfg)
        record = {"checkpoint": str(args.checkpoint), "split": split, "class_names": names, **scores}
        out.write_text(json.dumps(record, indent=2))
    if wants_json(args):
        print_json(record)
        return 0
    protocol = scores["protocol_text"]
    if args.quiet:
        print(f"[smmcl] {label}: mIoU {100 * scores['miou']:.2f}% on {scores['num_images']} images ({protocol}); "
              f"scores in {out}")
        return 0
    print(f"[smmcl] {label}: {scores['num_images']} images, {protocol}")
    print(format_scores(names, {label: scores}))
    print(f"[smmcl] scores written to {out}")
    return 0


def _model_file_argument(args: argparse.Namespace, old: str, command: str) -> str:
    """`--checkpoint`, or the former positional spelling (kept one release, with a deprecation warning)."""
    given = getattr(args, old)  # an override in its place is refused with the rest (`parser.parse_args`)
    if given is not None and args.checkpoint is not None:
        raise ValueError(f"smmcl {command}: give the model file once, as --checkpoint")
    if given is not None:
        warn(f"smmcl {command} FILE is deprecated: write smmcl {command} --checkpoint FILE (the positional form goes "
             f"in the next release)")
        return given
    if args.checkpoint is None:
        raise ValueError(f"smmcl {command}: --checkpoint is required (smmcl weights, a training checkpoint"
                         f"{' or an ONNX export' if command == 'info' else ''})")
    return args.checkpoint


def cmd_export(args: argparse.Namespace) -> int:
    from smmcl.api import export

    # One message for each flag missing: the two once ran together as "... and --calibration --int8" (trial 14 #121).
    if args.int8 and args.calibration is None:
        raise ValueError("--int8 needs --calibration FOLDER: a dataset in the model's layout, or a folder of its RGB "
                         "and auxiliary images, to calibrate the int8 model on and check it against fp32")
    if args.calibration is not None and not args.int8:
        raise ValueError(f"--calibration {args.calibration} is used only with --int8: add --int8 for an int8 model, "
                         "or drop --calibration for an fp32 one")
    report = export(_model_file_argument(args, "weights", "export"), args.out, size=args.size, dynamic=args.dynamic,
                    opset=args.opset, exporter=args.exporter, calibration=args.calibration,
                    calibration_split=args.calibration_split, overwrite=args.overwrite)
    if args.int8:
        if wants_json(args):
            print_json({"out": args.out, **report.to_dict()})
        else:
            print(f"[smmcl] {args.out}: {report}")
        return 0
    if wants_json(args):
        print_json(report.to_dict())
        return 0
    lines = report.lines()
    print("\n".join(f"[smmcl] {line}" for line in (lines[:1] if args.quiet else lines)))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from smmcl.api import predict

    recording = args.bag or args.video
    if args.bag and args.video:
        raise ValueError("give --bag or --video, not both")
    if args.list_topics:
        return _list_topics(args)
    for flag, value in (("--checkpoint", args.checkpoint), ("--out", args.out)):
        if value is None:
            raise ValueError(f"smmcl predict needs {flag}")
    if recording:
        return _predict_recording(args)
    recording_only = [f for f, v in (("--rgb-topic", args.rgb_topic), ("--aux-topic", args.aux_topic),
                                     ("--aux-units", args.aux_units), ("--pair-tolerance", args.pair_tolerance),
                                     ("--aux-aligned", args.aux_aligned), ("--labels", args.labels),
                                     ("--no-video", args.no_video)) if v not in (None, False)]
    if recording_only:
        raise ValueError(f"{', '.join(recording_only)}: for a recording (--bag or --video) only")
    written = predict(args.checkpoint, args.rgb, args.aux, args.out, config=args.config, list_file=args.list,
                      overrides=[*args.overrides, *_protocol_overrides(args)], device=args.device, backend=args.backend,
                      aux_scale=1.0 if args.aux_scale is None else args.aux_scale, precision=args.precision,
                      overwrite=args.overwrite)
    if wants_json(args):
        print_json({"out": args.out, "files": [str(p) for p in written]})
        return 0
    print(f"[smmcl] wrote {len(written) // 2} label PNGs and overlays to {args.out}")
    return 0


def _list_topics(args: argparse.Namespace) -> int:
    from smmcl.api import list_topics

    if not args.bag:
        raise ValueError("--list-topics needs --bag BAG")
    topics = list_topics(args.bag)
    if wants_json(args):
        print_json([{"topic": t.name, "type": t.msgtype, "count": t.count} for t in topics])
        return 0
    width = max([len(t.name) for t in topics] + [5])
    print(f"{'topic':<{width}}  {'messages':>8}  type")
    for t in topics:
        print(f"{t.name:<{width}}  {t.count:>8}  {t.msgtype}")
    return 0


def _predict_recording(args: argparse.Namespace) -> int:
    from smmcl.api import predict_recording

    if args.config or args.overrides or args.rgb or args.list or _protocol_overrides(args):
        raise ValueError("a recording is predicted with the model file's own config and one whole-frame pass: "
                         "--config, overrides, --rgb, --list and --mode/--scales/--flip do not apply")
    if args.bag and args.aux:
        raise ValueError("--aux is a video's auxiliary stream, given with --video; a bag's is --aux-topic")
    summary = predict_recording(args.checkpoint, args.bag or args.video, args.out, rgb_topic=args.rgb_topic,
                                aux_topic=args.aux_topic, aux_path=args.aux, aux_units=args.aux_units,
                                tolerance=args.pair_tolerance, align=False if args.aux_aligned else None,
                                aux_scale=args.aux_scale, video=not args.no_video, labels=args.labels,
                                device=args.device, progress=not args.quiet, log=lambda line: say(args, line),
                                backend=args.backend, precision=args.precision, overwrite=args.overwrite)
    if wants_json(args):
        print_json(summary)
        return 0
    print(f"[smmcl] {summary['frames']} frames at {summary['frames_per_second_end_to_end']} frames/s end to end "
          f"(median latency {summary['latency_ms_median']} ms): {args.out}"
          + (f", video {summary['video']}" if summary["video"] else ""))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from smmcl.api import is_model_file, model_info, read_model_source

    if args.config is not None and args.checkpoint is None and is_model_file(args.config):
        args.checkpoint, args.config = _model_file_argument(args, "config", "info"), None
    if (args.config is None) == (args.checkpoint is None):
        raise ValueError("smmcl info: give a YAML config or --checkpoint MODEL_FILE (one of the two)")
    cfg, origin = read_model_source(args.checkpoint or args.config, args.overrides, model_file=args.checkpoint is not None)
    info = model_info(cfg, args.size)
    if wants_json(args):
        print_json({"source": origin, **info})
        return 0
    h, w = args.size
    flops = info["flops"]
    if args.quiet:
        print(f"{origin}: {info['params']['total']:,} parameters, {flops['inference total'] / 1e9:.2f} GFLOPs "
              f"at {h}x{w} ({info['backbone']} {info['preset']}, {info['decoder']} decoder)")
        return 0
    print(f"{origin}: {info['backbone']} backbone (preset {info['preset']}), {info['decoder']} decoder, "
          f"{info['num_classes']} classes, stage channels {info['stage_channels'] or '-'}")
    print(f"{'part':<28}{'parameters':>14}{'GFLOPs @ %dx%d' % (h, w):>20}")
    for part, n in info["params"].items():
        f = flops.get(part)
        if part == "total":
            f = flops["inference total"]
        shown = "" if f is None else f"{f / 1e9:.2f}"
        print(f"{part:<28}{n:>14,}{shown:>20}")
    print("FLOPs count multiply and add separately (2 per MAC; halve for the GMACs many papers call GFLOPs).")
    print("Projector FLOPs are training-only; the total is one inference forward pass.")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from smmcl.api import convert
    from smmcl.config import load_config

    cfg = load_config(args.config, args.overrides)
    report = convert(args.source, args.fmt, cfg, args.out, strict=False if args.no_strict else None,
                     overwrite=args.overwrite)
    if wants_json(args):
        print_json({"out": args.out, "source": report.source, "format": report.format, "loaded": report.loaded,
                    "missing_keys": report.missing_keys, "unexpected_keys": report.unexpected_keys,
                    "ignored_keys": report.ignored_keys})
        return 0
    say(args, report.summary())
    print(f"[smmcl] wrote {args.out} (weights + config; load with smmcl.load_pretrained)")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from smmcl.api import analyze_features
    from smmcl.config import load_config

    cfg = load_config(args.config, args.overrides)
    paths = [args.checkpoint, *args.compare]
    if args.names:
        names = args.names.split(",")
        if len(names) != len(paths) or len(set(names)) != len(names):
            raise ValueError(f"--names needs {len(paths)} distinct names, one per checkpoint; got {names}")
    else:
        names = _run_names(paths)
    result = analyze_features(cfg, dict(zip(names, paths)), args.out, split=args.split, stage=args.stage,
                              per_class=args.per_class, max_images=args.images, seed=args.seed,
                              overwrite=args.overwrite)
    if wants_json(args):
        print_json(result)
        return 0
    say(args, f"[smmcl] stage-{result['stage']} features of {result['images']} {result['split']} images, "
               f"{sum(result['points_per_class'].values())} points; k-NN accuracy (k={result['k']}) and silhouette, cosine:")
    for name, per in result["scores"].items():
        say(args, f"  {name:<16} " + "   ".join(
            f"{m}: k-NN {100 * s['knn_accuracy']:.1f}%, silhouette {s['silhouette']:+.3f}" for m, s in per.items()))
    print(f"[smmcl] {result['figure']} and {Path(args.out) / 'features.json'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from smmcl.api import report

    names = args.names.split(",") if args.names else None
    page = report(args.run, args.compare, args.out, num_images=args.images, names=names, overrides=args.overrides,
                  device=args.device, log=lambda line: say(args, f"[smmcl] {line}"), overwrite=args.overwrite)
    if wants_json(args):
        print_json({"page": str(page)})
        return 0
    print(f"[smmcl] report: {page}")
    return 0


def _run_name(path: str, depth: int = 1) -> str:
    """A short label for a checkpoint: its run folder (runs/demo/base/model.safetensors -> base), with `depth`
    folders of its path (2: demo/base)."""
    p = Path(path)
    parent = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return "/".join(parent.parts[-depth:]) or p.stem


def _run_names(paths: list) -> list:
    """Distinct labels for checkpoints given without --names: their run folders, with as many folders above as it
    takes to tell them apart (trial 12 #138: two studies' `seed0`). One file given twice keeps one label each,
    for the API to refuse by name (#135)."""
    deepest = max(len(Path(p).parts) for p in paths)
    for depth in range(1, deepest + 1):
        names = [_run_name(p, depth) for p in paths]
        if len(set(names)) == len(names):
            return names
    return [f"{p} ({i + 1})" for i, p in enumerate(paths)]
