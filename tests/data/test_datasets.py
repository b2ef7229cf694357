"""The paper's datasets in their release layouts: presets, label coding, subsets, `data check`, overfitting
under every evaluation protocol, `predict`, paper configs and `train --dry-run`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from smmcl.cli import main
from smmcl.config import load_config
from smmcl.data.check import check_dataset
from smmcl.data.dataset import RGBXDataset
from smmcl.engine.evaluate import score_dataset
from smmcl.engine.inference import InferenceProtocol
from smmcl.engine.trainer import Trainer
from smmcl.errors import DatasetError
from smmcl.outputs import MANIFEST_NAME

from support import ROOT
from support.release_layouts import SIZE, make_generic, make_llrgbd, make_mfnet, make_nyudv2

MAKERS = {"llrgbd": make_llrgbd, "mfnet": make_mfnet, "nyudv2": make_nyudv2, "generic": make_generic}
TINY_MODEL = [
    "model.backbone.name=mscan", "model.backbone.preset=T", "model.backbone.embed_dims=[8,16,32,64]",
    "model.backbone.depths=[1,1,1,1]", "model.backbone.drop_path_rate=0.0", "model.decoder.name=mlp",
    "model.decoder.channels=32", "model.projector.dim=16",
]


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("releases")
    for kind, make in MAKERS.items():
        make(root / kind)
    make_mfnet(root / "mfnet-split", packed=False)
    return root


def config_for(kind: str, root: Path, *extra: str):
    ov = [f"data.preset={kind}", f"data.root={root}", "data.num_workers=0"]
    if kind == "generic":
        ov += ["model.num_classes=5", "data.aux_max=10000"]
    return load_config(None, [*ov, *extra])


# --- loading each release --------------------------------------------------------------------------

def test_llrgbd_split_folders_shapes_and_void(releases):
    cfg = config_for("llrgbd", releases / "llrgbd")
    assert cfg.model.num_classes == 14 and cfg.eval.exclude_classes == [0]
    train, test = RGBXDataset(cfg.data, "train", 14), RGBXDataset(cfg.data, "test", 14)
    assert len(train) == 6 and len(test) == 4
    s = train[0]
    assert s["rgb"].shape == s["aux"].shape == (3, *SIZE) and s["rgb"].dtype == torch.float32
    assert s["label"].shape == SIZE and s["label"].dtype == torch.int64
    raw = np.array(Image.open(releases / "llrgbd" / "train" / "label" / "0000.png"))
    assert torch.equal(s["label"], torch.from_numpy(raw.astype(np.int64)))
    # Without a list file, a split folder gives all of its images.
    lst = releases / "llrgbd" / "test" / "test.txt"
    saved = lst.read_text()
    lst.unlink()
    try:
        assert RGBXDataset(cfg.data, "test", 14).names == ["0000", "0001", "0002", "0003"]
    finally:
        lst.write_text(saved)


@pytest.mark.parametrize("kind", ["mfnet", "mfnet-split"])
def test_mfnet_packed_and_split_give_the_same_samples(releases, kind):
    cfg = config_for(kind, releases / kind)
    ds = RGBXDataset(cfg.data, "test", 9)
    rgb, aux, label = ds.load_raw(0)
    assert rgb.shape == (*SIZE, 3) and aux.shape == SIZE and aux.dtype == np.uint8
    packed = RGBXDataset(config_for("mfnet", releases / "mfnet").data, "test", 9).load_raw(0)
    assert np.array_equal(aux, packed[1]) and np.array_equal(rgb, packed[0]) and np.array_equal(label, packed[2])


def test_mfnet_day_night_subsets(releases):
    cfg = config_for("mfnet", releases / "mfnet")
    night = RGBXDataset(cfg.data, "test", 9, subset="night")
    assert night.names == ["00005N", "00006N", "00007N", "00008N"]
    assert RGBXDataset(cfg.data, "test", 9, subset="day").names == ["00001D", "00002D", "00003D", "00004D"]
    # The split preparation ships no day/night lists: the name suffix decides.
    split = config_for("mfnet-split", releases / "mfnet-split")
    assert RGBXDataset(split.data, "test", 9, subset="night").names == night.names
    with pytest.raises(DatasetError, match="unknown subset 'dusk'"):
        RGBXDataset(cfg.data, "test", 9, subset="dusk")


def test_nyudv2_label_shift_and_path_lists(releases):
    cfg = config_for("nyudv2", releases / "nyudv2")
    assert cfg.model.num_classes == 40 and cfg.data.label_shift == 1
    ds = RGBXDataset(cfg.data, "train", 40)
    assert ds.names == ["1", "2", "3", "4", "5", "6"]
    stored = np.array(Image.open(releases / "nyudv2" / "Label" / "1.png"))
    label = ds[0]["label"].numpy()
    assert (label[stored == 0] == 255).all() and (stored == 0).any()
    assert np.array_equal(label[stored > 0], stored[stored > 0].astype(np.int64) - 1)
    assert 39 in set(np.unique(np.concatenate([ds[i]["label"].numpy().ravel() for i in range(len(ds))])))
    assert ds[0]["aux"].shape == (3, *SIZE)  # HHA is three channels


# --- data check --------------------------------------------------------------------------------------

def test_data_check_clean_release_passes(releases, capsys):
    assert main(["data", "check", str(releases / "mfnet"), "--preset", "mfnet"]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out and "test/night" in out and "val" in out


def test_data_check_reports_every_planted_problem(releases, tmp_path, capsys):
    root = tmp_path / "nyu"
    shutil.copytree(releases / "nyudv2", root)
    (root / "HHA" / "2.jpg").unlink()                                                  # missing partner
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "Label" / "3.png")        # size mismatch
    Image.fromarray(np.full(SIZE, 50, np.uint8)).save(root / "Label" / "4.png")         # 50 - 1 > 39
    (root / "RGB" / "5.jpg").write_bytes(b"not an image")                                # unreadable
    with (root / "train.txt").open("a") as f:
        f.write("RGB/1.jpg Label/1.png\n")                                                # duplicate
    assert main(["data", "check", str(root), "--preset", "nyudv2"]) == 1
    out = capsys.readouterr().out
    assert f"{root / 'HHA' / '2.jpg'}: missing aux file" in out
    assert f"{root / 'Label' / '3.png'}: 10x10 but" in out
    assert f"{root / 'Label' / '4.png'}: has value 49 after subtracting label_shift=1" in out
    assert f"unreadable image {root / 'RGB' / '5.jpg'}" in out
    assert "'1' listed 2 times" in out
    report = check_dataset(load_config(None, ["data.preset=nyudv2", f"data.root={root}"]).data, 40, progress=False)
    assert not report.ok and report.histogram[-1] > 0  # the unlabeled band is counted as ignore


# --- overfitting, every evaluation protocol ----------------------------------------------------------

PROTOCOLS = {
    "whole": None,
    "slide": InferenceProtocol("slide", (48, 64), 2 / 3, (1.0,), False),
    "multi-scale+flip": InferenceProtocol("whole", (48, 64), 2 / 3, (0.75, 1.0, 1.25), True),
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_tiny_model_overfits_each_release_under_every_protocol(releases, tmp_path, kind):
    cfg = config_for(kind, releases / kind, *TINY_MODEL, "loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0",
                     f"data.crop_size=[{SIZE[0]},{SIZE[1]}]", "data.scales=[1.0]", "data.cache=true",
                     "train.max_iters=120", "train.batch_size=2", "train.lr=0.01", "train.warmup_epochs=0.5",
                     "train.device=cpu", "train.progress=false", f"train.out_dir={tmp_path}",
                     # One checkpoint, at the end: the default, one per epoch (30 here), took half the time.
                     "train.checkpoint_every=120", "train.tensorboard=false")
    trainer = Trainer(cfg)
    trainer.run()
    dataset = RGBXDataset(cfg.data, "train", cfg.model.num_classes)
    for name, protocol in PROTOCOLS.items():
        scores = score_dataset(trainer.model, dataset, cfg.model.num_classes, exclude=cfg.eval.exclude_classes,
                          progress=False, protocol=protocol)
        assert scores["miou"] > 0.9, (kind, name, scores["miou"])
    again = score_dataset(trainer.model, dataset, cfg.model.num_classes, progress=False, protocol=PROTOCOLS["slide"])
    first = score_dataset(trainer.model, dataset, cfg.model.num_classes, progress=False, protocol=PROTOCOLS["slide"])
    assert again["confusion"] == first["confusion"]


# --- prediction ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mfnet_weights(releases, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mfnet_run")
    cfg = config_for("mfnet", releases / "mfnet", *TINY_MODEL, "train.max_iters=1", "train.batch_size=2",
                     f"data.crop_size=[{SIZE[0]},{SIZE[1]}]", "train.device=cpu", "train.progress=false",
                     f"train.out_dir={out}")
    Trainer(cfg).run()
    return out / "model.safetensors"


def test_predict_folders_files_lists_and_packed(releases, mfnet_weights, tmp_path):
    split = releases / "mfnet-split"
    out = tmp_path / "folders"
    assert main(["predict", "--checkpoint", str(mfnet_weights), "--rgb", str(split / "RGB"),
                 "--aux", str(split / "Thermal"), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir() if p.name != MANIFEST_NAME)
    assert len(names) == 16 and "00001D.png" in names and "00001D_overlay.png" in names
    label = Image.open(out / "00001D.png")
    assert label.mode == "P" and label.size == (SIZE[1], SIZE[0])
    assert np.array(label).max() < 9
    assert Image.open(out / "00001D_overlay.png").mode == "RGB"
    # Packed 4-channel images need no --aux; one file; a list of names.
    assert main(["predict", "--checkpoint", str(mfnet_weights), "--rgb", str(releases / "mfnet" / "images" / "00005N.png"),
                 "--out", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "00005N.png").is_file()
    names_list = tmp_path / "names.txt"
    names_list.write_text("00003D\n00004D\n")
    assert main(["predict", "--checkpoint", str(mfnet_weights), "--rgb", str(split / "RGB"), "--aux", str(split / "Thermal"),
                 "--list", str(names_list), "--out", str(tmp_path / "listed")]) == 0
    assert sorted(p.name for p in (tmp_path / "listed").iterdir()) == [
        MANIFEST_NAME, "00003D.png", "00003D_overlay.png", "00004D.png", "00004D_overlay.png"]
    # Same prediction from Python on numpy arrays.
    from smmcl.deploy.predictor import Predictor

    rgb = np.array(Image.open(split / "RGB" / "00001D.png"))
    thermal = np.array(Image.open(split / "Thermal" / "00001D.png"))
    assert np.array_equal(Predictor(mfnet_weights)(rgb, thermal), np.array(Image.open(out / "00001D.png")))


def test_predict_unpaired_inputs_are_named(releases, mfnet_weights, tmp_path, capsys):
    rgb, aux = tmp_path / "rgb", tmp_path / "aux"
    shutil.copytree(releases / "mfnet-split" / "RGB", rgb)
    shutil.copytree(releases / "mfnet-split" / "Thermal", aux)
    (aux / "00003D.png").unlink()
    assert main(["predict", "--checkpoint", str(mfnet_weights), "--rgb", str(rgb), "--aux", str(aux),
                 "--out", str(tmp_path / "o")]) == 2
    assert "00003D (only in" in capsys.readouterr().err
    # Depth saved as arrays (trial C273): the file is there under another suffix, which is said, not "only in".
    np.save(aux / "00003D.npy", np.zeros((4, 4), np.uint16))
    assert main(["predict", "--checkpoint", str(mfnet_weights), "--rgb", str(rgb), "--aux", str(aux),
                 "--out", str(tmp_path / "o")]) == 2
    assert f"({aux / '00003D.npy'} is there, but .npy files are not images smmcl reads" in capsys.readouterr().err


# --- paper configurations ----------------------------------------------------------------------------

PAPER = ROOT / "configs" / "paper"


def test_paper_configs_one_per_table_row():
    files = sorted(PAPER.glob("*.yaml"))
    assert len(files) == 18
    for f in files:
        cfg = load_config(f)
        dataset, backbone, variant = f.stem.split("_")
        assert cfg.data.preset == dataset and cfg.train.batch_size == 16 and cfg.train.lr == 6e-5
        assert cfg.data.crop_size == [480, 640] and cfg.loss.temperature == 0.1
        assert cfg.train.epochs == {"llrgbd": 500, "mfnet": 300, "nyudv2": 600}[dataset]
        weight = 0.0 if variant == "base" else {"llrgbd": 0.2, "mfnet": 0.05, "nyudv2": 0.05}[dataset]
        assert cfg.loss.cm_weight == cfg.loss.vis_weight == cfg.loss.aux_weight == weight
        assert cfg.model.backbone.name == {"resnet101": "resnet", "mitb2": "mit", "mscanb": "mscan"}[backbone]


def test_dry_run_prints_the_plan_and_writes_nothing(releases, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", str(PAPER / "mfnet_mscanb_smmcl.yaml"), f"data.root={releases / 'mfnet'}", "model.pretrained=null",
            *TINY_MODEL, "data.crop_size=[64,96]", "train.batch_size=2", "data.num_workers=0", "train.device=cpu",
            f"train.out_dir={out}", "--dry-run"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "1200 iterations = 300 epochs x 4/epoch" in text and "warm-up 40" in text
    assert "it 0:" in text and "parameters" in text and "one step" in text and "cm=" in text
    assert not out.exists()


def test_eval_cli_subset_and_protocol(releases, mfnet_weights, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["eval", str(PAPER / "mfnet_mscanb_smmcl.yaml"), f"data.root={releases / 'mfnet'}", "model.pretrained=null",
                 "eval.crop_size=[48,64]", "--checkpoint", str(mfnet_weights), "--mode", "slide", "--flip",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "test/night: 4 images" in text and "fwIoU" in text
    scores = json.loads(out.read_text())
    assert scores["subset"] == "night" and scores["num_images"] == 4
    assert scores["protocol"]["mode"] == "slide" and scores["protocol"]["flip"] is True
    assert 0.0 <= scores["fwiou"] <= 1.0


def test_hha_cli_writes_three_channel_images(tmp_path, capsys):
    depth = tmp_path / "depth"
    depth.mkdir()
    d = np.full((60, 80), 2500, np.uint16)
    d[40:] = 1500
    Image.fromarray(d).save(depth / "frame.png")
    assert main(["data", "hha", "--depth", str(depth), "--intrinsics", "65,65,40,30", "--out", str(tmp_path / "hha")]) == 0
    hha = np.array(Image.open(tmp_path / "hha" / "frame.png"))
    assert hha.shape == (60, 80, 3) and hha.dtype == np.uint8
    assert main(["data", "hha", "--depth", str(depth), "--intrinsics", "65,65", "--out", str(tmp_path / "x")]) == 2
    assert "fx,fy,cx,cy" in capsys.readouterr().err
