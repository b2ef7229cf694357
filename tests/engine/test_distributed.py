"""DDP training with torchrun: two CPU processes (gloo) against a single-process reference."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from smmcl.config import load_config
from smmcl.engine import distributed
from smmcl.engine.optim import lr_at, set_lr
from smmcl.engine.trainer import Trainer
from smmcl.losses import contrastive_terms, sample_embeddings

from support import DDP_WORKER, TINY_CONFIG, build_tiny_model, read_log

WORLD = 2
ACCUMULATE = 2

# Nothing random in the step: MLP decoder without dropout (LightHam draws NMF bases from the RNG), no drop
# path, no SMMCL terms (no sampling), one scale, no flip, crops the size of the images.
DETERMINISTIC = [
    "model.decoder.name=mlp", "model.decoder.dropout=0", "model.backbone.drop_path_rate=0",
    "loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0",
    "data.scales=[1.0]", "data.hflip=false", "data.crop_size=[64,80]",
    "train.batch_size=4", "train.max_iters=3", "train.log_every=1", "train.checkpoint_every=1", "train.keep_checkpoints=5",
]


def torchrun(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={WORLD}", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def ddp(indoor_data, tmp_path_factory):
    """One torchrun job: a deterministic DDP run, the same with gradient accumulation, an SMMCL run with gathered
    embeddings, an interrupted and resumed run beside an uninterrupted one, and the gather-with-gradient check."""
    out = tmp_path_factory.mktemp("ddp")
    data = f"data.root={indoor_data}"
    # The tiny config as it is (LightHam, drop path, SMMCL sampling): every rank draws its own random numbers.
    resumable = [data, "train.max_iters=4", "train.checkpoint_every=2", "train.tensorboard=false"]
    runs = {
        "ddp": [data, f"train.out_dir={out / 'ddp'}", *DETERMINISTIC],
        # Two micro-batches of the global batch 4 per step: 8 samples per iteration, 2 per rank and pass.
        "accum": [data, f"train.out_dir={out / 'accum'}", *DETERMINISTIC, f"train.accumulate={ACCUMULATE}"],
        "gather": [data, f"train.out_dir={out / 'gather'}", "loss.gather_embeddings=true", "loss.min_views=1",
                   "train.max_iters=2", "train.tensorboard=false"],
        "full": [*resumable, f"train.out_dir={out / 'full'}"],
        "killed": [*resumable, f"train.out_dir={out / 'killed'}"],
    }
    jobs = [
        {"name": "ddp", "overrides": runs["ddp"]},
        {"name": "accum", "overrides": runs["accum"], "watch_sync": True},
        {"name": "gather", "overrides": runs["gather"]},
        {"name": "full", "overrides": runs["full"]},
        {"name": "killed", "overrides": runs["killed"], "stop_at": 3},  # dies after step 3; newest checkpoint: 2
        {"name": "resumed", "overrides": runs["killed"], "resume": "auto"},
    ]
    spec = out / "spec.json"
    spec.write_text(json.dumps({"config": str(TINY_CONFIG), "runs": jobs}))
    proc = torchrun([str(DDP_WORKER), str(spec), str(out)], cwd=out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    reports = [json.loads((out / f"report_rank{r}.json").read_text()) for r in range(WORLD)]
    return out, runs, reports


def reference_run(overrides):
    """One process on the same global batches, as DDP computes them: each rank's share of every micro-batch
    (own BatchNorm statistics each, as DDP without SyncBatchNorm), its losses scaled by 1 / accumulate and
    their gradients summed on the rank, then the mean of the ranks' gradients and one optimizer step. Buffers
    end as rank 0's: DDP broadcasts rank 0's buffers before every forward, so rank 0's running statistics
    only ever see its own shares."""
    ref = Trainer(load_config(TINY_CONFIG, overrides))
    assert ref.ctx.world_size == 1
    micro, accumulate = ref.cfg.train.batch_size, ref.cfg.train.accumulate
    share = micro // WORLD
    losses = []
    for batch in ref._loader(ref.plan.total_iters):
        set_lr(ref.optimizer, lr_at(ref.step, ref.cfg.train.lr, ref.plan.total_iters, ref.plan.warmup_iters, ref.cfg.train.poly_power))
        ref.model.train()
        step_losses, rank_grads, rank0_buffers = [], [], None
        for r in range(WORLD):
            ref.optimizer.zero_grad(set_to_none=True)
            for j in range(accumulate):  # micro-batch j is positions [j * micro, (j + 1) * micro) of the iteration
                part = slice(j * micro + r * share, j * micro + (r + 1) * share)
                logits = ref.model(batch["rgb"][part], batch["aux"][part])
                ce = F.cross_entropy(logits, batch["label"][part], ignore_index=ref.cfg.data.ignore_index)
                (ce / accumulate if accumulate > 1 else ce).backward()
                step_losses.append(ce.item())
            rank_grads.append({n: p.grad.clone() for n, p in ref.model.named_parameters() if p.grad is not None})
            if r == 0:
                rank0_buffers = {n: b.clone() for n, b in ref.model.named_buffers()}
        with torch.no_grad():
            for n, b in ref.model.named_buffers():
                b.copy_(rank0_buffers[n])
        for n, p in ref.model.named_parameters():
            if n in rank_grads[0]:
                # DDP's all-reduce: each rank's gradient divided by the number of ranks, summed over the ranks.
                total = rank_grads[0][n] / WORLD
                for grads in rank_grads[1:]:
                    total = total + grads[n] / WORLD
                p.grad = total
        ref.optimizer.step()
        ref.state.step += 1
        losses.append(sum(step_losses) / (WORLD * accumulate))
    return ref.model.state_dict(), losses


def test_ddp_matches_single_process_on_the_same_global_batch(ddp):
    out, runs, reports = ddp
    ranks = [torch.load(out / f"run_ddp_rank{r}.pt") for r in range(WORLD)]
    for name, value in ranks[0].items():
        if "running_" not in name and "num_batches_tracked" not in name:
            assert torch.equal(value, ranks[1][name]), name  # bitwise: both ranks apply the same reduced gradient
    # Without SMMCL terms the projectors get no gradient: DDP was told to look for unused parameters.
    assert reports[0]["ddp"]["find_unused_parameters"] is True
    # Both sides run one thread (conftest; OMP_NUM_THREADS=1 in the ranks), so every kernel reduces in the same
    # order and the match is in fact bitwise: (g0 + g1) / 2 and g0 / 2 + g1 / 2 round alike. That matters here:
    # conv biases that feed a BatchNorm have an analytically zero gradient, pure rounding noise, which Adam
    # (update ~ g / (|g| + eps)) turns into steps of ~lr, so other reduction orders would differ by ~1e-3.
    expected, losses = reference_run(runs["ddp"])
    assert expected.keys() == ranks[0].keys()
    worst = max((expected[k].double() - ranks[0][k].double()).abs().max().item() for k in expected)
    assert worst < 1e-5, worst
    # The logged loss of each step is the mean over the ranks.
    rows = read_log(out / "ddp")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row, loss in zip(rows, losses):
        assert row["ce"] == pytest.approx(loss, rel=1e-5)


def test_ddp_with_accumulation_matches_single_process_and_syncs_once_per_step(ddp):
    """train.accumulate=2 on 2 ranks: the gradients are all-reduced only after the last micro-batch of each step
    (no_sync before), and the result is the single-process reference of the same micro-batches."""
    out, runs, reports = ddp
    ranks = [torch.load(out / f"run_accum_rank{r}.pt") for r in range(WORLD)]
    for name, value in ranks[0].items():
        if "running_" not in name and "num_batches_tracked" not in name:
            assert torch.equal(value, ranks[1][name]), name
    # 3 steps of 2 forward passes each: all-reduces after passes 2, 4 and 6 only (every bucket, on every rank).
    for r in range(WORLD):
        assert sorted(set(reports[r]["accum"]["synced_after_passes"])) == [2, 4, 6], r
    expected, losses = reference_run(runs["accum"])
    assert expected.keys() == ranks[0].keys()
    worst = max((expected[k].double() - ranks[0][k].double()).abs().max().item() for k in expected)
    assert worst < 1e-5, worst
    # One log row per step (an optimizer step), the loss the mean over ranks and micro-batches.
    rows = read_log(out / "accum")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row, loss in zip(rows, losses):
        assert row["ce"] == pytest.approx(loss, rel=1e-5)


def test_only_rank0_writes_files(ddp):
    out, _, reports = ddp
    assert reports[1]["writes"] == []
    run = out / "ddp"
    assert sorted(p.name for p in run.iterdir()) == [".smmcl-written.json", "checkpoints", "config.yaml", "log.jsonl",
                                                     "model.safetensors", "summary.json", "tb"]
    # checkpoints/ and tb/ each list what the run wrote there, in a manifest of their own.
    listed = lambda folder: sorted(p.name for p in folder.iterdir() if p.name != ".smmcl-written.json")  # noqa: E731
    assert listed(run / "checkpoints") == [f"ckpt_0000000{k}.pt" for k in (1, 2, 3)]
    assert len(listed(run / "tb")) == 1
    ckpt = torch.load(run / "checkpoints" / "ckpt_00000003.pt", weights_only=True)
    # Every rank's RNG state, for an exact resume with the same number of ranks.
    assert len(ckpt["rng_ranks"]) == WORLD and torch.equal(ckpt["rng"]["torch"], ckpt["rng_ranks"][0]["torch"])


def test_smmcl_with_gathered_embeddings_keeps_ranks_identical(ddp):
    out, _, reports = ddp
    a, b = (torch.load(out / f"run_gather_rank{r}.pt") for r in range(WORLD))
    for name in a:
        if "running_" not in name and "num_batches_tracked" not in name:
            assert torch.equal(a[name], b[name]), name
    last = reports[0]["gather"]["last"]
    assert last["step"] == 2 and all(0 < last[k] < float("inf") for k in ("cm", "vis", "aux"))
    # LightHam reads stages 2-4 only: the stage-1 fusion conv is unused.
    assert reports[0]["gather"]["find_unused_parameters"] is True


def test_killed_and_resumed_ddp_run_matches_uninterrupted(ddp):
    """Every rank reloads the checkpoint and its own RNG state: the continuation is exact."""
    out, _, reports = ddp
    assert reports[0]["resumed"]["last"]["step"] == 4
    for r in range(WORLD):
        full, resumed = (torch.load(out / f"run_{name}_rank{r}.pt") for name in ("full", "resumed"))
        for name in full:
            assert torch.equal(full[name], resumed[name]), (r, name)


def test_gathered_loss_and_gradients_equal_single_process(ddp):
    """Per-rank sampling, then the terms on the concatenation: the loss and the parameter gradients of one
    process holding both ranks' samples; each rank's embedding gradient is W x the single-process one."""
    from support.ddp_worker import LOSS_ARGS, gather_inputs

    out, _, _ = ddp
    feats, labels, model = gather_inputs(WORLD)
    vis, aux = model(feats)
    vis.retain_grad()
    aux.retain_grad()
    rows = [
        sample_embeddings(vis[2 * r:2 * r + 2], aux[2 * r:2 * r + 2], labels[2 * r:2 * r + 2], **LOSS_ARGS,
                          generator=torch.Generator().manual_seed(100 + r))
        for r in range(WORLD)
    ]
    assert len({tuple(v.shape) for v, *_ in rows}) == 1  # the padded layout: same rows on every rank
    v, a, y, valid = (torch.cat(parts) for parts in zip(*rows))
    terms = contrastive_terms(v, a, y, valid=valid)
    (terms["cm"] + terms["vis"] + terms["aux"]).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    for r in range(WORLD):
        got = torch.load(out / f"gather_rank{r}.pt")
        for k in terms:
            assert got["terms"][k].item() == pytest.approx(terms[k].item(), rel=1e-6, abs=1e-7), (r, k)
        position = torch.arange(3 * 2 * WORLD, dtype=torch.float32).reshape(-1, 2)[3 * r:3 * r + 3]
        assert torch.equal(got["rank_dependent_grad"], sum(s + 1 for s in range(WORLD)) * position)
        mine = slice(2 * r, 2 * r + 2)
        torch.testing.assert_close(got["vis_grad"] / WORLD, vis.grad[mine], atol=1e-5, rtol=0)
        torch.testing.assert_close(got["aux_grad"] / WORLD, aux.grad[mine], atol=1e-5, rtol=0)
        for n, g in grads.items():  # after DDP's averaging
            torch.testing.assert_close(got["param_grads"][n], g, atol=1e-5, rtol=0)


def test_cli_under_torchrun_prints_once(indoor_data, tmp_path):
    run = tmp_path / "run"
    proc = torchrun(["-m", "smmcl", "train", str(TINY_CONFIG), f"data.root={indoor_data}", f"train.out_dir={run}",
                     "train.max_iters=2", "train.tensorboard=false"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.stdout.count("[smmcl] done at step 2") == 1
    assert f"{WORLD} processes x batch 2" in proc.stdout
    assert [r["step"] for r in read_log(run)] == [2]
    assert (run / "model.safetensors").is_file()


def test_batch_size_not_divisible_by_world_size_is_a_clear_error(tiny_overrides, monkeypatch, capsys):
    from smmcl.cli import main

    # Checked before any rendezvous, so one process can see the error the ranks of a real job would.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match=r"train.batch_size=3 .* divisible by the number of processes \(2\)"):
        Trainer(load_config(TINY_CONFIG, [*tiny_overrides, "train.batch_size=3"]))
    assert main(["train", str(TINY_CONFIG), *tiny_overrides, "train.batch_size=3"]) == 2
    assert "must be divisible by the number of processes (2)" in capsys.readouterr().err


@pytest.mark.parametrize("decoder, embeddings, unused", [
    ("lightham", True, ["encoder.fusions.0."]),
    ("mlp", True, []),
    ("mlp", False, ["encoder.projector_aux.", "encoder.projector_vis."]),
])
def test_unused_parameter_probe(decoder, embeddings, unused):
    model = build_tiny_model(load_config(TINY_CONFIG, [f"model.decoder.name={decoder}"]))

    def loss(m):
        m.eval()
        x = torch.randn(2, 3, 64, 64)
        out = m(x, x, return_embeddings=True) if embeddings else (m(x, x),)
        return sum(t.sum() for t in out)

    names = distributed.parameters_without_grad(model, loss)
    assert all(n.startswith(tuple(unused)) for n in names), names
    assert all(any(n.startswith(prefix) for n in names) for prefix in unused), names
    assert all(p.grad is None for p in model.parameters())


def test_single_process_helpers_are_identities():
    x = torch.randn(3, 2, requires_grad=True)
    assert distributed.gather_with_grad(x) is x and distributed.gather(x) is x
    stats = {"a": torch.tensor(1.5)}
    assert distributed.all_reduce_mean(stats) == stats
    ctx = distributed.setup("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.device) == (0, 1, True, torch.device("cpu"))
