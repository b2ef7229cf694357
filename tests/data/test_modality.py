"""One rule per modality (smmcl.data.modality): the dataset, `data check`, `predict` and the `Predictor` refuse (or,
for live frames, warn of) the same arrays in the same words; the dataset's meta.json against the config."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import smmcl
from smmcl.cli import main
from smmcl.config import DataConfig, load_config
from smmcl.data.check import check_dataset
from smmcl.data.classes import MFNET_CLASSES
from smmcl.data.dataset import RGBXDataset
from smmcl.data.io import write_image
from smmcl.data.modality import check_aux, check_label, units_problem
from smmcl.deploy.predictor import Predictor
from smmcl.errors import (AuxUnitsWarning, CheckpointError, ConfigError, ConfigWarning, DatasetError, HeldOutWarning,
                          NonFiniteWarning)

from support import TINY_CONFIG, build_tiny_model, tiny_config
from support.images import png_16bit_colour

SIZE = (24, 32)


def make_folder(root: Path, n: int = 4, num_classes: int = 5, aux_max: float = 10000.0) -> DataConfig:
    """RGB/ (8-bit), Depth/ (16-bit millimetres in whole metres), Label/ (0..num_classes-1); s3 is the test split."""
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(root / "RGB" / f"s{i}.png", rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8))
        write_image(root / "Depth" / f"s{i}.png", (rng.integers(1, 10, SIZE) * 1000).astype(np.uint16))
        write_image(root / "Label" / f"s{i}.png", rng.integers(0, num_classes, SIZE, dtype=np.uint8))
    (root / "train.txt").write_text("".join(f"s{i}\n" for i in range(n - 1)))
    (root / "test.txt").write_text(f"s{n - 1}\n")
    return DataConfig(root=str(root), aux_max=aux_max, num_workers=0)


def dataset_error(cfg: DataConfig, num_classes: int = 5) -> str:
    with pytest.raises(DatasetError) as caught:
        RGBXDataset(cfg, "test", num_classes)[0]
    return str(caught.value)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """The tiny model (14 classes, data.aux_max=10000: depth in millimetres) as smmcl weights."""
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    cfg = tiny_config()
    return smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, path)


def predict_error(weights: Path, rgb: Path, aux: Path, out: Path, **kwargs) -> str:
    with pytest.raises(DatasetError) as caught:
        smmcl.predict(weights, rgb, aux, out, progress=False, **kwargs)
    return str(caught.value)


# --- RGB -------------------------------------------------------------------------------------------------------

def test_16bit_grey_rgb_is_refused_alike_by_dataset_check_predict_and_predictor(tmp_path, weights):
    cfg = make_folder(tmp_path / "d")
    rgb = tmp_path / "d" / "RGB" / "s3.png"
    write_image(rgb, np.full(SIZE, 4000, np.uint16))  # a 16-bit grey PNG, read as 8-bit it would be 257x too bright
    message = dataset_error(cfg)
    assert message.startswith(f"{rgb}: RGB image is uint16, shape (24, 32), values 4000..4000; expected 8-bit colour")
    assert message in check_dataset(cfg, 5, progress=False).problems
    assert predict_error(weights, rgb, tmp_path / "d" / "Depth" / "s3.png", tmp_path / "out") == message
    with pytest.raises(DatasetError) as caught:
        Predictor(weights)(np.full(SIZE, 4000, np.uint16)[..., None].repeat(3, 2), np.zeros(SIZE, np.uint16))
    assert "RGB frame 0: RGB image is uint16" in str(caught.value)


def test_16bit_colour_is_refused_alike_not_read_as_8_bits(tmp_path, weights):
    """Pillow reads a 48-bit PNG as 8 bits per channel (the low byte dropped); 12-bit values would come out dark
    and banded. The one decoder refuses it, so the dataset, data check and predict say the same."""
    cfg = make_folder(tmp_path / "d")
    rgb = tmp_path / "d" / "RGB" / "s3.png"
    png_16bit_colour(rgb, np.random.default_rng(0).integers(0, 4096, (*SIZE, 3)).astype(np.uint16))
    message = dataset_error(cfg)
    assert message.startswith(f"{rgb}: RGB image with 16 bits per channel (RGB;16B), which would be read as 8 bits")
    assert message in check_dataset(cfg, 5, progress=False).problems
    assert predict_error(weights, rgb, tmp_path / "d" / "Depth" / "s3.png", tmp_path / "out") == message


def test_rgba_and_8bit_grey_are_read_as_rgb(tmp_path):
    cfg = make_folder(tmp_path / "d")
    rgb_path = tmp_path / "d" / "RGB" / "s3.png"
    rgb = np.asarray(Image.open(rgb_path))
    expected = RGBXDataset(cfg, "test", 5)[0]["rgb"]
    write_image(rgb_path, np.dstack([rgb, np.full(SIZE, 128, np.uint8)]))  # RGBA: the alpha is dropped
    assert RGBXDataset(cfg, "test", 5)[0]["rgb"].equal(expected)
    write_image(rgb_path, rgb[..., 1])  # 8-bit grey: repeated to three channels
    assert np.array_equal(RGBXDataset(cfg, "test", 5).load_raw(0)[0], np.repeat(rgb[..., 1:2], 3, axis=2))
    assert check_dataset(cfg, 5, progress=False).ok


def test_a_palette_rgb_image_is_read_as_its_colours_and_a_palette_label_as_its_ids(tmp_path):
    cfg = make_folder(tmp_path / "d")
    rgb_path = tmp_path / "d" / "RGB" / "s3.png"
    colours = np.asarray(Image.open(rgb_path).quantize(64).convert("RGB"))
    Image.fromarray(colours).quantize(64).save(rgb_path)  # a palette PNG of the same picture
    assert Image.open(rgb_path).mode == "P"
    assert np.array_equal(RGBXDataset(cfg, "test", 5).load_raw(0)[0], colours)
    label = Image.fromarray(np.full(SIZE, 3, np.uint8), mode="P")
    label.putpalette([200, 0, 0] * 256)  # colours unlike the ids: the ids are what count
    label.save(tmp_path / "d" / "Label" / "s3.png")
    assert (RGBXDataset(cfg, "test", 5).load_raw(0)[2] == 3).all()
    assert check_dataset(cfg, 5, progress=False).ok


# --- auxiliary ---------------------------------------------------------------------------------------------------

def test_8bit_depth_on_a_millimetre_scale_is_refused_by_dataset_check_and_predict(tmp_path, weights):
    cfg = make_folder(tmp_path / "d")
    depth = tmp_path / "d" / "Depth" / "s3.png"
    write_image(depth, np.full(SIZE, 200, np.uint8))
    message = dataset_error(cfg)
    assert message == (f"{depth}: 8-bit auxiliary image (uint8, shape (24, 32), values 200..200) but data.aux_max=10000, "
                       f"which expects larger values, e.g. 16-bit millimetres: store the images at their full bit depth; "
                       f"to train on 8-bit images whose true scale that is, set data.aux_max=255 (a trained model's "
                       f"scale is its own: scoring it needs images in its units)")
    report = check_dataset(cfg, 5, progress=False)
    assert message in report.problems
    # One 8-bit file among 16-bit ones: the folder is flagged as a mix of bit depths, and listed per format.
    assert f"{tmp_path / 'd' / 'Depth'}: mixed bit depths (uint16 in 3, uint8 in 1 files; e.g. {depth})" in report.format()
    assert report.to_dict()["folders"]["Depth"] == {"uint16x1ch": 3, "uint8x1ch": 1}
    assert "uint8x1ch: 1  <- mixed bit depths" in report.format()
    # predict reads the same file against the model's own aux_max (10000) and refuses it too.
    assert "8-bit auxiliary image (uint8, shape (24, 32), values 200..200) for a depth model whose aux_max is 10000" in \
        predict_error(weights, tmp_path / "d" / "RGB" / "s3.png", depth, tmp_path / "out")


def test_mixed_aux_bit_depths_without_aux_max_are_refused_before_training(tmp_path):
    cfg = make_folder(tmp_path / "d", aux_max=None)  # each file then scaled by its own type's maximum
    assert len(RGBXDataset(cfg, "train", 5, train=True)) == 3  # one format: fine
    write_image(tmp_path / "d" / "Depth" / "s1.png", np.full(SIZE, 200, np.uint8))  # one 8-bit file among 16-bit
    with pytest.raises(DatasetError, match=r"Depth: mixed bit depths \(uint16 \(e.g. .*s0.png\), uint8 \(e.g. .*s1.png\)\) "
                                           r"while data.aux_max is unset"):
        RGBXDataset(cfg, "train", 5, train=True)
    assert len(RGBXDataset(cfg, "test", 5)) == 1  # a split without the odd file is unaffected


def test_jpeg_labels_are_refused_and_a_scale_barely_used_is_noted(tmp_path):
    cfg = make_folder(tmp_path / "d")
    label = tmp_path / "d" / "Label"
    for path in label.glob("*.png"):  # JPEG blends ids along edges: other classes, silently
        Image.open(path).save(path.with_suffix(".jpg"), quality=95)
    jpeg = DataConfig(root=cfg.root, aux_max=cfg.aux_max, num_workers=0, label_ext=".jpg")
    assert "a label file in JPEG, a lossy format that changes class ids" in dataset_error(jpeg)
    assert any("a label file in JPEG" in p for p in check_dataset(jpeg, 5, progress=False).problems)
    # Depth in centimetres (up to 9 m = 900) for a millimetre scale: within range, so noted rather than refused.
    for path in (tmp_path / "d" / "Depth").glob("*.png"):
        write_image(path, (np.asarray(Image.open(path)) // 10).astype(np.uint16))
    report = check_dataset(cfg, 5, progress=False)
    assert report.ok and any("under 1/10 of data.aux_max=10000: other units" in n for n in report.notes)


def test_a_sample_file_with_another_suffix_names_the_key(tmp_path):
    cfg = make_folder(tmp_path / "d")
    depth = tmp_path / "d" / "Depth" / "s3.png"
    Image.open(depth).save(depth.with_suffix(".tiff"))
    depth.unlink()
    assert "(s3.tiff is there: set data.aux_ext=.tiff)" in dataset_error(cfg)
    assert any("(s3.tiff is there: set data.aux_ext=.tiff)" in p for p in check_dataset(cfg, 5, progress=False).problems)


def test_scoring_images_also_trained_on_is_said(tmp_path):
    cfg = make_folder(tmp_path / "d")
    (tmp_path / "d" / "train.txt").write_text("s0\ns1\ns2\ns3\n")  # the test sample s3 too
    full = load_config({"model": {"num_classes": 5, "backbone": {"name": "mscan", "preset": "T"}},
                        "data": {"root": cfg.root, "aux_max": 10000.0, "num_workers": 0, "crop_size": [24, 32]},
                        "eval": {"batch_size": 1}}, dataset_meta=False)
    model = smmcl.build_model(full).eval()
    with pytest.warns(HeldOutWarning, match=r"1 of the 1 test images scored are in the train list too \(e.g. 's3'\)"):
        smmcl.evaluate(model, full)


def test_an_empty_frame_is_named_as_empty(weights):
    predictor = Predictor(weights)
    with pytest.raises(DatasetError, match=r"RGB frame 0: RGB image is empty \(shape \(0, 0, 3\)\)"):
        predictor(np.zeros((0, 0, 3), np.uint8), np.zeros((4, 4), np.uint16))
    with pytest.raises(DatasetError, match=r"auxiliary frame 0: auxiliary image is empty"):
        predictor(np.zeros((4, 4, 3), np.uint8), np.zeros((0, 4), np.uint16))


def test_values_far_above_aux_max_are_flagged(tmp_path):
    cfg = make_folder(tmp_path / "d", aux_max=1000.0)  # the files hold up to 9000 mm: a scale in other units
    message = dataset_error(cfg)
    assert "values up to 9000 but data.aux_max=1000, more than 2x its full scale" in message
    assert message in check_dataset(cfg, 5, progress=False).problems
    # Within the margin (a sensor's overshoot past its nominal range) passes.
    assert units_problem(np.full(SIZE, 11000, np.uint16), 10000) is None
    # For a model, its modality is named: 16-bit depth given to a thermal model is not thermal in other units, and
    # radiometric thermal (centi-kelvin) is no power of ten off 8-bit thermal: no aux_scale is offered for either.
    problem = units_problem(np.full(SIZE, 29865, np.uint16), 255, for_model="thermal")
    assert "for a thermal model whose aux_max is 255" in problem and "aux_scale=" not in problem
    assert "radiometric or 16-bit thermal for a model trained on 8-bit thermal images? no aux_scale maps" in problem
    assert "images of another modality (not thermal)? this model cannot read them" in problem
    assert "depth images in other units than it was trained on? pass aux_scale=0.1" in units_problem(
        np.full(SIZE, 90000, np.int32), 10000, for_model="depth")


def test_float_metres_warn_the_predictor_and_are_refused_as_files(tmp_path, weights, indoor_data):
    rgb = np.array(Image.open(indoor_data / "RGB" / "scene_00000.png"))
    mm = (np.array(Image.open(indoor_data / "Depth" / "scene_00000.png")) // 1000 * 1000).astype(np.uint16)
    metres = (mm // 1000).astype(np.float32)  # whole metres: x1000 gives the millimetres back exactly
    top = int(metres.max())
    predictor = Predictor(weights)
    with pytest.warns(AuxUnitsWarning, match=rf"auxiliary frame 0: float values up to {top} for a depth model whose aux_max is "
                                             r"10000: metres given to a model trained on millimetres\? pass aux_scale=1000"):
        predictor(rgb, metres)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor(rgb, metres)  # said once per Predictor: a stream is not flooded
        scaled = Predictor(weights, aux_scale=1000)(rgb, metres)
    assert np.array_equal(scaled, predictor(rgb, mm))
    # The same frame as a file: refused by predict, which takes the same aux_scale.
    files = tmp_path / "in"
    files.mkdir()
    Image.fromarray(metres, mode="F").save(files / "metres.tiff")
    Image.fromarray(rgb).save(files / "rgb.png")
    message = predict_error(weights, files / "rgb.png", files / "metres.tiff", tmp_path / "out")
    assert message.startswith(f"{files / 'metres.tiff'}: float values up to {top} for a depth model whose aux_max is 10000")
    written = smmcl.predict(weights, files / "rgb.png", files / "metres.tiff", tmp_path / "ok", aux_scale=1000,
                            progress=False)
    assert np.array_equal(np.asarray(Image.open(written[0])), scaled)
    with pytest.raises(ValueError, match="aux_scale must be a positive number"):
        Predictor(weights, aux_scale=0)
    # As a dataset's files (train, data check, eval): aux_max is named only for training (trial 10 #194: eval followed it).
    with pytest.raises(DatasetError, match=r"metres where data.aux_max counts millimetres\? convert the files \(x1000\), "
                                           r"or, to train on them, set data.aux_max to their own full scale \(a trained "
                                           r"model's scale is its own: scoring it needs images in its units\)"):
        check_aux(metres, "m.tiff", 10000)


def test_negative_auxiliary_values_are_refused_as_files_and_warned_for_frames(tmp_path, weights):
    cfg = make_folder(tmp_path / "d")
    depth = tmp_path / "d" / "Depth" / "s3.png"
    signed = -np.asarray(Image.open(depth)).astype(np.float32)  # depth stored as negative millimetres
    Image.fromarray(signed, mode="F").save(depth.with_suffix(".tiff"))
    depth.unlink()
    cfg.aux_ext = ".tiff"
    message = dataset_error(cfg)
    assert message.startswith(f"{depth.with_suffix('.tiff')}: negative values (float32, shape (24, 32), values -")
    assert "auxiliary images hold distances or intensities from 0 up" in message
    assert message in check_dataset(cfg, 5, progress=False).problems
    assert "negative values" in predict_error(weights, tmp_path / "d" / "RGB" / "s3.png", depth.with_suffix(".tiff"),
                                              tmp_path / "out")
    with pytest.warns(AuxUnitsWarning, match=r"auxiliary frame 0: negative values \(int32"):
        Predictor(weights)(np.zeros((*SIZE, 3), np.uint8), np.full(SIZE, -1500, np.int32))


def test_the_predictor_warns_once_per_kind_of_mismatch(weights):
    predictor = Predictor(weights)
    rgb = np.zeros((*SIZE, 3), np.uint8)
    with pytest.warns(AuxUnitsWarning, match="float values up to 2"):
        predictor(rgb, np.full(SIZE, 2.0, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor(rgb, np.full(SIZE, 3.0, np.float32))  # the same kind again, other numbers: said already
    with pytest.warns(AuxUnitsWarning, match="negative values"):
        predictor(rgb, np.full(SIZE, -100, np.int32))  # a new kind later in the stream is said too


def test_non_finite_depth_keeps_its_rule(tmp_path):
    depth = np.full(SIZE, 2.5, np.float32)
    depth[3, 3] = np.nan
    cfg = make_folder(tmp_path / "d", aux_max=10.0)
    Image.fromarray(depth, mode="F").save(tmp_path / "d" / "Depth" / "s3.tiff")
    cfg.aux_ext = ".tiff"
    (tmp_path / "d" / "test.txt").write_text("s3\n")
    with pytest.warns(NonFiniteWarning, match=r"s3\.tiff: 1 non-finite auxiliary values \(NaN / inf\) read as no measurement"):
        raw = RGBXDataset(cfg, "test", 5).load_raw(0)[1]
    assert raw[3, 3] == 0 and raw.dtype == np.float32


# --- labels ------------------------------------------------------------------------------------------------------

def test_labels_out_of_range_or_not_integer_are_refused_alike(tmp_path):
    cfg = make_folder(tmp_path / "d")
    label = tmp_path / "d" / "Label" / "s3.png"
    bad = np.zeros(SIZE, np.uint8)
    bad[1, 1], bad[2, 2] = 7, 255  # 255 is the ignore label: allowed
    write_image(label, bad)
    message = dataset_error(cfg)
    assert message == f"{label}: has value 7; expected 0..4 or 255 (ignore)"
    assert message in check_dataset(cfg, 5, progress=False).problems
    Image.fromarray(np.zeros(SIZE, np.float32), mode="F").save(tmp_path / "d" / "Label" / "s3.tiff")
    cfg.label_ext = ".tiff"
    message = dataset_error(cfg)
    assert message.startswith(f"{tmp_path / 'd' / 'Label' / 's3.tiff'}: label image is float32")
    assert message in check_dataset(cfg, 5, progress=False).problems
    # The label shift (NYUDv2 stores 1..40, 0 = unlabeled) is applied before the range check, as before.
    assert check_label(np.array([[0, 1, 40]], np.uint8), "x", 40, 255, 1).tolist() == [[255, 0, 39]]
    with pytest.raises(DatasetError, match=r"x: has value -1; expected 0\.\.39"):
        check_label(np.array([[-1, 1]], np.int32), "x", 40)


# --- predict with another dataset's config -----------------------------------------------------------------------

def test_a_split_that_lists_a_sample_twice_or_holds_no_labelled_pixel_is_refused(tmp_path, weights):
    """Either would give a score that looks like one: an image counted twice, or "mIoU nan%"."""
    cfg = make_folder(tmp_path / "d", n=5)
    (tmp_path / "d" / "test.txt").write_text("s3\ns4\ns3\n")
    assert dataset_error(cfg).endswith("test.txt, line 3: 's3' is listed already on line 1; a split lists each "
                                       "sample once")
    (tmp_path / "d" / "test.txt").write_text("s3\ns4\n")
    for name in ("s3", "s4"):
        write_image(tmp_path / "d" / "Label" / f"{name}.png", np.full(SIZE, 255, np.uint8))
    cfg14 = load_config(TINY_CONFIG, [f"data.root={tmp_path / 'd'}", "data.aux_max=10000"])
    from smmcl.engine.evaluate import evaluate

    with pytest.raises(DatasetError, match=r"split 'test' of .*: no pixel of its 2 label images holds a class id; every "
                                           r"one is the ignore index 255"):
        evaluate(build_tiny_model(cfg14, seed=0).eval(), cfg14)


def test_predict_refuses_a_config_that_says_other_classes_or_scaling(tmp_path, weights, indoor_data):
    nine = tiny_config("model.num_classes=9", f"data.class_names=[{','.join(MFNET_CLASSES)}]", "eval.exclude_classes=[]")
    nine_path = smmcl.save_pretrained(build_tiny_model(nine, seed=0).eval(), nine, tmp_path / "nine.safetensors")
    rgb, depth = indoor_data / "RGB" / "scene_00001.png", indoor_data / "Depth" / "scene_00001.png"
    with pytest.raises(CheckpointError, match=r"nine\.safetensors was trained with model\.num_classes=9 but the config "
                                              + re.escape(f"{TINY_CONFIG} gives model.num_classes=14")):
        smmcl.predict(nine_path, rgb, depth, tmp_path / "a", config=TINY_CONFIG, progress=False)
    assert main(["predict", "--checkpoint", str(nine_path), "--config", str(TINY_CONFIG), "--rgb", str(rgb),
                 "--aux", str(depth), "--out", str(tmp_path / "b")]) == 2
    with pytest.raises(CheckpointError, match=r"trained with data.aux_max=10000.0 but an override gives "
                                              r"data.aux_max=1000.*pass aux_scale instead"):
        smmcl.predict(weights, rgb, depth, tmp_path / "c", overrides=["data.aux_max=1000"], progress=False)
    # The config's own dataset, with a protocol of its own: eval.* is taken from it.
    from smmcl.engine.loading import config_for_model
    from smmcl.model_file import open_model_file

    cfg = config_for_model(open_model_file(weights), TINY_CONFIG, ["eval.flip=true", "model.decoder.channels=64"])
    assert cfg.eval.flip and cfg.model.decoder.channels == 32  # the model's architecture is the file's
    assert len(smmcl.predict(weights, rgb, depth, tmp_path / "d", config=TINY_CONFIG, progress=False)) == 2


# --- the dataset's meta.json ---------------------------------------------------------------------------------------

def test_meta_json_fills_refuses_contradictions_and_yields_to_overrides(tmp_path, indoor_data):
    meta = json.loads((indoor_data / "meta.json").read_text())
    bare = tmp_path / "bare.yaml"
    bare.write_text(f"data: {{root: {indoor_data}}}\n")
    filled = load_config(bare)
    assert filled.data.class_names == meta["class_names"] and filled.model.num_classes == len(meta["class_names"])
    assert filled.data.aux_max == meta["aux_max"] and filled.data.aux_dir == meta["aux_dir"]
    assert filled.data.palette == []  # layout details stay the config's: it resolves alike before the data exists
    assert load_config({"data": {"root": str(indoor_data)}}).data.aux_max is None  # a resolved mapping is taken as is

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(f"base: {TINY_CONFIG}\ndata: {{aux_max: 1000}}\n")
    expected = (rf"{wrong}: data.aux_max=1000 contradicts {indoor_data / 'meta.json'}, which says data.aux_max=10000; "
                rf"set data.aux_max: 10000 in the config \(or leave the key out where no base config sets it\)")
    with pytest.raises(ConfigError, match=expected):
        load_config(wrong, [f"data.root={indoor_data}"])
    # The advice works where the value is inherited (trial 7 #158b): a config over `wrong` that sets meta.json's value.
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {wrong}\ndata: {{aux_max: 10000}}\n")
    assert load_config(child, [f"data.root={indoor_data}"]).data.aux_max == 10000
    unset = tmp_path / "unset.yaml"  # null is its own scale (the file type's maximum), said as such
    unset.write_text(f"base: {TINY_CONFIG}\ndata: {{aux_max: null}}\n")
    with pytest.raises(ConfigError, match=r"data.aux_max=None \(unset: each image scaled by its file type's maximum, "
                                          r"which is 255 only for 8-bit files\) contradicts .*set data.aux_max: 10000"):
        load_config(unset, [f"data.root={indoor_data}"])
    # Training refuses it the same way, before anything is built or written.
    assert main(["train", str(wrong), f"data.root={indoor_data}", f"train.out_dir={tmp_path / 'run'}", "--dry-run"]) == 2
    assert not (tmp_path / "run").exists()

    with pytest.warns(ConfigWarning, match=rf"data.aux_max=5000 \(override\) departs from {indoor_data / 'meta.json'}, "
                                           rf"which says data.aux_max=10000; the override is used"):
        cfg = load_config(wrong, [f"data.root={indoor_data}", "data.aux_max=5000"])
    assert cfg.data.aux_max == 5000

    other = tmp_path / "other.yaml"
    other.write_text(f"base: {TINY_CONFIG}\nmodel: {{num_classes: 9}}\ndata: {{class_names: [{','.join(MFNET_CLASSES)}]}}\n")
    with pytest.raises(ConfigError, match=r"other.yaml: data.class_names=\['unlabeled'.*contradicts .*meta.json"):
        load_config(other, [f"data.root={indoor_data}"])
    # Every contradiction in one error (trial 15 TH1: each fixed one found the next).
    both = tmp_path / "both.yaml"
    both.write_text(f"base: {other}\ndata: {{aux_max: 1000}}\n")
    with pytest.raises(ConfigError) as said:
        load_config(both, [f"data.root={indoor_data}"])
    text = str(said.value)
    assert "data.class_names=['unlabeled'" in text and "data.aux_max=1000 contradicts" in text
    assert "set data.class_names: [" in text and ", data.aux_max: 10000 in the config (or leave the keys out" in text

    # `[]` (no names) clears a base file's names, in a file or as an override: the dataset's own names fill them.
    cleared = tmp_path / "cleared.yaml"
    cleared.write_text(f"base: {other}\ndata: {{class_names: []}}\nmodel: {{num_classes: {len(meta['class_names'])}}}\n")
    assert load_config(cleared, [f"data.root={indoor_data}"]).data.class_names == meta["class_names"]
    overridden = load_config(other, [f"data.root={indoor_data}", "data.class_names=[]",
                                     f"model.num_classes={len(meta['class_names'])}"])
    assert overridden.data.class_names == meta["class_names"]


def test_data_check_reads_aux_max_from_meta_json_and_flags_values_against_it(tmp_path, indoor_data, capsys):
    import shutil

    root = tmp_path / "indoor"
    shutil.copytree(indoor_data, root)
    write_image(root / "Depth" / "scene_00000.png", np.full((64, 80), 200, np.uint8))
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{root / 'Depth' / 'scene_00000.png'}: 8-bit auxiliary image" in out and "data.aux_max=10000" in out
    assert "mixed bit depths" in out and "uint16x1ch: 47" in out
    # An override departing from meta.json is used, said as a warning; the files are then read against it.
    assert main(["data", "check", str(root), "data.aux_max=1000", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"smmcl: warning: data.aux_max=1000 (override) departs from {root / 'meta.json'}")
    assert "but data.aux_max=1000, more than 2x its full scale" in captured.out


def test_data_check_flags_a_test_sample_that_is_also_trained_on(tmp_path):
    cfg = make_folder(tmp_path / "d")
    (tmp_path / "d" / "test.txt").write_text("s3\ns0\n")
    report = check_dataset(cfg, 5, progress=False)
    assert report.ok  # an overfitting check may mean it: said, not refused
    assert any("test.txt: 1 of its samples are in the train list too (e.g. 's0')" in n for n in report.notes)
    assert "note: " in report.format() and report.to_dict()["notes"] == report.notes


def test_advice_fits_the_files_kind(tmp_path):
    """Trial 9: 8-bit HHA under a millimetre aux_max left from a depth config was told of 16-bit millimetres (#66),
    and a JPEG label folder was told to set data.label_ext=.jpg, which then met the refusal of lossy labels (#29)."""
    from smmcl.data.dataset import missing_hint
    from smmcl.data.modality import check_aux

    with pytest.raises(DatasetError, match=r"HHA images are 8-bit by construction \(smmcl data hha\): leave "
                                           r"data.aux_max unset \(null\)"):
        check_aux(np.full((8, 8, 3), 90, np.uint8), "hha/a.png", 10000.0, kind="hha")
    (tmp_path / "Label").mkdir()
    (tmp_path / "Label" / "a.jpg").write_bytes(b"")
    assert missing_hint(tmp_path / "Label" / "a.png", "label") == (" (a.jpg is there, but JPEG changes class ids at "
                                                                   "edges: save the labels as PNG)")
    assert missing_hint(tmp_path / "Label" / "a.png", "aux") == " (a.jpg is there: set data.aux_ext=.jpg)"


def test_fractional_floats_are_no_8bit_thermal():
    """Trial 10 #73/#217: depth in metres (with or without an aux_scale) passed a thermal model trained on 8-bit
    images; an 8-bit camera gives whole numbers, so fractions are refused, while whole-number floats pass."""
    from smmcl.data.modality import check_aux

    metres = np.linspace(0.5, 4.1, 64, dtype=np.float32).reshape(8, 8)
    for scale in (1.0, 10.0):
        with pytest.raises(DatasetError, match=r"float values with fractions .* for a thermal model trained on 8-bit "
                                               r"images .*depth in metres, or temperatures\?"):
            check_aux(metres, "t.tiff", 255.0, scale, for_model="thermal")
    assert check_aux(np.rint(metres * 50), "t.tiff", 255.0, for_model="thermal").dtype == np.float32
