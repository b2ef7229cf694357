import numpy as np
import pytest
import torch

from smmcl.config import load_config
from smmcl.data.dataset import RGBXDataset
from smmcl.engine.checkpoint import list_checkpoints
from smmcl.engine.evaluate import score_dataset
from smmcl.engine.metrics import confusion_matrix, segmentation_scores
from smmcl.engine.trainer import Trainer

from support import TINY_CONFIG, build_tiny_model, read_log


def test_short_training_lowers_loss_and_beats_chance(tiny_overrides):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.max_iters=80", "train.log_every=1"])
    trainer = Trainer(cfg)
    trainer.run()
    log = read_log(trainer.out_dir)
    assert len(log) == 80 and {"ce", "cm", "vis", "aux", "lr"} <= set(log[0])
    first = np.mean([r["ce"] for r in log[:8]])
    last = np.mean([r["ce"] for r in log[-8:]])
    assert last < 0.8 * first
    test_set = RGBXDataset(cfg.data, "test", cfg.model.num_classes)
    scores = score_dataset(trainer.model, test_set, 14, exclude=[0], progress=False)
    # chance: the same confusion-matrix scoring of uniformly random predictions
    g = torch.Generator().manual_seed(0)
    conf = sum(
        confusion_matrix(torch.randint(0, 14, s["label"].shape, generator=g), s["label"], 14)
        for s in (test_set[i] for i in range(len(test_set)))
    )
    chance = segmentation_scores(conf, exclude=[0])
    assert scores["miou"] > 2 * chance["miou"]
    assert scores["pixel_acc"] > 0.4


@pytest.mark.parametrize("contrast", ["smmcl", "region"])
def test_resume_after_interruption_matches_uninterrupted_run(indoor_data, tmp_path, contrast):
    """Weights, optimizer, the contrast's own sampling generator and (region contrast) its memory."""
    common = [f"data.root={indoor_data}", "train.max_iters=6", "train.checkpoint_every=2", "train.keep_checkpoints=5",
              f"loss.contrast={contrast}", "loss.region_memory=8", "train.tensorboard=false"]
    full = Trainer(load_config(TINY_CONFIG, [*common, f"train.out_dir={tmp_path / 'a'}"]))
    full.run()
    cfg_b = load_config(TINY_CONFIG, [*common, f"train.out_dir={tmp_path / 'b'}"])
    killed = Trainer(cfg_b)
    killed.run(stop_at=3)  # dies after iteration 3: the newest checkpoint is at 2
    assert [s for s, _ in list_checkpoints(tmp_path / "b" / "checkpoints")] == [2]
    resumed = Trainer(cfg_b, resume="auto")
    assert resumed.step == 2
    resumed.run()
    assert resumed.step == full.step == 6
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    oa, ob = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    for k in oa:
        assert torch.equal(oa[k]["exp_avg"], ob[k]["exp_avg"])
    for k, v in full.objective.state_dict().items():
        assert torch.equal(v, resumed.objective.state_dict()[k]), k
    assert torch.equal(full.contrast_generator.get_state(), resumed.contrast_generator.get_state())


def test_base_run_has_no_contrastive_terms(tiny_overrides):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.max_iters=2", "train.log_every=1",
                                    "loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0"])
    trainer = Trainer(cfg)
    assert trainer.objective.contrast is None
    trainer.run()
    assert set(read_log(trainer.out_dir)[0]) == {"step", "loss", "ce", "lr", "images_per_s"}


def test_same_seed_same_weights(tiny_overrides, tmp_path):
    runs = []
    for name in ("x", "y"):
        cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.max_iters=3", f"train.out_dir={tmp_path / name}"])
        t = Trainer(cfg)
        t.run()
        runs.append(t.model.state_dict())
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k


def test_run_writes_weights_that_rebuild_the_model(tiny_overrides):
    from smmcl.weights import load_pretrained, read_pretrained_config

    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.max_iters=2"])
    trainer = Trainer(cfg)
    trainer.run()
    path = trainer.out_dir / "model.safetensors"
    assert read_pretrained_config(path) == cfg
    model = load_pretrained(path)
    rgb, aux = torch.randn(1, 3, 64, 80), torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        assert torch.equal(model(rgb, aux), trainer.model.eval()(rgb, aux))


def test_pretrained_weights_load_at_start_but_not_on_resume(tiny_overrides, tmp_path):
    from smmcl.weights import save_pretrained

    cfg = load_config(TINY_CONFIG, tiny_overrides)
    source = build_tiny_model(cfg, seed=123)
    weights = save_pretrained(source, cfg, tmp_path / "start.safetensors")
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, f"model.pretrained={weights}", "train.max_iters=2",
                                    "train.checkpoint_every=1"])
    trainer = Trainer(cfg)
    assert trainer.pretrained_report is not None and trainer.pretrained_report.missing_keys == []
    for k, v in source.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[k], v), k
    trainer.run(stop_at=1)
    resumed = Trainer(cfg, resume="auto")
    assert resumed.pretrained_report is None and resumed.step == 1


def test_resumed_run_reproduces_losses_step_for_step(indoor_data, tmp_path):
    common = [f"data.root={indoor_data}", "train.max_iters=6", "train.checkpoint_every=2", "train.log_every=1",
              "train.keep_checkpoints=5", "train.tensorboard=false"]
    full = Trainer(load_config(TINY_CONFIG, [*common, f"train.out_dir={tmp_path / 'a'}"]))
    full.run()
    cfg_b = load_config(TINY_CONFIG, [*common, f"train.out_dir={tmp_path / 'b'}"])
    Trainer(cfg_b).run(stop_at=3)  # killed after step 3; the newest checkpoint is step 2
    resumed = Trainer(cfg_b, resume="auto")
    resumed.run()
    a, b = read_log(full.out_dir), read_log(resumed.out_dir)
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]  # the killed run's step 3 was dropped on resume
    for ra, rb in zip(a, b):
        for key in ("loss", "ce", "cm", "vis", "aux", "lr"):
            assert ra[key] == rb[key], (ra["step"], key)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_and_channels_last_train(tiny_overrides, precision):
    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.max_iters=3", "train.log_every=1",
                                    f"train.precision={precision}", "train.channels_last=true", "train.tensorboard=false"])
    trainer = Trainer(cfg)
    assert (trainer.scaler is not None) == (precision == "fp16")
    trainer.run()
    log = read_log(trainer.out_dir)
    assert len(log) == 3 and all(np.isfinite(r["loss"]) and np.isfinite(r["cm"]) for r in log)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_channels_last_matches_contiguous_fp32(tiny_overrides, tmp_path):
    losses = []
    for cl in ("false", "true"):
        cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.max_iters=2", "train.log_every=1", "train.tensorboard=false",
                                        f"train.channels_last={cl}", f"train.out_dir={tmp_path / cl}"])
        trainer = Trainer(cfg)
        trainer.run()
        losses.append([r["loss"] for r in read_log(trainer.out_dir)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_tensorboard_and_validation(tiny_overrides):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(TINY_CONFIG, [*tiny_overrides, "train.max_iters=4", "train.log_every=2", "train.val_every=2",
                                    "train.val_split=test"])
    trainer = Trainer(cfg)
    last = trainer.run()
    assert 0.0 <= last["val_miou"] <= 1.0
    rows = read_log(trainer.out_dir)
    assert [r["step"] for r in rows if "val_miou" in r] == [2, 4]
    events = EventAccumulator(str(trainer.out_dir / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/ce", "train/cm", "train/vis", "train/aux", "train/lr", "train/images_per_s", "val/miou"} <= tags
    assert [e.step for e in events.Scalars("val/miou")] == [2, 4]
