import json
import subprocess
import sys

import pytest

from smmcl.cli import main

from conftest import TINY_CONFIG


def test_synth_train_eval_round_trip(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["data", "synth", "--kind", "indoor-rgbd", "--out", str(data), "--num", "12", "--size", "48x64"]) == 0
    assert (data / "train.txt").is_file() and (data / "meta.json").is_file()
    run = tmp_path / "run"
    overrides = [f"data.root={data}", f"train.out_dir={run}", "train.max_iters=2", "data.crop_size=[48,64]"]
    assert main(["train", str(TINY_CONFIG), *overrides]) == 0
    ckpt = sorted((run / "checkpoints").glob("ckpt_*.pt"))[-1]
    out = tmp_path / "scores.json"
    assert main(["eval", str(TINY_CONFIG), *overrides, "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["split"] == "test" and len(scores["iou"]) == 14 and 0 <= scores["pixel_acc"] <= 1
    assert "mIoU" in capsys.readouterr().out
    # a second train call with --resume auto finds the run complete and does nothing more
    assert main(["train", str(TINY_CONFIG), *overrides, "--resume", "auto"]) == 0


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


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "smmcl", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("data", "train", "eval", "demo"):
        assert command in out


def test_demo_end_to_end_small(tmp_path):
    from smmcl.demo import run_demo

    summary = run_demo(tmp_path / "demo", config=TINY_CONFIG, overrides=["train.max_iters=2", "data.crop_size=[48,64]"],
                       num_scenes=10, size=(48, 64), num_pictures=2)
    assert set(summary["models"]) == {"Base", "SMMCL"}
    for model in summary["models"].values():
        assert 0 <= model["miou"] <= 1 and len(model["per_class_iou"]) == 14
    on_disk = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert on_disk["models"]["Base"]["miou"] == summary["models"]["Base"]["miou"]
    assert len(list((tmp_path / "demo" / "predictions").glob("scene_*.png"))) == 2


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
    assert f"{name}.png has value 20" in err and "0..13" in err and "Traceback" not in err


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
    assert main(["eval", str(TINY_CONFIG), *tiny_overrides, "model.num_classes=20", "--checkpoint", str(weights)]) == 2
    assert "predicts 14 classes" in capsys.readouterr().err
