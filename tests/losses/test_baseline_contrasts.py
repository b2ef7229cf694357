"""The Table 6 baselines against slow loop references: [36] cross-modal pixel contrast, [26] region contrast."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from smmcl.config import LossConfig
from smmcl.losses import CrossModalPixelLoss, RegionContrastLoss, build_objective, sample_embeddings
from smmcl.losses.pixel_contrast import cross_modal_pixel_term, sample_positions
from smmcl.losses.region_contrast import region_means, region_term

IGNORE = 255


def _nce(anchor, positive, negatives, tau):
    e_pos = math.exp(float(anchor @ positive) / tau)
    return -math.log(e_pos / (e_pos + sum(math.exp(float(anchor @ n) / tau) for n in negatives)))


# --- [36]: unsupervised cross-modal pixel contrast ------------------------------------------------


def _pixel_reference(v, a, tau):
    vn, an = F.normalize(v.double(), dim=1), F.normalize(a.double(), dim=1)
    n = len(vn)
    return sum(_nce(vn[i], an[i], [an[j] for j in range(n) if j != i], tau) for i in range(n)) / n


@pytest.mark.parametrize("n,tau", [(1, 0.1), (7, 0.1), (12, 0.5)])
def test_pixel_term_matches_loop(n, tau):
    g = torch.Generator().manual_seed(n)
    v, a = torch.randn(n, 5, generator=g), torch.randn(n, 5, generator=g)
    assert float(cross_modal_pixel_term(v, a, tau)) == pytest.approx(_pixel_reference(v, a, tau), rel=1e-5, abs=1e-6)


def test_pixel_module_uses_same_positions_in_both_modalities_and_no_labels():
    g = torch.Generator().manual_seed(0)
    vis, aux = torch.randn(2, 6, 3, 4, generator=g), torch.randn(2, 6, 3, 4, generator=g)
    loss = CrossModalPixelLoss(temperature=0.2, max_total=10)
    terms, stats = loss(vis, aux, None, generator=torch.Generator().manual_seed(3))
    rows = sample_positions(24, 10, vis.device, torch.Generator().manual_seed(3))
    flat = lambda x: x.permute(0, 2, 3, 1).reshape(-1, 6)[rows]  # noqa: E731
    assert int(stats["rows"]) == 10 and len(set(rows.tolist())) == 10
    assert float(terms["cm"]) == pytest.approx(_pixel_reference(flat(vis), flat(aux), 0.2), rel=1e-5)


def test_pixel_loss_is_low_when_modalities_agree_per_position():
    g = torch.Generator().manual_seed(1)
    vis = torch.randn(2, 16, 4, 4, generator=g)
    same, _ = CrossModalPixelLoss()(vis, vis.clone(), None)
    other, _ = CrossModalPixelLoss()(vis, torch.randn(2, 16, 4, 4, generator=g), None)
    assert float(same["cm"]) < 0.5 * float(other["cm"])


def _top1_reference(v, a):
    """Share of rows i whose v_i . a_i beats v_i . a_j for every j != i (float64 loops)."""
    vn, an = F.normalize(v.double(), dim=1), F.normalize(a.double(), dim=1)
    n = len(vn)
    return sum(all(float(vn[i] @ an[i]) > float(vn[i] @ an[j]) for j in range(n) if j != i) for i in range(n)) / n


def test_retrieval_top1_matches_loop():
    g = torch.Generator().manual_seed(5)
    v = torch.randn(40, 6, generator=g, dtype=torch.float64)
    a = v + 0.8 * torch.randn(40, 6, generator=g, dtype=torch.float64)  # noisy: some rows retrieved, some not
    term, top1 = cross_modal_pixel_term(v, a, 0.1, return_top1=True)
    want = _top1_reference(v, a)
    assert 0.2 < want < 0.9 and float(top1) == want
    assert torch.equal(term, cross_modal_pixel_term(v, a, 0.1)) and not top1.requires_grad


def test_retrieval_top1_is_one_for_agreeing_modalities_and_zero_for_shifted_ones():
    g = torch.Generator().manual_seed(6)
    vis = torch.randn(2, 8, 4, 4, generator=g, requires_grad=True)
    loss = CrossModalPixelLoss(max_total=32)  # every position
    _, same = loss(vis, vis.detach().clone(), None, generator=torch.Generator().manual_seed(0))
    # Every position's positive is another position's features; its own features are among the negatives.
    shifted = vis.detach().roll(1, dims=3)
    _, other = loss(vis, shifted, None, generator=torch.Generator().manual_seed(0))
    assert float(same["retrieval_top1"]) == 1.0 and float(other["retrieval_top1"]) == 0.0
    assert not same["retrieval_top1"].requires_grad
    # One position has no negatives: retrieved by default.
    _, one = CrossModalPixelLoss(max_total=1)(vis, shifted, None)
    assert float(one["retrieval_top1"]) == 1.0


def test_retrieval_top1_draws_nothing_more():
    g = torch.Generator().manual_seed(7)
    vis, aux = torch.randn(1, 4, 3, 3, generator=g), torch.randn(1, 4, 3, 3, generator=g)
    used, alone = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    CrossModalPixelLoss(max_total=5)(vis, aux, None, generator=used)
    sample_positions(9, 5, vis.device, alone)
    assert torch.equal(used.get_state(), alone.get_state())


# --- [26]: supervised region contrast with a memory -----------------------------------------------


def _means_reference(embed, labels, k, min_views):
    """Loops over images and classes at the embedding resolution (labels already that size here)."""
    b, d = embed.shape[:2]
    out = {}
    for i in range(b):
        for c in range(k):
            mask = labels[i] == c
            if int(mask.sum()) >= min_views:
                out[(i, c)] = embed[i][:, mask].double().mean(dim=1)
    return out


def test_region_means_match_loop():
    g = torch.Generator().manual_seed(2)
    embed = torch.randn(3, 4, 5, 6, generator=g)
    labels = torch.randint(0, 4, (3, 5, 6), generator=g)
    labels[0, :2] = IGNORE
    means, present = region_means(embed, labels, 4, IGNORE, min_views=3)
    want = _means_reference(embed, labels, 4, 3)
    assert {(r // 4, r % 4) for r in range(12) if present[r]} == set(want)
    for (i, c), m in want.items():
        assert torch.allclose(means[i * 4 + c].double(), m, atol=1e-6)


def _region_reference(anchors, anchor_labels, keys, key_labels, tau):
    an = [F.normalize(x.double(), dim=0) for x in anchors]
    kn = [F.normalize(x.double(), dim=0) for x in keys]
    total = 0.0
    for x, y in zip(an, anchor_labels):
        pos = [k for k, l in zip(kn, key_labels) if l == y]
        neg = [k for k, l in zip(kn, key_labels) if l != y]
        total += sum(_nce(x, p, neg, tau) for p in pos) / len(pos) if pos else 0.0
    return total / len(an)


def test_region_term_matches_loop_with_invalid_rows():
    g = torch.Generator().manual_seed(4)
    anchors, keys = torch.randn(9, 6, generator=g), torch.randn(7, 6, generator=g)
    a_lab, k_lab = torch.tensor([0, 1, 2, 0, 1, 3, 0, 2, 2]), torch.tensor([0, 1, 1, 2, 0, 3, 1])
    a_ok = torch.tensor([1, 1, 1, 0, 1, 1, 1, 0, 1], dtype=torch.bool)
    k_ok = torch.tensor([1, 1, 0, 1, 1, 0, 1], dtype=torch.bool)
    got = region_term(anchors, a_lab, a_ok, keys, k_lab, k_ok, 0.1)
    want = _region_reference(anchors[a_ok], a_lab[a_ok].tolist(), keys[k_ok], k_lab[k_ok].tolist(), 0.1)
    assert float(got) == pytest.approx(want, rel=1e-5)


def test_region_module_over_steps_matches_loop_with_fifo_memory():
    """Three steps: each contrasts sampled pixels against this batch's regions plus the earlier ones (a
    queue of 2 per class, oldest out), per modality; the memory then takes this batch's regions."""
    k, d, q = 3, 4, 2
    loss = RegionContrastLoss(k, d, temperature=0.2, memory_size=q, min_views=2).train()
    memory = {"vis": {c: [] for c in range(k)}, "aux": {c: [] for c in range(k)}}
    g = torch.Generator().manual_seed(7)
    for step in range(3):
        vis, aux = torch.randn(2, d, 4, 4, generator=g), torch.randn(2, d, 4, 4, generator=g)
        labels = torch.randint(0, k, (2, 4, 4), generator=g)
        held_before = sum(len(memory["vis"][c]) for c in range(k))
        terms, stats = loss(vis, aux, labels, generator=torch.Generator().manual_seed(step))
        assert int(stats["memory"]) == held_before
        v, a, y, valid = sample_embeddings(vis, aux, labels, k, min_views=2, generator=torch.Generator().manual_seed(step))
        for name, embed, rows in (("vis", vis, v), ("aux", aux, a)):
            regions = _means_reference(embed, labels, k, 2)
            keys = [m for m in regions.values()] + [m for c in range(k) for m in memory[name][c]]
            key_labels = [c for (_, c) in regions] + [c for c in range(k) for _ in memory[name][c]]
            want = _region_reference(rows[valid], y[valid].tolist(), keys, key_labels, 0.2)
            assert float(terms[name]) == pytest.approx(want, rel=1e-5), (step, name)
            for (_, c), m in sorted(regions.items()):
                memory[name][c] = (memory[name][c] + [F.normalize(m, dim=0)])[-q:]
    # The buffers hold exactly the queues (in slot order, which the loss does not depend on).
    for c in range(k):
        held = loss.memory_vis[c][: int(loss.memory_filled[c])]
        assert sorted(map(tuple, held.double().round(decimals=5).tolist())) == sorted(
            map(tuple, torch.stack(memory["vis"][c]).round(decimals=5).tolist()))


def test_region_memory_is_saved_and_restored():
    loss = RegionContrastLoss(3, 4, memory_size=5, min_views=1).train()
    g = torch.Generator().manual_seed(0)
    loss(torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g), torch.randint(0, 3, (2, 3, 3), generator=g))
    fresh = RegionContrastLoss(3, 4, memory_size=5, min_views=1)
    fresh.load_state_dict(loss.state_dict())
    assert torch.equal(fresh.memory_vis, loss.memory_vis) and torch.equal(fresh.memory_filled, loss.memory_filled)
    assert int(loss.memory_filled.sum()) > 0


def test_region_eval_mode_leaves_memory_alone():
    loss = RegionContrastLoss(3, 4, memory_size=5, min_views=1).eval()
    loss(torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3), torch.randint(0, 3, (2, 3, 3)))
    assert int(loss.memory_filled.sum()) == 0


def test_region_gradients_reach_both_embeddings():
    g = torch.Generator().manual_seed(3)
    vis = torch.randn(2, 8, 4, 5, generator=g, requires_grad=True)
    aux = torch.randn(2, 8, 4, 5, generator=g, requires_grad=True)
    terms, _ = RegionContrastLoss(3, 8, min_views=2)(vis, aux, torch.randint(0, 3, (2, 4, 5), generator=g))
    (terms["vis"] + terms["aux"]).backward()
    assert vis.grad.abs().sum() > 0 and aux.grad.abs().sum() > 0


# --- the registry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name,terms", [("smmcl", {"cm", "vis", "aux"}), ("cross_modal_pixel", {"cm"}), ("region", {"vis", "aux"})])
def test_objective_builds_each_contrast_with_its_terms(name, terms):
    objective = build_objective(LossConfig(contrast=name), 3, IGNORE, embed_dim=4)
    assert set(objective.weights) == terms and objective.needs_embeddings


def test_objective_without_weights_on_its_terms_is_base():
    cfg = LossConfig(contrast="cross_modal_pixel", cm_weight=0.0)
    assert build_objective(cfg, 3, IGNORE, 4).contrast is None


def test_unknown_contrast_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="cross_modal_pixel"):
        build_objective(LossConfig(contrast="simclr"), 3, IGNORE, 4)
