"""A real `smmcl train` process killed with SIGKILL again and again, twice inside a checkpoint write, and resumed
with `--resume auto` each time, ends with exactly the weights of an uninterrupted run. It trains with gradient
accumulation and an average of weights, the most state a checkpoint holds (in-process resumes without them:
engine/test_training.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from smmcl.config import load_config
from smmcl.engine.checkpoint import list_checkpoints, load_checkpoint
from smmcl.engine.run_log import read_log
from smmcl.engine.trainer import Trainer

from support import TINY_CONFIG

STEPS = 10


def _wait_for(condition, proc, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the training process never reached the point to kill it at")


def test_kill_9_anywhere_then_resume_gives_identical_weights(indoor_data, tmp_path):
    common = [f"data.root={indoor_data}", f"train.max_iters={STEPS}", "train.checkpoint_every=1", "train.keep_checkpoints=2",
              "train.tensorboard=false", "train.log_every=1", "train.progress=false",
              "train.batch_size=2", "train.accumulate=2", "train.ema.enabled=true", "train.ema.decay=0.5"]
    reference = Trainer(load_config(TINY_CONFIG, [*common, f"train.out_dir={tmp_path / 'reference'}"]))
    reference.run()

    out = tmp_path / "killed"
    ckpt_dir = out / "checkpoints"
    cmd = [sys.executable, "-m", "smmcl", "train", str(TINY_CONFIG), *common, f"train.out_dir={out}", "--resume", "auto"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SMMCL_TEST_SAVE_DELAY": "0.3"}
    newest = lambda: max((s for s, _ in list_checkpoints(ckpt_dir)), default=0)  # noqa: E731
    writing = lambda: any(ckpt_dir.glob(".ckpt_*.tmp"))  # noqa: E731
    kills = []
    # Inside a checkpoint write (its temporary file is there, the rename has not happened), then between
    # steps after a checkpoint landed, and so on: four kills before the run is let finish.
    for during_write in (True, False, True, False):
        start = newest()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if during_write:
            reached = _wait_for(lambda: newest() > start and writing(), proc)
        else:
            reached = _wait_for(lambda: newest() > start, proc)
            time.sleep(0.1)
        proc.kill()
        proc.wait()
        assert reached, proc.stderr.read().decode()
        kills.append((during_write, newest()))
    assert all(step < STEPS for _, step in kills)
    done = subprocess.run(cmd, env={**env, "SMMCL_TEST_SAVE_DELAY": ""}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not list(ckpt_dir.glob(".ckpt_*.tmp"))

    # model.safetensors holds the average of weights; the last checkpoint the trained weights beside it.
    want = load_file(str(tmp_path / "reference" / "model.safetensors"))
    got = load_file(str(out / "model.safetensors"))
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key
    (_, mine), (_, theirs) = list_checkpoints(tmp_path / "reference" / "checkpoints")[-1], list_checkpoints(ckpt_dir)[-1]
    trained = [load_checkpoint(path)["model"] for path in (mine, theirs)]
    assert all(torch.equal(v, trained[1][k]) for k, v in trained[0].items())
    # The log reads as the uninterrupted one: every step once, with the same losses.
    losses = [[(r["step"], r["loss"]) for r in read_log(d / "log.jsonl")] for d in (tmp_path / "reference", out)]
    assert losses[0] == losses[1] and [s for s, _ in losses[1]] == list(range(1, STEPS + 1))
