"""Gradient accumulation (`train.accumulate`) and the average of weights (`train.ema`), README "Configuration":
one iteration is one optimizer step over the micro-batches, equal to the big-batch step for a model without batch
statistics; resume stays exact with both, even from a kill inside an iteration; off, neither changes training."""

from __future__ import annotations

import contextlib
import re

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from smmcl.config import LossConfig, load_config, to_dict
from smmcl.engine import builder as builder_module
from smmcl.engine import trainer as trainer_module
from smmcl.engine.checkpoint import evaluation_weights, list_checkpoints, load_checkpoint
from smmcl.engine.distributed import RankSlice
from smmcl.engine.loading import load_trained
from smmcl.engine.run_dir import config_changes
from smmcl.engine.step import micro_batches, train_step
from smmcl.engine.plan import batch_warning, make_plan
from smmcl.engine.trainer import Trainer
from smmcl.errors import ConfigError
from smmcl.losses import build_objective
from smmcl.models import build_model

from support import TINY_CONFIG, read_log

# Nothing random in a step and no ignored pixels: MLP decoder without dropout (LightHam draws NMF bases), no drop
# path, Base (no contrast: its sampling and negatives span a micro-batch), one scale and crops the size of the
# images (no padding with the ignore label). Flips stay: every sample keeps its own augmentation seed.
NO_RANDOMNESS = [
    "model.decoder.name=mlp", "model.decoder.dropout=0", "model.backbone.drop_path_rate=0",
    "loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0", "data.scales=[1.0]", "data.crop_size=[64,80]",
]


# --- the step -------------------------------------------------------------------------------------


class _PerSampleNet(nn.Module):
    """Per-sample layers only (GroupNorm, no BatchNorm): a batch's CE is the mean of its images' CEs."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.GroupNorm(2, 8), nn.GELU(),
                                  nn.Conv2d(8, classes, 1))

    def forward(self, rgb, aux, return_embeddings=False):
        return self.body(torch.cat([rgb, aux], 1))


def _base_objective(classes: int = 5):
    return build_objective(LossConfig(cm_weight=0.0, vis_weight=0.0, aux_weight=0.0), classes, 255, 8)


def _train_per_sample_net(accumulate: int, steps: int = 3):
    # float64 (as the Trainer test below explains): AdamW turns a rounding difference in a near-zero gradient
    # into a visible update, and float32 rounding depends on the CPU's kernels.
    torch.manual_seed(0)
    net = _PerSampleNet().double()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    objective = _base_objective()
    g = torch.Generator().manual_seed(1)
    stats = []
    for _ in range(steps):
        rgb, aux = (torch.randn(4, 3, 8, 10, generator=g, dtype=torch.float64) for _ in range(2))
        label = torch.randint(0, 5, (4, 8, 10), generator=g)
        stats.append(train_step(net, objective, opt, rgb, aux, label, lr=1e-2, accumulate=accumulate,
                                probe_params=list(net.parameters())))
    return net.state_dict(), stats


def test_accumulated_micro_batches_update_like_the_big_batch():
    """Batch 4 in one pass, as 2 x 2 and as 4 x 1: the same AdamW updates, losses and probed gradients."""
    big, big_stats = _train_per_sample_net(1)
    for accumulate in (2, 4):
        weights, stats = _train_per_sample_net(accumulate)
        for k in big:
            torch.testing.assert_close(weights[k], big[k], rtol=0, atol=1e-12, msg=f"{accumulate} {k}")
        for a, b in zip(stats, big_stats):
            assert a.keys() == b.keys() and {"loss", "ce", "grad_ce"} <= set(a)
            # CE is taken in float32 (`Objective`), and the probe's flat gradient is float32: a few ulps.
            torch.testing.assert_close(a["loss"], b["loss"], rtol=1e-6, atol=0)
            torch.testing.assert_close(a["grad_ce"], b["grad_ce"], rtol=1e-5, atol=0)


class _RecordingDDP(nn.Module):
    """Stands in for DistributedDataParallel: whether each forward and its backward ran inside `no_sync()`."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.syncing = True
        self.forwards: list[bool] = []
        self.backwards: list[bool] = []

    @contextlib.contextmanager
    def no_sync(self):
        self.syncing = False
        try:
            yield
        finally:
            self.syncing = True

    def forward(self, rgb, aux, return_embeddings=False):
        self.forwards.append(self.syncing)
        logits = self.module(rgb, aux)
        logits.register_hook(lambda grad: self.backwards.append(self.syncing))
        return logits


def test_gradients_sync_on_the_last_micro_batch_only_and_the_loss_scaler_steps_once():
    torch.manual_seed(0)
    net = _RecordingDDP(_PerSampleNet())
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    calls: list[str] = []
    for name in ("scale", "step", "update"):
        original = getattr(scaler, name)
        setattr(scaler, name, lambda *a, _f=original, _n=name, **k: (calls.append(_n), _f(*a, **k))[1])
    rgb, aux = torch.randn(6, 3, 8, 10), torch.randn(6, 3, 8, 10)
    label = torch.randint(0, 5, (6, 8, 10))
    stats = train_step(net, _base_objective(), opt, rgb, aux, label, lr=1e-3, precision="fp16", scaler=scaler, accumulate=3)
    assert net.forwards == net.backwards == [False, False, True]
    assert calls == ["scale", "scale", "scale", "step", "update"]
    assert torch.isfinite(stats["loss"])


def test_a_batch_that_does_not_cut_into_equal_micro_batches_is_refused():
    x = torch.zeros(5, 3)
    with pytest.raises(ValueError, match=r"a batch of 5 cannot be cut into train.accumulate=2 equal micro-batches"):
        micro_batches(2, x)
    assert [p[0].tolist() for p in micro_batches(3, torch.arange(6.0))] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]


def test_ranks_take_their_share_of_every_micro_batch():
    """Micro-batch j is positions [j B, (j + 1) B) of the iteration on any number of ranks, as in one process."""
    iteration = [list(range(8))]
    assert [list(RankSlice(iteration, r, 2, parts=2)) for r in range(2)] == [[[0, 1, 4, 5]], [[2, 3, 6, 7]]]
    assert [list(RankSlice(iteration, r, 2)) for r in range(2)] == [[[0, 1, 2, 3]], [[4, 5, 6, 7]]]


# --- the trainer ----------------------------------------------------------------------------------


class _EvalBatchNorm(nn.BatchNorm2d):
    """A BatchNorm that normalises with its running statistics, as in eval mode, and never updates them: a model
    with these has no batch statistics (same parameters and buffers, so the same names and checkpoints)."""

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def _without_batch_statistics(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = _EvalBatchNorm
    return model


def _in_float64(model: nn.Module) -> nn.Module:
    """The model in float64, its float inputs cast on the way in (the loader yields float32)."""
    def cast(module, args, kwargs):
        return tuple(a.double() if torch.is_tensor(a) and a.is_floating_point() else a for a in args), kwargs
    model.double().register_forward_pre_hook(cast, with_kwargs=True)
    return model


def test_trainer_batch_2_accumulate_2_trains_like_batch_4(indoor_data, tmp_path, monkeypatch):
    """The whole loop: the same samples and augmentation per iteration, the same plan, learning rates and logged
    losses, and the same weights after 3 AdamW steps (the tiny model with eval-mode BatchNorm).

    In float64: the two paths sum the batch's gradient in another order, and AdamW divides each gradient by its
    own running magnitude, so a weight whose gradient is near zero moves by up to lr on a rounding difference.
    In float32 that difference is ~1e-7 of the largest summand and its size depends on the CPU's kernels (AVX2
    and AVX-512 oneDNN convolutions round differently); in float64 it is ~1e-16, and after 3 steps of lr 1e-2
    the weights agree within 1e-15 (measured 7e-16 on an AVX-512 CPU); 1e-12 leaves a 1000x margin."""
    monkeypatch.setattr(builder_module, "build_model",
                        lambda cfg: _in_float64(_without_batch_statistics(build_model(cfg))))
    common = [f"data.root={indoor_data}", *NO_RANDOMNESS, "train.max_iters=3", "train.log_every=1", "train.tensorboard=false"]
    runs = {}
    for name, batch, accumulate in (("big", 4, 1), ("accumulated", 2, 2)):
        cfg = load_config(TINY_CONFIG, [*common, f"train.batch_size={batch}", f"train.accumulate={accumulate}",
                                        f"train.out_dir={tmp_path / name}"])
        runs[name] = Trainer(cfg)
    big, acc = runs["big"], runs["accumulated"]
    assert big.plan == acc.plan and big.plan.iters_per_epoch == len(big.train_set) // 4
    # One loader batch per iteration: the same samples, augmented alike.
    loaded = [list(t._loader(3)) for t in (big, acc)]
    assert [b["name"] for b in loaded[0]] == [b["name"] for b in loaded[1]] and len(loaded[0][0]["name"]) == 4
    assert all(torch.equal(x["rgb"], y["rgb"]) and torch.equal(x["label"], y["label"]) for x, y in zip(*loaded))
    # No ignored pixels: the micro-batches' CE means average to the big batch's exactly.
    assert not any((b["label"] == 255).any() for b in loaded[0])
    for t in (big, acc):
        t.run()
    a, b = read_log(big.out_dir), read_log(acc.out_dir)
    assert [r["step"] for r in b] == [1, 2, 3] and [r["lr"] for r in a] == [r["lr"] for r in b]
    for ra, rb in zip(a, b):
        # The objective takes CE in float32 whatever the logits' dtype (`Objective`): a float32 ulp is 1.2e-7.
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-6)
    wa, wb = big.model.state_dict(), acc.model.state_dict()
    assert all(v.dtype == torch.float64 for v in wa.values() if v.is_floating_point())
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=0, atol=1e-12, msg=k)
    assert all(int(s["step"]) == 3 for s in acc.optimizer.state.values())


class _Killed(Exception):
    pass


def test_a_run_killed_inside_an_accumulating_iteration_resumes_exactly_with_its_average(indoor_data, tmp_path):
    """The tiny model as it is (BatchNorm, LightHam's random bases, drop path, SMMCL sampling) at batch 2 x 2 with
    the weight average on: killed after the first micro-batch of iteration 4 had run its backward, resumed from
    the checkpoint of iteration 3, it ends with the uninterrupted run's weights, average, optimizer, contrast
    generator, log and model.safetensors, bit for bit."""
    common = [f"data.root={indoor_data}", "train.batch_size=2", "train.accumulate=2", "train.max_iters=5",
              "train.checkpoint_every=1", "train.keep_checkpoints=2", "train.log_every=1", "train.tensorboard=false",
              "train.ema.enabled=true", "train.ema.decay=0.5"]
    full = Trainer(load_config(TINY_CONFIG, [*common, f"train.out_dir={tmp_path / 'a'}"]))
    full.run()
    cfg = load_config(TINY_CONFIG, [*common, f"train.out_dir={tmp_path / 'b'}"])
    killed = Trainer(cfg)
    forward, calls = killed.objective.forward, []

    def dies_in_iteration_4(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:  # the second micro-batch of iteration 4
            raise _Killed
        return forward(*args, **kwargs)

    killed.objective.forward = dies_in_iteration_4
    with pytest.raises(_Killed):
        killed.run()
    assert killed.step == 3 and [s for s, _ in list_checkpoints(tmp_path / "b" / "checkpoints")] == [2, 3]
    resumed = Trainer(cfg, resume="auto")
    assert resumed.step == 3 and int(resumed.ema.n_averaged) == 3
    resumed.run()
    for mine, theirs in ((full.model.state_dict(), resumed.model.state_dict()),
                         (full.ema.state_dict(), resumed.ema.state_dict())):
        assert mine.keys() == theirs.keys()
        for k in mine:
            assert torch.equal(mine[k], theirs[k]), k
    for k, s in full.optimizer.state_dict()["state"].items():
        assert torch.equal(s["exp_avg"], resumed.optimizer.state_dict()["state"][k]["exp_avg"])
    assert torch.equal(full.contrast_generator.get_state(), resumed.contrast_generator.get_state())
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5]
    assert [(r["loss"], r["cm"], r["lr"]) for r in a] == [(r["loss"], r["cm"], r["lr"]) for r in b]
    want, got = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


def test_the_average_is_what_is_evaluated_and_exported_and_changes_no_training(indoor_data, tmp_path, monkeypatch):
    common = [f"data.root={indoor_data}", "train.max_iters=3", "train.log_every=1", "train.tensorboard=false"]
    runs, rng = {}, {}
    for name, on in (("plain", "false"), ("ema", "true")):
        cfg = load_config(TINY_CONFIG, [*common, f"train.ema.enabled={on}", "train.ema.decay=0.5",
                                        f"train.out_dir={tmp_path / name}"])
        torch.manual_seed(99)  # the Trainer seeds itself: what the global stream held before does not matter
        runs[name] = Trainer(cfg)
        runs[name].run()
        rng[name] = torch.get_rng_state()
    plain, ema = runs["plain"], runs["ema"]
    assert plain.ema is None and plain.evaluation_model is plain.model
    # Training is untouched by the average: weights, log and the global random stream.
    a, b = plain.model.state_dict(), ema.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [{k: v for k, v in r.items() if k != "images_per_s"} for r in read_log(plain.out_dir)] == \
           [{k: v for k, v in r.items() if k != "images_per_s"} for r in read_log(ema.out_dir)]
    assert torch.equal(rng["plain"], rng["ema"])
    # The average: parameters and BatchNorm statistics, 0.5 x average + 0.5 x weights after each step.
    averaged = ema.ema.module.state_dict()
    assert int(ema.ema.n_averaged) == 3
    # Every parameter the last step moved (a non-zero gradient) differs from its average.
    moved = [k for k, p in ema.model.named_parameters() if p.grad is not None and bool(p.grad.any())]
    assert len(moved) > 50 and all(not torch.equal(averaged[k], b[k]) for k in moved)
    assert any("running_mean" in k and not torch.equal(averaged[k], b[k]) for k in b)
    # model.safetensors and every evaluation of a checkpoint read the average; the checkpoint keeps both.
    exported = load_file(str(ema.out_dir / "model.safetensors"))
    assert all(torch.equal(exported[k], averaged[k]) for k in averaged)
    ckpt = load_checkpoint(ema.out_dir / "checkpoints" / "ckpt_00000003.pt")
    assert all(torch.equal(ckpt["model"][k], b[k]) for k in b)
    assert all(torch.equal(evaluation_weights(ckpt)[k], averaged[k]) for k in averaged)
    loaded = load_trained(ema.cfg, ema.out_dir / "checkpoints" / "ckpt_00000003.pt").state_dict()
    assert all(torch.equal(loaded[k], averaged[k]) for k in averaged)
    assert load_checkpoint(plain.out_dir / "checkpoints" / "ckpt_00000003.pt")["ema"] is None
    # Validation scores the average.
    seen = []
    monkeypatch.setattr(trainer_module, "evaluate", lambda model, *a, **k: seen.append(model) or {"miou": 0.5, "pixel_acc": 0.5})
    ema.cfg.train.val_split = "test"
    ema.validate()
    assert seen == [ema.ema.module]


# --- config, plan and dry run ---------------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("train.accumulate=0", "train.accumulate=0: expected an integer >= 1"),
    ("train.ema.decay=1.0", "train.ema.decay=1.0: expected a number in (0, 1)"),
    ("train.ema.decay=0.0", "train.ema.decay=0.0: expected a number in (0, 1)"),
    ("train.paper_batch=0", "train.paper_batch=0: expected null or an integer >= 1"),
])
def test_out_of_range_values_are_refused_at_load_with_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(TINY_CONFIG, [override])


def test_accumulate_and_ema_are_training_keys_and_paper_batch_is_not():
    old = to_dict(load_config(TINY_CONFIG))
    changed = lambda *o: config_changes(old, to_dict(load_config(TINY_CONFIG, list(o))))  # noqa: E731
    assert changed("train.accumulate=2") == {"train.accumulate": (1, 2)}
    assert changed("train.ema.enabled=true", "train.ema.decay=0.99") == {"train.ema.enabled": (False, True),
                                                                         "train.ema.decay": (0.9999, 0.99)}
    assert changed("train.paper_batch=16") == {}
    # A checkpoint written before these keys existed resumes with their defaults as no change.
    for key in ("accumulate", "paper_batch", "ema"):
        del old["train"][key]
    assert changed() == {}


def test_the_paper_datasets_state_the_paper_batch():
    for preset in ("llrgbd", "mfnet", "mfnet-split", "nyudv2"):
        cfg = load_config(None, [f"data.preset={preset}"])
        assert cfg.train.paper_batch == 16 and batch_warning(cfg) is None  # the defaults: batch 16, accumulate 1
    assert load_config(None, ["data.preset=generic"]).train.paper_batch is None
    assert load_config(TINY_CONFIG).train.paper_batch is None
    off = load_config(None, ["data.preset=llrgbd", "train.batch_size=4"])
    assert "effective batch is 4" in batch_warning(off) and "train.accumulate=4" in batch_warning(off)
    assert batch_warning(load_config(None, ["data.preset=llrgbd", "train.batch_size=4", "train.accumulate=4"])) is None


def test_the_plan_counts_iterations_of_the_effective_batch():
    cfg = load_config(TINY_CONFIG, ["train.batch_size=4", "train.accumulate=3", "train.epochs=2"])
    plan = make_plan(cfg, 37)
    assert plan.iters_per_epoch == 3 and plan.total_iters == 6
    with pytest.raises(ValueError, match=r"train.batch_size x train.accumulate = 4 x 3 = 12 exceeds the 11 training samples"):
        make_plan(cfg, 11)


def test_dry_run_prints_the_effective_batch_and_warns_off_the_paper_batch(tiny_overrides, capsys):
    from smmcl.cli import main

    assert main(["train", str(TINY_CONFIG), *tiny_overrides, "train.accumulate=2", "train.paper_batch=16", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "(effective batch 8: batch 4 x accumulate 2)" in out
    assert "one step    batch [4, 3, 64, 80] x 2 micro-batches" in out
    assert "smmcl: warning: the effective batch is 8 (train.batch_size=4 x train.accumulate=2)" in err
    assert "16 (train.paper_batch)" in err and "train.accumulate=4" in err
    assert main(["train", str(TINY_CONFIG), *tiny_overrides, "train.accumulate=4", "train.paper_batch=16", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "(effective batch 16: batch 4 x accumulate 4)" in out and "warning" not in err
