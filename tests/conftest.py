"""Fixtures only; what the tests share besides them is in tests/support (`from support import ...`)."""

import json
from pathlib import Path

import pytest

from support import TINY_CONFIG, build_tiny_model


@pytest.fixture(scope="session")
def indoor_data(tmp_path_factory) -> Path:
    """A small built-in synthetic low-light RGB-D set shared by the training tests."""
    from smmcl.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth") / "indoor"
    generate_dataset("indoor-rgbd", root, num=48, size=(64, 80), seed=3)
    assert json.loads((root / "meta.json").read_text())["kind"] == "indoor-rgbd"
    return root


@pytest.fixture()
def tiny_overrides(indoor_data, tmp_path) -> list[str]:
    return [f"data.root={indoor_data}", f"train.out_dir={tmp_path / 'run'}"]


@pytest.fixture()
def tiny_model():
    """A fresh tiny model (tests/support/tiny.yaml as it is), its weights drawn from seed 0, in eval mode."""
    return build_tiny_model(seed=0).eval()


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tests use small tensors: threads gain nothing, and OpenMP spin-waits stall badly on a busy 2-core box."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _still_one_torch_thread(_one_torch_thread):
    """Pinned again around every test: code under test may change the count for the whole process (an
    in-process `run_study` gives its runs every core) and would slow every test after it many times over."""
    import torch

    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_runs(indoor_data, tmp_path_factory) -> dict:
    """Two finished tiny runs on `indoor_data`, Base (contrastive weights 0) and SMMCL, 4 iterations each,
    validated every 2: run folders as `smmcl train` writes them, for the report tests. Their seeds differ:
    after 4 steps from one seed both would still predict alike, and a comparison would show no difference."""
    from smmcl.config import load_config
    from smmcl.engine.trainer import Trainer

    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for name, extra in (("base", ["loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0"]), ("smmcl", ["train.seed=1"])):
        cfg = load_config(TINY_CONFIG, [f"data.root={indoor_data}", f"train.out_dir={root / name}", "train.max_iters=4",
                                        "train.log_every=1", "train.val_every=2", "train.val_split=test",
                                        "train.tensorboard=false", "data.crop_size=[48,64]", *extra])
        Trainer(cfg).run()
        runs[name] = root / name
    return runs
