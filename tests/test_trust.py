"""No run is lost, no silent wrong answer, every bad input a named error (issue "Trust", cases 1-12)."""

from __future__ import annotations

import errno
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from smmcl.cli import build_parser, main, parse_args
from smmcl.config import load_config
from smmcl.data.dataset import RGBXDataset
from smmcl.engine import run_dir
from smmcl.engine.checkpoint import list_checkpoints, load_checkpoint
from smmcl.engine.metrics import confusion_matrix
from smmcl.engine.predict import predict_labels
from smmcl.engine.trainer import Trainer
from smmcl.errors import CheckpointError, ConfigError, NonFiniteWarning
from smmcl.outputs import record

from support import TINY_CONFIG, build_tiny_model, read_log

SHORT = ["train.max_iters=4", "train.checkpoint_every=2", "train.keep_checkpoints=5", "train.tensorboard=false"]


# 1. A finished or different run in the folder is never touched ----------------------------------------


def test_a_second_run_into_a_used_folder_is_refused_unless_overwrite(tiny_overrides, capsys):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, *SHORT])
    Trainer(cfg).run()
    out = Trainer(cfg).out_dir
    before = {p: p.read_bytes() for p in (out / "log.jsonl", out / "model.safetensors")}
    with pytest.raises(ConfigError, match="already holds a run.*--resume auto.*--overwrite"):
        Trainer(cfg).run()
    assert {p: p.read_bytes() for p in before} == before
    import shutil  # its checkpoints deleted: --resume auto is told there is none, not to give --resume auto (trial 10)

    kept = out.parent / "kept_checkpoints"
    shutil.move(str(out / "checkpoints"), str(kept))
    with pytest.raises(ConfigError, match=r"holds a run \(.*\) but no checkpoint to continue from in .*checkpoints: "
                                          r"train into another folder"):
        Trainer(cfg, resume="auto").run()
    shutil.move(str(kept), str(out / "checkpoints"))
    args = ["train", str(TINY_CONFIG), *tiny_overrides, *SHORT]
    assert main(args) == 2 and "already holds a run" in capsys.readouterr().err
    # --overwrite replaces it: the new run's own checkpoints survive (none of the old ones sort newer).
    assert main([*args, "--overwrite", "train.max_iters=2"]) == 0
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [2]
    assert [r["step"] for r in read_log(out)] == [2]
    # The same config replaced with --overwrite keeps its config.yaml (trial 16 #243: the run was left without it).
    saved = (out / "config.yaml").read_text()
    assert main([*args, "--overwrite", "train.max_iters=2"]) == 0
    assert (out / "config.yaml").read_text() == saved and "max_iters: 2" in saved


# 2. Non-finite auxiliary values are "no measurement", with a warning that counts them ----------------


def test_nan_and_inf_depth_read_as_holes_with_a_warning(tiny_model):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 4.0, (64, 80)).astype(np.float32)
    broken = depth.copy()
    broken[:10] = np.nan
    broken[20, :7] = np.inf
    with pytest.warns(NonFiniteWarning, match="807 non-finite"):
        got = predict_labels(tiny_model, rgb, broken, aux_max=10.0)
    want = predict_labels(tiny_model, rgb, np.where(np.isfinite(broken), broken, 0), aux_max=10.0)
    assert np.array_equal(got, want) and len(np.unique(got)) > 1
    with pytest.raises(ValueError, match="NaN"):
        t = torch.zeros(1, 3, 64, 80)
        t[0, 0, 0, 0] = float("nan")
        predict_labels(tiny_model, t, t)


def test_float_tiff_depth_with_nan_in_a_dataset(tmp_path):
    for sub in ("RGB", "Depth", "Label"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "RGB" / "a.png")
    depth = np.ones((8, 8), np.float32)
    depth[0, :3] = np.nan
    Image.fromarray(depth, mode="F").save(tmp_path / "Depth" / "a.tiff")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "Label" / "a.png")
    (tmp_path / "train.txt").write_text("a\n")
    cfg = load_config(TINY_CONFIG, [f"data.root={tmp_path}", "data.aux_ext=.tiff", "data.aux_max=1.0"])
    with pytest.warns(NonFiniteWarning, match=r"a.tiff: 3 non-finite"):
        sample = RGBXDataset(cfg.data, "train", 14)[0]
    assert torch.isfinite(sample["aux"]).all()


# 3. Resuming with another config is refused, or recorded when allowed ---------------------------------


def test_resume_with_a_changed_config_is_refused_or_recorded(tiny_overrides):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, *SHORT])
    Trainer(cfg).run(stop_at=2)
    changed = load_config(TINY_CONFIG, [*tiny_overrides, *SHORT, "train.lr=0.01", "loss.cm_weight=0.5"])
    with pytest.raises(ConfigError, match=r"loss.cm_weight: 0.2 -> 0.5; train.lr: 0.002 -> 0.01.*--allow-config-change"):
        Trainer(changed, resume="auto")
    # Where things are and how they are shown may change freely.
    free = load_config(TINY_CONFIG, [*tiny_overrides, *SHORT, "data.num_workers=0", "train.progress=true"])
    assert Trainer(free, resume="auto").step == 2
    trainer = Trainer(changed, resume="auto", allow_config_change=True)
    trainer.run()
    out = trainer.out_dir
    change = [r for r in read_log(out) if "config_change" in r]
    assert change == [{"step": 2, "config_change": {"loss.cm_weight": [0.2, 0.5], "train.lr": [0.002, 0.01]}}]
    assert "lr: 0.01" in (out / "config.yaml").read_text() and "lr: 0.002" in (out / "config.before_step2.yaml").read_text()
    # A run is never shortened below where it is (trial 10 #196b, #213: "done", and no weights or a config that lied).
    shorter = load_config(TINY_CONFIG, [*tiny_overrides, *SHORT, "train.lr=0.01", "loss.cm_weight=0.5",
                                        "train.max_iters=1"])
    with pytest.raises(ConfigError, match=r"is at step \d+, past the 1 iterations this config plans: a run is not "
                                          r"shortened below where it is"):
        Trainer(shorter, resume="auto", allow_config_change=True)


# 4-5. What a kill leaves behind: temporary checkpoint files, a half-written log line --------------------


def test_resume_removes_partial_saves_and_a_cut_log_line(tiny_overrides):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, *SHORT, "train.log_every=1"])
    Trainer(cfg).run(stop_at=3)
    out = Trainer(cfg).out_dir
    stale = out / "checkpoints" / ".ckpt_00000004.pt.k1ll3d.tmp"
    record(out / "checkpoints", ["ckpt_00000004.pt"])  # as Trainer.save does before it writes, then a kill
    stale.write_bytes(b"\0" * 1000)
    with (out / "log.jsonl").open("a") as f:
        f.write('{"step": 4, "loss": 2.3, "c')  # killed mid-write
    resumed = Trainer(cfg, resume="auto")
    resumed.run()
    assert not stale.exists()
    assert [r["step"] for r in read_log(out)] == [1, 2, 3, 4]


# 6. Disk full and unwritable folders --------------------------------------------------------------------


@pytest.mark.parametrize("failure,reason", [
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4054"), "the write failed"),
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
])
def test_a_failed_save_names_the_folder_and_keeps_the_last_checkpoint(tiny_overrides, monkeypatch, failure, reason):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, *SHORT])
    trainer = Trainer(cfg)
    real_save = torch.save
    calls = []

    def save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) > 1:  # the first checkpoint is written, the second finds the disk full
            raise failure
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(CheckpointError, match=f"cannot write checkpoint .*ckpt_00000004.pt: {reason}.*kept"):
        trainer.run()
    ckpt_dir = trainer.out_dir / "checkpoints"
    assert [s for s, _ in list_checkpoints(ckpt_dir)] == [2] and not list(ckpt_dir.glob(".*.tmp"))
    assert load_checkpoint(ckpt_dir / "ckpt_00000002.pt")["step"] == 2


def test_an_unwritable_folder_fails_before_any_training(tiny_overrides, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(run_dir, "open", refuse, raising=False)
    trainer = Trainer(load_config(TINY_CONFIG, [*tiny_overrides, *SHORT]))
    with pytest.raises(CheckpointError, match="cannot write to .*checkpoints: cannot write there"):
        trainer.run()
    assert trainer.step == 0


# 7, 9. Bad values and empty configs are named at load time ---------------------------------------------


@pytest.mark.parametrize("override,message", [
    ("train.batch_size=0", "train.batch_size=0: expected an integer >= 1"),
    ("train.batch_size=-4", "train.batch_size=-4"),
    ("train.epochs=0", "train.epochs=0"),
    ("train.max_iters=0", "train.max_iters=0: expected null or an integer >= 1"),
    ("data.crop_size=[0,0]", r"data.crop_size=\[0, 0\]: expected \[height, width\]"),
    ("model.num_classes=0", "model.num_classes=0"),
    ("train.lr=-0.001", "train.lr=-0.001: expected a finite number > 0"),
    ("loss.temperature=0", "loss.temperature=0"),
    ("eval.exclude_classes=[14]", r"eval.exclude_classes=\[14\]: expected class ids in 0..13"),
    ("train.precision=fp8", "expected one of \\['fp32', 'bf16', 'fp16'\\]"),
    ("train.device=gpu", "train.device='gpu': expected auto, cpu, mps, cuda or cuda:N"),
])
def test_bad_values_are_named_errors_at_load(override, message, capsys):
    with pytest.raises(ConfigError, match=message):
        load_config(TINY_CONFIG, [override])
    assert main(["train", str(TINY_CONFIG), override, "--dry-run"]) == 2
    assert override.split("=")[0] in capsys.readouterr().err


def test_an_empty_config_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert main(["train", str(empty), "--dry-run"]) == 2
    assert "the config is empty" in capsys.readouterr().err


# 8. Overrides anywhere on the command line --------------------------------------------------------------


def test_overrides_after_flags_are_taken():
    args = parse_args(build_parser(), ["eval", "cfg.yaml", "--checkpoint", "x.pt", "data.root=y", "--split", "val", "eval.batch_size=2"])
    assert args.overrides == ["data.root=y", "eval.batch_size=2"] and args.checkpoint == "x.pt" and args.split == "val"
    with pytest.raises(SystemExit):
        parse_args(build_parser(), ["eval", "cfg.yaml", "--checkpoint", "x.pt", "stray"])


# 10. Checkpoints as `info` sources; empty and code-carrying files -----------------------------------------


def test_info_reads_training_checkpoints_and_names_bad_files(tiny_overrides, tmp_path, capsys):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, *SHORT, "train.max_iters=2"])
    trainer = Trainer(cfg)
    trainer.run()
    assert main(["info", "--checkpoint", str(trainer.out_dir / "checkpoints" / "ckpt_00000002.pt"), "--size", "64x80"]) == 0
    assert "mscan backbone" in capsys.readouterr().out
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert main(["info", str(empty)]) == 2
    assert "the file is empty (0 bytes)" in capsys.readouterr().err

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": Payload()}))
    for command in (["info", str(evil)], ["predict", "--checkpoint", str(evil), "--rgb", str(evil), "--out", str(tmp_path / "pred")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "will not load" in err and "weights_only=False" not in err and "pwned" not in err


# 11. data check reads the dataset's own meta.json ---------------------------------------------------------


def test_data_check_uses_meta_json_and_names_lines_with_spaces(tmp_path, capsys):
    root = tmp_path / "night"
    assert main(["data", "synth", "--kind", "Night-RGBT", "--out", str(root), "--num", "6", "--size", "40x48"]) == 0
    capsys.readouterr()
    assert main(["data", "check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "9 classes" in out and "person" in out and "no problems found" in out
    assert main(["data", "check", str(root), "--preset", "GENERIC", "data.aux_dir=Thermal", "data.aux_kind=thermal",
                 "model.num_classes=9"]) == 0
    capsys.readouterr()
    (root / "train.txt").write_text("scene_00000\nliving room 01\n")
    assert main(["data", "check", str(root)]) == 1
    assert "line 2: 'living room 01' has a space in it" in capsys.readouterr().out
    (root / "train.txt").write_text("scene_00000\nscene_00001\t3\n")  # trial 15 L9: a tab was called a space
    assert main(["data", "check", str(root)]) == 1
    assert "line 2: 'scene_00001\\t3' has a tab in it" in capsys.readouterr().out


# 12. The confusion matrix refuses values outside the classes ----------------------------------------------


def test_confusion_matrix_range_checks():
    target = torch.tensor([0, 1, 2, 255])
    assert confusion_matrix(torch.tensor([0, 1, 2, 7]), target, 3).sum() == 3  # ignored pixels are free
    with pytest.raises(ValueError, match="label value 3 is outside 0..2"):
        confusion_matrix(torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 3, 255]), 3)
    for bad in (3, -1):
        with pytest.raises(ValueError, match=f"prediction value {bad} is outside 0..2"):
            confusion_matrix(torch.tensor([0, 1, bad, 0]), target, 3)


def test_predict_cli_warns_in_its_own_words(tmp_path, capsys):
    from smmcl.weights import save_pretrained

    cfg = load_config(TINY_CONFIG, ["data.aux_max=1.0"])
    save_pretrained(build_tiny_model(cfg).eval(), cfg, tmp_path / "m.safetensors")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    depth = np.ones((16, 16), np.float32)
    depth[3, 3] = np.nan
    Image.fromarray(depth, mode="F").save(tmp_path / "a.tiff")
    code = main(["predict", "--checkpoint", str(tmp_path / "m.safetensors"), "--rgb", str(tmp_path / "a.png"),
                 "--aux", str(tmp_path / "a.tiff"), "--out", str(tmp_path / "pred")])
    assert code == 0
    assert "smmcl: warning: " in capsys.readouterr().err and (tmp_path / "pred" / "a.png").is_file()


def test_a_key_added_since_the_checkpoint_is_not_a_config_change():
    """A checkpoint written before a config key existed resumes: the key at its default is no change."""
    from smmcl.config import load_config, to_dict
    from smmcl.engine.run_dir import config_changes

    new = to_dict(load_config(TINY_CONFIG))
    old = to_dict(load_config(TINY_CONFIG))
    del old["data"]["photometric"]
    assert config_changes(old, new) == {}
    new_on = to_dict(load_config(TINY_CONFIG, ["data.photometric.enabled=true"]))
    assert config_changes(old, new_on) == {"data.photometric.enabled": (False, True)}


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    """Weights, checkpoints and exports are written atomically (smmcl.files.atomic_path) with the mode a plain open
    gives, not the temporary file's private 0600: another user's process can load them where the umask allows."""
    import os
    import stat

    from smmcl.engine.checkpoint import atomic_save
    from smmcl.files import atomic_path
    from smmcl.weights import save_pretrained

    from support import build_tiny_model

    old = os.umask(umask)
    try:
        cfg = load_config(TINY_CONFIG)
        files = [save_pretrained(build_tiny_model(cfg, seed=0), cfg, tmp_path / "w.safetensors"), tmp_path / "ckpt.pt",
                 tmp_path / "plain.txt"]
        atomic_save({"x": torch.zeros(1)}, files[1])
        files[2].write_text("a plain open")
        with atomic_path(tmp_path / "model.onnx", suffix=".tmp.onnx") as tmp:
            tmp.write_bytes(b"onnx")
        files.append(tmp_path / "model.onnx")
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    finally:
        os.umask(old)
    assert set(modes.values()) == {0o666 & ~umask}, modes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(modes)  # no temporary file left


def test_two_runs_started_together_into_one_folder_leave_one_run(indoor_data, tmp_path):
    """Two real `smmcl train` processes started at once into one train.out_dir, again and again: one trains, the
    other stops at once with exit 2 naming the holder, and the folder holds one run's log, config and checkpoints."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "SMMCL_TEST_SAVE_DELAY": "0.5"}  # each checkpoint write lasts 0.5 s
    for attempt in range(3):
        out = tmp_path / f"run{attempt}"
        procs = [subprocess.Popen([sys.executable, "-m", "smmcl", "--quiet", "train", str(TINY_CONFIG), f"data.root={indoor_data}",
                                   f"train.out_dir={out}", "train.max_iters=4", "train.checkpoint_every=1",
                                   "train.tensorboard=false", f"train.seed={seed}", "train.log_every=1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for seed in (0, 1)]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], results
        refused = next(err for code, err in results if code == 2)
        assert "is being written by another smmcl process (pid " in refused and "Traceback" not in refused
        steps = [row["step"] for row in read_log(out) if "loss" in row]
        assert steps == [1, 2, 3, 4]
        assert load_config(out / "config.yaml").train.seed in (0, 1)


def test_a_holder_that_writes_its_id_late_is_still_named(tmp_path):
    """The instant between a holder taking the lock and writing its id: a second writer arriving then waits for
    the id instead of naming nobody (the race CI met with two `smmcl train` started together)."""
    import fcntl
    import os
    import threading

    from smmcl.files import LOCK_NAME, FolderBusyError, folder_lock

    folder = tmp_path / "out"
    folder.mkdir()
    holder = open(folder / LOCK_NAME, "a+")
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, id not yet written

    def write_id():
        holder.write("pid 4242 on robot\n")
        holder.flush()

    late = threading.Timer(0.2, write_id)
    late.start()
    try:
        with pytest.raises(FolderBusyError, match=r"\(pid 4242 on robot\)"):
            with folder_lock(folder, "train.out_dir"):
                pass
    finally:
        late.join()
        holder.close()
    with folder_lock(folder, "train.out_dir"):  # released by its holder: free again
        assert (folder / LOCK_NAME).read_text().startswith(f"pid {os.getpid()} on ")


def test_a_run_a_training_is_writing_is_named_as_such_not_as_unfinished(tmp_path):
    """Trial 7 #124b: `report` on a run whose training is still going was told to resume it, which the lock refuses."""
    import os

    from smmcl.errors import CheckpointError
    from smmcl.files import folder_holder, folder_lock
    from smmcl.reporting.collect import open_run

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "ckpt_00000002.pt").write_bytes(b"")
    assert folder_holder(run) is None
    with folder_lock(run, "train.out_dir"):
        assert folder_holder(run) == f"pid {os.getpid()} on {__import__('socket').gethostname()}"
        with pytest.raises(CheckpointError, match=r"smmcl is writing it now \(pid \d+ on .*\): report on it when"):
            open_run(run, "run")
    assert folder_holder(run) is None  # released: the folder is an unfinished run again
    with pytest.raises(CheckpointError, match=r"not finished\?\): smmcl train CONFIG --resume auto"):
        open_run(run, "run")


def test_a_class_count_override_against_a_datasets_names_is_named(tmp_path, capsys):
    """Trial 17 D-synth-k: "the override is used", then an error about class names "given with overrides" that came
    from the dataset's meta.json."""
    root = tmp_path / "d"
    assert main(["data", "synth", "--kind", "indoor-rgbd", "--out", str(root), "--num", "4", "--size", "32x40"]) == 0
    capsys.readouterr()
    assert main(["data", "check", str(root), "model.num_classes=5"]) == 2
    assert "model.num_classes=5 (override) departs from the 14 classes" in capsys.readouterr().err
    assert main(["data", "check", str(root), "model.num_classes=5", "data.class_names=[]", "data.palette=[]"]) in (0, 1)
    assert "departs from the 14 classes" not in capsys.readouterr().err  # as advised
