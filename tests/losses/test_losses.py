"""Tests for the SMMCL loss: Eq. 3-6 against a loop reference, sampling, and the module."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from smmcl.config import LossConfig
from smmcl.losses import SMMCLLoss, contrastive_terms, sample_embeddings

IGNORE = 255


# ---------------------------------------------------------------------------------------------
# contrastive_terms against a per-anchor reference
# ---------------------------------------------------------------------------------------------


def _reference_term(anchors, others, y, tau):
    """Eq. 3-4 / 5-6 literally: loops over anchors and positives, float64."""
    n = len(y)
    if n == 0:
        return 0.0
    total = 0.0
    for i in range(n):
        positives = [j for j in range(n) if j != i and y[j] == y[i]]
        negatives = [j for j in range(n) if j != i and y[j] != y[i]]
        if not positives:
            continue  # contributes 0, still counted in the 1/|V|
        neg_sum = sum(math.exp(float(anchors[i] @ others[k]) / tau) for k in negatives)
        acc = 0.0
        for p in positives:
            e_pos = math.exp(float(anchors[i] @ others[p]) / tau)
            acc += -math.log(e_pos / (e_pos + neg_sum))
        total += acc / len(positives)
    return total / n


def _reference(v, a, y, temperature, cm_temperature):
    vn = F.normalize(v.double(), dim=1)
    an = F.normalize(a.double(), dim=1)
    labels = y.tolist()
    return {
        "cm": _reference_term(vn, an, labels, cm_temperature),
        "vis": _reference_term(vn, vn, labels, temperature),
        "aux": _reference_term(an, an, labels, temperature),
    }


def _assert_matches(got, want, tol=1e-5):
    for key in ("cm", "vis", "aux"):
        assert got[key].dim() == 0
        assert abs(float(got[key]) - want[key]) <= tol * max(1.0, abs(want[key])), (key, float(got[key]), want[key])


def _random_rows(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


@pytest.mark.parametrize(
    "labels",
    [
        # Several classes, two of them with a single member (anchors without positives).
        [0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4, 1, 0, 2, 2, 5],
        # Every class has a single member: no anchor has positives.
        [0, 1, 2, 3, 4],
        # A single class: no anchor has negatives.
        [7, 7, 7, 7, 7, 7],
        # A single row.
        [3],
    ],
)
@pytest.mark.parametrize("temps", [(0.1, 0.1), (0.07, 0.5), (1.0, 0.05)])
def test_terms_match_loop_reference(labels, temps):
    temperature, cm_temperature = temps
    y = torch.tensor(labels)
    v, a = _random_rows(len(labels), 8, seed=len(labels))
    got = contrastive_terms(v, a, y, temperature=temperature, cm_temperature=cm_temperature)
    _assert_matches(got, _reference(v, a, y, temperature, cm_temperature))


def test_terms_float64_inputs_match_reference_tightly():
    y = torch.tensor([0, 1, 0, 2, 1, 1, 0, 3])
    v, a = _random_rows(len(y), 5, seed=3)
    got = contrastive_terms(v.double(), a.double(), y, temperature=0.1, cm_temperature=0.2)
    _assert_matches(got, _reference(v, a, y, 0.1, 0.2), tol=1e-10)


def test_valid_mask_equals_reference_on_valid_rows():
    y = torch.tensor([0, 0, 1, 1, 2, 0, 1, 2, 2, 3, 0, 1])
    valid = torch.tensor([1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0], dtype=torch.bool)
    v, a = _random_rows(len(y), 6, seed=11)
    # Padded rows get garbage, including a zero row and labels shared with valid rows.
    v[1] = 0.0
    a[6] = 1e4
    got = contrastive_terms(v, a, y, temperature=0.1, cm_temperature=0.3, valid=valid)
    _assert_matches(got, _reference(v[valid], a[valid], y[valid], 0.1, 0.3))


def test_no_valid_rows_gives_zero_with_a_graph():
    v, a = _random_rows(6, 4, seed=5)
    v.requires_grad_(True)
    a.requires_grad_(True)
    out = contrastive_terms(v, a, torch.zeros(6, dtype=torch.long), valid=torch.zeros(6, dtype=torch.bool))
    for value in out.values():
        assert float(value.detach()) == 0.0
    sum(out.values()).backward()
    assert torch.equal(v.grad, torch.zeros_like(v)) and torch.equal(a.grad, torch.zeros_like(a))


@pytest.mark.parametrize(
    "labels,valid",
    [
        ([4, 4, 4, 4], None),  # no negatives anywhere
        ([0, 1, 2, 3], None),  # no positives anywhere
        ([0, 0, 1, 2], [1, 1, 0, 0]),  # padding removes every negative
        ([0, 0, 1, 1], [0, 0, 0, 0]),  # nothing valid
    ],
)
@pytest.mark.parametrize("tau", [0.1, 0.001])
def test_gradients_finite_in_edge_cases(labels, valid, tau):
    y = torch.tensor(labels)
    mask = None if valid is None else torch.tensor(valid, dtype=torch.bool)
    v, a = _random_rows(len(labels), 3, seed=2)
    v[0] = 0.0  # a zero embedding must not break the normalisation either
    v.requires_grad_(True)
    a.requires_grad_(True)
    out = contrastive_terms(v, a, y, temperature=tau, cm_temperature=tau, valid=mask)
    total = sum(out.values())
    assert torch.isfinite(total)
    total.backward()
    assert torch.isfinite(v.grad).all() and torch.isfinite(a.grad).all()


def test_small_temperature_does_not_overflow():
    # With tau = 1e-3 the logits reach 1000: naive exp() would overflow float32.
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    v, a = _random_rows(len(y), 4, seed=8)
    got = contrastive_terms(v, a, y, temperature=1e-3, cm_temperature=1e-3)
    for value in got.values():
        assert torch.isfinite(value)
    _assert_matches(got, _reference_logspace(v, a, y, 1e-3))


def _reference_logspace(v, a, y, tau):
    """Same reference, but with log-sum-exp so it survives tiny temperatures (float64)."""
    vn = F.normalize(v.double(), dim=1)
    an = F.normalize(a.double(), dim=1)

    def term(x, z):
        n = len(y)
        total = 0.0
        for i in range(n):
            pos = [j for j in range(n) if j != i and y[j] == y[i]]
            neg = [j for j in range(n) if y[j] != y[i]]
            acc = 0.0
            for p in pos:
                s = torch.stack([x[i] @ z[p]] + [x[i] @ z[k] for k in neg]) / tau
                acc += float(torch.logsumexp(s, 0) - s[0])
            total += acc / len(pos) if pos else 0.0
        return total / n

    return {"cm": term(vn, an), "vis": term(vn, vn), "aux": term(an, an)}


def test_clustered_embeddings_score_lower_than_random():
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    clustered = F.one_hot(y, 8).float() * 3.0  # each class its own orthogonal direction
    v_rand, a_rand = _random_rows(len(y), 8, seed=21)
    good = contrastive_terms(clustered, clustered.clone(), y)
    bad = contrastive_terms(v_rand, a_rand, y)
    for key in ("cm", "vis", "aux"):
        assert float(good[key]) < 1e-3 < float(bad[key])
    # Swapping the two modalities' classes puts every cross-modal positive far away.
    crossed = contrastive_terms(clustered, F.one_hot((y + 1) % 4, 8).float(), y)
    assert float(crossed["cm"]) > float(bad["cm"]) and float(crossed["vis"]) < 1e-3


def test_terms_invariant_to_joint_row_permutation():
    y = torch.tensor([0, 1, 1, 2, 0, 2, 2, 3, 1, 0])
    valid = torch.tensor([1, 1, 0, 1, 1, 1, 1, 0, 1, 1], dtype=torch.bool)
    v, a = _random_rows(len(y), 6, seed=4)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    base = contrastive_terms(v, a, y, valid=valid)
    shuffled = contrastive_terms(v[perm], a[perm], y[perm], valid=valid[perm])
    for key in base:
        torch.testing.assert_close(base[key], shuffled[key])


def test_shape_errors():
    v = torch.randn(4, 3)
    with pytest.raises(ValueError):
        contrastive_terms(v, torch.randn(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        contrastive_terms(v, v, torch.zeros(3, dtype=torch.long))


# ---------------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------------

B, H, W, K = 2, 6, 8, 4
# (image, class) -> pixels at the embedding resolution; the rest of each image is ignore.
PIXELS = {(0, 0): 20, (0, 1): 12, (0, 2): 3, (1, 0): 10, (1, 3): 30, (1, 1): 8}
PRESENT = {pair: c for pair, c in PIXELS.items() if c >= 5}  # (0, 2) is below min_views


def _small_labels():
    """B x H x W label map with exactly PIXELS per pair, scattered at random positions."""
    g = torch.Generator().manual_seed(1)
    small = torch.full((B, H * W), IGNORE, dtype=torch.long)
    for b in range(B):
        values = [cls for (img, cls), c in PIXELS.items() if img == b for _ in range(c)]
        spots = torch.randperm(H * W, generator=g)[: len(values)]
        small[b, spots] = torch.tensor(values)
    return small.reshape(B, H, W)


def _full_labels(small, factor=4):
    """Full-resolution labels whose nearest-neighbour downscale is `small`, plus decoys.

    Nearest downscaling by an integer factor reads pixel (f*i, f*j); every other pixel of the
    block gets a different class, which must never leak into the sampled labels.
    """
    full = small.repeat_interleave(factor, 1).repeat_interleave(factor, 2).clone()
    decoy = (full + 1) % K
    keep = torch.zeros_like(full, dtype=torch.bool)
    keep[:, ::factor, ::factor] = True
    return torch.where(keep, full, decoy)


def _position_maps(b=B, h=H, w=W, d=3):
    """Embeddings whose channels spell out (image, row, column) of each pixel."""
    grid_b, grid_y, grid_x = torch.meshgrid(torch.arange(b), torch.arange(h), torch.arange(w), indexing="ij")
    enc = torch.stack([grid_b, grid_y, grid_x], dim=1).float()
    if d > 3:
        enc = torch.cat([enc, torch.zeros(b, d - 3, h, w)], dim=1)
    return enc


def _decode(rows):
    return [tuple(int(round(float(c))) for c in row[:3]) for row in rows]


def _sample(mode="paired", seed=0, **kw):
    small = _small_labels()
    enc = _position_maps()
    g = torch.Generator().manual_seed(seed)
    out = sample_embeddings(enc, enc.clone(), _full_labels(small), K, mode=mode, generator=g, **kw)
    return small, out


@pytest.mark.parametrize(
    "kw,n,m",
    [
        ({}, 8, 96),  # n = the smallest present pair (8); M = B*h*w = 96 < 4800
        ({"max_views": 6}, 6, 96),  # max_views cap
        ({"max_total": 25}, 5, 25),  # 25 // 5 pairs = 5, and M = max_total
        ({"max_total": 43, "max_views": 7}, 7, 43),  # both caps; max_total not binding at 7*5=35
        ({"min_views": 9}, 10, 96),  # (1, 1) with 8 pixels now skipped too: smallest is 10
    ],
)
@pytest.mark.parametrize("mode", ["paired", "independent"])
def test_counts_per_pair(kw, n, m, mode):
    small, (v, a, y, valid) = _sample(mode=mode, **kw)
    min_views = kw.get("min_views", 5)
    present = {pair for pair, c in PIXELS.items() if c >= min_views}
    assert v.shape == (m, 3) and a.shape == (m, 3) and y.shape == (m,) and valid.shape == (m,)
    k = int(valid.sum())
    assert k == n * len(present)
    # Valid rows first, padding after.
    assert valid[:k].all() and not valid[k:].any()
    assert (y[k:] == IGNORE).all()
    for emb in (v, a):
        positions = _decode(emb[:k])
        pairs = [(pos[0], int(lab)) for pos, lab in zip(positions, y[:k])]
        assert Counter(pairs) == {pair: n for pair in present}
        # Grouped by (image, class) in order.
        assert pairs == sorted(pairs)
        # Positions distinct within each pair, and the label read there is the row's label.
        assert len(set(positions)) == k
        for (b, r, c), lab in zip(positions, y[:k].tolist()):
            assert small[b, r, c] == lab != IGNORE


def test_paired_mode_uses_identical_positions():
    _, (v, a, y, valid) = _sample("paired")
    assert torch.equal(v, a)


def test_independent_mode_same_labels_other_positions():
    small, (v, a, y, valid) = _sample("independent")
    k = int(valid.sum())
    pv, pa = _decode(v[:k]), _decode(a[:k])
    assert pv != pa
    for (bv, rv, cv), (ba, ra, ca), lab in zip(pv, pa, y[:k].tolist()):
        assert bv == ba and small[bv, rv, cv] == small[ba, ra, ca] == lab


def test_labels_follow_nearest_interpolation():
    # A non-integer ratio (23 -> 6, 29 -> 8): the sampled labels must be those of F.interpolate.
    g = torch.Generator().manual_seed(7)
    full = torch.randint(0, 3, (B, 23, 29), generator=g)
    full[:, :5] = IGNORE
    v, a, y, valid = sample_embeddings(_position_maps(), _position_maps(), full, 3, min_views=1, generator=g)
    expected = F.interpolate(full[:, None].float(), size=(H, W), mode="nearest")[:, 0].long()
    k = int(valid.sum())
    assert k > 0
    for (b, r, c), lab in zip(_decode(v[:k]), y[:k].tolist()):
        assert expected[b, r, c] == lab != IGNORE


def test_seeded_generator_is_deterministic():
    for mode in ("paired", "independent"):
        _, first = _sample(mode, seed=3)
        _, again = _sample(mode, seed=3)
        _, other = _sample(mode, seed=4)
        for x, z in zip(first, again):
            assert torch.equal(x, z)
        assert not torch.equal(first[0], other[0])


def test_all_ignore_gives_no_rows_and_zero_loss():
    enc = _position_maps(d=8).requires_grad_(True)
    labels = torch.full((B, H * 2, W * 2), IGNORE, dtype=torch.long)
    v, a, y, valid = sample_embeddings(enc, enc, labels, K)
    assert v.shape == (B * H * W, 8) and not valid.any()
    loss, stats = SMMCLLoss(K)(enc, enc, labels)
    assert all(float(t.detach()) == 0.0 for t in loss.values())
    assert (int(stats["rows"]), int(stats["pairs"]), int(stats["classes"])) == (0, 0, 0)
    sum(loss.values()).backward()
    assert torch.equal(enc.grad, torch.zeros_like(enc))


def test_unknown_mode_raises():
    enc = _position_maps()
    with pytest.raises(ValueError, match="bogus"):
        sample_embeddings(enc, enc, _small_labels(), K, mode="bogus")


def test_no_host_sync_on_meta_tensors():
    """Sampling and the module run on data-less meta tensors, so they never read values on the host."""
    # First show that meta really catches the forbidden ops (.item(), boolean indexing,
    # nonzero, unique, bincount), so passing below is evidence rather than luck.
    probe = torch.zeros(4, device="meta")
    for forbidden in (
        lambda: probe.sum().item(),
        lambda: probe[probe > 0],
        lambda: probe.nonzero(),
        lambda: torch.unique(probe),
        lambda: torch.bincount(probe.long(), minlength=4),
    ):
        with pytest.raises((RuntimeError, NotImplementedError)):
            forbidden()

    vis = torch.empty(3, 16, 5, 7, device="meta", requires_grad=True)
    aux = torch.empty(3, 16, 5, 7, device="meta", requires_grad=True)
    labels = torch.empty(3, 20, 28, dtype=torch.long, device="meta")
    for mode in ("paired", "independent"):
        v, a, y, valid = sample_embeddings(vis, aux, labels, 6, max_total=50, mode=mode)
        assert v.shape == a.shape == (50, 16) and y.shape == valid.shape == (50,)
        out, _ = SMMCLLoss(6, sampling=mode, max_total=200)(vis, aux, labels)
        sum(out.values()).backward()
        assert vis.grad.shape == vis.shape and aux.grad.shape == aux.shape


# ---------------------------------------------------------------------------------------------
# SMMCLLoss
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["paired", "independent"])
def test_module_backward_reaches_both_embeddings(mode):
    g = torch.Generator().manual_seed(0)
    vis = torch.randn(2, 16, 8, 10, generator=g, requires_grad=True)
    aux = torch.randn(2, 16, 8, 10, generator=g, requires_grad=True)
    labels = torch.randint(0, 3, (2, 32, 40), generator=g)
    labels[:, :8] = IGNORE
    loss, _ = SMMCLLoss(3, sampling=mode)(vis, aux, labels, generator=g)
    assert set(loss) == {"cm", "vis", "aux"}
    sum(loss.values()).backward()
    for emb in (vis, aux):
        assert torch.isfinite(emb.grad).all()
        per_pixel = emb.grad.abs().sum(1)
        assert per_pixel.sum() > 0
        # Ignored rows (label rows 0..7 -> embedding rows 0..1) were never sampled.
        assert torch.equal(per_pixel[:, :2], torch.zeros_like(per_pixel[:, :2]))


def test_module_matches_terms_on_its_own_samples():
    g = torch.Generator().manual_seed(5)
    vis = torch.randn(2, 8, 6, 8, generator=g)
    aux = torch.randn(2, 8, 6, 8, generator=g)
    labels = torch.randint(0, 4, (2, 6, 8), generator=g)
    module = SMMCLLoss(4, temperature=0.2, cm_temperature=0.05)
    got, _ = module(vis, aux, labels, generator=torch.Generator().manual_seed(9))
    v, a, y, valid = sample_embeddings(vis, aux, labels, 4, generator=torch.Generator().manual_seed(9))
    _assert_matches(got, _reference(v[valid], a[valid], y[valid], 0.2, 0.05))


def test_module_runs_in_float32_under_autocast():
    g = torch.Generator().manual_seed(1)
    vis = torch.randn(2, 8, 6, 8, generator=g).bfloat16().requires_grad_(True)
    aux = torch.randn(2, 8, 6, 8, generator=g).bfloat16().requires_grad_(True)
    labels = torch.randint(0, 3, (2, 6, 8), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = SMMCLLoss(3)(vis, aux, labels)
    assert all(t.dtype == torch.float32 for t in out.values())
    sum(out.values()).backward()
    assert vis.grad.dtype == torch.bfloat16 and torch.isfinite(vis.grad.float()).all()


def test_module_unknown_sampling_raises():
    with pytest.raises(ValueError, match="nope"):
        SMMCLLoss(4, sampling="nope")


def test_from_config():
    cfg = LossConfig(temperature=0.2, cm_temperature=0.3, sampling="independent", min_views=2, max_views=9, max_total=99)
    module = SMMCLLoss.from_config(cfg, num_classes=9, ignore_index=254)
    assert (module.num_classes, module.ignore_index) == (9, 254)
    assert (module.temperature, module.cm_temperature, module.sampling) == (0.2, 0.3, "independent")
    assert (module.min_views, module.max_views, module.max_total) == (2, 9, 99)
