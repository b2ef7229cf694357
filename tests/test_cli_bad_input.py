"""Every command with a user's mistakes (bad arguments, bad paths, bad files): exit status 2, one line starting
`smmcl: error:` (argparse's own errors: `smmcl COMMAND: error:`) that names what is wrong, and no traceback.
A traceback is kept for real bugs only."""

from __future__ import annotations

import pytest

from smmcl.cli import main

from support import TINY_CONFIG
from support.images import png_16bit_colour

# {name}: a path from the `files` fixture; each case: (id, argv template, words the message must hold).
CASES = [
    # --- train ---
    ("train config missing", ["train", "{tmp}/nope.yaml"], "nope.yaml"),
    ("train config a folder", ["train", "{tmp}"], "is a folder; a YAML config file is expected"),
    ("train config not YAML", ["train", "{garbage}"], "garbage.yaml"),
    ("train unknown key", ["train", "{tiny}", "train.nope=1"], "train.nope"),
    ("train key without value", ["train", "{tiny}", "train.max_iters"], "train.max_iters"),
    ("train bad number", ["train", "{tiny}", "train.max_iters=abc"], "train.max_iters"),
    ("train null class names", ["train", "{tiny}", "data.class_names=null", "--dry-run"],
     "expected a value, not null (an empty list []"),
    ("train scalar for a list", ["train", "{tiny}", "data.crop_size=abc"], "data.crop_size': expected a list such as [a, b], got 'abc'"),
    ("train negative iterations", ["train", "{tiny}", "{data_root}", "train.max_iters=-3"], "max_iters"),
    ("train data root missing", ["train", "{tiny}", "data.root={tmp}/no_data", "train.out_dir={tmp}/r1"], "no_data"),
    ("train out_dir a file", ["train", "{tiny}", "{data_root}", "train.out_dir={weights}"], "model.safetensors"),
    ("train out_dir on the data", ["train", "{tiny}", "{data_root}", "train.out_dir={data}"], "train.out_dir"),
    ("train resume missing", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r2", "--resume", "{tmp}/c.pt"], "c.pt"),
    ("train overwrite and resume", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r9", "--overwrite", "--resume",
                                    "auto"], "give one of them"),
    ("train resume not a checkpoint", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r3", "--resume", "{garbage}"],
     "garbage.yaml"),
    ("train device gpu0", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r4", "train.device=gpu0"], "gpu0"),
    ("train device cuda without one", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r5", "train.device=cuda"],
     "cuda"),
    ("train pretrained missing", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r6", "model.pretrained={tmp}/w.pth"],
     "w.pth"),
    ("train pretrained is a YAML", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r7", "model.pretrained={tiny}"],
     "tiny.yaml"),
    # --- eval ---
    ("eval checkpoint missing", ["eval", "--checkpoint", "{tmp}/none.safetensors"], "none.safetensors"),
    ("eval checkpoint a YAML", ["eval", "--checkpoint", "{tiny}"], "tiny.yaml"),
    ("eval checkpoint empty", ["eval", "--checkpoint", "{empty}"], "empty"),
    ("eval checkpoint a folder", ["eval", "--checkpoint", "{tmp}"], "{tmp}"),
    ("eval out a folder", ["eval", "--checkpoint", "{weights}", "{data_root}", "--out", "{tmp}"], "folder"),
    ("eval out over the model", ["eval", "--checkpoint", "{weights}", "{data_root}", "--out", "{weights}"], "--out"),
    ("eval out over a user's file", ["eval", "--checkpoint", "{weights}", "{data_root}", "--out", "{notes}"], "notes.txt"),
    ("eval scales with a hole", ["eval", "--checkpoint", "{weights}", "{data_root}", "--scales", "1,,2"], "scales"),
    ("eval scales not numbers", ["eval", "--checkpoint", "{weights}", "{data_root}", "--scales", "a,b"], "scales"),
    ("eval unknown split", ["eval", "--checkpoint", "{weights}", "{data_root}", "--split", "nosuch"], "nosuch"),
    ("predict empty out", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{aux}", "--out", ""],
     "--out: an empty value"),  # trial 14 #249-#274: tracebacks
    ("info empty checkpoint", ["info", "--checkpoint", ""], "--checkpoint: an empty value"),
    ("data check empty folder", ["data", "check", ""], "DIR: an empty value"),
    ("eval unknown option", ["eval", "--checkpoint", "{weights}", "--device", "cpu"],
     "smmcl eval: error: unrecognized arguments: --device"),  # the command's own usage (trial 11 #183)
    ("eval unknown backend", ["eval", "--checkpoint", "{weights}", "--backend", "tensorrt"], "tensorrt"),
    ("eval ONNX runtime for weights", ["eval", "--checkpoint", "{weights}", "{data_root}", "--backend", "onnxruntime"],
     "onnx"),
    ("eval fixed-size ONNX at another size", ["eval", "--checkpoint", "{onnx_fixed}", "{data_root}"], "onnx"),
    # --- predict ---
    ("predict out a file", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{aux}", "--out", "{notes}"],
     "notes.txt"),
    ("predict out the RGB folder", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{aux}", "--out", "{rgb}"],
     "--out"),
    ("predict out inside the aux folder", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{aux}",
                                           "--out", "{aux}/pred"], "--out"),
    ("predict rgb missing", ["predict", "--checkpoint", "{weights}", "--rgb", "{tmp}/none", "--out", "{tmp}/p1"], "none"),
    ("predict aux a file for a folder", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{notes}",
                                         "--out", "{tmp}/p2"], "notes.txt"),
    ("predict list missing", ["predict", "--checkpoint", "{weights}", "--list", "{tmp}/l.txt", "--out", "{tmp}/p3"], "l.txt"),
    ("predict no input", ["predict", "--checkpoint", "{weights}", "--out", "{tmp}/p4"], "input"),
    ("predict device gpu0", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{aux}", "--out", "{tmp}/p5",
                             "--device", "gpu0"], "gpu0"),
    ("predict device cuda without one", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{aux}",
                                         "--out", "{tmp}/p6", "--device", "cuda"], "cuda"),
    ("predict checkpoint garbage", ["predict", "--checkpoint", "{notes}", "--rgb", "{rgb}", "--aux", "{aux}", "--out",
                                    "{tmp}/p7"], "notes.txt"),
    ("predict image not an image", ["predict", "--checkpoint", "{weights}", "--rgb", "{notes}", "--aux", "{notes}",
                                    "--out", "{tmp}/p8"], "notes.txt"),
    # --- export / info / convert ---
    ("export out not .onnx", ["export", "--checkpoint", "{weights}", "--out", "{tmp}/model.txt"], ".onnx"),
    ("export out over the model", ["export", "--checkpoint", "{weights}", "--out", "{weights}"], "--out"),
    ("export size not HxW", ["export", "--checkpoint", "{weights}", "--out", "{tmp}/m.onnx", "--size", "big"], "size"),
    ("export checkpoint missing", ["export", "--checkpoint", "{tmp}/none.pt", "--out", "{tmp}/m.onnx"], "none.pt"),
    ("export out in a missing folder", ["export", "--checkpoint", "{weights}", "--out", "{tmp}/no/dir/m.onnx"], "no/dir"),
    ("export calibration a file", ["export", "--checkpoint", "{weights}", "--out", "{tmp}/i8.onnx", "--int8",
                                   "--calibration", "{notes}"], "is a file; give a folder"),
    ("info garbage", ["info", "--checkpoint", "{notes}"], "notes.txt"),
    ("info nothing", ["info"], "config"),
    ("info size zero", ["info", "{tiny}", "--size", "0x0"], "at least 1"),
    ("info size too small", ["info", "{tiny}", "--size", "16x16"], "at least 32x32"),
    ("convert unknown format", ["convert", "{weights}", "--from", "caffe", "--config", "{tiny}", "--out", "{tmp}/c.safetensors"],
     "caffe"),
    ("convert source missing", ["convert", "{tmp}/e.pth", "--from", "official-smmcl", "--config", "{tiny}", "--out",
                                "{tmp}/c.safetensors"], "e.pth"),
    ("convert out over the source", ["convert", "{checkpoint}", "--from", "checkpoint", "--config", "{tiny}", "--out",
                                     "{checkpoint}"], "--out"),
    # --- data ---
    ("data check missing", ["data", "check", "{tmp}/none"], "dataset folder not found: {tmp}/none"),
    ("data check a file", ["data", "check", "{notes}"], "is a file"),
    ("data check unknown split", ["data", "check", "{data}", "--split", "nosuch"], "--split nosuch: "),
    ("data check not a dataset", ["data", "check", "{rgb}"], "{rgb}"),
    ("data synth unknown kind", ["data", "synth", "--kind", "moon", "--out", "{tmp}/s1"], "moon"),
    ("data synth zero scenes", ["data", "synth", "--kind", "indoor-rgbd", "--out", "{tmp}/s2", "--num", "0"], "num"),
    ("data synth size zero", ["data", "synth", "--kind", "indoor-rgbd", "--out", "{tmp}/s3", "--size", "0x10"], "size"),
    ("data synth huge size", ["data", "synth", "--kind", "indoor-rgbd", "--out", "{tmp}/s3", "--size", "100000x100000"],
     "at most 4096"),
    ("data synth negative size", ["data", "synth", "--kind", "indoor-rgbd", "--out", "{tmp}/s3", "--size", "-48x64"],
     "given joined to its option: --size=VALUE"),
    ("data synth out a file", ["data", "synth", "--kind", "indoor-rgbd", "--out", "{notes}", "--num", "4"], "notes.txt"),
    ("data synth into the user's data", ["data", "synth", "--kind", "indoor-rgbd", "--out", "{user_data}", "--num", "4"],
     "did not write"),
    ("data hha three intrinsics", ["data", "hha", "--depth", "{aux}", "--intrinsics", "1,2,3", "--out", "{tmp}/h1"],
     "intrinsics"),
    ("data hha depth a file", ["data", "hha", "--depth", "{aux}/a.png", "--intrinsics", "50,50,20,16", "--out",
                               "{tmp}/h4"], "is a file; give the folder"),
    ("report images negative", ["report", "{run}", "--images", "-2"], "--images"),
    ("predict the RGB folder as --aux", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{rgb}/",
                                         "--out", "{tmp}/p20"], "is given as both the RGB and the auxiliary image"),
    ("train aux folder is the RGB folder", ["train", "{tiny}", "{data_root}", "data.aux_dir=RGB", "--dry-run"],
     "expected a folder other than data.rgb_dir"),
    ("train dry run into the dataset", ["train", "{tiny}", "{data_root}", "train.out_dir={data}/run9", "--dry-run"],
     "lies inside the input folder"),
    ("train dry run into a finished run", ["train", "{tiny}", "{data_root}", "train.out_dir={run}", "--dry-run"],
     "already holds a run"),
    ("train with a val list naming a missing sample", ["train", "{tiny}", "data.root={no_val}", "train.val_every=1",
                                                       "train.val_split=val", "train.out_dir={tmp}/t9"],
     "scene_99999.png and 2 more, listed in the val split"),
    ("study dry run with synth.root the user's folder", ["study", "{study_synth}", "--dry-run", "--out", "{tmp}/st9"],
     "did not write"),
    ("demo with another dataset's config", ["demo", "--out", "{tmp}/d9", "--config", "{five}"],
     "but the demo trains on its built-in indoor-rgbd data"),
    ("convert smmcl weights as resnet", ["convert", "{weights}", "--from", "resnet", "--config", "{tiny}", "--out",
                                         "{tmp}/c10.safetensors"], "is an smmcl weights file, not 'resnet'"),
    ("train resume neither auto nor a file", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r10", "--resume",
                                              "yes"], "give `auto`"),
    ("train aux folder is the label folder", ["train", "{tiny}", "{data_root}", "data.aux_dir=Label", "data.aux_max=255",
                                              "--dry-run"], "the auxiliary images are not the labels"),
    ("train refused at its first image leaves no run", ["train", "{tiny}", "{data_root}", "data.aux_max=100",
                                                        "train.out_dir={tmp}/r11"], "more than 2x its full scale"),
    ("report a run against itself", ["report", "{run}", "--compare", "{run}/", "--out", "{tmp}/r9"],
     "are one and the same; give each once"),
    ("analyze one model twice, no names", ["analyze", "features", "{tiny}", "{data_root}", "--checkpoint", "{weights}",
                                           "--compare", "{weights}", "--out", "{tmp}/f4b"], "are one and the same"),
    ("analyze one model twice", ["analyze", "features", "{tiny}", "{data_root}", "--checkpoint", "{weights}", "--compare",
                                 "{weights}", "--names", "A,B", "--out", "{tmp}/f4"], "are one and the same"),
    ("convert smmcl weights as released", ["convert", "{weights}", "--from", "official-smmcl", "--config", "{tiny}",
                                           "--out", "{tmp}/c9.safetensors"], "is an smmcl weights file, not 'official-smmcl'"),
    ("analyze images negative", ["analyze", "features", "{tiny}", "{data_root}", "--checkpoint", "{weights}", "--out",
                                 "{tmp}/f3", "--images", "-1"], "--images"),
    ("predict pair tolerance negative", ["predict", "--checkpoint", "{weights}", "--video", "{notes}", "--aux", "{aux}",
                                         "--out", "{tmp}/p11", "--pair-tolerance", "-1"], "--pair-tolerance"),
    ("data hha depth missing", ["data", "hha", "--depth", "{tmp}/none", "--intrinsics", "50,50,20,16", "--out", "{tmp}/h2"],
     "none"),
    ("data hha out the depth folder", ["data", "hha", "--depth", "{aux}", "--intrinsics", "50,50,20,16", "--out", "{aux}"],
     "--out"),
    # --- an output below a file, and trial findings ---
    ("synth out below a file", ["data", "synth", "--kind", "indoor-rgbd", "--out", "{notes}/sub", "--num", "4"], "is a file"),
    ("predict out below a file", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{aux}", "--out",
                                  "{notes}/p"], "is a file"),
    ("train out_dir below a file", ["train", "{tiny}", "{data_root}", "train.out_dir={notes}/run"], "is a file"),
    ("hha out below a file", ["data", "hha", "--depth", "{aux}", "--intrinsics", "50,50,20,16", "--out", "{notes}/h"],
     "is a file"),
    ("report out below a file", ["report", "{run}", "--out", "{notes}/r"], "is a file"),
    ("analyze out below a file", ["analyze", "features", "{tiny}", "{data_root}", "--checkpoint", "{weights}", "--out",
                                  "{notes}/f"], "is a file"),
    ("analyze out inside the data", ["analyze", "features", "{tiny}", "{data_root}", "--checkpoint", "{weights}", "--out",
                                     "{data}/feat"], "lies inside the input folder"),
    ("resume from weights", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r8", "--resume", "{weights}"],
     "it is a safetensors file"),
    ("eval with another aux_max", ["eval", "--checkpoint", "{weights}", "{data_root}", "data.aux_max=5000"], "data.aux_max"),
    ("eval checkpoint a text file", ["eval", "--checkpoint", "{notes}"], "not a model file"),
    ("info checkpoint a text file", ["info", "--checkpoint", "{notes}"], "not a model file"),
    ("hha float metres as mm", ["data", "hha", "--depth", "{metres}", "--intrinsics", "50,50,20,16", "--out", "{tmp}/h3"],
     "--depth-scale 1"),
    ("demo with a missing config", ["demo", "--config", "{tmp}/none.yaml", "--out", "{tmp}/d1"], "none.yaml"),
    ("predict ONNX on cuda without one", ["predict", "--checkpoint", "{onnx_fixed}", "--rgb", "{rgb}", "--aux", "{aux}",
                                          "--out", "{tmp}/p9", "--device", "cuda"], "CUDAExecutionProvider"),
    ("eval ONNX with train.device=cuda", ["eval", "--checkpoint", "{onnx_fixed}", "{data_root}", "train.device=cuda"],
     "CUDAExecutionProvider"),
    ("predict rgb a file, aux a folder", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}/a.png", "--aux", "{aux}",
                                          "--out", "{tmp}/p10"], "--aux must be one too"),
    ("export with an override", ["export", "--checkpoint", "{weights}", "--out", "{tmp}/m2.onnx", "data.aux_max=3"],
     "takes no config overrides (data.aux_max=3)"),
    ("eval overriding the classes", ["eval", "--checkpoint", "{weights}", "model.num_classes=7"],  # trial 17 E16
     "but an override gives model.num_classes=7: a model's classes"),
    ("export with two overrides", ["export", "--checkpoint", "{weights}", "--out", "{tmp}/m3.onnx", "data.aux_dir=Thermal",
                                   "data.aux_kind=thermal"],  # trial 16 #118: the first taken as the old FILE argument
     "takes no config overrides (data.aux_dir=Thermal data.aux_kind=thermal)"),
    # --- study / report / analyze / demo ---
    ("study missing", ["study", "{tmp}/none.yaml"], "none.yaml"),
    ("study not a study", ["study", "{tiny}"], "is a training config, not a study file"),
    ("study a config with a base", ["study", "{five}"], "is a training config, not a study file"),  # trial 16 #208
    ("study jobs zero", ["study", "{tiny}", "--jobs", "0"], "jobs"),
    ("report run missing", ["report", "{tmp}/none"], "none"),
    ("report not a run", ["report", "{rgb}"], "{rgb}"),
    ("report into the user's folder", ["report", "{run}", "--out", "{user_data}"], "did not write"),
    ("analyze checkpoint missing", ["analyze", "features", "{tiny}", "{data_root}", "--checkpoint", "{tmp}/n.pt", "--out",
                                    "{tmp}/f1"], "n.pt"),
    ("analyze stage 7", ["analyze", "features", "{tiny}", "{data_root}", "--checkpoint", "{weights}", "--out", "{tmp}/f2",
                         "--stage", "7"], "stage"),
    ("study dry run jobs zero", ["study", "{study}", "--dry-run", "--jobs", "0"], "--jobs must be at least 1"),
    ("study dry run threads negative", ["study", "{study}", "--dry-run", "--threads", "-1"], "--threads must be at least 1"),
    ("study dry run into the user's folder", ["study", "{study}", "--dry-run", "--out", "{user_data}"], "did not write"),
    ("study dry run imports a non-result", ["study", "{study}", "--dry-run", "--import", "{notes}"], "is not JSON"),
    ("study dry run and report", ["study", "{study}", "--dry-run", "--report"], "--dry-run and --report"),
    ("analyze per-class zero", ["analyze", "features", "{tiny}", "{data_root}", "--checkpoint", "{weights}", "--out",
                                "{tmp}/f4", "--per-class", "0"], "--per-class"),
    ("export int8 unknown calibration split", ["export", "--checkpoint", "{weights}", "--out", "{tmp}/q.onnx", "--int8",
                                               "--calibration", "{data}", "--calibration-split", "nope"], "nope.txt"),
    ("eval a split listing a sample twice", ["eval", "--checkpoint", "{weights}", "data.root={dup_data}"],
     "is listed already on line 1"),
    ("predict a 48-bit colour PNG", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb48}", "--aux", "{aux}/a.png",
                                     "--out", "{tmp}/p12"], "16 bits per channel"),
    ("predict negative depth", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}/a.png", "--aux", "{negative}",
                                "--out", "{tmp}/p13"], "negative values"),
    ("predict list line one path", ["predict", "--checkpoint", "{weights}", "--list", "{list_one_path}", "--out",
                                    "{tmp}/p14"], "holds one path but no auxiliary path"),
    ("predict list line with spaces", ["predict", "--checkpoint", "{weights}", "--list", "{list_spaces}", "--out",
                                       "{tmp}/p15"], "has 4 fields"),
    ("predict list with --rgb a file", ["predict", "--checkpoint", "{weights}", "--list", "{list_names}", "--rgb",
                                        "{rgb}/a.png", "--out", "{tmp}/p16"], "is not a folder; with a list file"),
    ("convert over a run's weights", ["convert", "{checkpoint}", "--from", "checkpoint", "--config", "{tiny}", "--out",
                                      "{weights}"], "is part of the training run"),
    ("convert with another aux_max", ["convert", "{checkpoint}", "--from", "checkpoint", "--config", "{tiny_aux}", "--out",
                                      "{tmp}/c2.safetensors"], "data.aux_max"),
    ("report inside the dataset", ["report", "{run}", "--out", "{data}/rep"], "lies inside the input folder"),
    ("predict list a binary file", ["predict", "--checkpoint", "{weights}", "--list", "{weights}", "--out", "{tmp}/p17"],
     "is not a text file; expected a list"),
    ("study import a binary file", ["study", "{study}", "--dry-run", "--import", "{weights}"],
     "is not a text file; expected a results.json"),
    ("data hha empty folder", ["data", "hha", "--depth", "{empty_dir}", "--intrinsics", "50,50,20,16", "--out", "{tmp}/h5"],
     "no depth images in"),
    ("predict RGBA without --aux", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgba}", "--out", "{tmp}/p18"],
     "an alpha channel rather than an auxiliary image"),
    ("eval excluding every class", ["eval", "--checkpoint", "{weights}", "{data_root}",
                                    "eval.exclude_classes=[0,1,2,3,4,5,6,7,8,9,10,11,12,13]"], "leaving at least one"),
    ("train palette of one colour", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r9", "data.palette=[[300,0,0]]"],
     "data.palette"),
    ("eval default scores file taken", ["eval", "--checkpoint", "{weights_beside_notes}", "{data_root}"],
     "the scores file (by default beside the checkpoint; choose one with --out)"),
    ("export over an earlier export", ["export", "--checkpoint", "{weights}", "--out", "{onnx_fixed}", "--size", "32x48"],
     "holds an earlier output of this command; nothing was changed: --overwrite"),
    ("convert over earlier weights", ["convert", "{checkpoint}", "--from", "checkpoint", "--config", "{tiny}", "--out",
                                      "{weights_beside_notes}"], "--overwrite (overwrite=True) replaces it"),
    ("predict a folder as a bag", ["predict", "--checkpoint", "{weights}", "--bag", "{rgb}", "--out", "{tmp}/b1"],
     "is a folder but not a ROS 2 bag (it has no metadata.yaml)"),
    ("train from an ONNX export", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r10",
                                   "model.pretrained={onnx_fixed}"], "an ONNX export is for inference alone"),
    ("train resume another model", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r11",
                                    "model.decoder.channels=64", "--resume", "{checkpoint}"],
     "is a checkpoint of another model (model.decoder.channels: 32 -> 64)"),
    ("train lightham channels 16", ["train", "{tiny}", "{data_root}", "model.decoder.channels=16", "--dry-run"],
     "a multiple of 32 for the lightham decoder"),
    ("export opset 7", ["export", "--checkpoint", "{weights}", "--out", "{tmp}/o7.onnx", "--opset", "7"],
     "opset must be between 11 and 23 for the torchscript exporter, got 7"),
    ("export dynamo opset 13", ["export", "--checkpoint", "{weights}", "--out", "{tmp}/o13.onnx", "--opset", "13",
                                "--exporter", "dynamo"], "the dynamo exporter writes opset 18 or newer"),
    ("export an ONNX export", ["export", "--checkpoint", "{onnx_fixed}", "--out", "{tmp}/again.onnx"],
     "is an ONNX export already: export takes smmcl weights"),
    ("train resume from weights", ["train", "{tiny}", "{data_root}", "train.out_dir={tmp}/r12", "--resume", "{weights}"],
     "a new run starts from weights with model.pretrained=FILE"),
    ("predict list a folder", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux", "{aux}", "--list",
                               "{rgb}", "--out", "{tmp}/p20"], "is a folder; --list takes a text file"),
    ("predict list naming a missing file", ["predict", "--checkpoint", "{weights}", "--list", "{list_gone}", "--out",
                                            "{tmp}/p21"], "nothing was predicted"),
    ("predict out where no folder can be made", ["predict", "--checkpoint", "{weights}", "--rgb", "{rgb}", "--aux",
                                                 "{aux}", "--out", "/proc/smmcl_out"], "cannot create it"),
    ("demo out a file", ["demo", "--out", "{notes}"], "notes.txt"),
    ("demo into the user's folder", ["demo", "--out", "{user_data}"], "did not write"),
]


@pytest.fixture(scope="module")
def files(indoor_data, tmp_path_factory):
    """A trained model (weights, checkpoint, fixed-size ONNX), a finished run, frames, and a user's own files."""
    import numpy as np
    from PIL import Image

    tmp = tmp_path_factory.mktemp("bad_input")
    run = tmp / "run"
    assert main(["--quiet", "train", str(TINY_CONFIG), f"data.root={indoor_data}", f"train.out_dir={run}",
                 "train.max_iters=2", "train.tensorboard=false", "train.checkpoint_every=2"]) == 0
    onnx = tmp / "fixed.onnx"
    assert main(["--quiet", "export", "--checkpoint", str(run / "model.safetensors"), "--out", str(onnx), "--no-dynamic",
                 "--size", "32x48"]) == 0
    frames = tmp / "frames"
    (frames / "rgb").mkdir(parents=True)
    (frames / "depth").mkdir()
    Image.fromarray(np.full((40, 56, 3), 30, np.uint8)).save(frames / "rgb" / "a.png")
    Image.fromarray(np.full((40, 56), 2000, np.uint16)).save(frames / "depth" / "a.png")
    (tmp / "notes.txt").write_text("the user's notes\n")
    (tmp / "metres").mkdir()
    Image.fromarray(np.full((40, 56), 2.5, np.float32)).save(tmp / "metres" / "a.tiff")  # depth in metres
    (tmp / "garbage.yaml").write_text("train: [unclosed\n")
    (tmp / "empty").write_bytes(b"")
    user = tmp / "user_data"
    user.mkdir()
    (user / "train.txt").write_text("their list\n")
    study = tmp / "study.yaml"
    study.write_text(f"base: {TINY_CONFIG}\noverrides: [data.root={indoor_data}, train.max_iters=2]\nseeds: [0]\n"
                     f"reference: base\nvariants:\n  base: []\n")
    dup = tmp / "dup_data"  # the dataset's folders, with a test list naming one sample twice
    dup.mkdir()
    for sub in ("RGB", "Depth", "Label"):
        (dup / sub).symlink_to(indoor_data / sub)
    names = (indoor_data / "test.txt").read_text().split()
    (dup / "test.txt").write_text(f"{names[0]}\n{names[1]}\n{names[0]}\n")
    tiny_aux = tmp / "tiny_aux.yaml"
    tiny_aux.write_text(f"base: {TINY_CONFIG}\ndata: {{aux_max: 1000}}\n")
    (tmp / "empty_dir").mkdir()
    Image.fromarray(np.dstack([np.full((40, 56, 3), 30, np.uint8), np.full((40, 56), 255, np.uint8)])).save(tmp / "rgba.png")
    beside = tmp / "beside"  # weights with a user's file where eval's default scores would go
    beside.mkdir()
    (beside / "m.safetensors").write_bytes((run / "model.safetensors").read_bytes())
    (beside / "m.test.json").write_text("the user's own notes\n")
    lists = {"list_one_path": f"{frames / 'rgb' / 'a.png'}\n", "list_spaces": "my a.png my a_d.png\n",
             "list_names": "a\n",
             "list_gone": f"{frames / 'rgb' / 'a.png'} {frames / 'depth' / 'a.png'}\n"
                          f"{frames / 'rgb' / 'gone.png'} {frames / 'depth' / 'gone.png'}\n"}
    for name, text in lists.items():
        (tmp / f"{name}.txt").write_text(text)
    rgb48 = tmp / "rgb48.png"
    png_16bit_colour(rgb48, np.full((40, 56, 3), 3000, np.uint16))
    Image.fromarray(np.full((40, 56), -2.5, np.float32)).save(tmp / "negative.tiff")
    study_synth = tmp / "study_synth.yaml"  # its synthetic data aimed at the user's own folder
    study_synth.write_text(study.read_text() + f"synth: {{kind: indoor-rgbd, root: {user}, num: 8, size: [32, 40]}}\n")
    five = tmp / "five.yaml"  # a config of the user's 5-class dataset
    five.write_text(f"base: {TINY_CONFIG}\nmodel: {{num_classes: 5}}\ndata: {{class_names: [a, b, c, d, e]}}\n")
    no_val = tmp / "no_val_data"  # a val list naming a sample that is not there
    no_val.mkdir()
    for sub in ("RGB", "Depth", "Label"):
        (no_val / sub).symlink_to(indoor_data / sub)
    (no_val / "train.txt").write_text((indoor_data / "train.txt").read_text())
    (no_val / "val.txt").write_text("scene_99999\n")
    return {"tmp": str(tmp / "work"), "tiny": str(TINY_CONFIG), "data": str(indoor_data),
            "study_synth": str(study_synth), "five": str(five), "no_val": str(no_val),
            "data_root": f"data.root={indoor_data}", "weights": str(run / "model.safetensors"),
            "checkpoint": str(run / "checkpoints" / "ckpt_00000002.pt"), "onnx_fixed": str(onnx), "run": str(run),
            "rgb": str(frames / "rgb"), "aux": str(frames / "depth"), "notes": str(tmp / "notes.txt"),
            "garbage": str(tmp / "garbage.yaml"), "empty": str(tmp / "empty"), "user_data": str(user),
            "metres": str(tmp / "metres"), "study": str(study), "dup_data": str(dup), "rgb48": str(rgb48),
            "negative": str(tmp / "negative.tiff"), "tiny_aux": str(tiny_aux), "empty_dir": str(tmp / "empty_dir"),
            "rgba": str(tmp / "rgba.png"), "weights_beside_notes": str(beside / "m.safetensors"), **{name: str(tmp / f"{name}.txt") for name in lists}}


def _snapshot(files):
    """Every file the user (or an earlier command) owns: all but the commands' working folder and smmcl's bookkeeping."""
    from pathlib import Path

    root, work = Path(files["notes"]).parent, Path(files["tmp"])
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".smmcl" not in p.name and not p.is_relative_to(work)}


@pytest.mark.parametrize("argv, words", [pytest.param(a, w, id=i) for i, a, w in CASES])
def test_a_users_mistake_is_a_named_error(files, argv, words, capsys, monkeypatch):
    import os
    from pathlib import Path

    Path(files["tmp"]).mkdir(exist_ok=True)
    monkeypatch.chdir(files["tmp"])
    monkeypatch.delenv("SMMCL_DEBUG", raising=False)
    args = [a.format(**files) for a in argv]
    owned = _snapshot(files)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (args, err)
    assert "Traceback" not in err, err
    assert "smmcl: error:" in err or ": error:" in err.splitlines()[-1], err
    assert words.format(**files) in err, (words, err)
    assert _snapshot(files) == owned, "a file the command did not own changed"
    # A refused command leaves no trace either: no lock or manifest in a folder it did not own.
    root = Path(files["notes"]).parent
    left = [p for p in root.rglob(".smmcl*") if not p.is_relative_to(Path(files["tmp"])) and p.parent.name not in
            ("run", "checkpoints", "bad_input0") and not p.parent.is_relative_to(Path(files["run"]))]
    assert not left, left
    assert not os.environ.get("SMMCL_DEBUG")


def test_a_training_refused_before_its_first_checkpoint_leaves_nothing(files, tmp_path, capsys):
    """Trial 5 #51: a run stopped by a bad image left config.yaml, tb/ and checkpoints/, and the corrected command
    then met "already holds a run"."""
    out = tmp_path / "run"
    args = ["--quiet", "train", files["tiny"], files["data_root"], f"train.out_dir={out}", "train.max_iters=1",
            "train.tensorboard=false"]
    assert main([*args, "data.aux_max=100"]) == 2 and not out.exists()
    out.mkdir()  # a folder the user made is kept, emptied of what the run wrote
    assert main([*args, "data.aux_max=100"]) == 2 and out.is_dir() and not any(out.iterdir())
    assert main(args) == 0 and (out / "model.safetensors").is_file()


def test_an_export_given_as_weights_is_named(files):
    """Trial 5 API-b10: load_pretrained on an .onnx sent the user to `smmcl convert`, which refuses ONNX files."""
    import pytest

    import smmcl
    from smmcl.errors import CheckpointError

    with pytest.raises(CheckpointError, match="is an ONNX export, which is run, not loaded as PyTorch weights"):
        smmcl.load_pretrained(files["onnx_fixed"])


def test_a_conversion_that_loads_nothing_writes_nothing(files, tmp_path, capsys):
    """Trial 9 #194: `--no-strict` with a file none of whose tensors fit wrote a freshly initialised model."""
    import torch

    from smmcl.cli import main

    foreign = tmp_path / "plain.pth"
    torch.save({"state_dict": {"backbone.foo.weight": torch.zeros(3, 3)}}, foreign)
    out = tmp_path / "c.safetensors"
    assert main(["convert", str(foreign), "--from", "official-smmcl", "--no-strict", "--config", files["tiny"], "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err
    assert "smmcl: error:" in err and "no tensor of it fits the model" in err and not out.exists()
