"""Depth in centimetres for a model (or dataset) counting millimetres: every value fits the scale, so no file is
refused, but a folder or stream that never reaches a tenth of it is noted, by one rule (`RangeWatch`) in
`data check`, `predict` and the `Predictor`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

import smmcl
from smmcl.data.modality import SMALL_SHARE, STREAM_FRAMES, RangeWatch
from smmcl.deploy.predictor import Predictor
from smmcl.errors import AuxUnitsWarning

from support import build_tiny_model, tiny_config

SIZE = (24, 32)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The tiny model: 14 classes, data.aux_max=10000 (depth in millimetres)."""
    cfg = tiny_config()
    assert cfg.data.aux_max == 10000
    return smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg,
                                 tmp_path_factory.mktemp("w") / "tiny.safetensors")


def _room(seed: int, centimetres: bool) -> np.ndarray:
    """Depth of a room between 0.5 and 8 m, in millimetres or centimetres (uint16)."""
    mm = np.random.default_rng(seed).integers(500, 8000, SIZE)
    return (mm // 10 if centimetres else mm).astype(np.uint16)


def test_the_note_names_the_units_its_factor_fits_and_the_values_as_stored():
    """Trial 11 #197: whole metres named as centimetres beside x1000; #215: 200 shown for a file holding 2000."""
    metres = RangeWatch(10000.0, trained_top=8000.0)
    metres.see(np.full(SIZE, 8, np.uint16), "m.png")
    text = metres.problem(for_model=True)
    assert "(metres for millimetres)? then pass aux_scale=1000 " in text and "as stored" not in text
    tenth = RangeWatch(10000.0, aux_scale=0.1, trained_top=2500.0)  # millimetres declared as 0.1 mm
    tenth.see(np.full(SIZE, 2000, np.uint16), "d.png")
    text = tenth.problem(for_model=True)
    assert "is 200 (2000 as stored, x0.1) (in d.png)" in text and "(centimetres for millimetres)? then pass " \
        "aux_scale=1 " in text
    far = RangeWatch(10000.0, trained_top=800.0)  # trained on centimetres, given millimetres
    far.see(np.full(SIZE, 9000, np.uint16), "f.png")
    assert "(millimetres for centimetres)? then pass aux_scale=0.1 " in far.problem(for_model=True)
    odd = RangeWatch(1e6, trained_top=9e5)
    odd.see(np.full(SIZE, 9, np.uint16), "o.png")
    assert "(units 100000x larger)?" in odd.problem(for_model=True)


def test_the_rule_alone():
    watch = RangeWatch(10000.0)
    watch.see(np.full(SIZE, 800, np.uint16), "a.png")
    watch.see(np.full(SIZE, 950, np.uint16), "b.png")
    assert watch.problem() == ("the largest auxiliary value in all 2 images is 950 (in b.png), under 1/10 of "
                               "data.aux_max=10000: other units than aux_max counts (centimetres for millimetres)? or "
                               "data.aux_max 10x larger than their full scale?")  # trial 15 T28: the scale may be off
    assert "then pass aux_scale=10 (--aux-scale 10; the Predictor takes it when made: Predictor(..., aux_scale=10))" \
        in watch.problem(for_model=True)
    watch.see(np.full(SIZE, 1000, np.uint16), "c.png")  # a tenth of the scale reached: nothing to say
    assert watch.problem() is None
    # No measurement anywhere says nothing about units, but that there is nothing to read (trial 15: said nowhere),
    # whatever the scale, as soon as one image holds a reading none is said.
    for scale, blank in ((10000.0, np.zeros(SIZE, np.uint16)), (None, np.full(SIZE, np.nan, np.float32)),
                         (None, np.full(SIZE, 65535, np.uint16))):
        zeros = RangeWatch(scale)
        zeros.see(blank, "empty.png")
        zeros.see(np.zeros(SIZE, np.uint16), "empty2.png")
        said = zeros.problem()
        assert said.startswith("all 2 images hold no auxiliary measurement at all") and "empty.png" in said
        assert "aux_scale" not in said and "units" not in said
        assert "only the RGB image" in zeros.problem(for_model=True)
        zeros.see(np.full(SIZE, 9000, np.uint16), "real.png")
        assert zeros.problem() is None
    unset = RangeWatch(None)
    unset.see(np.full(SIZE, 3, np.uint16), "a.png")
    assert unset.problem() is None
    scaled = RangeWatch(10000.0, aux_scale=10)  # the values as the model reads them
    scaled.see(np.full(SIZE, 950, np.uint16), "a.png")
    assert scaled.problem() is None and SMALL_SHARE == 10
    # A model that recorded its training images' largest value (aux_top) is judged by that range, both ways.
    near = RangeWatch(10000.0, trained_top=900.0)  # trained on a near scene, or on centimetres
    near.see(np.full(SIZE, 800, np.uint16), "a.png")
    assert near.problem(for_model=True) is None
    near.see(np.full(SIZE, 9500, np.uint16), "b.png")
    assert "over 4x the largest its training images held (900)" in near.problem(for_model=True)
    assert "aux_scale=0.1" in near.problem(for_model=True) and near.problem() is None  # a dataset's check: aux_max
    far = RangeWatch(10000.0, trained_top=9000.0)
    far.see(np.full(SIZE, 800, np.uint16), "a.png")
    assert "under 1/4 of the largest its training images held (9000)" in far.problem(for_model=True)
    assert "convert the files into the model's units (x10)" in far.problem(for_model=True, files=True)
    # Trial 16 #14: the same scenes in centimetres sit at exactly a tenth of the largest value trained on, which
    # "under a tenth" missed; a scene half as far says nothing.
    same = RangeWatch(10000.0, trained_top=3000.0)
    same.see(np.full(SIZE, 300, np.uint16), "cm.png")
    assert "(centimetres for millimetres)? then pass aux_scale=10 " in same.problem(for_model=True)
    half = RangeWatch(10000.0, trained_top=3000.0)
    half.see(np.full(SIZE, 1500, np.uint16), "half.png")
    assert half.problem(for_model=True) is None
    tenfold = RangeWatch(10000.0, trained_top=3000.0)
    tenfold.see(np.full(SIZE, 30000, np.uint16), "mm_for_cm.png")
    assert "(millimetres for centimetres)? then pass aux_scale=0.1 " in tenfold.problem(for_model=True)


def test_predict_warns_for_a_folder_in_centimetres_and_not_for_millimetres(weights, tmp_path):
    for units, centimetres in (("cm", True), ("mm", False)):
        (tmp_path / units / "rgb").mkdir(parents=True)
        (tmp_path / units / "depth").mkdir()
        for i in range(3):
            Image.fromarray(np.random.default_rng(i).integers(0, 60, (*SIZE, 3), dtype=np.uint8)).save(
                tmp_path / units / "rgb" / f"f{i}.png")
            Image.fromarray(_room(i, centimetres)).save(tmp_path / units / "depth" / f"f{i}.png")
    cm = tmp_path / "cm"
    with pytest.warns(AuxUnitsWarning, match=r"in all 3 images is \d+ \(in .*depth/f\d.png\), under 1/10 of the model's "
                                             r"aux_max 10000: .*centimetres for millimetres.*aux_scale=10 .*made as given"):
        written = smmcl.predict(weights, cm / "rgb", cm / "depth", tmp_path / "p_cm", progress=False)
    assert len(written) == 6  # noted, not refused: a close-range scene is possible
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smmcl.predict(weights, cm / "rgb", cm / "depth", tmp_path / "p_cm10", progress=False, aux_scale=10)
        smmcl.predict(weights, tmp_path / "mm" / "rgb", tmp_path / "mm" / "depth", tmp_path / "p_mm", progress=False)


def test_the_predictor_judges_a_stream_once_after_its_first_frames(weights):
    rgb = np.full((*SIZE, 3), 40, np.uint8)
    predictor = Predictor(weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(STREAM_FRAMES - 1):  # too few frames to tell a near scene from other units
            predictor(rgb, _room(i, centimetres=True))
    with pytest.warns(AuxUnitsWarning, match=rf"in all {STREAM_FRAMES} frames so far .*aux_scale=10"):
        predictor(rgb, _room(99, centimetres=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor(rgb, _room(100, centimetres=True))  # said once
        millimetres = Predictor(weights)
        for i in range(STREAM_FRAMES + 1):
            millimetres(rgb, _room(i, centimetres=False))


def test_training_on_centimetres_with_a_millimetre_scale_is_said_before_it_starts(tmp_path):
    from smmcl.config import DataConfig
    from smmcl.data.dataset import RANGE_SAMPLE, RGBXDataset

    rng = np.random.default_rng(0)
    root = tmp_path / "d"
    for sub in ("RGB", "Depth", "Label"):
        (root / sub).mkdir(parents=True)
    for i in range(RANGE_SAMPLE + 4):
        Image.fromarray(rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8)).save(root / "RGB" / f"s{i}.png")
        Image.fromarray(_room(i, centimetres=True)).save(root / "Depth" / f"s{i}.png")
        Image.fromarray(rng.integers(0, 4, SIZE, dtype=np.uint8)).save(root / "Label" / f"s{i}.png")
    (root / "train.txt").write_text("".join(f"s{i}\n" for i in range(RANGE_SAMPLE + 4)))
    cfg = DataConfig(root=str(root), aux_max=10000, num_workers=0)
    with pytest.warns(AuxUnitsWarning, match=rf"in all {RANGE_SAMPLE} training images sampled is \d+ .*under 1/10 of "
                                             r"data.aux_max=10000: other units than aux_max counts"):
        RGBXDataset(cfg, "train", 4, train=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RGBXDataset(cfg, "train", 4)  # evaluation reads what it is given: the note is training's (and data check's)
        RGBXDataset(DataConfig(root=str(root), aux_max=1000, num_workers=0, crop_size=[24, 32]), "train", 4, train=True)  # its true scale


def test_a_few_marker_pixels_are_named_as_such_not_as_other_units():
    """Trial 6 C76-C78: millimetre depth with 0.8% of pixels at 65535 (a sensor's no-reading value) was answered
    with "pass aux_scale=0.1", which read every real value at a tenth, silently."""
    from smmcl.data.modality import units_problem

    depth = np.random.default_rng(0).integers(1000, 3200, (50, 100)).astype(np.uint16)
    depth.flat[::125] = 65535  # 0.8%
    problem = units_problem(depth, 10000, for_model="depth")
    assert problem.startswith("0.8% of the pixels are above 2x the full scale (a depth model whose aux_max is 10000; "
                              "up to 65535) while the rest fit it: a sensor's no-reading or saturation marker? give "
                              "such pixels as 0") and "aux_scale" not in problem
    assert "set such pixels to 0 in the files" in units_problem(depth, 10000)
    depth[depth == 65535] = 0
    assert units_problem(depth, 10000, for_model="depth") is None
    assert "pass aux_scale=0.1" in units_problem((depth * 10).astype(np.uint16), 10000, for_model="depth")  # units
    # Trial 12 #209: an invalid border row (2% of the frame) at the type's largest value is a marker too, however
    # many pixels it covers; values over the scale that differ are other units.
    depth[:3] = 65535  # 6%
    assert "no-reading or saturation marker" in units_problem(depth, 10000, for_model="depth")
    depth[:3] = np.arange(40000, 40000 + depth[:3].size).reshape(3, -1)
    assert "pass aux_scale=0.1" in units_problem(depth, 10000, for_model="depth")


def _room_dataset(root, centimetres: bool) -> None:
    rng = np.random.default_rng(0)
    for sub in ("RGB", "Depth", "Label"):
        (root / sub).mkdir(parents=True)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(root / "RGB" / f"s{i}.png")
        mm = np.random.default_rng(i).integers(500, 8000, (32, 40))
        Image.fromarray((mm // 10 if centimetres else mm).astype(np.uint16)).save(root / "Depth" / f"s{i}.png")
        Image.fromarray(rng.integers(0, 4, (32, 40), dtype=np.uint8)).save(root / "Label" / f"s{i}.png")
    (root / "train.txt").write_text("s0\ns1\ns2\ns3\n")
    (root / "test.txt").write_text("s4\ns5\n")


def test_a_model_trained_on_centimetres_notes_millimetres_everywhere_it_reads_them(tmp_path):
    """Trial 6 C189: trained on centimetres under a millimetre scale (warned then), the model was scored on
    millimetres, which fit its aux_max, without a word. Its weights and exports now keep the largest auxiliary value
    of its training images (`aux_top`), and eval, predict and the Predictor note inputs over ten times it."""
    from smmcl.deploy.metadata import read_metadata
    from smmcl.files import safetensors_metadata

    cm, mm = tmp_path / "cm", tmp_path / "mm"
    _room_dataset(cm, centimetres=True)
    _room_dataset(mm, centimetres=False)
    common = ["data.crop_size=[32,40]", "model.num_classes=4", "data.class_names=[]", "eval.exclude_classes=[]",
              "train.tensorboard=false"]
    run = tmp_path / "run"
    with pytest.warns(AuxUnitsWarning, match="under 1/10 of data.aux_max=10000"):  # said at training, as before
        smmcl.train(tiny_config(f"data.root={cm}", f"train.out_dir={run}", "train.max_iters=1", *common))
    weights = run / "model.safetensors"
    top = float(safetensors_metadata(weights)["aux_top"])
    assert 700 < top < 800  # the largest of the (4) training images sampled, in their centimetres

    note = rf"over 4x the largest its training images held \({top:g}\): other units than it was trained on"
    with pytest.warns(AuxUnitsWarning, match=note + r" .*convert the files into the model's units \(x0.1\).*scored as"):
        smmcl.evaluate_checkpoint(weights, tiny_config(f"data.root={mm}", *common), progress=False)
    with pytest.warns(AuxUnitsWarning, match=note + r" .*convert the files into the model's units \(x0.1\)"):
        # Features are read as eval scores: by the one list of checks (trial 10 #210)
        smmcl.analyze_features(tiny_config(f"data.root={mm}", *common), {"cm": weights}, tmp_path / "f",
                               stage=2, per_class=40)
    with pytest.warns(AuxUnitsWarning, match=note + r" .*aux_scale=0.1 .*made as given"):
        smmcl.predict(weights, mm / "RGB", mm / "Depth", tmp_path / "p_mm", progress=False)
    with warnings.catch_warnings():  # its own units, and millimetres brought into them, say nothing
        warnings.simplefilter("error", AuxUnitsWarning)
        smmcl.evaluate_checkpoint(weights, tiny_config(f"data.root={cm}", *common), progress=False)
        smmcl.predict(weights, mm / "RGB", mm / "Depth", tmp_path / "p_mm01", progress=False, aux_scale=0.1)

    onnx = tmp_path / "m.onnx"
    smmcl.export(weights, onnx, size=(32, 40))
    assert read_metadata(onnx).preprocessing.aux_top == top
    rgb = np.asarray(Image.open(mm / "RGB" / "s0.png"))
    for model in (weights, onnx):
        predictor = Predictor(model)
        with pytest.warns(AuxUnitsWarning, match=rf"in all {STREAM_FRAMES} frames so far .*" + note):
            for i in range(STREAM_FRAMES):
                predictor(rgb, np.asarray(Image.open(mm / "Depth" / f"s{i % 6}.png")))


def test_markers_say_nothing_of_a_scenes_range_and_an_8bit_thermal_model_takes_no_scale():
    """Trial 13 #40, #248b: with a wrong --aux-scale 0.1, 65535 markers read as 6553 stood for the scene and hid depth
    read at a tenth; #245, #247: a frame of no readings at all was advised aux_scale=0.1; #350: 16-bit depth x0.098
    passed a thermal model trained on 8-bit images."""
    from smmcl.data.modality import units_problem

    depth = np.random.default_rng(0).integers(1000, 3200, (50, 100)).astype(np.uint16)
    depth.flat[::125] = 65535
    watch = RangeWatch(10000.0, aux_scale=0.1, trained_top=8000.0)
    watch.see(depth, "d.png")
    assert "the largest auxiliary value in the one image is 319.9 (3199 as stored, x0.1)" in watch.problem(for_model=True)
    blank = np.full((48, 64), 65535, np.uint16)
    assert units_problem(blank, 10000, for_model="depth") == (
        "every pixel holds 65535, the largest uint16 value: a frame with no reading at all (a sensor's no-reading or "
        "saturation marker)? give such pixels as 0 (no measurement)")
    message = units_problem(depth, 255, aux_scale=0.098, for_model="thermal")
    assert message.startswith("aux_scale 0.098 for a thermal model trained on 8-bit images (full scale 255)")
    assert units_problem(np.full((8, 8), 90, np.uint8), 255, for_model="thermal") is None  # its own images, unscaled


def test_auxiliary_images_with_no_measurement_at_all_are_said_by_every_reader(weights, tmp_path):
    """Trial 15 (F4b, T32, D10, H10): all-zero depth passed predict, training, `data check` and `data hha` without a
    word, and (H9) `data hha` encoded 65535 no-reading pixels as points 65.5 m away."""
    from smmcl.config import DataConfig
    from smmcl.data.check import check_dataset
    from smmcl.data.dataset import RGBXDataset
    from smmcl.data.hha_folder import convert_folder
    from smmcl.errors import DatasetError

    root = tmp_path / "d"
    _room_dataset(root, centimetres=False)
    for path in (root / "Depth").iterdir():
        Image.fromarray(np.zeros((32, 40), np.uint16)).save(path)
    cfg = DataConfig(root=str(root), aux_max=10000, num_workers=0)
    report = check_dataset(cfg, 4, progress=False)
    assert any("all 6 images hold no auxiliary measurement at all" in p for p in report.problems)
    with pytest.warns(AuxUnitsWarning, match="training images sampled hold no auxiliary measurement at all"):
        RGBXDataset(cfg, "train", 4, train=True)
    with pytest.warns(AuxUnitsWarning, match="no auxiliary measurement at all .*only the RGB image.*made as given"):
        smmcl.predict(weights, root / "RGB", root / "Depth", tmp_path / "p", progress=False)
    with pytest.warns(AuxUnitsWarning, match="all 6 depth images hold no auxiliary measurement.*written as given"):
        convert_folder(root / "Depth", tmp_path / "hha", (30.0, 30.0, 20.0, 16.0), progress=False)
    # One frame with readings: nothing to say of the folder (a blank frame among others is a sensor's dropout).
    Image.fromarray(np.random.default_rng(0).integers(500, 8000, (32, 40)).astype(np.uint16)).save(
        root / "Depth" / "s5.png")
    assert not any("no auxiliary measurement" in p for p in check_dataset(cfg, 4, progress=False).problems)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert_folder(root / "Depth", tmp_path / "hha2", (30.0, 30.0, 20.0, 16.0), progress=False)
    marked = np.random.default_rng(0).integers(500, 8000, (32, 40)).astype(np.uint16)
    marked[0] = 65535  # an invalid border row
    Image.fromarray(marked).save(root / "Depth" / "s5.png")
    with pytest.raises(DatasetError, match=r"s5.png: 40 pixels hold 65535, the largest uint16 value: a sensor's "
                                           r"no-reading or saturation marker, which HHA would encode as points 65.5 m "
                                           r"away: set such pixels to 0"):
        convert_folder(root / "Depth", tmp_path / "hha3", (30.0, 30.0, 20.0, 16.0), progress=False)
