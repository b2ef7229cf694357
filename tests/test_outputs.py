"""Where smmcl writes (`smmcl.outputs`), through the commands that write: nothing the user owns is overwritten or
merged, `--overwrite` removes only what smmcl wrote, and two inputs never collapse into one output."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from smmcl.cli import main
from smmcl.files import LOCK_NAME
from smmcl.outputs import (MANIFEST_NAME, OutputError, check_apart, claim_folder, read_manifest, record, settle,
                            unique_outputs, writing)

from support import TINY_CONFIG


def _user_files(folder, names=("notes.txt", "config.yaml", "train.txt")):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(f"the user's own {name}\n")
    return {name: (folder / name).read_text() for name in names}


def _unchanged(folder, before):
    return {name: (folder / name).read_text() for name in before} == before


@pytest.mark.parametrize("layout", ["same", "inside", "holds", "symlink", "dotdot"])
def test_an_output_on_an_input_is_refused_however_spelled(tmp_path, layout):
    data = tmp_path / "data"
    (data / "rgb").mkdir(parents=True)
    out = {"same": data / "rgb", "inside": data / "rgb" / "out", "holds": tmp_path,
           "symlink": tmp_path / "link", "dotdot": tmp_path / "x" / ".." / "data" / "rgb"}[layout]
    if layout == "symlink":
        os.symlink(data / "rgb", out)
    with pytest.raises(OutputError, match=r"--out .* (is the input|lies inside the input folder|holds the input)"):
        check_apart(out, [data / "rgb"], "--out")
    check_apart(tmp_path / "elsewhere", [data / "rgb"], "--out")  # apart: fine


def test_a_folder_with_foreign_files_is_refused_and_overwrite_removes_only_the_manifest(tmp_path):
    out = tmp_path / "out"
    before = _user_files(out)
    with pytest.raises(OutputError, match=r"holds files smmcl did not write there \(config.yaml, notes.txt, train.txt\)"):
        claim_folder(out, "run", "train.out_dir", names=["log.jsonl"], overwrite=True)
    assert _unchanged(out, before) and not (out / MANIFEST_NAME).exists()

    mine = tmp_path / "mine"
    claim_folder(mine, "run", "train.out_dir", names=["log.jsonl", "checkpoints", "summary.json"])
    (mine / "log.jsonl").write_text("{}\n")
    (mine / "checkpoints").mkdir()
    # Planned, not yet written: smmcl's only once their files exist, when their writer says so or ends (settle).
    manifest = read_manifest(mine)
    assert abs(manifest.pop("planned_at") - time.time()) < 60  # when: a killed command's files are told by it
    assert manifest == {"kind": "run", "written": [],
                        "planned": {"checkpoints": "written", "log.jsonl": "written", "summary.json": "written"}}
    settle(mine)
    assert read_manifest(mine) == {"kind": "run", "written": ["checkpoints", "log.jsonl"]}  # summary.json never was
    claim_folder(mine, "run", "train.out_dir", names=["log.jsonl"], overwrite=True)
    assert sorted(p.name for p in mine.iterdir()) == [MANIFEST_NAME]
    with pytest.raises(OutputError, match=r"holds the output of another smmcl command \(run\), not of this one \(predictions\)"):
        (mine / "log.jsonl").write_text("{}\n")
        settle(mine)
        claim_folder(mine, "predictions", "--out")


def test_a_name_planned_but_never_written_is_not_smmcls(tmp_path):
    """Trial 8 (301, 303, 325, 326): a command killed or failed before it wrote a name it planned left it listed, and
    a user's file put there later was replaced as smmcl's by the next --overwrite or resume."""
    run = tmp_path / "run"
    claim_folder(run, "run", "train.out_dir", names=["log.jsonl", "summary.json"])
    (run / "log.jsonl").write_text("{}\n")
    record(run, ["log.jsonl"])  # written as it goes; then a kill -9: summary.json stays planned
    (run / "summary.json").write_text("my own notes\n")  # the user's file, under the planned name, put there later
    later = time.time() + 60  # (a killed command's own files lie within seconds of its list's last update)
    os.utime(run / "summary.json", (later, later))
    for overwrite in (False, True):
        with pytest.raises(OutputError, match=r"holds files smmcl did not write there \(summary.json\) \(summary.json: "
                                              r"names that a smmcl command which did not finish \(killed\?\) planned to write"):
            claim_folder(run, "run", "train.out_dir", names=["log.jsonl", "summary.json"], overwrite=overwrite)
    assert (run / "summary.json").read_text() == "my own notes\n" and (run / "log.jsonl").is_file()

    out = tmp_path / "pred"  # a command that fails part way: what it wrote is its own, the rest was never planned
    with pytest.raises(RuntimeError, match="input 3 is corrupt"):
        with writing(out, "predictions", "--out", names=[f"f{i}.png" for i in range(5)]):
            for i in range(5):
                if i == 3:
                    raise RuntimeError("input 3 is corrupt")
                (out / f"f{i}.png").write_bytes(b"png")
    assert read_manifest(out) == {"kind": "predictions", "written": ["f0.png", "f1.png", "f2.png"]}
    (out / "f3.png").write_bytes(b"mine")
    os.utime(out / "f3.png", (time.time() + 60, time.time() + 60))
    with pytest.raises(OutputError, match=r"holds files smmcl did not write there \(f3.png\)"):
        with writing(out, "predictions", "--out", names=[f"f{i}.png" for i in range(5)], overwrite=True):
            pass
    assert (out / "f3.png").read_bytes() == b"mine" and (out / "f0.png").is_file()


def test_two_inputs_with_one_output_name_are_named(tmp_path):
    with pytest.raises(OutputError, match=r"a/x.png and b/x.jpg would both be written as x.png"):
        unique_outputs([("x.png", "a/x.png"), ("y.png", "a/y.png"), ("x.png", "b/x.jpg")])


def _frames(folder, names, size=(32, 40)):
    rgb, aux = folder / "rgb", folder / "depth"
    rgb.mkdir(parents=True, exist_ok=True)
    aux.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        stem, suffix = name.rsplit(".", 1)
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(rgb / name)
        Image.fromarray(rng.integers(0, 5000, size, dtype=np.uint16)).save(aux / f"{stem}.png")
    return rgb, aux


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    import smmcl
    from support import build_tiny_model

    cfg = smmcl.load_config(TINY_CONFIG)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    smmcl.save_pretrained(build_tiny_model(cfg, seed=0), cfg, path)
    return path


def test_predict_never_writes_over_its_inputs_nor_merges_names(weights, tmp_path, capsys):
    rgb, aux = _frames(tmp_path, ["a.png", "b.png"])
    pictures = {p.name: p.read_bytes() for p in rgb.iterdir()}
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--out", str(rgb)]) == 2
    assert "--out" in capsys.readouterr().err and {p.name: p.read_bytes() for p in rgb.iterdir()} == pictures

    user = tmp_path / "labels"
    before = _user_files(user, ("a.png.txt", "readme.md"))
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--out", str(user)]) == 2
    assert "holds files smmcl did not write there" in capsys.readouterr().err and _unchanged(user, before)

    out = tmp_path / "pred"
    again = ["--quiet", "predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--out", str(out)]
    assert main(again) == 0
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(again) == 2  # a second prediction into its own folder: refused, the first one kept
    assert "earlier output of this command (a.png, a_overlay.png, b.png and 1 more)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier
    assert main([*again, "--overwrite"]) == 0  # and with --overwrite replaces its own files
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_NAME, "a.png", "a_overlay.png", "b.png", "b_overlay.png"])

    listed = tmp_path / "list.txt"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.png").write_bytes((rgb / "a.png").read_bytes())
    listed.write_text("rgb/a.png depth/a.png\nother/a.png depth/b.png\n")
    assert main(["predict", "--checkpoint", str(weights), "--list", str(listed), "--out", str(tmp_path / "p2")]) == 2
    err = capsys.readouterr().err
    assert "rgb/a.png and" in err and "other/a.png would both be written as a.png" in err
    assert not (tmp_path / "p2" / "a.png").exists()


@pytest.mark.parametrize("command", ["predict", "synth", "hha"])
def test_a_second_writer_into_a_held_folder_stops_and_names_the_first(command, weights, tmp_path, capsys):
    rgb, aux = _frames(tmp_path, ["a.png"])
    out = tmp_path / "out"
    argv = {"predict": ["predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux)],
            "synth": ["data", "synth", "--kind", "indoor-rgbd", "--num", "2", "--size", "32x40"],
            "hha": ["data", "hha", "--depth", str(aux), "--intrinsics", "50,50,20,16"]}[command]
    kind = {"predict": "predictions", "synth": "dataset", "hha": "hha"}[command]
    with writing(out, kind, "--out"):  # another command of the same kind, writing there now
        assert main(["--quiet", *argv, "--out", str(out)]) == 2
        assert f"pid {os.getpid()}" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, LOCK_NAME]
    assert main(["--quiet", *argv, "--out", str(out)]) == 0  # released when the first one ends
    assert not (out / LOCK_NAME).exists()  # and a finished command leaves no lock file behind
    (out / LOCK_NAME).write_text("pid 1 on a killed machine\n")  # a killed holder's file: unlocked, so no obstacle
    assert main(["--quiet", *argv, "--out", str(out), *(["--overwrite"] if command != "synth" else [])]) == 0


def test_a_single_file_in_a_folder_of_another_command_is_never_removed_by_it(weights, tmp_path, capsys):
    """Trial cases 280-284: an export or scores written into a dataset or a report folder joined its manifest, and
    the folder's own command (synth, report) then deleted it. Such a file is kept: never foreign, never removed."""
    data = tmp_path / "data"
    synth = ["--quiet", "data", "synth", "--kind", "indoor-rgbd", "--num", "4", "--size", "32x40", "--out", str(data)]
    assert main(synth) == 0
    assert main(["--quiet", "export", "--checkpoint", str(weights), "--out", str(data / "deploy.onnx"), "--size",
                 "32x40"]) == 0
    export = (data / "deploy.onnx").read_bytes()
    assert main(["--quiet", "data", "hha", "--depth", str(data / "Depth"), "--intrinsics", "40,40,20,16", "--out",
                 str(data / "HHA")]) == 0
    capsys.readouterr()
    assert main([*synth, "--overwrite"]) == 0  # generated again; the export and HHA beside it stay, named as stale
    assert (data / "deploy.onnx").read_bytes() == export and len(list((data / "HHA").glob("*.png"))) == 4
    assert read_manifest(data)["kept"] == ["deploy.onnx"]
    err = capsys.readouterr().err
    assert "warning" in err and str(data / "HHA") in err and str(data / "deploy.onnx") in err
    bare = [*synth[:-1], str(tmp_path / "bare")]
    assert main(bare) == 0 and main(bare) == 0  # a replacement with no other command's output inside: no warning
    assert "warning" not in capsys.readouterr().err


def test_a_refused_command_leaves_no_folder_it_made(weights, tmp_path, capsys):
    rgb, aux = _frames(tmp_path, ["a.png"])
    Image.fromarray(np.full((32, 40), 7, np.uint8)).save(aux / "a.png")  # 8-bit depth for a millimetre model
    out = tmp_path / "never"
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--out", str(out)]) == 2
    assert "8-bit" in capsys.readouterr().err and not out.exists()


def test_predict_refuses_one_name_twice_and_replaces_its_own_earlier_outputs(weights, tmp_path, capsys):
    rgb, aux = _frames(tmp_path, ["x.png", "y.png"])
    (rgb / "x.jpg").write_bytes((rgb / "y.png").read_bytes())
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--out", str(tmp_path / "p")]) == 2
    assert "have one name, 'x'" in capsys.readouterr().err
    (rgb / "x.jpg").unlink()
    listed = tmp_path / "list.txt"
    listed.write_text("x\nx\n")
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--list", str(listed),
                 "--out", str(tmp_path / "p")]) == 2
    assert "x: given twice" in capsys.readouterr().err
    out = tmp_path / "p"
    assert main(["--quiet", "predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--out", str(out)]) == 0
    listed.write_text("y\n")
    assert main(["--quiet", "predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--list",
                 str(listed), "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "y.png", "y_overlay.png"]  # not x's as well


def test_a_refused_folder_gets_no_lock(tmp_path):
    before = _user_files(tmp_path / "theirs")
    with pytest.raises(OutputError, match="holds files smmcl did not write there"):
        with writing(tmp_path / "theirs", "predictions", "--out"):
            pass
    assert sorted(p.name for p in (tmp_path / "theirs").iterdir()) == sorted(before)


def test_synth_and_hha_keep_out_of_a_users_folder(tmp_path, capsys):
    theirs = tmp_path / "theirs"
    before = _user_files(theirs, ("train.txt", "meta.json"))
    assert main(["data", "synth", "--out", str(theirs), "--kind", "indoor-rgbd", "--num", "4", "--size", "32x40"]) == 2
    assert "holds files smmcl did not write there" in capsys.readouterr().err and _unchanged(theirs, before)
    assert sorted(p.name for p in theirs.iterdir()) == ["meta.json", "train.txt"]

    ours = tmp_path / "ours"
    for _ in range(2):  # regenerating into its own folder is fine
        assert main(["--quiet", "data", "synth", "--out", str(ours), "--kind", "indoor-rgbd", "--num", "4", "--size", "32x40"]) == 0
    assert json.loads((ours / "meta.json").read_text())["num"] == 4

    depth = ours / "Depth"
    assert main(["data", "hha", "--depth", str(depth), "--out", str(depth / "hha"), "--intrinsics", "50,50,20,16"]) == 2
    assert "lies inside the input folder" in capsys.readouterr().err

    # HHA written again (here from fewer depth images) is refused, and with --overwrite replaces its earlier output
    # whole: no stale image stays listed.
    hha = tmp_path / "hha"
    hha_args = ["--quiet", "data", "hha", "--depth", str(depth), "--out", str(hha), "--intrinsics", "50,50,20,16"]
    assert main(hha_args) == 0 and len(list(hha.glob("*.png"))) == 4
    few = tmp_path / "few_depth"
    few.mkdir()
    (few / "scene_00000.png").write_bytes((depth / "scene_00000.png").read_bytes())
    assert main([*hha_args[:4], str(few), *hha_args[5:]]) == 2
    assert "earlier output" in capsys.readouterr().err and len(list(hha.glob("*.png"))) == 4
    assert main([*hha_args[:4], str(few), *hha_args[5:], "--overwrite"]) == 0
    assert sorted(p.name for p in hha.glob("*.png")) == ["scene_00000.png"]
    assert read_manifest(hha)["written"] == ["scene_00000.png"]


def test_overwrite_of_a_folder_that_only_looks_like_a_run_removes_nothing(indoor_data, tmp_path, capsys):
    out = tmp_path / "looks_like_a_run"
    before = _user_files(out, ("config.yaml", "log.jsonl", "summary.json", "thesis.tex"))
    args = ["train", str(TINY_CONFIG), f"data.root={indoor_data}", f"train.out_dir={out}", "train.max_iters=2",
            "train.tensorboard=false"]
    assert main([*args, "--overwrite"]) == 2
    assert "holds files smmcl did not write there" in capsys.readouterr().err and _unchanged(out, before)

    run = tmp_path / "run"
    args[3] = f"train.out_dir={run}"
    assert main(["--quiet", *args]) == 0
    (run / "thesis.tex").write_text("the user's, put in later\n")
    assert main([*args, "--overwrite"]) == 2  # a file of the user's inside a run: nothing is removed
    assert (run / "thesis.tex").is_file() and (run / "model.safetensors").is_file()
    (run / "thesis.tex").unlink()
    assert main(["--quiet", *args, "--overwrite"]) == 0
    # Listed as each is written; tb/ never is, with train.tensorboard=false.
    manifest = read_manifest(run)
    manifest.pop("planned_at")
    assert manifest == {"kind": "run", "written": ["checkpoints", "config.yaml", "log.jsonl", "model.safetensors",
                                                   "summary.json"], "planned": {"tb": "written"}}


def test_overwrite_keeps_a_users_files_inside_a_runs_folders(indoor_data, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", str(TINY_CONFIG), f"data.root={indoor_data}", f"train.out_dir={run}", "train.max_iters=2",
            "train.tensorboard=false", "train.checkpoint_every=1"]
    assert main(["--quiet", *args]) == 0
    # A file named like the run's own (a backup of an earlier checkpoint, a pruned name) is still the user's.
    for name in ("best_by_hand.txt", "ckpt_00000000.pt", "ckpt_00000009.pt"):
        (run / "checkpoints" / name).write_text("mine\n")
        assert main([*args, "--overwrite"]) == 2
        assert f"checkpoints/{name}" in capsys.readouterr().err
        assert (run / "checkpoints" / name).read_text() == "mine\n"
        assert (run / "checkpoints" / "ckpt_00000002.pt").is_file()
        (run / "checkpoints" / name).unlink()
    assert main(["--quiet", *args, "--overwrite"]) == 0


def test_overwrite_keeps_another_commands_output_inside_a_runs_folders_and_goes_through(indoor_data, weights, tmp_path,
                                                                                        capsys):
    """Trial 9 #200-#207: scores written beside a checkpoint (eval's default) or an export into `checkpoints/` (or a
    dataset's `RGB/`) made `--overwrite` remove the old run, lose that folder's list, then refuse the kept file as
    foreign, saying "nothing was changed". The kept file stays, with the folder's list, and the new run goes ahead."""
    run = tmp_path / "run"
    args = ["train", str(TINY_CONFIG), f"data.root={indoor_data}", f"train.out_dir={run}", "train.max_iters=2",
            "train.tensorboard=false", "train.checkpoint_every=2"]
    assert main(["--quiet", *args]) == 0
    assert main(["--quiet", "eval", "--checkpoint", str(run / "checkpoints" / "ckpt_00000002.pt")]) == 0
    scores = run / "checkpoints" / "ckpt_00000002.test.json"
    kept = scores.read_bytes()
    assert main([*args, "--overwrite", "--dry-run"]) == 0
    assert main(["--quiet", *args, "--overwrite"]) == 0
    assert scores.read_bytes() == kept and (run / "model.safetensors").is_file()
    assert read_manifest(run / "checkpoints")["kept"] == [scores.name]
    assert main(["--quiet", *args, "--overwrite"]) == 0  # and again: still the run's folder
    capsys.readouterr()

    data = tmp_path / "data"
    synth = ["--quiet", "data", "synth", "--kind", "indoor-rgbd", "--size", "32x40", "--out", str(data)]
    assert main([*synth, "--num", "4"]) == 0
    assert main(["--quiet", "export", "--checkpoint", str(weights), "--out", str(data / "RGB" / "m.onnx"), "--size",
                 "32x40"]) == 0
    export = (data / "RGB" / "m.onnx").read_bytes()
    assert main([*synth, "--num", "6", "--overwrite"]) == 0
    assert (data / "RGB" / "m.onnx").read_bytes() == export and len(list((data / "RGB").glob("*.png"))) == 6


def test_resume_and_pruning_touch_only_the_checkpoints_the_run_wrote(indoor_data, tmp_path):
    from smmcl.engine.checkpoint import latest_checkpoint, list_checkpoints, prune_checkpoints

    run = tmp_path / "run"
    args = ["--quiet", "train", str(TINY_CONFIG), f"data.root={indoor_data}", f"train.out_dir={run}",
            "train.max_iters=3", "train.tensorboard=false", "train.checkpoint_every=1", "train.keep_checkpoints=2"]
    assert main(args) == 0
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("*.pt")) == ["ckpt_00000002.pt", "ckpt_00000003.pt"]
    assert read_manifest(ckpts)["written"] == ["ckpt_00000002.pt", "ckpt_00000003.pt"]  # the pruned one forgotten
    (ckpts / "ckpt_00000099.pt").write_text("a user's file dropped in mid-run\n")
    assert latest_checkpoint(ckpts).name == "ckpt_00000003.pt"
    prune_checkpoints(ckpts, 1)
    assert sorted(p.name for p in ckpts.glob("*.pt")) == ["ckpt_00000003.pt", "ckpt_00000099.pt"]
    assert [p.name for _, p in list_checkpoints(ckpts)] == ["ckpt_00000003.pt"]


def test_synth_replaces_its_own_dataset_whole_and_no_one_elses_files(tmp_path, capsys):
    out = tmp_path / "data"
    base = ["--quiet", "data", "synth", "--out", str(out), "--num", "4", "--size", "32x40"]
    assert main([*base, "--kind", "indoor-rgbd"]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main([*base, "--kind", "night-rgbt"]) == 2  # another dataset there: replaced only with --overwrite
    assert "holds another generated dataset (kind indoor-rgbd -> night-rgbt): --overwrite" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main([*base, "--kind", "indoor-rgbd"]) == 0  # the same values: already there, nothing written
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    edited = out / "Label" / "scene_00000.png"  # a label corrected by hand stays (trial 9 #73)
    edited.write_bytes(b"a user's edit")
    assert main([*base, "--kind", "indoor-rgbd"]) == 0 and edited.read_bytes() == b"a user's edit"
    edited.write_bytes(before[edited])
    assert main([*base, "--kind", "night-rgbt", "--overwrite"]) == 0
    assert not (out / "Depth").exists() and len(list((out / "Thermal").glob("*.png"))) == 4  # no stale depth
    base.append("--overwrite")
    (out / "val.txt").write_text("my own validation list\n")  # synth wrote none: the user's, refused, kept
    assert main([*base, "--kind", "indoor-rgbd"]) == 2
    assert "val.txt" in capsys.readouterr().err and (out / "val.txt").read_text() == "my own validation list\n"
    (out / "val.txt").unlink()
    for name in ("my_photo.png", "scene_00099.png"):  # named like a scene or not: the user's
        (out / "RGB" / name).write_bytes(b"mine")
        assert main([*base, "--kind", "indoor-rgbd"]) == 2
        assert f"RGB/{name}" in capsys.readouterr().err and (out / "RGB" / name).read_bytes() == b"mine"
        (out / "RGB" / name).unlink()
    assert main([*base, "--kind", "indoor-rgbd", "--num", "3"]) == 0
    assert sorted(p.name for p in (out / "RGB").glob("*.png")) == [f"scene_{i:05d}.png" for i in range(3)]


def test_save_pretrained_keeps_other_files_and_refuses_a_config_that_does_not_fit(tmp_path):
    import smmcl
    import torch
    from safetensors.torch import save_file

    from smmcl.errors import CheckpointError
    from support import build_tiny_model

    cfg = smmcl.load_config(TINY_CONFIG)
    theirs = tmp_path / "their.safetensors"
    save_file({"w": torch.zeros(3)}, str(theirs))
    before = theirs.read_bytes()
    with pytest.raises(OutputError, match="exists and is not a file smmcl wrote"):
        smmcl.save_pretrained(build_tiny_model(cfg, seed=0), cfg, theirs)
    assert theirs.read_bytes() == before
    other = smmcl.load_config(TINY_CONFIG, ["model.num_classes=5", "data.class_names=[]"])
    with pytest.raises(CheckpointError, match="the model does not fit the config given with it"):
        smmcl.save_pretrained(build_tiny_model(cfg, seed=0), other, tmp_path / "mismatch.safetensors")
    assert not (tmp_path / "mismatch.safetensors").exists()
    ours = smmcl.save_pretrained(build_tiny_model(cfg, seed=0), cfg, tmp_path / "ours.safetensors")
    (tmp_path / ".ours.safetensors.abc123.tmp").write_bytes(b"a kill's leftover")
    with pytest.raises(OutputError, match="earlier output.*overwrite=True"):
        smmcl.save_pretrained(build_tiny_model(cfg, seed=1), cfg, ours)
    smmcl.save_pretrained(build_tiny_model(cfg, seed=1), cfg, ours, overwrite=True)  # replaced, the leftover gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours.safetensors", "their.safetensors"]


def test_a_run_from_before_the_manifests_is_adopted_only_when_resumed(indoor_data, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", str(TINY_CONFIG), f"data.root={indoor_data}", f"train.out_dir={run}", "train.max_iters=2",
            "train.checkpoint_every=1"]
    assert main(["--quiet", *args]) == 0
    for manifest in run.rglob(MANIFEST_NAME):  # as a run written before smmcl kept these lists
        manifest.unlink()
    assert main([*args, "train.max_iters=3", "--overwrite"]) == 2  # never emptied: nothing says it is smmcl's
    assert "holds files smmcl did not write there" in capsys.readouterr().err
    assert main(["--quiet", *args, "train.max_iters=3", "--resume", "auto", "--allow-config-change"]) == 0
    assert "ckpt_00000003.pt" in read_manifest(run / "checkpoints")["written"]
    assert "ckpt_00000002.pt" in read_manifest(run / "checkpoints")["written"]  # adopted: its checkpoint was read
    assert len(read_manifest(run / "tb")["written"]) == 2  # the first run's event file and the resumed one's


def test_a_resume_with_a_changed_config_names_the_outputs_made_before(indoor_data, tmp_path, capsys):
    """Trial 5 #156: a report or scores made from the run before an allowed config change stayed without a word."""
    out = tmp_path / "run"
    args = ["--quiet", "train", str(TINY_CONFIG), f"data.root={indoor_data}", f"train.out_dir={out}",
            "train.tensorboard=false", "train.checkpoint_every=1"]
    assert main([*args, "train.max_iters=2"]) == 0
    assert main(["--quiet", "eval", "--checkpoint", str(out / "model.safetensors"), "--out", str(out / "scores.json")]) == 0
    capsys.readouterr()
    assert main([*args, "train.max_iters=3", "--resume", "auto", "--allow-config-change"]) == 0
    err = capsys.readouterr().err
    assert "resuming with a changed config, but keeping" in err and str(out / "scores.json") in err


def test_a_refused_single_output_leaves_no_claim_and_a_failed_folder_says_what_it_kept(weights, tmp_path, capsys):
    """Trial 8 #83/#85: a refused `eval --out` into a run listed its scores file as smmcl's; a user's file put there
    later was then kept as smmcl's with a false warning. And #299: a predict that fails part way said nothing of the
    outputs it had written."""
    from smmcl.outputs import output_file

    run = tmp_path / "run"
    claim_folder(run, "run", "train.out_dir", names=["log.jsonl"])
    with pytest.raises(RuntimeError):
        with output_file(run / "model.test.json", "--out"):
            raise RuntimeError("the evaluation was refused")
    assert "kept" not in read_manifest(run) and "model.test.json" not in read_manifest(run).get("planned", {})
    with output_file(run / "model.test.json", "--out") as path:
        path.write_text("{}")
    assert read_manifest(run)["kept"] == ["model.test.json"]

    rgb, aux = _frames(tmp_path, [f"f{i}.png" for i in range(4)])
    (aux / "f2.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "f2.png" in err and f"--out {out}: stopped part way; the 4 outputs it wrote before (e.g. f0.png) are kept" in err
    assert read_manifest(out)["written"] == ["f0.png", "f0_overlay.png", "f1.png", "f1_overlay.png"]


def test_a_command_killed_part_way_can_be_run_again(tmp_path):
    """Trial 10 #127/#128: after `kill -9` of `data synth`, the files it wrote but had not listed yet were refused
    as foreign by the rerun. Its files lie within seconds of its list's last update, a user's file put there later
    does not: the rerun takes the former and still refuses the latter."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "data"
    args = [sys.executable, "-m", "smmcl", "--quiet", "data", "synth", "--kind", "indoor-rgbd", "--num", "400",
            "--size", "96x128", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "Label").glob("*.png"))) < 30:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = len(list((out / "Label").glob("*.png")))
    assert 30 <= written < 400, "the synth was not killed part way"
    mine = out / "Label" / "scene_00399.png"  # a planned name it never reached, with a file put there later
    mine.write_bytes(b"mine")
    later = time.time() + 60
    os.utime(mine, (later, later))
    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 2 and "scene_00399.png" in rerun.stderr and mine.read_bytes() == b"mine"
    assert "holds files smmcl did not write there (Label/scene_00399.png)" in rerun.stderr  # its own are not named
    mine.unlink()
    assert subprocess.run(args, capture_output=True).returncode == 0
    assert len(list((out / "Label").glob("*.png"))) == 400


def test_an_output_inside_a_linked_input_folder_is_refused(indoor_data, tmp_path, capsys):
    """Trial 13 #286: a dataset whose RGB/ is a link to the user's own folder; a run asked into `data/RGB/run` was
    written among the user's images (the dry run passed it too): the link is judged where it leads."""
    data = tmp_path / "linked"
    data.mkdir()
    for sub in ("RGB", "Depth", "Label"):
        (data / sub).symlink_to(indoor_data / sub)
    for name in ("train.txt", "test.txt"):
        (data / name).write_text((indoor_data / name).read_text())
    for extra in (["--dry-run"], []):
        assert main(["train", str(TINY_CONFIG), f"data.root={data}", f"train.out_dir={data / 'RGB' / 'run'}",
                     "train.max_iters=1", *extra]) == 2
        assert "lies inside the input folder" in capsys.readouterr().err
    assert not (indoor_data / "RGB" / "run").exists()
    with pytest.raises(OutputError, match="lies inside the input folder"):
        check_apart(indoor_data / "Depth" / "x", [data], "--out")


def test_one_output_file_is_written_by_one_command_at_a_time(weights, tmp_path):
    """Trial 14 #244, #245c, #247: two evals (exports, converts) into one file at once each said they wrote it, and one
    result was gone. The file's name is locked while it is written; a second writer is refused, naming the first."""
    import subprocess
    import sys

    from smmcl.files import FolderBusyError, file_lock
    from smmcl.outputs import output_file

    out = tmp_path / "same.onnx"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from smmcl.files import file_lock\n"
                               f"with file_lock(Path({str(out)!r}), '--out'):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=rf"--out {out} is being written by another smmcl process \(pid "
                                                  rf"{holder.pid} "):
            with output_file(out, "--out"):
                pass
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    with output_file(out, "--out") as path:  # released when its holder ended, however it ended
        path.write_bytes(b"x")
    with file_lock(out, "--out"):
        pass


def test_predict_into_the_folder_its_linked_frames_live_in_is_refused(weights, tmp_path, capsys):
    """Trial 14 #277b: --rgb and --aux folders of links to the user's dataset, --out inside that dataset's RGB folder:
    the predictions were written among the user's images (the same without links is refused)."""
    mine = tmp_path / "myrgbd"
    _frames(mine, ["a.png", "b.png"])
    for sub in ("rgb", "depth"):
        (tmp_path / f"lnk_{sub}").mkdir()
        for frame in (mine / sub).iterdir():
            (tmp_path / f"lnk_{sub}" / frame.name).symlink_to(frame)
    before = sorted(p.name for p in (mine / "rgb").iterdir())
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(tmp_path / "lnk_rgb"), "--aux",
                 str(tmp_path / "lnk_depth"), "--out", str(mine / "rgb" / "preds")]) == 2
    assert "lies inside the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in (mine / "rgb").iterdir()) == before


def test_scores_of_a_replaced_model_are_named_as_kept(tmp_path):
    """Trial 14 #302: a checkpoint's scores (eval's default `<stem>.test.json`) stayed beside the checkpoint of a run
    trained again with --overwrite; #303: an export's scores beside the export replaced. Both kept, and now said."""
    from smmcl.errors import StaleOutputWarning
    from smmcl.outputs import output_file

    run = claim_folder(tmp_path / "run", "run", "train.out_dir", names=["checkpoints"])
    claim_folder(run / "checkpoints", "checkpoints", "checkpoints folder", names=["ckpt_4.pt"])
    (run / "checkpoints" / "ckpt_4.pt").write_bytes(b"w")
    settle(run / "checkpoints")
    with output_file(run / "checkpoints" / "ckpt_4.test.json", "--out") as scores:
        scores.write_text("{}")
    with pytest.warns(StaleOutputWarning, match=r"keeping .*checkpoints/ckpt_4.test.json, written there by another"):
        claim_folder(run, "run", "train.out_dir", overwrite=True)
    assert (run / "checkpoints" / "ckpt_4.test.json").exists()

    export = tmp_path / "e.onnx"
    export.write_bytes(b"old")
    (tmp_path / "e.test.json").write_text("{}")
    with pytest.warns(StaleOutputWarning, match=r"e.onnx: replacing it, but keeping .*e.test.json, the scores of the"):
        with output_file(export, "--out", ours=True, overwrite=True) as path:
            path.write_bytes(b"new")


def test_a_lock_left_to_a_killed_commands_child_says_so(tmp_path):
    """Trial 14 #97: a run killed with -9 and started again at once was told its own dead process held the folder;
    a data-loading worker it started held the lock for a few seconds more."""
    import socket
    import subprocess
    import sys

    from smmcl.files import FolderBusyError, check_not_busy

    folder = tmp_path / "run"
    code = ("import time; from pathlib import Path; from smmcl.files import folder_lock\n"
            f"with folder_lock(Path({str(folder)!r}), 'train.out_dir'):\n"
            f"    (Path({str(folder)!r}) / {LOCK_NAME!r}).write_text('pid 4194303 on {socket.gethostname()}\\n')\n"
            "    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=r"\(pid 4194303 on .*\); process 4194303 has ended, and a process it "
                                                  r"started \(a data-loading worker\) still holds the lock"):
            check_not_busy(folder, "train.out_dir")
    finally:
        holder.kill()
        holder.wait()


def test_an_earlier_output_cut_short_by_a_kill_is_said_to_be_part_of_one(tmp_path):
    """Trial 17 KQ2: a rerun after `kill -9` was told of "an earlier output of this command", not that it was cut
    short; KQ3: the refusal of a user's file under a planned name read garbled."""
    from smmcl.outputs import claim_folder, record
    from smmcl.outputs.claims import check_claim, check_no_earlier

    out = tmp_path / "p"
    claim_folder(out, "predictions", "--out", names=["a.png", "b.png", "c.png"])
    (out / "a.png").write_bytes(b"label")
    record(out, ["a.png"])  # killed here: never settled
    with pytest.raises(OutputError, match=r"holds an earlier output of this command \(a.png\), part of one that did not "
                                          r"finish \(killed\?\): 2 of its 3 files were never written"):
        check_no_earlier(out, "predictions", "--out")
    (out / "b.png").write_bytes(b"mine")
    os.utime(out / "b.png", (1, 1))  # long before the claim: not the killed command's
    with pytest.raises(OutputError, match=r"\(b.png: names that a smmcl command which did not finish \(killed\?\) "
                                          r"planned to write but never listed as written"):
        check_claim(out, "predictions", "--out", overwrite=True)
