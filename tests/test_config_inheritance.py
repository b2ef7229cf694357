"""Configs that inherit (`base:`), the paper configs written over shared bases, typed choices, and the config
being the bottom layer (docs/configuration.md)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import get_args, get_type_hints

import pytest
import yaml

from smmcl.config import (
    BackboneConfig,
    BackbonePreset,
    DatasetPreset,
    load_config,
    load_model_config,
    to_dict,
    to_yaml,
)
from smmcl.config.presets import BACKBONE_PRESETS, DATASET_PRESETS
from smmcl.errors import ConfigError

from support import ROOT, TINY_CONFIG

PAPER = ROOT / "configs" / "paper"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- base: ----------------------------------------------------------------------------------------


def test_a_chain_of_bases_merges_mappings_and_replaces_lists(tmp_path, monkeypatch):
    _write(tmp_path / "root.yaml", "model:\n  backbone: {name: mit, preset: B2}\n  num_classes: 9\n"
                                   "data:\n  scales: [0.5, 1.0, 2.0]\n  subsets: {day: D}\ntrain: {lr: 0.5, epochs: 7}\n")
    _write(tmp_path / "mid" / "deep" / "mid.yaml", "base: ../../root.yaml\nmodel:\n  backbone: {preset: B0}\n"
                                                   "data:\n  scales: [1.0]\n  subsets: {night: N}\ntrain: {lr: 0.25}\n")
    leaf = _write(tmp_path / "leaf.yaml", "base: mid/deep/mid.yaml\ntrain: {lr: 0.125}\n")
    # Bases are found from the file that names them, wherever the command runs.
    monkeypatch.chdir(tmp_path / "mid")
    cfg = load_config(leaf, ["train.epochs=3"])
    assert cfg.model.backbone.name == "mit" and cfg.model.backbone.preset == "B0"  # mappings merge
    assert cfg.model.num_classes == 9
    assert cfg.data.scales == [1.0]                                              # lists replace
    assert cfg.data.subsets == {"day": "D", "night": "N"}
    assert cfg.train.lr == 0.125 and cfg.train.epochs == 3                       # leaf, then overrides
    assert "base" not in to_dict(cfg) and "base:" not in to_yaml(cfg)


def test_a_missing_base_names_the_file_and_the_path(tmp_path):
    leaf = _write(tmp_path / "leaf.yaml", "base: bases/nope.yaml\ntrain: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match=r"leaf\.yaml: base config 'bases/nope\.yaml' not found \(looked for .*bases/nope\.yaml\)"):
        load_config(leaf)


def test_a_cycle_of_bases_names_every_file(tmp_path):
    _write(tmp_path / "a.yaml", "base: sub/b.yaml\ntrain: {lr: 0.1}\n")
    _write(tmp_path / "sub" / "b.yaml", "base: ../a.yaml\ntrain: {lr: 0.2}\n")
    with pytest.raises(ConfigError, match=r"config bases form a cycle: .*a\.yaml -> .*sub/b\.yaml -> .*a\.yaml"):
        load_config(tmp_path / "a.yaml")
    me = _write(tmp_path / "me.yaml", "base: me.yaml\ntrain: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match=r"cycle: .*me\.yaml -> .*me\.yaml"):
        load_config(me)


@pytest.mark.parametrize("value", ["[a.yaml, b.yaml]", "3", "''", "null"])
def test_base_is_one_path(tmp_path, value):
    leaf = _write(tmp_path / "leaf.yaml", f"base: {value}\ntrain: {{lr: 0.1}}\n")
    with pytest.raises(ConfigError, match=r"leaf\.yaml: key 'base': expected the path of one YAML config"):
        load_config(leaf)


def test_errors_inside_a_base_name_the_base(tmp_path):
    _write(tmp_path / "bases" / "b.yaml", "train: {lrr: 0.1}\n")
    leaf = _write(tmp_path / "leaf.yaml", "base: bases/b.yaml\n")
    with pytest.raises(ConfigError, match=r"bases/b\.yaml: key 'train\.lrr'"):
        load_config(leaf)
    with pytest.raises(ConfigError, match="named inside a config file, not as an override"):
        load_config(TINY_CONFIG, ["base=other.yaml"])


def test_a_dataset_preset_sits_under_every_file(tmp_path):
    _write(tmp_path / "b.yaml", "data: {preset: NYUDv2, rgb_dir: Colour}\n")
    leaf = _write(tmp_path / "leaf.yaml", "base: b.yaml\ndata: {aux_dir: Depth16}\n")
    cfg = load_config(leaf)
    assert cfg.data.preset == "nyudv2" and cfg.model.num_classes == 40 and cfg.data.label_shift == 1  # preset
    assert cfg.data.rgb_dir == "Colour" and cfg.data.aux_dir == "Depth16"                             # files above it


def test_a_mapping_names_its_base_from_the_current_folder(tmp_path, monkeypatch):
    _write(tmp_path / "b.yaml", "train: {lr: 0.5, epochs: 9}\n")
    monkeypatch.chdir(tmp_path)
    source = {"base": "b.yaml", "train": {"lr": 0.25}}
    cfg = load_config(source)
    assert cfg.train.lr == 0.25 and cfg.train.epochs == 9
    assert source == {"base": "b.yaml", "train": {"lr": 0.25}}  # the caller's mapping is left as it was


def test_model_config_of_a_file_follows_its_bases_and_preset():
    # A full config read for its model section alone gets its bases and its dataset's classes (NYUDv2: 40).
    model = load_model_config(PAPER / "nyudv2_mitb2_smmcl.yaml")
    assert model == load_config(PAPER / "nyudv2_mitb2_smmcl.yaml").model
    assert model.num_classes == 40 and model.backbone.name == "mit" and model.backbone.preset == "B2"
    assert load_model_config({"backbone": {"name": "resnet", "preset": 50}}).backbone.preset == "50"


def test_a_run_saves_the_resolved_config_without_base(indoor_data, tmp_path):
    from safetensors import safe_open

    from smmcl.cli import main
    from smmcl.weights.pretrained import read_pretrained_config

    base = _write(tmp_path / "bases" / "tiny.yaml", TINY_CONFIG.read_text())
    leaf = _write(tmp_path / "leaf.yaml", f"base: {base.relative_to(tmp_path)}\nname: inherited\ntrain: {{lr: 0.001}}\n")
    out = tmp_path / "run"
    overrides = [f"data.root={indoor_data}", f"train.out_dir={out}", "train.max_iters=1", "train.tensorboard=false"]
    assert main(["train", str(leaf), *overrides, "--quiet"]) == 0
    cfg = load_config(leaf, overrides)
    assert cfg.name == "inherited" and cfg.train.lr == 0.001 and cfg.model.decoder.ham_rank == 8
    saved = (out / "config.yaml").read_text()
    assert saved == to_yaml(cfg) and "base" not in yaml.safe_load(saved)   # every value, resolved
    assert load_config(out / "config.yaml") == cfg
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        embedded = json.loads(f.metadata()["config"])
    assert "base" not in embedded and embedded == to_dict(cfg)
    assert read_pretrained_config(out / "model.safetensors") == cfg


# --- the paper configs ----------------------------------------------------------------------------

# The paper's settings (docs/configuration.md, "Data layout"), written out here without any base: every paper config must
# resolve to exactly this, field for field.
SHARED = ["model.decoder.name=auto", "model.decoder.channels=512", "model.cross_modal.scale=0.5", "model.projector.dim=256",
          "data.crop_size=[480,640]", "data.scales=[0.5,0.75,1.0,1.25,1.5,1.75]", "data.hflip=true",
          "loss.temperature=0.1", "loss.cm_temperature=0.1", "train.batch_size=16", "train.lr=6.0e-5",
          "train.weight_decay=0.01", "train.warmup_epochs=10", "train.poly_power=0.9", "eval.split=test", "eval.mode=whole"]
DATASETS = {  # preset, root, epochs, SMMCL weight, extra
    "llrgbd": ("llrgbd", "data/LLRGBD", 500, 0.2, []),
    "mfnet": ("mfnet", "data/MFNet", 300, 0.05, ["eval.subset=night"]),
    "nyudv2": ("nyudv2", "data/NYUDepthv2", 600, 0.05, []),
}
BACKBONES = {  # name, preset, ImageNet weights
    "mscanb": ("mscan", "B", "pretrained/segnext/mscan_b.pth"),
    "mitb2": ("mit", "B2", "pretrained/segformer/mit_b2.pth"),
    "resnet101": ("resnet", "101", "pretrained/resnet101.pth"),
}
PAPER_FILES = [f"{d}_{b}_{v}" for d in DATASETS for b in BACKBONES for v in ("base", "smmcl")]


def test_the_paper_configs_are_the_18_rows_over_shared_bases():
    assert sorted(p.stem for p in PAPER.glob("*.yaml")) == sorted(PAPER_FILES)
    assert sorted(p.name for p in (PAPER / "bases").glob("*.yaml")) == ["llrgbd.yaml", "mfnet.yaml", "nyudv2.yaml", "paper.yaml"]
    for stem in PAPER_FILES:
        text = (PAPER / f"{stem}.yaml").read_text()
        assert f"base: bases/{stem.split('_')[0]}.yaml" in text and len(text.splitlines()) <= 10, stem


def test_the_documented_example_is_the_paper_config():
    docs = (ROOT / "docs" / "configuration.md").read_text()
    block = docs.split("# configs/paper/mfnet_mitb2_base.yaml (comments added here)\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == yaml.safe_load((PAPER / "mfnet_mitb2_base.yaml").read_text())


def test_the_readme_own_data_config_resolves(tmp_path):
    """The quick start's config over a paper config, as a user at the repository's root would save it."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("# my_rgbd.yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_rgbd.yaml").write_text(block.replace("base: configs/", f"base: {ROOT}/configs/"))
    cfg = load_config(tmp_path / "my_rgbd.yaml")
    assert (cfg.data.preset, cfg.model.num_classes, len(cfg.data.class_names), cfg.data.aux_max) == ("generic", 5, 5, 10000)
    assert cfg.model.backbone.preset == "B" and cfg.loss.cm_weight == 0.2 and cfg.eval.exclude_classes == []


@pytest.mark.parametrize("stem", PAPER_FILES)
def test_each_paper_config_resolves_to_the_papers_values(stem):
    dataset, backbone, variant = stem.split("_")
    preset, root, epochs, weight, extra = DATASETS[dataset]
    name, bb_preset, weights = BACKBONES[backbone]
    weight = 0.0 if variant == "base" else weight
    expected = load_config(None, [
        *SHARED, *extra, f"name={stem}", f"data.preset={preset}", f"data.root={root}", f"train.epochs={epochs}",
        f"model.backbone.name={name}", f"model.backbone.preset={bb_preset}", f"model.pretrained={weights}",
        f"loss.cm_weight={weight}", f"loss.vis_weight={weight}", f"loss.aux_weight={weight}",
        f"train.out_dir=runs/paper/{stem}"])
    cfg = load_config(PAPER / f"{stem}.yaml")
    assert cfg == expected
    assert to_yaml(cfg) == to_yaml(expected)
    assert cfg.model.num_classes == {"llrgbd": 14, "mfnet": 9, "nyudv2": 40}[dataset]


# --- typed choices --------------------------------------------------------------------------------


@pytest.mark.parametrize("override, valid", [
    ("model.backbone.name=vgg", "['mscan', 'mit', 'resnet']"),
    ("model.backbone.preset=XL", "['auto', 'T', 'S', 'B', 'L', 'B0', 'B1', 'B2', 'B3', 'B4', 'B5', '18', '34', '50', '101', '152']"),
    ("model.backbone.preset=B2", "expected null or one of auto, T, S, B, L (model.backbone.name=mscan)"),
    ("model.backbone.block=wide", "['basic', 'bottleneck']"),
    ("model.decoder.name=aspp", "['auto', 'lightham', 'mlp']"),
    ("model.norm=gn", "['bn', 'syncbn']"),
    ("data.preset=kitti", "['llrgbd', 'mfnet', 'mfnet-split', 'nyudv2', 'generic']"),
    ("data.layout=tiled", "['split', 'packed']"),
    ("data.aux_kind=lidar", "['depth', 'hha', 'thermal']"),
    ("loss.contrast=simclr", "['smmcl', 'cross_modal_pixel', 'region', 'region_released']"),
    ("loss.sampling=random", "['paired', 'independent']"),
    ("train.precision=fp8", "['fp32', 'bf16', 'fp16']"),
    ("train.device=gpu", "expected auto, cpu, mps, cuda or cuda:N"),
    ("eval.mode=tiles", "['whole', 'slide']"),
])
def test_a_choice_outside_its_list_is_refused_with_the_valid_ones(override, valid):
    with pytest.raises(ConfigError) as info:
        load_config(TINY_CONFIG, [override])
    message = str(info.value)
    assert override.split("=")[0] in message and valid in message, message


def test_a_choice_in_a_file_is_refused_naming_the_file(tmp_path):
    path = _write(tmp_path / "bad.yaml", "base: " + str(TINY_CONFIG) + "\ndata: {preset: kitti}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: key 'data\.preset': Invalid value 'kitti', expected one of \['llrgbd'"):
        load_config(path)


def test_choice_spellings_that_mean_a_valid_one(tmp_path):
    path = _write(tmp_path / "c.yaml", "model:\n  backbone: {name: resnet, preset: 101}\ndata: {preset: MFNet}\n")
    cfg = load_config(path)
    assert cfg.model.backbone.preset == "101" and cfg.data.preset == "mfnet" and cfg.model.num_classes == 9
    assert load_config(None, ["model.backbone.name=resnet", "model.backbone.preset=50", "data.preset=NYUDv2"]).data.preset == "nyudv2"


def test_the_typed_choices_are_the_tables():
    from smmcl.data.synth import KINDS
    from smmcl.models.factory import BACKBONES as FACTORY
    from smmcl.study.spec import SynthSpec

    assert set(get_args(BackbonePreset)) == {"auto", *(p for names in BACKBONE_PRESETS.values() for p in names)}
    assert set(get_args(get_type_hints(BackboneConfig)["name"])) == set(BACKBONE_PRESETS) == set(FACTORY)
    assert {name: sorted(entry.presets) for name, entry in FACTORY.items()} == {
        name: sorted(names) for name, names in BACKBONE_PRESETS.items()}
    assert list(get_args(DatasetPreset)) == list(DATASET_PRESETS)
    assert list(get_args(get_type_hints(SynthSpec)["kind"])) == list(KINDS)


def test_a_study_refuses_an_unknown_synthetic_kind(tmp_path):
    from smmcl.study.spec import read_study

    study = _write(tmp_path / "s.yaml", f"base: {TINY_CONFIG}\nreference: a\nvariants: {{a: [], b: []}}\n"
                                        "synth: {kind: outdoor}\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: key 'synth\.kind'.*'indoor-rgbd', 'indoor-rgbd-lit', 'night-rgbt'"):
        read_study(study)


# --- layering -------------------------------------------------------------------------------------

CONFIG_LAYER = ("config/__init__.py", "config/schema.py", "config/loading.py", "config/rules.py", "config/presets.py")


def test_the_config_layer_imports_nothing_above_it():
    src = ROOT / "src" / "smmcl"
    for name in CONFIG_LAYER:
        for node in ast.walk(ast.parse((src / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("smmcl"):
                assert node.module == "smmcl.errors" or node.module.startswith("smmcl.config."), (name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("smmcl") for a in node.names), name
    # And at run time: loading a config with a dataset preset pulls in no data, model or engine module.
    code = ("import sys; from smmcl.config import load_config; load_config(sys.argv[1]); "
            "print([m for m in sys.modules if m.startswith(('smmcl.data', 'smmcl.models', 'smmcl.engine'))])")
    out = subprocess.run([sys.executable, "-c", code, str(PAPER / "mfnet_mscanb_smmcl.yaml")],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
