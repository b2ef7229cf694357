"""The engine as parts (docs/layout.md): `build_parts` makes a run's parts from a config,
`TrainingState` saves and restores itself, and `Trainer` only loops over them."""

from __future__ import annotations

import torch

from smmcl.config import load_config
from smmcl.engine.builder import build_parts
from smmcl.engine.step import train_step
from smmcl.engine.trainer import Trainer

from support import TINY_CONFIG


def _step(state, batch):
    train_step(state.model, state.objective, state.optimizer, batch["rgb"], batch["aux"], batch["label"], lr=1e-3,
               generator=state.contrast_generator, ema=state.ema)
    state.step += 1


def test_the_same_config_builds_the_same_parts(tiny_overrides):
    cfg = load_config(TINY_CONFIG, tiny_overrides)
    a, b = build_parts(cfg), build_parts(cfg)
    assert a.plan == b.plan and len(a.train_set) == len(b.train_set) and a.local_batch_size == cfg.train.batch_size
    a, b = a.state, b.state
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    assert torch.equal(a.contrast_generator.get_state(), b.contrast_generator.get_state())
    assert a.step == 0 and a.ema is None and a.scaler is None and a.objective.needs_embeddings


def test_a_training_state_saves_and_restores_itself(tiny_overrides, tmp_path):
    """Two steps, a save, two more steps; a fresh state restored from the save takes the same two steps to the
    same weights, average, optimizer moments and generator, bit for bit."""
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.ema.enabled=true", "train.ema.decay=0.5"])
    parts = build_parts(cfg)
    # Fixed batches: the samples a step sees are the sampler's business (tests/test_training.py), not the state's.
    batches = [torch.utils.data.default_collate([parts.train_set[4 * k + i] for i in range(4)]) for k in range(4)]
    state = parts.state
    for k in range(2):
        _step(state, batches[k])
    state.save(tmp_path / "ckpt.pt", cfg, epoch=0)
    for k in range(2, 4):
        _step(state, batches[k])

    restored = build_parts(cfg).state
    restored.restore(tmp_path / "ckpt.pt", cfg)
    assert restored.step == 2 and restored.config_changes == {}
    for k in range(2, 4):
        _step(restored, batches[k])
    assert restored.step == state.step == 4
    for mine, theirs in ((state.model, restored.model), (state.ema, restored.ema)):
        assert all(torch.equal(x, y) for x, y in zip(mine.state_dict().values(), theirs.state_dict().values()))
    moments = [[s["exp_avg"] for s in t.optimizer.state.values()] for t in (state, restored)]
    assert all(torch.equal(x, y) for x, y in zip(*moments))
    assert torch.equal(state.contrast_generator.get_state(), restored.contrast_generator.get_state())


def test_deterministic_kernels_follow_the_config(tiny_overrides):
    """`train.deterministic` switches PyTorch's deterministic kernels for the process (on CUDA it is what makes a
    resumed run equal an uninterrupted one bit for bit, benchmarks/results_accumulate_h200.json); the next run's
    config switches them back."""
    try:
        Trainer(load_config(TINY_CONFIG, [*tiny_overrides, "train.deterministic=true"]))
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        Trainer(load_config(TINY_CONFIG, tiny_overrides))
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
