"""What the names a user writes say: an auxiliary folder named for another modality (`Depth/` for a thermal model),
a dataset whose auxiliary folder has another name, and list paths written from another folder than the list's. One
rule each, in training, `data check`, predict and recordings alike (trial 11 #156, #212, #23, #88)."""

from __future__ import annotations

import numpy as np
import pytest

import smmcl
from smmcl.cli import main
from smmcl.data.dataset import RGBXDataset
from smmcl.data.io import write_image
from smmcl.errors import DatasetError

from support import build_tiny_model, tiny_config

SIZE = (24, 32)


def _dataset(root, aux_dir: str, aux: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(root / "RGB" / f"s{i}.png", rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8))
        write_image(root / aux_dir / f"s{i}.png", aux)
        write_image(root / "Label" / f"s{i}.png", rng.integers(0, 3, SIZE, dtype=np.uint8))
    (root / "train.txt").write_text("s0\n")
    (root / "test.txt").write_text("s1\n")


def test_data_check_refuses_what_training_refuses_and_names_the_folder_that_is_there(tmp_path, capsys):
    depth = np.full(SIZE, 3000, np.uint16)
    _dataset(tmp_path / "rgbd", "Depth", depth)
    keys = ["--preset", "generic", "model.num_classes=3"]
    assert main(["data", "check", str(tmp_path / "rgbd"), *keys, "data.aux_dir=Depth", "data.aux_kind=thermal"]) == 1
    out = capsys.readouterr().out
    assert "data.aux_dir='Depth' names depth images but data.aux_kind='thermal': set data.aux_kind=depth" in out
    assert main(["data", "check", str(tmp_path / "rgbd"), *keys]) == 0  # the same data read as depth is fine
    capsys.readouterr()

    _dataset(tmp_path / "rgbt", "Thermal", np.full(SIZE, 120, np.uint8))
    assert main(["data", "check", str(tmp_path / "rgbt"), *keys]) == 1
    out = capsys.readouterr().out
    # Said once (the splits share the folder), with the keys that read the folder that is there; no line per sample.
    assert "no 'Depth' folder (aux images); it has a 'Thermal' folder: to train on its thermal images set " \
           "data.aux_dir=Thermal data.aux_kind=thermal (a model trained on depth images cannot read them)" in out
    assert "missing aux file" not in out and out.count("no 'Depth' folder") == 1
    with pytest.raises(DatasetError, match="has no 'Depth' folder.*it has a 'Thermal' folder: to train on its thermal images set data.aux_dir=Thermal"):
        RGBXDataset(tiny_config(f"data.root={tmp_path / 'rgbt'}").data, "test", 3)


def test_predict_refuses_a_folder_named_for_another_modality_than_the_models(tmp_path):
    """8-bit depth from a `Depth` folder fits a thermal model's 8-bit scale: only the name tells (trial 11 #156)."""
    cfg = tiny_config("data.aux_kind=thermal", "data.aux_max=255")
    thermal = smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, tmp_path / "thermal.safetensors")
    _dataset(tmp_path / "d8", "Depth", np.full(SIZE, 90, np.uint8))
    with pytest.raises(DatasetError, match=r"Depth names depth images but the model was trained on thermal images: "
                                           r"predict them with a model trained on depth images"):
        smmcl.predict(thermal, tmp_path / "d8" / "RGB", tmp_path / "d8" / "Depth", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    (tmp_path / "d8" / "Depth").rename(tmp_path / "d8" / "thermal_frames")  # any other name: read as given
    written = smmcl.predict(thermal, tmp_path / "d8" / "RGB", tmp_path / "d8" / "thermal_frames", tmp_path / "out",
                            progress=False)
    assert len(written) == 4


def test_list_paths_written_from_the_current_folder_are_said_so(tmp_path, monkeypatch):
    from smmcl.engine.predict import pair_inputs

    _dataset(tmp_path / "mine", "Depth", np.full(SIZE, 3000, np.uint16))
    monkeypatch.chdir(tmp_path)
    listed = tmp_path / "mine" / "list.txt"
    listed.write_text("mine/RGB/s0.png mine/Depth/s0.png\n")
    with pytest.raises(DatasetError, match=r"list.txt: mine/RGB/s0.png is read as mine/mine/RGB/s0.png, which is not "
                                           r"there: paths in a list are read from the list file's folder \(mine\)"):
        pair_inputs(None, None, "mine/list.txt")
    listed.write_text("RGB/s0.png Depth/s0.png\n")  # from the list's folder: as documented
    assert pair_inputs(None, None, "mine/list.txt")[0].rgb.resolve() == (tmp_path / "mine" / "RGB" / "s0.png")


def test_a_name_says_a_modality_by_its_words_in_any_spelling():
    """Trial 12 #36: only the exact names Depth/Thermal/HHA were read; `depth_mm` trained as thermal passed."""
    from smmcl.data.names import folder_kind, name_kind

    said = {"Depth": "depth", "depth_mm": "depth", "DepthCam": "depth", "aligned_depth_to_color": "depth",
            "thermal.mkv": "thermal", "Thermal_v2": "thermal", "lwir": "thermal", "HHA": "hha", "hha_images": "hha",
            "HHAImages": "hha", "RGB": None, "depth_hha": None, "Depths": None, "frames": None}
    assert {name: folder_kind(name) for name in said} == said
    assert folder_kind("/data/thermal_study/frames") is None  # a folder's own name only
    assert name_kind("/flir/thermal/image_raw") == "thermal"  # a topic: all its words


def test_eval_data_hha_and_bags_refuse_a_name_of_another_modality(tmp_path, capsys):
    """Trial 12 #238: a depth model scored radiometric thermal (7500-8500, inside a millimetre scale) from `Thermal/`;
    #241: a bag's `/flir/thermal/image_raw` topic read as depth; #225: `data hha` on a `Thermal` folder."""
    from smmcl.data.hha_folder import convert_folder
    from support.bags import write_ros2_aligned

    cfg = tiny_config()
    depth_model = smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, tmp_path / "depth.safetensors")
    _dataset(tmp_path / "flir", "Thermal", np.full(SIZE, 8000, np.uint16))
    with pytest.raises(DatasetError, match=r"data.aux_dir='Thermal' names thermal images but .*depth.safetensors was "
                                           r"trained on depth images"):
        smmcl.evaluate_checkpoint(depth_model, tiny_config(f"data.root={tmp_path / 'flir'}", "data.aux_dir=Thermal",
                                                           "model.num_classes=14"), progress=False)
    with pytest.raises(DatasetError, match="Thermal names thermal images but smmcl data hha encodes depth images"):
        convert_folder(tmp_path / "flir" / "Thermal", tmp_path / "hha", (40.0, 40.0, 15.5, 11.5))
    assert not (tmp_path / "hha").exists()
    bag = write_ros2_aligned(tmp_path / "bag", aux_topic="/flir/thermal/image_raw")
    assert main(["predict", "--checkpoint", str(depth_model), "--bag", str(bag), "--aux-aligned", "--out",
                 str(tmp_path / "b")]) == 2
    assert "topic /flir/thermal/image_raw names thermal images but" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_training_refuses_a_folder_named_in_other_words_for_another_modality(tmp_path):
    _dataset(tmp_path / "d", "depth_mm", np.full(SIZE, 3000, np.uint16))
    cfg = tiny_config(f"data.root={tmp_path / 'd'}", "data.aux_dir=depth_mm", "data.aux_kind=thermal").data
    with pytest.raises(DatasetError, match="data.aux_dir='depth_mm' names depth images but data.aux_kind='thermal'"):
        RGBXDataset(cfg, "train", 3, train=True)


def test_a_label_folder_given_as_the_auxiliary_one_is_named(tmp_path):
    """Trial 14 #183: a predict list of `RGB LABEL` lines was answered "depth saved at 8 bits?"."""
    cfg = tiny_config()
    model = smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, tmp_path / "m.safetensors")
    _dataset(tmp_path / "d", "Depth", np.full(SIZE, 3000, np.uint16))
    (tmp_path / "d" / "list.txt").write_text("RGB/s0.png Label/s0.png\n")
    with pytest.raises(DatasetError, match=r"Label: a folder named for label images, given as the auxiliary ones"):
        smmcl.predict(model, None, None, tmp_path / "out", list_file=tmp_path / "d" / "list.txt", progress=False)


def test_an_auxiliary_folder_given_as_the_rgb_one_is_named_everywhere(tmp_path, capsys):
    """Trial 16 #102: grey images pass as RGB, so a thermal folder (or video) given as the RGB one is told by its
    name, by training, `data check`, eval and predict; a name that also says colour is an RGB folder."""
    cfg = tiny_config("data.aux_kind=thermal", "data.aux_max=255")
    thermal = smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, tmp_path / "thermal.safetensors")
    root = tmp_path / "rgbt"
    _dataset(root, "Thermal", np.full(SIZE, 120, np.uint8))
    with pytest.raises(DatasetError, match=r"Thermal names thermal images, given as the RGB ones: predict reads colour "
                                           r"images as --rgb and thermal images as --aux"):
        smmcl.predict(thermal, root / "Thermal", root / "RGB", tmp_path / "out", progress=False)
    swapped = [f"data.root={root}", "data.rgb_dir=Thermal", "data.aux_dir=RGB", "data.aux_kind=thermal"]
    with pytest.raises(DatasetError, match=r"data.rgb_dir='Thermal' names thermal images, given as the RGB ones"):
        RGBXDataset(tiny_config(*swapped).data, "train", 3, train=True)
    assert main(["data", "check", str(root), "--preset", "generic", "model.num_classes=3", *swapped[1:]]) == 1
    assert "data.rgb_dir='Thermal' names thermal images, given as the RGB ones" in capsys.readouterr().out
    with pytest.raises(DatasetError, match=r"data.rgb_dir='Thermal' names thermal images, given as the RGB ones"):
        smmcl.evaluate_checkpoint(thermal, tiny_config(*swapped, "data.aux_max=255"), progress=False)
    (root / "RGB").rename(root / "thermal_cam_rgb")  # says colour too: an RGB folder (of a thermal rig)
    assert len(smmcl.predict(thermal, root / "thermal_cam_rgb", root / "Thermal", tmp_path / "out", progress=False)) == 4
