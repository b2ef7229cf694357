"""The commands: each parses nothing and computes nothing itself; it calls `smmcl.api` and prints the result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from smmcl.cli.output import print_json, say, wants_json, warn
from smmcl.errors import ConfigError
from smmcl.outputs import output_file


def cmd_synth(args: argparse.Namespace) -> int:
    from smmcl.api import make_synthetic

    summary = make_synthetic(args.kind, args.out, args.num, size=args.size, seed=args.seed,
                             test_fraction=args.test_fraction, val_fraction=args.val_fraction, progress=True,
                             overwrite=args.overwrite)
    if wants_json(args):
        print_json(summary)
        return 0
    h, w = summary["size"]
    splits = f"train {summary['num_train']}" + (f", val {summary['num_val']}" if summary["num_val"] else "")
    done = ("already there, nothing written (--overwrite generates it again)" if summary.get("already")
            else f"{summary['seconds']:.1f} s")
    print(f"[smmcl] {summary['num']} {summary['kind']} scenes of {h}x{w} in {summary['out_dir']}: {splits}, "
          f"test {summary['num_test']}; {len(summary['class_names'])} classes, {done}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train; under `torchrun --nproc-per-node N -m smmcl train ...` this is one rank of a DDP job."""
    import contextlib
    import io
    import os

    from smmcl.api import dry_run, train
    from smmcl.engine.distributed import exit_process
    from smmcl.config import load_config

    cfg = load_config(args.config, args.overrides)
    # Rank 0 speaks for the job; the other ranks' output (identical or empty) is dropped. Errors still
    # reach stderr from every rank, since each may fail for its own reason.
    quiet = contextlib.redirect_stdout(io.StringIO()) if int(os.environ.get("RANK", "0")) > 0 else contextlib.nullcontext()
    with quiet:
        if args.dry_run:
            result = dry_run(cfg, resume=args.resume, allow_config_change=args.allow_config_change,
                             overwrite=args.overwrite)
            _show_dry_run(result, args)
        else:
            result = train(cfg, resume=args.resume, overwrite=args.overwrite,
                           allow_config_change=args.allow_config_change, log=lambda line: say(args, line))
            for warning in result["warnings"]:
                warn(warning)
            if wants_json(args):
                print_json(result)
            else:
                last = result["last"]
                print(f"[smmcl] done at step {last.get('step')}: "
                      + ", ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "step"))
    if result["world_size"] > 1:
        exit_process(0)  # a rank of a DDP job ends at once (engine.distributed.exit_process says why)
    return 0


def _show_dry_run(r: dict, args: argparse.Namespace) -> None:
    if wants_json(args):
        print_json(r)
        return
    p, d, step = r["plan"], r["data"], r["step"]
    if r["pretrained"]:
        say(args, r["pretrained"])
    # The effective batch: what one iteration (optimizer step) averages over, docs/configuration.md.
    batch = f"batch {p['batch_size']}" if p["accumulate"] == 1 else f"batch {p['batch_size']} x accumulate {p['accumulate']}"
    ranks = f", {r['world_size']} processes x {p['local_batch_size']} per pass" if r["world_size"] > 1 else ""
    say(args, f"[smmcl] dry run of {r['name']}: nothing is written",
         f"  data        {d['root']} ({d['preset'] or 'no preset'}): {d['train_images']} training images, "
         f"crop {d['crop_size'][0]}x{d['crop_size'][1]}, scales {d['scales']}",
         f"  plan        {p['total_iters']} iterations = {p['total_iters'] / p['iters_per_epoch']:g} epochs x "
         f"{p['iters_per_epoch']}/epoch (effective batch {p['effective_batch']}: {batch}{ranks}), warm-up "
         f"{p['warmup_iters']}, checkpoint every {p['checkpoint_every']}",
         "  lr          " + ", ".join(f"it {k}: {lr:.3g}" for k, lr in r["lr"]))
    if r["batch_warning"]:
        warn(r["batch_warning"])
    counts, loss = r["params"], r["loss"]
    contrast = f"contrast {loss['contrast']}" if loss["contrast"] else "Base: no contrastive term"
    say(args, f"  parameters  {counts['total']:,} (dual encoder {counts['dual encoder']:,}, decoder {counts['decoder']:,}); "
               f"device {r['device']}",
         f"  loss        {loss['formula']} ({contrast}), tau {loss['temperature']}")
    shown = ", ".join(f"{k}={v:.4g}" for k, v in step.items() if isinstance(v, float))
    passes = f" x {p['accumulate']} micro-batches" if p["accumulate"] > 1 else ""
    if args.quiet:
        print(f"[smmcl] dry run of {r['name']}: {p['total_iters']} iterations planned, effective batch "
              f"{p['effective_batch']}; one step on batch {step['batch_shape']}{passes}: {shown}; nothing written")
    else:
        print(f"  one step    batch {step['batch_shape']}{passes}: {shown}")


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
    from smmcl.config import load_config, to_dict

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).is_file():
        config, overrides = None, [config, *overrides]  # no YAML given: the first word is an override
    extra = [*overrides, *_protocol_overrides(args)]
    if config is not None:
        return load_config(config, extra)
    from smmcl.api import read_model_source

    cfg, _ = read_model_source(args.checkpoint, model_file=True)  # weights, checkpoint or ONNX: the config it carries
    return load_config(to_dict(cfg), extra)


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
    given = getattr(args, old)
    if given is not None and "=" in given and not Path(given).exists():
        raise ValueError(f"smmcl {command} takes no config overrides ({given}): the model file carries its config; "
                         f"change it when training, or give a config to the command that reads one")
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

    if args.int8 != (args.calibration is not None):
        raise ValueError("--int8 needs --calibration DIR (frames to calibrate and verify on), and --calibration --int8")
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


def cmd_check(args: argparse.Namespace) -> int:
    from smmcl.api import check_data

    cfg, report, from_meta = check_data(args.dir, args.preset, args.split or None, args.overrides)
    preset = cfg.data.preset
    code = 0 if report.ok else 1
    if wants_json(args):
        print_json({"preset": preset, "from_meta_json": from_meta, "layout": cfg.data.layout,
                     "aux_kind": cfg.data.aux_kind, **report.to_dict()})
        return code
    if args.quiet:
        # Problems are errors and notes are what may be wrong (other units, test images also trained on): listed
        # even so (trial 8 #281), then the one-line result.
        for problem in report.problems:
            print(f"  {problem}")
        for note in report.notes:
            print(f"  note: {note}")
        images = sum(s.count for s in report.splits.values())
        found = ("no problems found" if report.ok else f"{len(report.problems)} problem(s)") + (
            f", {len(report.notes)} note(s)" if report.notes else "")
        print(f"[smmcl] {args.dir} ({preset}): {images} images in {len(report.splits)} splits, {found}")
        return code
    source = " (from meta.json)" if from_meta else ""
    print(f"preset {preset}{source}: {cfg.model.num_classes} classes, layout {cfg.data.layout}, auxiliary {cfg.data.aux_kind}")
    print(report.format())
    return code


def cmd_hha(args: argparse.Namespace) -> int:
    from smmcl.api import convert_hha

    n = convert_hha(args.depth, args.out, args.intrinsics, depth_scale=args.depth_scale,
                    normal_radius=args.normal_radius, camera_height=args.camera_height, overwrite=args.overwrite)
    if wants_json(args):
        print_json({"written": n, "out": args.out})
        return 0
    print(f"[smmcl] wrote {n} HHA images to {args.out}")
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
        raise ValueError("--aux is a video's auxiliary stream; a bag's is --aux-topic")
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


def cmd_demo(args: argparse.Namespace) -> int:
    import contextlib
    import io

    from smmcl.api import run_demo

    # The demo narrates each stage; --quiet keeps its last word only.
    hushed = contextlib.redirect_stdout(io.StringIO()) if args.quiet or wants_json(args) else contextlib.nullcontext()
    with hushed:
        summary = run_demo(args.out, config=args.config, overrides=args.overrides)
    if wants_json(args):
        print_json(summary)
        return 0
    if args.quiet:
        scores = ", ".join(f"{name} {100 * m['miou']:.2f}%" for name, m in summary["models"].items())
        print(f"[demo] mIoU (without void): {scores}; summary in {Path(args.out) / 'summary.json'}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from smmcl.api import run_study
    from smmcl.study.runner import default_out, describe_plan

    if args.dry_run:
        if args.report:
            raise ConfigError("--dry-run and --report: give one (the plan, or the results of the runs finished)")
        plan = describe_plan(args.study, args.out, jobs=args.jobs, threads=args.threads, imports=args.imports)
        if wants_json(args):
            print_json({"plan": plan})
        else:
            print("\n".join(plan[:1] if args.quiet else plan))
        return 0
    # The study's own lines (runs finished, files written) are its progress: on stderr under --json.
    log = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr)) if wants_json(args) else print
    results = run_study(args.study, out=args.out, jobs=args.jobs, report_only=args.report, imports=args.imports, log=log,
                        threads=args.threads)
    if wants_json(args):
        print_json(results)
        return 0
    if args.quiet:
        out = Path(args.out) if args.out else default_out(args.study)
        print(f"[smmcl] {args.study}: {results.get('runs_finished')}/{results.get('runs_planned')} runs finished; "
              f"results in {out / 'results.md'}")
        return 0
    ref = results["reference"]
    if results.get("non_paper"):
        print(f"  {results['non_paper']['headline']}")
    for name, v in results["variants"].items():
        if not v["runs"]:
            continue
        line = f"  {name:<16} mIoU {100 * v['miou_mean']:6.2f} +- {100 * v['miou_std']:.2f} ({v['n']} seeds)"
        if name != ref and v.get("delta_mean") is not None:
            ci = v.get("delta_ci95")
            shown = f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else "-"
            line += f"   delta {100 * v['delta_mean']:+.2f}, 95% CI {shown}: {v['verdict']}"
        if name != ref and v.get("contrast_zero_fraction") == 1:
            # Its contrastive terms never acted: the variant trained as the reference did, whatever it was meant to test.
            line += "; its contrast was 0 on every step (too few classes per batch), so it trained as plain CE"
        print(line)
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from smmcl.api import analyze_features
    from smmcl.config import load_config

    cfg = load_config(args.config, args.overrides)
    paths = [args.checkpoint, *args.compare]
    names = args.names.split(",") if args.names else [_run_name(p) for p in paths]
    if len(names) != len(paths) or len(set(names)) != len(names):
        raise ValueError(f"--names needs {len(paths)} distinct names, one per checkpoint; got {names}")
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


def _run_name(path: str) -> str:
    """A short label for a checkpoint: its run folder (runs/demo/base/model.safetensors -> base)."""
    p = Path(path)
    parent = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return parent.name or p.stem
