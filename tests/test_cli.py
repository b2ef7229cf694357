import json
from pathlib import Path
import subprocess
import sys

import pytest

from smmcl.cli import main

from support import TINY_CONFIG, build_tiny_model


def test_synth_train_eval_round_trip(tmp_path, capsys, monkeypatch):
    import smmcl.progress

    monkeypatch.setattr(smmcl.progress, "MIN_SECONDS", 0.0)  # a progress line at every tenth, however fast
    data = tmp_path / "data"
    assert main(["data", "synth", "--kind", "indoor-rgbd", "--out", str(data), "--num", "12", "--size", "48x64"]) == 0
    assert (data / "train.txt").is_file() and (data / "meta.json").is_file()
    run = tmp_path / "run"
    overrides = [f"data.root={data}", f"train.out_dir={run}", "train.max_iters=2", "data.crop_size=[48,64]",
                 "train.progress=true"]
    capsys.readouterr()
    assert main(["train", str(TINY_CONFIG), *overrides]) == 0
    captured = capsys.readouterr()
    # stderr is no terminal: plain lines, not tqdm frames; warnings in smmcl's words
    assert "\r" not in captured.err
    progress = [line for line in captured.err.splitlines() if not line.startswith("smmcl: warning: ")]
    assert [line.split(",")[0] for line in progress] == ["train tiny 1/2 (50%)", "train tiny 2/2 (100%)"]
    assert "loss=" in progress[-1] and "[smmcl] done at step 2" in captured.out
    ckpt = sorted((run / "checkpoints").glob("ckpt_*.pt"))[-1]
    out = tmp_path / "scores.json"
    assert main(["eval", str(TINY_CONFIG), *overrides, "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["split"] == "test" and len(scores["iou"]) == 14 and 0 <= scores["pixel_acc"] <= 1
    assert "mIoU" in capsys.readouterr().out
    # a second train call with --resume auto finds the run complete and does nothing more; --quiet: one line
    assert main(["train", str(TINY_CONFIG), *overrides, "--resume", "auto", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("[smmcl] done at step 2") and captured.out.count("\n") == 1
    assert all(line.startswith("smmcl: warning: ") for line in captured.err.splitlines())


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", str(TINY_CONFIG), "model.num_clases=3"], "model.num_clases"),
        (["train", str(TINY_CONFIG), "data.root=/nonexistent/llrgbd"], "/nonexistent/llrgbd"),
        (["train", "missing.yaml"], "missing.yaml"),
        (["data", "synth", "--kind", "desert", "--out", "x"], "desert"),
    ],
)
def test_bad_input_gives_a_clear_error(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("smmcl: error:") and message in err and "Traceback" not in err


# The commands of docs/cli.md, with the tools of the command groups.
COMMANDS = {"data": ["synth", "check", "hha"], "train": [], "eval": [], "predict": [], "export": [], "info": [],
            "convert": [], "study": [], "analyze": ["features"], "report": [], "demo": []}


def listed_commands(help_text: str) -> list[str]:
    """The names in a help text's table of (sub)commands. argparse indents them four spaces under the
    "positional arguments:" heading, two more than plain arguments, and wraps their help further in."""
    names, section = [], False
    for line in help_text.splitlines():
        if line == "positional arguments:":
            section = True
        elif section and not line.strip():
            break
        elif section and line.startswith("    ") and not line.startswith("     "):
            names.append(line.split()[0])
    return names


def registered_commands(parser) -> list[str]:
    import argparse

    # argparse has no public way to list a parser's subcommands: they are the choices of its subparsers action.
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [name for action in actions for name in action.choices]


def test_console_script_help(capsys):
    """`smmcl --help` lists exactly the registered commands, those are the documented ones, and each (with each
    tool of a group) answers its own --help. The names are read from the command table: they also occur in the
    description and the examples, so searching the whole text would pass with commands gone."""
    from smmcl.cli import build_parser

    out = subprocess.run([sys.executable, "-m", "smmcl", "--help"], capture_output=True, text=True, check=True).stdout
    parser = build_parser()
    assert listed_commands(out) == registered_commands(parser)
    assert set(registered_commands(parser)) == set(COMMANDS)

    def own_help(*argv: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--help"])
        assert exit_.value.code == 0, argv
        text = capsys.readouterr().out
        assert text.startswith(f"usage: smmcl {' '.join(argv)} "), argv
        return text

    json_commands = []
    for command, tools in COMMANDS.items():
        text = own_help(command)
        assert listed_commands(text) == tools
        json_commands += [command] if "--json" in text else []
        for tool in tools:
            json_commands += [f"{command} {tool}"] if "--json" in own_help(command, tool) else []
    # The top help names every command that takes --json, and only those.
    said = " ".join(out.split("--json (", 1)[1].split(")", 1)[0].split())
    assert said.split(", ") == json_commands


def test_demo_end_to_end_small(tmp_path):
    """The demo end to end, with flip testing on: its scores are `smmcl eval`'s on the same weights and config
    (the one evaluation, under the config's protocol), and differ from the scores without the flip."""
    from smmcl.api import evaluate_checkpoint
    from smmcl.config import load_config
    from smmcl.demo import run_demo

    summary = run_demo(tmp_path / "demo", config=TINY_CONFIG,
                       overrides=["train.max_iters=2", "data.crop_size=[48,64]", "eval.flip=true"],
                       num_scenes=10, size=(48, 64), num_pictures=2)
    assert set(summary["models"]) == {"Base", "SMMCL"}
    for name, model in summary["models"].items():
        assert 0 <= model["miou"] <= 1 and len(model["per_class_iou"]) == 14
        run = tmp_path / "demo" / name.lower()
        cfg = load_config(run / "config.yaml")
        assert cfg.eval.flip
        flipped = evaluate_checkpoint(run / "model.safetensors", cfg, progress=False)
        assert flipped["miou"] == model["miou"] and list(model["per_class_iou"].values()) == flipped["iou"]
        plain = evaluate_checkpoint(run / "model.safetensors", load_config(run / "config.yaml", ["eval.flip=false"]),
                                    progress=False)
        assert plain["confusion"] != flipped["confusion"]
    on_disk = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert on_disk["models"]["Base"]["miou"] == summary["models"]["Base"]["miou"]
    assert len(list((tmp_path / "demo" / "predictions").glob("scene_*.png"))) == 2
    page = tmp_path / "demo" / "report" / "index.html"
    assert on_disk["report"] == str(page) and "Base" in page.read_text() and "SMMCL" in page.read_text()

    # Run again as it was (trial 6 C217/C218): the finished runs train nothing and keep their weights, and the
    # summary keeps the training times they were measured with.
    weights = {name: (tmp_path / "demo" / name / "model.safetensors").read_bytes() for name in ("base", "smmcl")}
    # Trial 15 DM5, DM7: every file is left as it was, summary.json too (it was rewritten for a new total time).
    finished = {p: p.read_bytes() for p in (tmp_path / "demo").rglob("*") if p.is_file()}
    again = run_demo(tmp_path / "demo", config=TINY_CONFIG,
                     overrides=["train.max_iters=2", "data.crop_size=[48,64]", "eval.flip=true"],
                     num_scenes=10, size=(48, 64), num_pictures=2)
    assert {n: (tmp_path / "demo" / n / "model.safetensors").read_bytes() for n in ("base", "smmcl")} == weights
    assert {p: p.read_bytes() for p in (tmp_path / "demo").rglob("*") if p.is_file()} == finished
    assert again == on_disk
    for name, model in again["models"].items():
        assert model["train_seconds"] == summary["models"][name]["train_seconds"]
        assert model["miou"] == summary["models"][name]["miou"]
    # Other settings into the same folder (trial 15 DM3): refused before anything changes, unless asked.
    from smmcl.errors import ConfigError

    before = {p: p.read_bytes() for p in (tmp_path / "demo").rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"holds a demo of other settings .*--overwrite \(overwrite=True\) replaces"):
        run_demo(tmp_path / "demo", config=TINY_CONFIG, overrides=["train.max_iters=3", "data.crop_size=[48,64]",
                                                                  "eval.flip=true"], num_scenes=10, size=(48, 64))
    assert {p: p.read_bytes() for p in (tmp_path / "demo").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("workers", [0, 1])
def test_label_above_num_classes_is_named_during_training(indoor_data, tmp_path, capsys, workers):
    import shutil

    import numpy as np

    from smmcl.data.io import read_image, write_image

    data = tmp_path / "data"
    shutil.copytree(indoor_data, data)
    name = (data / "train.txt").read_text().split()[0]
    label = read_image(data / "Label" / f"{name}.png")
    label[0, 0] = 20
    write_image(data / "Label" / f"{name}.png", label.astype(np.uint8))
    code = main(["train", str(TINY_CONFIG), f"data.root={data}", f"train.out_dir={tmp_path / 'run'}",
                 "train.epochs=1", f"data.num_workers={workers}"])
    err = capsys.readouterr().err
    assert code == 2
    # The label rule's one message (smmcl.data.modality), as `data check` gives it too.
    assert f"{name}.png: has value 20" in err and "0..13" in err and "Traceback" not in err


def test_eval_accepts_weights_file_and_checks_classes(tiny_overrides, tmp_path, capsys):
    from smmcl.cli import main
    from smmcl.config import load_config
    from smmcl.engine.trainer import Trainer

    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.max_iters=1"])
    trainer = Trainer(cfg)
    trainer.run()
    weights = trainer.out_dir / "model.safetensors"
    out = tmp_path / "scores.json"
    assert main(["eval", str(TINY_CONFIG), *tiny_overrides, "--checkpoint", str(weights), "--out", str(out)]) == 0
    assert "miou" in json.loads(out.read_text())
    # A config naming 14 classes for 20 is refused by the config itself; without names, by the weights' 14.
    assert main(["eval", str(TINY_CONFIG), *tiny_overrides, "model.num_classes=20", "--checkpoint", str(weights)]) == 2
    # (The dataset's meta.json names 14 classes: the override is said to depart from them.)
    assert "model.num_classes=20 (override) departs from the 14 classes" in capsys.readouterr().err
    assert main(["eval", str(TINY_CONFIG), *tiny_overrides, "model.num_classes=20", "data.class_names=[]",
                 "data.palette=[]", "--checkpoint", str(weights)]) == 2
    assert "predicts 14 classes" in capsys.readouterr().err


def test_train_and_its_dry_run_print_their_results_as_json(tiny_overrides, capsys):
    """`train --json` goes through `smmcl.api.train` / `dry_run`: stdout holds the result and nothing else."""
    assert main(["train", str(TINY_CONFIG), *tiny_overrides, "train.max_iters=2", "train.batch_size=2",
                 "train.accumulate=2", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["plan"]["effective_batch"] == 4 and plan["plan"]["total_iters"] == 2
    assert plan["step"]["batch_shape"][0] == 2 and plan["loss"]["contrast"] == "smmcl"
    out_dir = [o.split("=", 1)[1] for o in tiny_overrides if o.startswith("train.out_dir=")][0]
    assert not (Path(out_dir) / "config.yaml").exists()  # a dry run writes nothing
    assert main(["train", str(TINY_CONFIG), *tiny_overrides, "train.max_iters=2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == result["total_iters"] == 2 and result["last"]["step"] == 2
    assert Path(result["weights"]).is_file() and result["world_size"] == 1
    # A dry run of a resume with changed training keys is refused like the resume itself, unless allowed.
    changed = [*tiny_overrides, "train.max_iters=2", "train.lr=0.001", "--resume", "auto", "--dry-run", "--json"]
    assert main(["train", str(TINY_CONFIG), *changed]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert main(["train", str(TINY_CONFIG), *changed, "--allow-config-change"]) == 0
    assert json.loads(capsys.readouterr().out)["from_step"] == 2


# --- a quiet, conventional command line --------------------------------------------------------------------

def _parsers(parser, name="smmcl"):
    import argparse

    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _parsers(child, f"{name} {sub}")


def test_every_argument_has_help_and_every_command_an_example():
    import argparse

    from smmcl.cli import build_parser

    seen = {}
    for name, parser in _parsers(build_parser()):
        seen[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), f"{name}: {'/'.join(action.option_strings) or action.dest} has no help"
        assert "example" in (parser.epilog or ""), f"{name} has no example"
        assert parser.formatter_class is argparse.RawDescriptionHelpFormatter
        assert "examples:\n  smmcl" in parser.format_help()
    assert {"smmcl eval", "smmcl demo", "smmcl data synth", "smmcl analyze features"} <= set(seen)
    with_json = {n for n, p in seen.items() if any("--json" in a.option_strings for a in p._actions)}
    leaves = [n for n, p in seen.items() if p.get_default("func") is not None]
    assert with_json == set(leaves)  # every command produces a result, and gives it as JSON on request
    assert all(any("--quiet" in a.option_strings for a in seen[n]._actions) for n in leaves)


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"smmcl {version('smmcl')}"


def test_synth_prints_a_summary_json_on_request_and_plain_progress_lines(tmp_path, capsys, monkeypatch):
    import smmcl.progress

    monkeypatch.setattr(smmcl.progress, "MIN_SECONDS", 0.0)  # a line at every tenth, however fast
    out = tmp_path / "data"
    args = ["data", "synth", "--kind", "indoor-rgbd", "--out", str(out), "--num", "12", "--size", "48x64"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and "palette" not in captured.out
    for part in ("12 indoor-rgbd scenes", "48x64", str(out), "train 9", "test 3", " s\n"):
        assert part in captured.out
    # stderr is no terminal here: plain progress lines, no carriage-return frames, the last one once
    assert "\r" not in captured.err
    lines = captured.err.splitlines()
    assert lines[-1].startswith("synth indoor-rgbd 12/12 (100%)") and sum("12/12" in line for line in lines) == 1
    assert 3 <= len(lines) <= 12

    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_train"] == 9 and summary["num_test"] == 3 and len(summary["palette"]) == 14


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_shows_no_progress_and_one_line(where, tmp_path, capsys, monkeypatch):
    import smmcl.progress

    monkeypatch.setattr(smmcl.progress, "MIN_SECONDS", 0.0)
    args = ["data", "synth", "--kind", "night-rgbt", "--out", str(tmp_path / "d"), "--num", "10", "--size", "32x32"]
    assert main(["--quiet", *args] if where == "before" else [*args, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.count("\n") == 1 and captured.out.startswith("[smmcl] 10 night-rgbt")
    assert not smmcl.progress.is_quiet()  # the switch is the command's, not the process's
    assert main(["-q", "data", "check", str(tmp_path / "d")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.count("\n") == 1 and "10 images in 2 splits, no problems found" in captured.out
    (tmp_path / "d" / "test.txt").write_text((tmp_path / "d" / "train.txt").read_text())  # scored on what it trains on
    assert main(["-q", "data", "check", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out  # notes are shown under --quiet too (trial 8 #281), and counted
    assert "  note: " in out and "are in the train list" in out and "no problems found, 1 note(s)" in out


def test_quiet_demo_keeps_its_last_word(tmp_path, capsys, monkeypatch):
    import smmcl.demo

    def chatty_demo(out, config=None, overrides=(), overwrite=False):
        print("[demo] generating, training, evaluating ...")
        return {"models": {"Base": {"miou": 0.5}, "SMMCL": {"miou": 0.25}}}

    monkeypatch.setattr(smmcl.demo, "run_demo", chatty_demo)
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().out == (f"[demo] mIoU (without void): Base 50.00%, SMMCL 25.00%; "
                                       f"summary in {tmp_path / 'summary.json'}\n")
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "[demo] generating, training, evaluating ...\n"


class _Terminal(__import__("io").StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_lines_in_a_log_and_nothing_when_quiet(monkeypatch):
    import io

    import smmcl.progress
    from smmcl.progress import set_quiet, track

    quick = io.StringIO()
    assert list(track(range(3), desc="quick", stream=quick)) == [0, 1, 2]
    assert quick.getvalue() == ""  # a loop done within MIN_SECONDS leaves no line

    monkeypatch.setattr(smmcl.progress, "MIN_SECONDS", 0.0)
    log = io.StringIO()
    with track(total=50, desc="train x", initial=10, stream=log, leave=True) as bar:
        for step in range(40):
            bar.set_postfix({"loss": 1.0 / (step + 1)})
            bar.update()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split(",")[0] for line in lines] == [f"train x {n}/50 ({2 * n}%)" for n in (15, 20, 25, 30, 35, 40, 45, 50)]
    assert lines[-1].endswith("loss=0.025") and ("it/s" in lines[-1] or "s/it" in lines[-1])

    terminal = _Terminal()
    assert list(track(range(3), desc="bar", stream=terminal)) == [0, 1, 2]
    assert "\r" in terminal.getvalue() and "bar" in terminal.getvalue()

    quiet = io.StringIO()
    previous = set_quiet(True)
    try:
        assert list(track(range(5), desc="q", stream=quiet, leave=True)) == list(range(5))
        assert list(track(range(5), desc="q", stream=_Terminal(), leave=True)) == list(range(5))
    finally:
        set_quiet(previous)
    assert list(track(range(5), desc="off", stream=quiet, enabled=False, leave=True)) == list(range(5))
    assert quiet.getvalue() == ""


def test_protocol_in_words():
    from smmcl.engine.inference import InferenceProtocol

    assert InferenceProtocol().describe() == "whole image, single scale"
    assert (InferenceProtocol(mode="slide", crop_size=(480, 640), scales=(0.75, 1.0, 1.25), flip=True).describe()
            == "sliding window 480x640, stride 320x427, scales 0.75/1/1.25, flip")


def test_eval_and_predict_take_the_config_from_the_weights_and_speak_briefly(indoor_data, tmp_path, capsys, monkeypatch):
    import numpy as np
    from PIL import Image

    import smmcl.progress
    from smmcl.config import load_config
    from smmcl.weights import save_pretrained

    # The file's config holds the data folder and a palette of its own: neither is given on the command line.
    palette = [[k, 2 * k, 3 * k] for k in range(14)]
    cfg = load_config(TINY_CONFIG, [f"data.root={indoor_data}", f"data.palette={palette}"])
    weights = save_pretrained(build_tiny_model(cfg).eval(), cfg, tmp_path / "m.safetensors")

    out = tmp_path / "scores.json"
    assert main(["eval", "--checkpoint", str(weights), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "test: 12 images, whole image, single scale" in text and "mIoU" in text and "{" not in text
    assert json.loads(out.read_text())["num_images"] == 12

    assert main(["eval", "--checkpoint", str(weights), "--out", str(out), "--quiet"]) == 2  # earlier scores stay
    assert "--overwrite" in capsys.readouterr().err and json.loads(out.read_text())["num_images"] == 12
    assert main(["eval", "--checkpoint", str(weights), "--out", str(out), "--mode", "slide", "eval.crop_size=[32,48]",
                 "--flip", "--quiet", "--overwrite"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and captured.err == ""
    assert "sliding window 32x48, stride 22x32, single scale, flip" in captured.out and "mIoU" in captured.out

    assert main(["eval", "--checkpoint", str(weights), "--out", str(out), "--json", "--overwrite"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["split"] == "test" and scores == json.loads(out.read_text())

    monkeypatch.setattr(smmcl.progress, "MIN_SECONDS", 0.0)
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(indoor_data / "RGB"), "--aux",
                 str(indoor_data / "Depth"), "--list", str(indoor_data / "test.txt"), "--out", str(tmp_path / "p")]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"[smmcl] wrote 12 label PNGs and overlays to {tmp_path / 'p'}\n"
    assert "\r" not in captured.err and sum("predict 12/12 (100%)" in line for line in captured.err.splitlines()) == 1
    test_name = (indoor_data / "test.txt").read_text().split()[0]
    embedded = np.asarray(Image.open(tmp_path / "p" / f"{test_name}.png").getpalette()[: 3 * 14]).reshape(14, 3)
    assert embedded.tolist() == palette


def test_the_model_file_is_checkpoint_everywhere_and_the_old_spellings_warn(indoor_data, tmp_path, capsys):
    """`--checkpoint` names the model file for eval, predict, export and info; `export FILE` and `info FILE` still
    work for one release, with a deprecation warning; results come as JSON with --json (predict here)."""
    from smmcl.cli import main
    from smmcl.config import load_config
    from smmcl.weights import save_pretrained

    from support import build_tiny_model

    cfg = load_config(TINY_CONFIG, [f"data.root={indoor_data}"])
    weights = save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, tmp_path / "m.safetensors")
    assert main(["info", "--checkpoint", str(weights), "--size", "64x80", "--json"]) == 0
    new = json.loads(capsys.readouterr().out)
    assert main(["info", str(weights), "--size", "64x80", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == new and "deprecated: write smmcl info --checkpoint FILE" in captured.err
    for command, message in [(["export", "--out", str(tmp_path / "x.onnx")], "--checkpoint is required"),
                             (["export", str(weights), "--checkpoint", str(weights), "--out", str(tmp_path / "x.onnx")],
                              "give the model file once"),
                             (["info"], "give a YAML config or --checkpoint")]:
        assert main(command) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    rgb = sorted((indoor_data / "RGB").glob("*.png"))[0]
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(indoor_data / "Depth" / rgb.name),
                 "--out", str(tmp_path / "pred"), "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert len(files) == 2 and all(Path(f).is_file() for f in files)


def test_a_missing_config_names_only_what_is_required(capsys):
    """Trial 8 #308: `smmcl train` alone said "required: config, overrides", though overrides are optional."""
    with pytest.raises(SystemExit) as exit_:
        main(["train"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.rstrip().endswith("the following arguments are required: config")


def test_checkpoints_given_without_names_get_distinct_labels():
    """Trial 12 #138: two studies' `seed0` runs were both labelled `seed0`, and the refusal blamed --names, not given."""
    from smmcl.cli.model_commands import _run_names

    assert _run_names(["runs/demo/base/model.safetensors", "runs/demo/smmcl/checkpoints/last.pt"]) == ["base", "smmcl"]
    assert _run_names(["st1/runs/base/seed0/model.safetensors", "st2/runs/base/seed0/model.safetensors"]) == \
        ["st1/runs/base/seed0", "st2/runs/base/seed0"]
    assert len(set(_run_names(["a/m.safetensors", "a/m.safetensors"]))) == 2  # the API then names the file given twice
