"""The commands on data, training, studies and the demo: each parses nothing and computes nothing itself; it calls
`smmcl.api` and prints the result (those on trained models: `model_commands`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smmcl.cli.output import print_json, say, wants_json, warn
from smmcl.errors import ConfigError



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


def cmd_demo(args: argparse.Namespace) -> int:
    import contextlib
    import io

    from smmcl.api import run_demo

    # The demo narrates each stage; --quiet keeps its last word only.
    hushed = contextlib.redirect_stdout(io.StringIO()) if args.quiet or wants_json(args) else contextlib.nullcontext()
    with hushed:
        summary = run_demo(args.out, config=args.config, overrides=args.overrides, overwrite=args.overwrite)
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
        spread = f" +- {100 * v['miou_std']:.2f}" if v["miou_std"] is not None else ""
        line = f"  {name:<16} mIoU {100 * v['miou_mean']:6.2f}{spread} ({v['n']} seed{'s' if v['n'] != 1 else ''})"
        if name != ref and v.get("delta_mean") is not None:
            ci = v.get("delta_ci95")
            shown = f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else "-"
            line += f"   delta {100 * v['delta_mean']:+.2f}, 95% CI {shown}: {v['verdict']}"
        if name != ref and v.get("contrast_zero_fraction") == 1:
            # Its contrastive terms never acted: the variant trained as the reference did, whatever it was meant to test.
            line += "; its contrast was 0 on every step (too few classes per batch), so it trained as plain CE"
        print(line)
    return 0
