"""A model scored on another dataset than its own: one without a meta.json says nothing of its classes, so the
evaluation warns that its label ids are read as the model's classes (trial case: a 14-class model scoring a user's
4-class folder as void, bed, books, ceiling); one with a meta.json is checked against the model's classes."""

from __future__ import annotations

import shutil
import warnings

import pytest

import smmcl
from smmcl.errors import CheckpointError, ConfigError, ConfigWarning

from support import build_tiny_model, tiny_config


def _own(weights):
    """The config a model file carries, as a dict (what `smmcl eval --checkpoint` starts from)."""
    from smmcl.config import to_dict
    from smmcl.model_file import open_model_file

    return to_dict(open_model_file(weights).require_config())


@pytest.fixture(scope="module")
def model(indoor_data, tmp_path_factory):
    cfg = tiny_config(f"data.root={indoor_data}")
    return smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg,
                                 tmp_path_factory.mktemp("m") / "m.safetensors")


def test_another_dataset_without_meta_json_is_scored_with_a_warning(model, indoor_data, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its own dataset: nothing to say
        smmcl.evaluate_checkpoint(model, progress=False)
    mine = tmp_path / "mine"
    shutil.copytree(indoor_data, mine, ignore=shutil.ignore_patterns("meta.json"))
    cfg = tiny_config(f"data.root={mine}")
    with pytest.warns(ConfigWarning, match=rf"data.root {mine} is not the dataset .*m.safetensors was trained on "
                                           rf"\({indoor_data}\) and has no meta.json naming its classes: its label ids "
                                           rf"are scored as the model's 14 classes \(void, bed, books, ceiling, ...\)"):
        smmcl.evaluate_checkpoint(model, cfg, progress=False)
    shutil.copy(indoor_data / "meta.json", mine / "meta.json")  # a described copy of the same data: checked, silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smmcl.evaluate_checkpoint(model, tiny_config(f"data.root={mine}"), progress=False)
    import json

    described = json.loads((indoor_data / "meta.json").read_text())
    described["class_names"] = described["class_names"][::-1]  # the same classes in another order (trial 7 #227)
    (mine / "meta.json").write_text(json.dumps(described))
    with pytest.raises(ConfigError, match="contradicts .*meta.json"):  # a YAML config: refused when loaded
        smmcl.evaluate_checkpoint(model, tiny_config(f"data.root={mine}"), progress=False)
    from smmcl.cli import main

    # No YAML: `smmcl eval` starts from the model's own config, whose classes the file owns (trial 7 #227, #233).
    assert main(["eval", "--checkpoint", str(model), f"data.root={mine}", "--out", str(tmp_path / "s.json")]) == 2
    assert not (tmp_path / "s.json").exists()
    with pytest.raises(CheckpointError, match=r"meta.json names the classes \['window', .* but .*m.safetensors was "
                                              r"trained on \['void', 'bed'"):
        smmcl.evaluate_checkpoint(model, smmcl.load_config(_own(model), [f"data.root={mine}"]), progress=False)
    shutil.copy(indoor_data / "meta.json", mine / "meta.json")
    four = (mine / "meta.json").read_text().replace('"bed"', '"chair"')  # a description naming other classes
    (mine / "meta.json").write_text(four)
    with pytest.raises((CheckpointError, ConfigError), match="chair"):
        smmcl.evaluate_checkpoint(model, tiny_config(f"data.root={mine}"), progress=False)


def test_images_trained_on_are_found_by_content_in_any_folder(tmp_path):
    """Trial case 174: a dataset generated again with fewer scenes holds, as its new test split, scenes the model
    was trained on, byte for byte and under the same names; a copy under new names is found alike."""
    from smmcl.data.synth import generate_dataset
    from smmcl.errors import HeldOutWarning

    first, again = tmp_path / "first", tmp_path / "again"
    generate_dataset("indoor-rgbd", first, num=8, size=(32, 40), seed=0, progress=False)  # test: scenes 6, 7
    run = tmp_path / "run"
    smmcl.train(tiny_config(f"data.root={first}", f"train.out_dir={run}", "train.max_iters=1", "data.crop_size=[32,40]",
                            "train.tensorboard=false"))
    weights = run / "model.safetensors"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smmcl.evaluate_checkpoint(weights, progress=False)  # its own held-out split: nothing to say
    generate_dataset("indoor-rgbd", again, num=4, size=(32, 40), seed=0, progress=False)  # test: scene 3, trained on
    with pytest.warns(HeldOutWarning, match=rf"1 of the 1 test images scored in {again} are byte for byte images "
                                            rf".*model.safetensors was trained on \(e.g. 'scene_00003'\)"):
        smmcl.evaluate_checkpoint(weights, tiny_config(f"data.root={again}", "data.crop_size=[32,40]"), progress=False)
    onnx = tmp_path / "m.onnx"  # an export carries the digests on
    smmcl.export(weights, onnx, size=(32, 40))
    with pytest.warns(HeldOutWarning, match=r"m.onnx was trained on \(e.g. 'scene_00003'\)"):
        smmcl.evaluate_checkpoint(onnx, tiny_config(f"data.root={again}", "data.crop_size=[32,40]"), progress=False)
    renamed = tmp_path / "renamed"  # the same images under other names, in a folder of their own
    generate_dataset("indoor-rgbd", renamed, num=4, size=(32, 40), seed=0, progress=False)
    for sub in ("RGB", "Depth", "Label"):
        (renamed / sub / "scene_00003.png").rename(renamed / sub / "mine_3.png")
    (renamed / "test.txt").write_text("mine_3\n")
    with pytest.warns(HeldOutWarning, match=r"\(e.g. 'mine_3'\)"):
        smmcl.evaluate_checkpoint(weights, tiny_config(f"data.root={renamed}", "data.crop_size=[32,40]"), progress=False)


def test_an_evaluation_config_of_another_modality_is_refused(model, indoor_data, capsys):
    """Trial 9 #112: `eval ... data.aux_kind=thermal` on a depth model was ignored while `data.aux_max` was refused;
    the modality is the model's too."""
    from smmcl.cli import main

    with pytest.raises(CheckpointError, match=r"trained with data.aux_kind='depth' but the evaluation's config gives "
                                              r"data.aux_kind='thermal'"):
        smmcl.evaluate_checkpoint(model, tiny_config(f"data.root={indoor_data}", "data.aux_kind=thermal"), progress=False)
    assert main(["eval", "--checkpoint", str(model), "data.aux_kind=thermal"]) == 2
    assert "data.aux_kind" in capsys.readouterr().err


def test_a_models_relative_data_root_read_from_another_folder_is_named(tmp_path, monkeypatch):
    """Trial 17 REL2: eval from another working folder said "split list not found: rgbd_mm/test.txt"."""
    import pytest

    import smmcl
    from smmcl.errors import DatasetError
    from support import build_tiny_model, tiny_config

    cfg = tiny_config("data.root=rgbd_mm")
    weights = smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, tmp_path / "m.safetensors")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"dataset folder not found: data.root=rgbd_mm, .*rgbd_mm: a relative "
                                           r"data.root is read from the current folder, not from the config file's or "
                                           r"the model file's \(give data.root=\.\.\. to read it elsewhere\)"):
        smmcl.evaluate_checkpoint(weights, progress=False)
