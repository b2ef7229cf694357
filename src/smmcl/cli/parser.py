"""The command line's grammar: every command, argument, help text and example (`smmcl --help`)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Sequence

from smmcl.cli import commands as c, model_commands as m
from smmcl.cli.grammar import (OUTPUT_HELP, QUIET_HELP, Parser, add_backend_flag, add_json_flag, add_overwrite_flag,
                               add_protocol_flags, examples_text, positive_type, size_type, subcommand, version_text,
                               wrap_text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="smmcl", formatter_class=argparse.RawDescriptionHelpFormatter,

        epilog=examples_text("smmcl demo", "smmcl train configs/demo.yaml train.lr=0.001",
                         "smmcl --quiet eval --checkpoint runs/demo/smmcl/model.safetensors",
                         "smmcl COMMAND --help        (the options and examples of a command)"))
    parser.add_argument("--version", action="version", version=f"smmcl {version_text()}", help="print the version and exit")
    parser.add_argument("-q", "--quiet", action="store_true", default=False, help=QUIET_HELP.split(" (")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")

    data = subcommand(sub, "data", "dataset tools: synthetic data, checks, HHA", group=True,
                    examples=["smmcl data synth --kind indoor-rgbd --out data/indoor", "smmcl data check data/indoor"])
    data = data.add_subparsers(dest="data_command", required=True, metavar="TOOL", help="one of:")
    synth = subcommand(data, "synth", "generate built-in synthetic dark scenes", func=c.cmd_synth,
                     description="Generate built-in synthetic dark scenes in the generic layout (RGB/, Depth/ or "
                                 "Thermal/, Label/, train.txt, test.txt, meta.json). The same seed gives byte-identical "
                                 "files.",
                     examples=["smmcl data synth --kind indoor-rgbd --out data/indoor --num 400",
                               "smmcl data synth --kind night-rgbt --out data/night --size 240x320 --val-fraction 0.1",
                               "smmcl data synth --kind indoor-rgbd --out data/x --json > data/x.json"])
    synth.add_argument("--kind", required=True, type=str.lower, help="indoor-rgbd | indoor-rgbd-lit (normal exposure) | night-rgbt")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--num", type=int, default=200, help="number of scenes (default 200)")
    synth.add_argument("--size", type=size_type, default=(120, 160), help="HxW (default 120x160)")
    synth.add_argument("--seed", type=int, default=0, help="seed; scene i depends on (seed, i) alone (default 0)")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace a dataset generated in --out before with other values (the same values write the "
                            "same files again without it)")
    synth.add_argument("--test-fraction", type=float, default=0.25,
                       help="scenes held out as the test split (test.txt), the last ones (default 0.25)")
    synth.add_argument("--val-fraction", type=float, default=0.0,
                       help="scenes held out as a validation split (val.txt), before the test scenes (default 0)")
    add_json_flag(synth, "the dataset's description (splits, classes, palette, pixels per class, seconds)")

    check = subcommand(data, "check", "read a whole dataset and report counts, sizes, labels and every problem",
                     func=c.cmd_check,
                     description="Read every sample of every split list found and report counts, image sizes, "
                                 "auxiliary formats, a label histogram and every problem, each naming the file. "
                                 "Exit status 1 when there is any problem.",
                     examples=["smmcl data check data/indoor", "smmcl data check data/MFNet --preset mfnet --split test",
                               "smmcl data check data/mine --preset generic model.num_classes=5 data.aux_dir=Thermal"])
    check.add_argument("dir", help="dataset root folder")
    check.add_argument("--preset", default=None,
                       help="llrgbd | mfnet | mfnet-split | nyudv2 | generic (default: the folder's meta.json, read as generic)")
    check.add_argument("--split", action="append", help="only this split (repeatable; default: every list found)")
    check.add_argument("overrides", nargs="*", default=[], help="dotted overrides, e.g. data.aux_dir=Thermal")
    add_json_flag(check, "the report (splits, sizes, label histogram, problems)")

    hha = subcommand(data, "hha", "encode depth images as HHA (disparity, height, angle with gravity)", func=c.cmd_hha,
                   examples=["smmcl data hha --depth data/nyu/Depth --intrinsics 518.8,519.5,325.6,253.7 --out data/nyu/HHA"])
    hha.add_argument("--depth", required=True, help="folder of depth images")
    hha.add_argument("--intrinsics", required=True, help="fx,fy,cx,cy in pixels")
    hha.add_argument("--out", required=True, help="output folder of HHA PNGs")
    add_overwrite_flag(hha, "an earlier HHA folder")
    hha.add_argument("--depth-scale", type=float, default=0.001, help="metres per raw depth unit (default 0.001: mm)")
    hha.add_argument("--normal-radius", type=int, default=None,
                     help="smoothing radius of the angle channel's normals (default 1 + min(H, W) / 160: 4 at 480x640)")
    hha.add_argument("--camera-height", type=float, default=None,
                     help="camera height above the floor in cm (default: the floor in view, else 130 cm below the camera)")
    add_json_flag(hha, "the count and folder")

    tr = subcommand(sub, "train", "train a model from a YAML config", func=c.cmd_train,
                  description="Train a model from a YAML config into train.out_dir (config.yaml, log.jsonl, "
                              "checkpoints, model.safetensors at the end). Under torchrun, one rank of a DDP job.",
                  examples=["smmcl train configs/demo.yaml", "smmcl train configs/demo.yaml train.max_iters=300 --dry-run",
                            "smmcl train configs/demo.yaml --resume auto",
                            "torchrun --nproc-per-node 2 -m smmcl train configs/demo.yaml"])
    tr.add_argument("config", help="YAML config, e.g. configs/demo.yaml")
    tr.add_argument("overrides", nargs="*", default=[], help="dotted overrides, e.g. train.lr=0.001 loss.cm_weight=0")
    tr.add_argument("--resume", default=None, help="checkpoint path, or 'auto' for the newest in the run folder")
    tr.add_argument("--dry-run", action="store_true", help="build everything, run one step on one batch, print the plan")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace a run already in train.out_dir (without it, such a folder is refused)")
    tr.add_argument("--allow-config-change", action="store_true",
                    help="resume although training keys differ from the checkpoint's config (the change is logged)")
    add_json_flag(tr, "the dry run's plan and step figures, or the finished run's result")

    ev = subcommand(sub, "eval", "evaluate a checkpoint on a split", func=m.cmd_eval,
                  description="Evaluate a model file (smmcl weights, a training checkpoint or an ONNX export) on a "
                              "split: per-class IoU, mIoU, fwIoU and accuracies from one confusion matrix, also "
                              "written as JSON. Without a YAML config, the config comes from the file.",
                  examples=["smmcl eval --checkpoint runs/demo/smmcl/model.safetensors",
                            "smmcl eval configs/demo.yaml --checkpoint runs/demo/smmcl/checkpoints/ckpt_00000600.pt",
                            "smmcl eval --checkpoint model.onnx data.root=data/indoor --mode slide --scales 0.75,1,1.25 --flip",
                            "smmcl eval --checkpoint model.safetensors --json > scores.json"])
    ev.add_argument("config", nargs="?", default=None,
                    help="YAML config (default: the one the weights, checkpoint or ONNX file carries)")
    ev.add_argument("overrides", nargs="*", default=[], help="dotted overrides, e.g. data.root=data/llrgbd")
    ev.add_argument("--checkpoint", required=True, help="smmcl weights (.safetensors), a training checkpoint, or an ONNX export")
    add_backend_flag(ev)
    ev.add_argument("--split", default=None, help="split name (default: eval.split of the config)")
    ev.add_argument("--subset", default=None, help="named subset of the split, e.g. night (default: eval.subset)")
    add_protocol_flags(ev)
    ev.add_argument("--out", default=None, help="JSON file for the scores (default: beside the checkpoint)")
    add_overwrite_flag(ev, "earlier scores")
    add_json_flag(ev, "the scores (the content of the --out file)")

    pr = subcommand(sub, "predict", "label PNGs and overlays for image files, folders or a list", func=m.cmd_predict,
                  description="Write <name>.png (class ids in a palette PNG) and <name>_overlay.png per input: two "
                              "files, two folders paired by file name, a list file, or 4-channel RGB+X images. The "
                              "config comes from the model file unless --config is given.",
                  examples=["smmcl predict --checkpoint runs/demo/smmcl/model.safetensors --rgb data/indoor/RGB "
                            "--aux data/indoor/Depth --out preds",
                            "smmcl predict --checkpoint model.onnx --list frames.txt --out preds --mode slide",
                            "smmcl predict --bag night.bag --list-topics",
                            "smmcl predict --checkpoint model.onnx --bag night.bag --rgb-topic /camera/color/image_raw "
                            "--aux-topic /camera/aligned_depth_to_color/image_raw --out night_pred",
                            "smmcl predict --checkpoint model.onnx --video drive.mp4 --aux thermal/ --aux-units raw "
                            "--out drive_pred"])
    pr.add_argument("--checkpoint", default=None,
                    help="weights (.safetensors), a training checkpoint, or an ONNX export (required but for --list-topics)")
    add_backend_flag(pr)
    pr.add_argument("--config", default=None, help="YAML config (default: the one stored with the checkpoint)")
    pr.add_argument("--rgb", default=None, help="RGB image or folder (paired with --aux by file name)")
    pr.add_argument("--aux", default=None, help="auxiliary image or folder; omit for 4-channel RGB+X images")
    pr.add_argument("--list", default=None, help="list file: 'RGB AUX' paths per line, or names in --rgb/--aux")
    pr.add_argument("--bag", default=None, help="a ROS 1 .bag (RealSense recordings too) or a ROS 2 bag folder: "
                                                "predict its paired frames into an overlay video")
    pr.add_argument("--video", default=None, help="an RGB video; its auxiliary stream is --aux (a second video or "
                                                  "an image folder)")
    pr.add_argument("--list-topics", action="store_true", help="list the bag's topics, types and counts, and stop")
    pr.add_argument("--rgb-topic", default=None, help="the bag's colour image topic (default: the only one)")
    pr.add_argument("--aux-topic", default=None, help="the bag's depth or thermal topic (default: the only one, aligned "
                                                      "depth first)")
    pr.add_argument("--aux-units", default=None, help="units of a video's auxiliary stream: mm, m, raw, or e.g. "
                                                      "'0.0001 m' (bags say their own)")
    pr.add_argument("--pair-tolerance", type=positive_type(float, 0), default=None, metavar="SECONDS",
                    help="most seconds between paired frames (default: half the slower stream's frame interval)")
    pr.add_argument("--aux-aligned", action="store_true",
                    help="the bag's depth is registered to colour already: take it as recorded")
    pr.add_argument("--labels", action="store_true", help="with --bag / --video: also write a label PNG per frame")
    pr.add_argument("--no-video", action="store_true", help="with --bag / --video: write no overlay video")
    pr.add_argument("--out", default=None, help="output folder")
    add_overwrite_flag(pr, "an earlier prediction, whole")
    pr.add_argument("--aux-scale", type=float, default=None, metavar="FACTOR",
                    help="multiply the auxiliary images into the units the model was trained on (1000: depth in metres "
                         "for a model trained on millimetres; default 1, for a recording: from its units)")
    pr.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: train.device of the config)")
    pr.add_argument("overrides", nargs="*", default=[], help="dotted overrides of the model's config, e.g. eval.crop_size=[240,320]")
    add_protocol_flags(pr)
    add_json_flag(pr, "the files written")

    ex = subcommand(sub, "export", "weights -> ONNX file with its metadata, verified with ONNX Runtime", func=m.cmd_export,
                  description="Export a trained model to ONNX (inputs rgb, aux: N x 3 x H x W; output logits). The "
                              "file carries class names, palette and preprocessing; it is checked against PyTorch "
                              "with ONNX Runtime before it is written.",
                  examples=["smmcl export --checkpoint runs/demo/smmcl/model.safetensors --out smmcl.onnx --size 120x160",
                            "smmcl export --checkpoint model.safetensors --out fixed.onnx --no-dynamic --size 480x640",
                            "smmcl export --checkpoint model.safetensors --out model.int8.onnx --int8 --calibration data/indoor "
                            "--size 120x160"])
    ex.add_argument("--checkpoint", default=None,
                    help="smmcl weights or a training checkpoint (the config comes from the file)")
    ex.add_argument("weights", nargs="?", default=None, help=argparse.SUPPRESS)  # the former spelling, one release
    ex.add_argument("--out", required=True, help="ONNX file to write (.onnx)")
    add_overwrite_flag(ex, "an earlier export")
    ex.add_argument("--size", type=size_type, default=(480, 640), help="example input HxW, the fixed size with --no-dynamic (default 480x640)")
    ex.add_argument("--dynamic", action=argparse.BooleanOptionalAction, default=True,
                    help="dynamic batch, height and width (default); --no-dynamic fixes 1 x 3 x H x W")
    ex.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18; 11-23 with torchscript, 18-23 with dynamo)")
    ex.add_argument("--int8", action="store_true",
                    help="write an int8 model (static quantisation, calibrated on --calibration), only if it keeps "
                         ">= 99%% of the fp32 pixels, loses <= 0.5 mIoU points and is faster here")
    ex.add_argument("--calibration", default=None, metavar="DIR",
                    help="frames for --int8: a dataset in the model's layout (its --calibration-split list, with "
                         "labels), or a folder holding the model's RGB and auxiliary folders")
    ex.add_argument("--calibration-split", default="train", help="the list of --calibration to use (default train)")
    ex.add_argument("--exporter", choices=["torchscript", "dynamo"], type=str.lower, default="torchscript",
                    help="PyTorch exporter: torchscript (default, fast) or dynamo (torch.export-based, slow to export)")
    add_json_flag(ex, "the export report (file, exporter, parity figures)")

    info = subcommand(sub, "info", "parameters per part and GFLOPs of a model", func=m.cmd_info,
                    description="Parameters per part and FLOPs of a model at an input size, computed on the meta "
                                "device (no memory, no weights needed).",
                    examples=["smmcl info configs/released/llrgbd_mscan_b.yaml",
                              "smmcl info --checkpoint runs/demo/smmcl/model.safetensors --size 120x160",
                              "smmcl info configs/demo.yaml model.backbone.preset=T --json > info.json"])
    info.add_argument("config", nargs="?", default=None,
                      help="YAML config (a model file here is the former spelling of --checkpoint)")
    info.add_argument("--checkpoint", default=None, help="a model file instead: weights, a training checkpoint or an ONNX export")
    info.add_argument("overrides", nargs="*", default=[], help="dotted overrides of a YAML config, e.g. model.backbone.preset=S")
    info.add_argument("--size", type=size_type, default=(480, 640), help="input HxW (default 480x640)")
    add_json_flag(info, "the numbers (parameters and FLOPs per part)")

    cv = subcommand(sub, "convert", "outside checkpoint -> smmcl weights (.safetensors with config)", func=m.cmd_convert,
                  examples=["smmcl convert epoch-500.pth --from official-smmcl --config configs/released/llrgbd_mscan_b.yaml "
                            "--out smmcl_llrgbd.safetensors",
                            "smmcl convert mscan_b.pth --from mscan --config configs/paper/llrgbd_mscanb_smmcl.yaml --out init.safetensors"])
    cv.add_argument("source", help="input file (.pth/.pt/.safetensors)")
    cv.add_argument("--from", dest="fmt", required=True, type=str.lower,
                    help="official-smmcl (released SMMCL checkpoint) | mscan (SegNeXt ImageNet) | "
                         "mit (SegFormer ImageNet) | resnet (torchvision) | checkpoint (smmcl training checkpoint)")
    cv.add_argument("--config", required=True, help="YAML config of the model the weights belong to")
    cv.add_argument("--out", required=True, help="output .safetensors file")
    add_overwrite_flag(cv, "earlier converted weights")
    cv.add_argument("--no-strict", action="store_true", help="official-smmcl: allow missing/unexpected keys")
    cv.add_argument("overrides", nargs="*", default=[], help="dotted overrides of the config, e.g. model.decoder.ham_out_norm=false")
    add_json_flag(cv, "the load report and the file written")

    st = subcommand(sub, "study", "variants x seeds of training runs, compared seed by seed (resumable)", func=c.cmd_study,
                  description="Run a study file: every variant with every seed, each trained and evaluated; a killed "
                              "study continues where it stopped. Writes results.json, results.md and results.png.",
                  examples=["smmcl study studies/synthetic_tables5_6.yaml --jobs 2",
                            "smmcl study studies/synthetic_tables5_6.yaml --dry-run",
                            "smmcl study studies/synthetic_tables5_6.yaml --report --json > results.json",
                            "smmcl study studies/synthetic_tables5_6.yaml --import docs/study/results.json"])
    st.add_argument("study", help="study YAML (base config, reference, seeds, overrides, variants)")
    st.add_argument("--out", default=None, help="output folder (default: runs/studies/<study file name>)")
    st.add_argument("--jobs", type=int, default=1, help="runs trained at once, the CPU threads split among them (default 1)")
    st.add_argument("--threads", type=int, default=None,
                    help="torch threads per job (default: the CPU cores split among the jobs); e.g. --jobs 1 --threads 1 "
                         "leaves a core free for other work")
    st.add_argument("--dry-run", action="store_true", help="resolve every run's config and print the plan; run nothing")
    st.add_argument("--report", action="store_true",
                    help="train nothing: write results.md/json/png from the runs finished so far (a study running or stopped)")
    st.add_argument("--import", dest="imports", action="append", default=[], metavar="RESULTS_JSON",
                    help="count the runs in an earlier results.json of this same study as finished (checked: same "
                         "base, overrides and iterations); repeatable")
    add_json_flag(st, "the results (or, with --dry-run, the plan)")

    an = subcommand(sub, "analyze", "analyses of trained models", group=True,
                  examples=["smmcl analyze features configs/demo.yaml --checkpoint runs/demo/base/model.safetensors "
                            "--out runs/demo/features"])
    an = an.add_subparsers(dest="analyze_command", required=True, metavar="ANALYSIS", help="one of:")
    fe = subcommand(an, "features", "t-SNE of the final encoder features (paper Fig. 8), k-NN accuracy, silhouette",
                  func=m.cmd_features,
                  examples=["smmcl analyze features configs/demo.yaml --checkpoint runs/demo/base/model.safetensors "
                            "--compare runs/demo/smmcl/model.safetensors --out runs/demo/features",
                            "smmcl analyze features configs/demo.yaml model.projector.stage=3 --stage 3 "
                            "--checkpoint A.safetensors --names A --out features3 --json"])
    fe.add_argument("config", help="YAML config of the data (and of the model, for training checkpoints)")
    fe.add_argument("overrides", nargs="*", default=[], help="dotted overrides, e.g. data.root=runs/demo/data")
    fe.add_argument("--checkpoint", required=True, help="weights (.safetensors) or training checkpoint")
    fe.add_argument("--compare", action="append", default=[], help="another model to set beside it (repeatable)")
    fe.add_argument("--names", default=None, help="comma-separated labels, one per model (default: run folder names)")
    fe.add_argument("--out", required=True, help="output folder for tsne.png and features.json")
    add_overwrite_flag(fe, "an earlier analysis")
    fe.add_argument("--split", default=None, help="held-out split (default: eval.split)")
    fe.add_argument("--stage", type=int, default=4, help="encoder stage whose features are shown (default 4, as Fig. 8)")
    fe.add_argument("--per-class", type=positive_type(int, 1), default=200, help="points drawn per class (default 200)")
    fe.add_argument("--images", type=positive_type(int, 1), default=None, help="use only the first N images of the split")
    fe.add_argument("--seed", type=int, default=0, help="seed of the point draw and of t-SNE")
    add_json_flag(fe, "the scores (the content of features.json)")

    rp = subcommand(sub, "report", "a static page on a finished run, or comparing runs (opens from disk)",
                  func=m.cmd_report,
                  description="Write index.html and its PNGs: scores with deltas, every loss term, lr and validation "
                              "mIoU against iterations, per-class IoU, confusion matrices, test predictions with a "
                              "legend, the t-SNE of `analyze features` when the run holds one, config and "
                              "environment. Every run is scored on the first run's data and split. Needs matplotlib "
                              "(pip install 'smmcl[analysis]').",
                  examples=["smmcl report runs/demo/smmcl",
                            "smmcl report runs/demo/base --compare runs/demo/smmcl --out runs/demo/report",
                            "smmcl report runs/a --compare runs/b --compare runs/c --names A,B,C data.root=/data/llrgbd"])
    rp.add_argument("run", help="run folder (config.yaml, log.jsonl, model.safetensors); the reference when comparing")
    rp.add_argument("--compare", action="append", default=[], metavar="RUN", help="another run folder to set beside it (repeatable)")
    rp.add_argument("--out", default=None, help="output folder (default: RUN/report)")
    add_overwrite_flag(rp, "an earlier report, whole")
    rp.add_argument("--images", type=positive_type(int, 0), default=6, help="test images in the prediction grid (default 6)")
    rp.add_argument("--names", default=None, help="comma-separated labels, one per run (default: folder names)")
    rp.add_argument("--device", default=None, help="device for scoring, e.g. cpu or cuda (default: each run's train.device)")
    rp.add_argument("overrides", nargs="*", default=[], help="dotted overrides applied to every run's config, e.g. data.root=/data/llrgbd")
    add_json_flag(rp, "the page written")

    demo = subcommand(sub, "demo", "synthetic data -> train Base and SMMCL -> evaluate -> pictures", func=c.cmd_demo,
                    description="The whole pipeline on built-in synthetic low-light rooms: generate the data, train "
                                "Base and SMMCL with the same seed and budget, evaluate both, write prediction "
                                "panels, summary.json and the report page (5-15 minutes on 2 CPU cores).",
                    examples=["smmcl demo", "smmcl demo --out runs/demo2 train.max_iters=300",
                              "smmcl --quiet demo > demo.log"])
    demo.add_argument("--out", default="runs/demo", help="output folder: data, both runs, pictures, summary.json (default runs/demo)")
    demo.add_argument("--config", default=None, help="demo config (default: configs/demo.yaml)")
    demo.add_argument("overrides", nargs="*", default=[], help="dotted overrides of the demo config, e.g. train.max_iters=300")
    add_overwrite_flag(demo, "a demo of other settings")
    add_json_flag(demo, "the demo's summary (scores, times, files)")
    # Written last, from the commands themselves, so that the list of --json commands cannot go stale.
    parser.description = wrap_text("Dark-scene RGB-X segmentation with SMMCL: synthetic data, training, evaluation, "
                               "prediction, export and studies.\n\n" + OUTPUT_HELP.format(json=", ".join(_json_commands(sub))))
    return parser


def _json_commands(sub: argparse._SubParsersAction, prefix: str = "") -> list[str]:
    """The (sub)commands that take --json, as typed: `data synth`, `eval`, ..."""
    names = []
    for name, p in sub.choices.items():
        nested = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            names += _json_commands(nested[0], f"{prefix}{name} ")
        elif any("--json" in a.option_strings for a in p._actions):
            names.append(prefix + name)
    return names


# A dotted override (`train.lr=0.001`), accepted anywhere on the command line.
_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+=")


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, then take overrides found after the options too (`eval CONFIG --checkpoint X data.root=Y`)."""
    args, extra = parser.parse_known_args(argv)
    command = getattr(args, "command_parser", parser)
    overrides = [a for a in extra if _OVERRIDE.match(a)]
    rest = [a for a in extra if not _OVERRIDE.match(a)]
    if not hasattr(args, "overrides"):
        # Overrides given to a command on a model file, one of them perhaps taken as its former positional file
        # argument: all named, in one error (trial 16 #118: the first was swallowed, the second "unrecognized").
        taken = [v for v in (getattr(args, a.dest, None) for a in command._actions if not a.option_strings)
                 if isinstance(v, str) and _OVERRIDE.match(v) and not Path(v).exists()]
        if taken or overrides:
            command.error(f"takes no config overrides ({' '.join([*taken, *overrides])}): the model file carries its "
                          f"config; change it when training, or give a config to the command that reads one")
    if rest:
        command.error(f"unrecognized arguments: {' '.join(rest)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    # An empty value (`--out ""`, an unset shell variable) names no file: said as such, for every option at once
    # (trial 14 #249-#274: tracebacks, or "error:  has no meta.json").
    spelled = {a.dest: (a.option_strings[0] if a.option_strings else a.metavar or a.dest.upper()) for a in command._actions}
    empty = sorted(spelled.get(k, k) for k, v in vars(args).items() if v == "" or (isinstance(v, list) and "" in v))
    if empty:
        command.error(f"{', '.join(empty)}: an empty value; give a path or value (an unset shell variable?)")
    return args
