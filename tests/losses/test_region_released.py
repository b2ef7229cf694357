"""`region_released`: the region contrast of [26] as its released code does it, against slow loop references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from smmcl.config import LossConfig, load_config
from smmcl.engine.builder import build_parts
from smmcl.engine.step import train_step
from smmcl.errors import ConfigError
from smmcl.losses import ReleasedRegionContrastLoss, build_objective
from smmcl.losses.region_released import predicted_regions, queue_term

from support import TINY_CONFIG, build_tiny_model

IGNORE = 255


def _nce(anchor, positive, negatives, tau):
    e_pos = math.exp(float(anchor @ positive) / tau)
    return -math.log(e_pos / (e_pos + sum(math.exp(float(anchor @ n) / tau) for n in negatives)))


def _regions_reference(features, logits):
    """Class -> L2-normalised mean feature over every pixel of the batch predicted as that class (loops)."""
    b, c, h, w = features.shape
    members = {}
    for i in range(b):
        for y in range(h):
            for x in range(w):
                members.setdefault(int(logits[i, :, y, x].argmax()), []).append(features[i, :, y, x].double())
    return {k: F.normalize(torch.stack(rows).mean(dim=0), dim=0) for k, rows in members.items()}


def _loss_reference(regions, queue, tau):
    """Each region against its own class's queue entries (positives, one term each, averaged) and every other
    class's entries (negatives); the mean over the regions."""
    k, q, _ = queue.shape
    total = 0.0
    for c, region in regions.items():
        negatives = [queue[o, j] for o in range(k) if o != c for j in range(q)]
        total += sum(_nce(region, queue[c, j], negatives, tau) for j in range(q)) / q
    return total / len(regions)


def _batch(g, b=2, c=5, k=4, h=3, w=4, absent=None):
    features = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    logits = torch.randn(b, k, h, w, generator=g, dtype=torch.float64)
    if absent is not None:
        logits[:, absent] = -100.0  # no pixel predicts it
    return features, logits


def test_predicted_regions_match_loop():
    g = torch.Generator().manual_seed(0)
    features, logits = _batch(g, absent=2)
    regions, present = predicted_regions(features, logits, 4)
    want = _regions_reference(features, logits)
    assert sorted(want) == [k for k in range(4) if present[k]] and not present[2]
    for k, region in want.items():
        # float64 throughout: sums of a few terms agree to rounding.
        torch.testing.assert_close(regions[k], region, rtol=1e-12, atol=1e-12)


def test_queue_term_matches_loop():
    g = torch.Generator().manual_seed(1)
    features, logits = _batch(g, absent=1)
    queue = F.normalize(torch.randn(4, 3, 5, generator=g, dtype=torch.float64), dim=2)
    regions, present = predicted_regions(features, logits, 4)
    got = queue_term(regions, present, queue, 0.2)
    want = _loss_reference(_regions_reference(features, logits), queue, 0.2)
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_module_over_steps_matches_loop_with_fifo_queues():
    """Four steps, float64: each contrasts this batch's regions with the queues as they are, then each class's
    region enters its queue (3 per class) over the oldest entry; classes not predicted leave theirs alone."""
    k, c, q = 4, 5, 3
    loss = ReleasedRegionContrastLoss(k, c, temperature=0.2, queue_size=q).double().train()
    queues = {cls: [loss.queue[cls, j].clone() for j in range(q)] for cls in range(k)}  # oldest first
    g = torch.Generator().manual_seed(2)
    for step, absent in enumerate([None, 0, 3, None]):
        features, logits = _batch(g, absent=absent)
        terms, stats = loss(features, logits)
        regions = _regions_reference(features, logits)
        want = _loss_reference(regions, torch.stack([torch.stack(queues[cls]) for cls in range(k)]), 0.2)
        assert set(terms) == {"vis"} and float(terms["vis"]) == pytest.approx(want, rel=1e-12), step
        assert int(stats["regions"]) == len(regions)
        for cls, region in regions.items():
            queues[cls] = queues[cls][1:] + [region]
        # The buffers hold the queues, read from each class's next slot on (oldest first).
        for cls in range(k):
            ptr = int(loss.queue_ptr[cls])
            held = torch.cat([loss.queue[cls, ptr:], loss.queue[cls, :ptr]])
            torch.testing.assert_close(held, torch.stack(queues[cls]), rtol=1e-12, atol=1e-12)


def test_queue_is_fifo_and_wraps_around():
    loss = ReleasedRegionContrastLoss(2, 3, queue_size=2).double().train()
    initial = loss.queue.clone()
    written = []
    for value in (1.0, 2.0, 3.0):
        direction = torch.tensor([1.0, value, value ** 2], dtype=torch.float64)
        features = direction[None, :, None, None].expand(1, 3, 2, 2).clone()
        logits = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
        logits[:, 1] = 1.0  # every pixel predicts class 1
        loss(features, logits)
        written.append(F.normalize(direction, dim=0))
    assert torch.equal(loss.queue[0], initial[0]) and int(loss.queue_ptr[0]) == 0
    # Slots 0, 1, then 0 again: the third region replaced the first, the oldest.
    assert int(loss.queue_ptr[1]) == 1
    torch.testing.assert_close(loss.queue[1, 0], written[2], rtol=0, atol=1e-15)
    torch.testing.assert_close(loss.queue[1, 1], written[1], rtol=0, atol=1e-15)


def test_queue_starts_as_seeded_random_unit_vectors_and_eval_leaves_it():
    a, b = ReleasedRegionContrastLoss(3, 8, queue_size=5), ReleasedRegionContrastLoss(3, 8, queue_size=5)
    assert torch.equal(a.queue, b.queue) and not torch.equal(a.queue, ReleasedRegionContrastLoss(3, 8, 0.2, 5, seed=1).queue)
    torch.testing.assert_close(a.queue.norm(dim=2), torch.ones(3, 5))
    a.eval()(torch.randn(2, 8, 3, 3), torch.randn(2, 3, 3, 3))
    assert torch.equal(a.queue, b.queue) and int(a.queue_ptr.sum()) == 0


def test_gradient_reaches_the_features_and_never_the_logits():
    g = torch.Generator().manual_seed(3)
    features = torch.randn(2, 6, 4, 4, generator=g, requires_grad=True)
    logits = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    terms, _ = ReleasedRegionContrastLoss(3, 6).train()(features, logits)
    terms["vis"].backward()
    assert features.grad.abs().sum() > 0 and logits.grad is None


def test_queue_is_saved_and_restored_with_the_objective_state():
    objective = build_objective(LossConfig(contrast="region_released", region_queue=4), 3, IGNORE, embed_dim=16,
                                feature_dim=6).train()
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, 8, 8, generator=g)
    objective(logits, torch.randint(0, 3, (2, 8, 8), generator=g), decoder_features=torch.randn(2, 6, 4, 4, generator=g),
              head_logits=torch.randn(2, 3, 4, 4, generator=g))
    state = objective.state_dict()
    assert {"contrast.queue", "contrast.queue_ptr"} <= set(state) and int(state["contrast.queue_ptr"].sum()) > 0
    fresh = build_objective(LossConfig(contrast="region_released", region_queue=4), 3, IGNORE, 16, feature_dim=6)
    assert not torch.equal(fresh.contrast.queue, objective.contrast.queue)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.contrast.queue, objective.contrast.queue)
    assert torch.equal(fresh.contrast.queue_ptr, objective.contrast.queue_ptr)


# --- the config, the objective and the step -------------------------------------------------------


@pytest.mark.parametrize("override,message", [
    ("loss.region_queue=0", "loss.region_queue=0: expected an integer >= 1"),
    ("loss.region_temperature=0", r"loss.region_temperature=0\.0: expected a finite number > 0"),
])
def test_bad_queue_or_temperature_is_refused_at_load(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(TINY_CONFIG, ["loss.contrast=region_released", override])


def test_objective_reads_the_decoder_with_its_own_temperature():
    cfg = LossConfig(contrast="region_released", vis_weight=0.3, temperature=0.05)
    objective = build_objective(cfg, 3, IGNORE, embed_dim=16, feature_dim=6)
    assert set(objective.weights) == {"vis"} and objective.formula() == "L_ce + 0.3 L_vis"
    assert objective.needs_decoder_features and not objective.needs_embeddings
    assert objective.contrast.temperature == 0.2 and objective.contrast.queue.shape == (3, 300, 6)
    g = torch.Generator().manual_seed(5)
    logits, labels = torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 3, (2, 8, 8), generator=g)
    features, head_logits = torch.randn(2, 6, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    reference = ReleasedRegionContrastLoss(3, 6).eval()
    want, _ = reference(features, head_logits)
    out = objective.eval()(logits, labels, decoder_features=features, head_logits=head_logits)
    torch.testing.assert_close(out.total, F.cross_entropy(logits, labels) + 0.3 * want["vis"])
    with pytest.raises(ValueError, match="decoder_features"):
        objective(logits, labels, torch.randn(2, 4, 2, 2), torch.randn(2, 4, 2, 2))
    with pytest.raises(ValueError, match="feature_dim"):
        build_objective(cfg, 3, IGNORE, embed_dim=16)


def test_train_step_runs_without_projectors(tiny_overrides):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "loss.contrast=region_released", "loss.region_queue=8"])
    from smmcl.engine.optim import build_optimizer

    model = build_tiny_model(cfg, seed=0)
    opt = build_optimizer(model, cfg.train)
    objective = build_objective(cfg.loss, 14, IGNORE, cfg.model.projector.dim, feature_dim=cfg.model.decoder.channels)
    g = torch.Generator().manual_seed(6)
    rgb, aux = torch.randn(2, 3, 64, 80, generator=g), torch.randn(2, 3, 64, 80, generator=g)
    labels = torch.randint(0, 14, (2, 64, 80), generator=g)
    before = objective.contrast.queue.clone()
    stats = train_step(model, objective, opt, rgb, aux, labels, lr=1e-3, generator=torch.Generator().manual_seed(7))
    assert {"loss", "ce", "vis", "regions", "contrast_zero"} <= set(stats) and "cm" not in stats
    assert torch.isfinite(stats["vis"]) and float(stats["vis"]) > 0
    # Each predicted class wrote one entry; the projectors were not run.
    assert int(objective.contrast.queue_ptr.sum()) == int(stats["regions"]) >= 1
    assert not torch.equal(before, objective.contrast.queue)
    projectors = [p for n, p in model.named_parameters() if "projector" in n]
    assert projectors and all(p.grad is None for p in projectors)
    assert model.decoder.conv_seg.weight.grad is not None


def test_a_training_state_with_the_queue_saves_and_restores_itself(tiny_overrides, tmp_path):
    """As tests/engine/test_engine_parts.py's state test, with loss.contrast=region_released: the queues come
    back with a resume, and two more steps from there leave them as the uninterrupted run does."""
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "loss.contrast=region_released", "loss.region_queue=6"])
    parts = build_parts(cfg)
    batches = [torch.utils.data.default_collate([parts.train_set[4 * k + i] for i in range(4)]) for k in range(3)]

    def step(state, batch):
        train_step(state.model, state.objective, state.optimizer, batch["rgb"], batch["aux"], batch["label"],
                   lr=1e-3, generator=state.contrast_generator)
        state.step += 1

    state = parts.state
    step(state, batches[0])
    saved = {k: v.clone() for k, v in state.objective.state_dict().items()}
    assert int(saved["contrast.queue_ptr"].sum()) > 0
    state.save(tmp_path / "ckpt.pt", cfg, epoch=0)
    for k in (1, 2):
        step(state, batches[k])

    restored = build_parts(cfg).state
    restored.restore(tmp_path / "ckpt.pt", cfg)
    for k, v in restored.objective.state_dict().items():
        assert torch.equal(v, saved[k]), k
    for k in (1, 2):
        step(restored, batches[k])
    for k, v in state.objective.state_dict().items():
        assert torch.equal(v, restored.objective.state_dict()[k]), k
