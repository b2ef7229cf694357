import pytest
import torch
from torch import nn

from smmcl.config import TrainConfig
from smmcl.engine.checkpoint import atomic_save, latest_checkpoint, list_checkpoints, prune_checkpoints
from smmcl.engine.optim import build_optimizer, check_param_groups, lr_at, param_groups


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.layer_scale = nn.Parameter(torch.full((4,), 0.01))  # a bare parameter, as in MSCAN
        self.frozen = nn.Parameter(torch.ones(2), requires_grad=False)


def test_groups_cover_every_trainable_parameter_once():
    model = Toy()
    groups = param_groups(model, 0.01)
    decay = {id(p) for p in groups[0]["params"]}
    no_decay = {id(p) for p in groups[1]["params"]}
    assert decay == {id(model.conv.weight)}
    assert no_decay == {id(model.conv.bias), id(model.bn.weight), id(model.bn.bias), id(model.layer_scale)}
    assert groups[1]["weight_decay"] == 0.0 and groups[0]["weight_decay"] == 0.01


def test_check_catches_missing_and_duplicated_parameters():
    model = Toy()
    groups = param_groups(model, 0.01)
    groups[1]["params"] = [p for p in groups[1]["params"] if p is not model.layer_scale]
    with pytest.raises(RuntimeError, match="layer_scale"):
        check_param_groups(model, groups)
    groups = param_groups(model, 0.01)
    groups[0]["params"].append(model.bn.weight)
    with pytest.raises(RuntimeError, match="bn.weight"):
        check_param_groups(model, groups)


def test_optimizer_updates_layer_scale():
    model = Toy()
    opt = build_optimizer(model, TrainConfig(lr=0.1))
    before = model.layer_scale.detach().clone()
    model.layer_scale.grad = torch.ones(4)
    opt.step()
    assert not torch.equal(before, model.layer_scale.detach())


def test_schedule_warmup_then_poly():
    total, warm, lr = 100, 10, 1.0
    lrs = [lr_at(s, lr, total, warm, 0.9) for s in range(total)]
    assert lrs[0] == pytest.approx(0.1)  # the first step is not at the full rate
    assert lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx((1 - 10 / 100) ** 0.9)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx((1 / 100) ** 0.9)


def test_atomic_save_and_checkpoint_listing(tmp_path):
    for step in (5, 10, 15):
        atomic_save({"model": {}, "step": step}, tmp_path / f"ckpt_{step:08d}.pt")
    (tmp_path / ".ckpt_00000020.pt.abc.tmp").write_bytes(b"partial write of a killed run")
    assert [s for s, _ in list_checkpoints(tmp_path)] == [5, 10, 15]
    assert latest_checkpoint(tmp_path).name == "ckpt_00000015.pt"
    prune_checkpoints(tmp_path, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10, 15]


def test_atomic_save_leaves_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "ckpt_00000001.pt"
    atomic_save({"model": {"a": torch.ones(1)}}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"model": Unpicklable()}, path)
    assert torch.load(path, weights_only=True)["model"]["a"].item() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("backbone", [{"name": "mit", "preset": "B0"}, {"name": "resnet", "preset": "18"}])
def test_every_backbone_family_is_fully_optimised(backbone):
    from smmcl.models import build_model

    model = build_model({"num_classes": 4, "backbone": backbone, "decoder": {"channels": 32}, "projector": {"dim": 8}})
    optimizer = build_optimizer(model, TrainConfig())
    check_param_groups(model, optimizer.param_groups)
    decay_ids = {id(p) for p in optimizer.param_groups[0]["params"]}
    # Attention and conv weights decay; LayerNorm / BatchNorm parameters and biases do not.
    for name, p in model.named_parameters():
        assert (id(p) in decay_ids) == (p.ndim > 1), name
