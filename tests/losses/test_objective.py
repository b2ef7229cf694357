"""Eq. 7 (`Objective`), the training step, its instrumentation, and what Base and SMMCL runs share."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from smmcl.config import LossConfig, load_config
from smmcl.engine.run_log import run_summary
from smmcl.engine.step import gradient_probe, shared_encoder_parameters, train_step
from smmcl.engine.trainer import Trainer
from smmcl.losses import Objective, SMMCLLoss, build_objective, contrast_scale

from support import TINY_CONFIG, build_tiny_model, read_log

BASE = ["loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0"]


def _inputs(seed=0, k=4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, k, 8, 8, generator=g, requires_grad=True)
    vis = torch.randn(2, 6, 4, 4, generator=g, requires_grad=True)
    aux = torch.randn(2, 6, 4, 4, generator=g, requires_grad=True)
    labels = torch.randint(0, k, (2, 8, 8), generator=g)
    return logits, vis, aux, labels


def test_objective_is_ce_plus_weighted_terms():
    logits, vis, aux, labels = _inputs()
    cfg = LossConfig(cm_weight=0.3, vis_weight=0.0, aux_weight=0.05)
    objective = build_objective(cfg, 4, 255, embed_dim=6)
    out = objective(logits, labels, vis, aux, generator=torch.Generator().manual_seed(1))
    terms, _ = SMMCLLoss(4)(vis, aux, labels, generator=torch.Generator().manual_seed(1))
    ce = F.cross_entropy(logits, labels, ignore_index=255)
    assert torch.allclose(out.ce, ce)
    assert torch.allclose(out.total, ce + 0.3 * terms["cm"] + 0.05 * terms["aux"])
    # Every term is reported, the unweighted one too; only weighted ones enter the formula.
    assert set(out.terms) == {"ce", "cm", "vis", "aux"} and objective.formula() == "L_ce + 0.3 L_cm + 0.05 L_aux"
    assert {"rows", "pairs", "classes", "contrast_zero"} <= set(out.stats)


def test_a_batch_with_no_labelled_pixel_adds_nothing_rather_than_nan():
    """Trial 17: CE's mean over no labelled pixel is 0/0; its NaN reached every weight through the backward pass."""
    logits, vis, aux, labels = _inputs()
    objective = build_objective(LossConfig(), 4, 255, embed_dim=6)
    out = objective(logits, torch.full_like(labels, 255), vis, aux, generator=torch.Generator().manual_seed(1))
    out.total.backward()
    assert float(out.ce) == 0.0 and torch.isfinite(out.total) and torch.count_nonzero(logits.grad) == 0
    logits.grad = None
    some = labels.clone()
    some[0] = 255
    ce = objective(logits, some, vis, aux, generator=torch.Generator().manual_seed(1)).ce
    assert torch.equal(ce, F.cross_entropy(logits, some, ignore_index=255))  # otherwise the mean, bit for bit


def test_base_objective_needs_no_embeddings():
    logits, _, _, labels = _inputs()
    base = Objective(SMMCLLoss(4), {"cm": 0.0, "vis": 0.0, "aux": 0.0})
    assert not base.needs_embeddings
    out = base(logits, labels)
    assert set(out.terms) == {"ce"} and out.stats == {} and float(out.contrast) == 0.0


def test_one_class_batch_counts_as_a_zero_contrast_step():
    logits, vis, aux, _ = _inputs()
    labels = torch.zeros(2, 8, 8, dtype=torch.long)  # one class: no negatives, every term exactly 0
    out = build_objective(LossConfig(), 4, 255, 6)(logits, labels, vis, aux)
    assert float(out.contrast.detach()) == 0.0 and float(out.stats["contrast_zero"]) == 1.0
    assert int(out.stats["classes"]) == 1


def test_contrast_scale_delays_and_ramps():
    assert [contrast_scale(s) for s in (0, 5)] == [1.0, 1.0]
    assert [contrast_scale(s, start=10, ramp=4) for s in (0, 9, 10, 11, 13, 50)] == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    assert [contrast_scale(s, start=3) for s in (2, 3)] == [0.0, 1.0]


def test_gradient_probe_matches_separate_backward_passes():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5))
    x = torch.randn(5)
    ce, aux = (w * x).sum() ** 2, (w ** 3).sum()
    probe = gradient_probe(_Out(ce, aux), [w])
    g_ce = torch.autograd.grad((w * x).sum() ** 2, w)[0]
    g_aux = torch.autograd.grad((w ** 3).sum(), w)[0]
    assert float(probe["grad_ce"]) == pytest.approx(float(g_ce.norm()), rel=1e-5)
    assert float(probe["grad_contrast"]) == pytest.approx(float(g_aux.norm()), rel=1e-5)
    assert float(probe["grad_cos"]) == pytest.approx(float(F.cosine_similarity(g_ce, g_aux, dim=0)), abs=1e-6)


class _Out:
    """The two parts of an ObjectiveOutput the probe reads."""

    def __init__(self, ce, contrast):
        self.ce, self.contrast = ce, contrast


def test_step_with_probe_updates_exactly_like_without(tiny_overrides):
    """The probe's extra backward passes read gradients only: the update is the same to the bit."""
    from smmcl.engine.optim import build_optimizer

    cfg = load_config(TINY_CONFIG, tiny_overrides)
    results = []
    for probe in (False, True):
        model = build_tiny_model(cfg, seed=0)
        opt = build_optimizer(model, cfg.train)
        objective = build_objective(cfg.loss, 14, 255, cfg.model.projector.dim)
        rgb, aux = torch.randn(2, 3, 64, 80), torch.randn(2, 3, 64, 80)
        labels = torch.randint(0, 14, (2, 64, 80), generator=torch.Generator().manual_seed(1))
        torch.manual_seed(5)
        stats = train_step(model, objective, opt, rgb, aux, labels, lr=1e-3, generator=torch.Generator().manual_seed(2),
                           probe_params=shared_encoder_parameters(model) if probe else None)
        results.append((stats, model.state_dict()))
    (plain, a), (probed, b) = results
    assert {"grad_ce", "grad_contrast", "grad_cos", "grad_ratio"} <= set(probed) and "grad_ce" not in plain
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_base_and_smmcl_runs_share_the_global_random_stream(tiny_overrides, tmp_path):
    """The contrast samples from its own generator: after the same steps both runs leave the global RNG
    (dropout, drop path, NMF bases) in the same state, and their first steps' CE agree."""
    states, first_ce = [], []
    for name, extra in (("base", BASE), ("smmcl", [])):
        cfg = load_config(TINY_CONFIG, [*tiny_overrides, *extra, "train.max_iters=3", "train.log_every=1",
                                        f"train.out_dir={tmp_path / name}"])
        trainer = Trainer(cfg)
        trainer.run()
        states.append(torch.get_rng_state())
        first_ce.append(read_log(tmp_path / name)[0]["ce"])
    assert torch.equal(states[0], states[1])
    assert first_ce[0] == first_ce[1]


def test_run_logs_sampling_stats_probe_and_summary(tiny_overrides):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.max_iters=4", "train.log_every=2", "train.grad_probe_every=2",
                                    "model.projector.stage=2"])
    trainer = Trainer(cfg)
    trainer.run()
    rows = read_log(trainer.out_dir)
    assert {"rows", "pairs", "classes", "contrast_zero", "grad_ce", "grad_contrast", "grad_cos"} <= set(rows[0])
    summary = json.loads((trainer.out_dir / "summary.json").read_text())
    assert summary == trainer.summary and 0.0 <= summary["contrast_zero_fraction"] <= 1.0
    assert summary["classes"] >= 1 and summary["rows"] > 0


def test_summary_warns_when_the_contrast_is_mostly_zero(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 10, "loss": 1.0, "contrast_zero": 0.8, "classes": 1.2},
        {"step": 15, "val_miou": 0.3},
        {"step": 20, "loss": 1.0, "contrast_zero": 0.6, "classes": 1.6},
    ]) + '{"step": 2')  # a last line cut short by a kill
    summary = run_summary(log)
    assert summary["contrast_zero_fraction"] == pytest.approx(0.7)
    assert summary["classes"] == pytest.approx(1.4)
    assert len(summary["warnings"]) == 1 and "70%" in summary["warnings"][0]


def test_summary_averages_retrieval_top1_over_steps(tmp_path):
    """The cross_modal_pixel contrast's `retrieval_top1`, weighted by window length as the other stats."""
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 4, "loss": 1.0, "retrieval_top1": 0.5},
        {"step": 10, "loss": 1.0, "retrieval_top1": 0.75},
    ]))
    assert run_summary(log)["retrieval_top1"] == pytest.approx((4 * 0.5 + 6 * 0.75) / 10)
