"""The built-in synthetic datasets: layout, determinism, class coverage and the dark-capture models."""

import json

import numpy as np
import pytest
from PIL import Image

from smmcl.data.classes import LLRGBD_CLASSES, LLRGBD_PALETTE, MFNET_CLASSES, MFNET_PALETTE, colorize
from smmcl.data.synth import KINDS, generate_dataset, render_scene
from smmcl.data.synth.indoor import depth_sensor
from smmcl.data.synth.raycast import Camera, box, cast, frustum, rotation, sphere
from smmcl.outputs import MANIFEST_NAME

SIZE = (60, 80)
AUX = {"indoor-rgbd": ("Depth", "I;16", np.uint16), "night-rgbt": ("Thermal", "L", np.uint8)}
# The dark-scene kinds; indoor-rgbd-lit is the same rooms normally exposed (tested on its own below).
DARK = sorted(AUX)


@pytest.fixture(scope="module", params=DARK)
def dataset(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    summary = generate_dataset(request.param, out, 8, size=SIZE, seed=3)
    return request.param, out, summary


@pytest.fixture(scope="module")
def scenes():
    """30 scenes of each kind as arrays, for statistics over many scenes."""
    return {kind: [render_scene(kind, 0, i, (90, 120)) for i in range(30)] for kind in DARK}


def _files(out):
    return sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def test_layout_modes_and_bit_depths(dataset):
    kind, out, _ = dataset
    aux_dir, aux_mode, aux_dtype = AUX[kind]
    names = [f"scene_{i:05d}" for i in range(8)]
    for name in names:
        with Image.open(out / "RGB" / f"{name}.png") as rgb, Image.open(out / aux_dir / f"{name}.png") as aux, \
                Image.open(out / "Label" / f"{name}.png") as label:
            assert (rgb.mode, aux.mode, label.mode) == ("RGB", aux_mode, "L")
            assert rgb.size == aux.size == label.size == (SIZE[1], SIZE[0])
            assert np.asarray(aux).dtype == aux_dtype
    assert {p.name for p in out.iterdir()} == {"RGB", aux_dir, "Label", "train.txt", "test.txt", "meta.json", MANIFEST_NAME}


def test_splits_cover_all_names_without_overlap(dataset):
    _, out, summary = dataset
    train = (out / "train.txt").read_text().split()
    test = (out / "test.txt").read_text().split()
    assert train + test == [f"scene_{i:05d}" for i in range(8)]  # the test split is the last quarter
    assert len(test) == 2 and not set(train) & set(test)
    assert (summary["num_train"], summary["num_test"]) == (6, 2)


def test_meta_describes_the_dataset(dataset):
    kind, out, summary = dataset
    meta = json.loads((out / "meta.json").read_text())
    classes, palette = (LLRGBD_CLASSES, LLRGBD_PALETTE) if kind == "indoor-rgbd" else (MFNET_CLASSES, MFNET_PALETTE)
    assert meta["kind"] == kind and meta["size"] == list(SIZE) and meta["seed"] == 3 and meta["num"] == 8
    assert meta["class_names"] == classes and meta["palette"] == [list(c) for c in palette]
    assert meta["aux_dir"] == AUX[kind][0]
    assert (meta["aux_unit"], meta["aux_max"]) == (("mm", 10000) if kind == "indoor-rgbd" else ("8-bit", 255))
    assert sum(meta["class_pixels"].values()) == 8 * SIZE[0] * SIZE[1]
    assert {k: v for k, v in summary.items() if k in meta} == meta


def test_label_values_in_class_range(dataset):
    kind, out, _ = dataset
    for path in (out / "Label").glob("*.png"):
        assert np.asarray(Image.open(path)).max() < len(KINDS[kind].classes)


def test_same_seed_same_bytes_and_scenes_independent_of_num(dataset, tmp_path):
    kind, out, _ = dataset
    generate_dataset(kind, tmp_path / "again", 3, size=SIZE, seed=3)
    for path in _files(tmp_path / "again" / "RGB") + _files(tmp_path / "again" / "Label"):
        assert path.read_bytes() == (out / path.relative_to(tmp_path / "again")).read_bytes()
    generate_dataset(kind, tmp_path / "other", 3, size=SIZE, seed=4)
    for name in ("RGB", "Label"):
        other = (tmp_path / "other" / name / "scene_00000.png").read_bytes()
        assert other != (out / name / "scene_00000.png").read_bytes()


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="underwater.*indoor-rgbd, indoor-rgbd-lit, night-rgbt"):
        generate_dataset("underwater", "unused", 1)
    for bad in ({"num": 0}, {"num": 2, "test_fraction": 1.0}, {"num": 2, "seed": -1}, {"num": 2, "size": (8, 8)}):
        with pytest.raises(ValueError):
            generate_dataset("indoor-rgbd", "unused", **bad)


@pytest.mark.parametrize("kind", DARK)
def test_every_class_appears(scenes, kind):
    k = len(KINDS[kind].classes)
    counts = sum(np.bincount(label.reshape(-1), minlength=k) for _, _, label in scenes[kind])
    assert len(counts) == k and (counts > 0).all(), dict(zip(KINDS[kind].classes, counts.tolist()))


@pytest.mark.parametrize("kind", DARK)
def test_rgb_is_dark_and_noisy(scenes, kind):
    flat = 12 if kind == "indoor-rgbd" else 0  # wall, or the unlabelled road and buildings
    means, noise = [], []
    for rgb, _, label in scenes[kind]:
        g = rgb.astype(np.float64).mean(-1)
        means.append(g.mean())
        # Neighbours inside one flat region differ mostly by sensor noise.
        same = (label[:, 1:] == flat) & (label[:, :-1] == flat)
        noise.append(np.abs(g[:, 1:] - g[:, :-1])[same].mean())
    assert 5 < np.mean(means) < 50
    assert np.median(noise) > 1.0


def test_depth_is_metric_with_holes(scenes):
    for _, depth, _ in scenes["indoor-rgbd"]:
        valid = depth[depth > 0]
        assert 0.003 < (depth == 0).mean() < 0.5
        assert 300 < valid.min() and valid.max() < 10000 and 1000 < np.median(valid) < 7000


def test_depth_noise_grows_with_distance():
    zero = np.zeros((64, 64))
    spread = []
    for z in (1.0, 4.0):
        depth = depth_sensor(np.full((64, 64), z), zero, np.random.default_rng(0))
        spread.append(np.std(depth[depth > 0] - 1000 * z))
    assert 0.5 < spread[0] < 5 and 15 < spread[1] < 40  # about 1.9 mm and 26 mm (Kinect axial noise)


def test_people_are_warm_in_thermal(scenes):
    person, rest = [], []
    for _, thermal, label in scenes["night-rgbt"]:
        if (label == 2).sum() > 20:
            person.append(thermal[label == 2].mean())
            rest.append(thermal[label == 0].mean())
    assert len(person) > 10 and np.mean(person) > np.mean(rest) + 40


def test_colour_alone_is_a_weak_cue(scenes):
    """Paintings and walls have about the same colour on average, well within the pixel noise;
    a per-class colour lookup cannot separate the classes."""
    diffs, spreads = [], []
    for rgb, _, label in scenes["indoor-rgbd"]:
        painting, wall = rgb[label == 8].astype(np.float64), rgb[label == 12].astype(np.float64)
        if len(painting) > 30:
            diffs.append(painting.mean(0) - wall.mean(0))
            spreads.append(wall.std(0))
    assert len(diffs) > 10
    assert (np.abs(np.mean(diffs, 0)) < np.mean(spreads, 0)).all()
    # Nearest class-mean colour, fitted on 20 scenes and tried on 10: far from the labels.
    k = len(LLRGBD_CLASSES)
    pixels = [(rgb.reshape(-1, 3).astype(np.float64), label.reshape(-1)) for rgb, _, label in scenes["indoor-rgbd"]]
    x, y = np.concatenate([p[0] for p in pixels[:20]]), np.concatenate([p[1] for p in pixels[:20]])
    means = np.stack([x[y == c].mean(0) for c in range(k)])
    x, y = np.concatenate([p[0] for p in pixels[20:]]), np.concatenate([p[1] for p in pixels[20:]])
    pred = ((x[:, None] - means[None]) ** 2).sum(-1).argmin(1)
    recall = [np.mean(pred[y == c] == c) for c in range(k) if (y == c).any()]
    assert np.mean(recall) < 0.35


def test_colorize_maps_palette_and_ignore():
    label = np.array([[0, 1], [255, 8]], np.uint8)
    image = colorize(label, MFNET_PALETTE)
    assert image.shape == (2, 2, 3) and image.dtype == np.uint8
    assert image[0, 1].tolist() == list(MFNET_PALETTE[1]) and image[1, 0].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="outside"):
        colorize(np.array([[9]], np.uint8), MFNET_PALETTE)
    assert len(set(LLRGBD_PALETTE)) == len(LLRGBD_CLASSES) and len(set(MFNET_PALETTE)) == len(MFNET_CLASSES)


def test_raycast_depth_is_z_along_the_optical_axis():
    cam = Camera(30, 40, 60.0, (0.0, 0.0, 0.0))
    hits = cast(cam, [box((0, 0, 5.05), (20, 20, 0.05), 1)])  # a wall facing the camera at z = 5
    assert np.allclose(hits.depth, 5.0) and np.allclose(hits.normal, [0, 0, -1])
    hits = cast(cam, [sphere((0, 0, 4), 1.0, 2), box((0, 0, 3), (3, 3, 4), 3)])  # a ball inside a room
    assert hits.index[15, 20] == 0 and abs(hits.depth[15, 20] - 3.0) < 0.01
    assert (hits.labels([sphere((0, 0, 4), 1.0, 2), box((0, 0, 3), (3, 3, 4), 3)], 0) > 0).all()


def test_raycast_screen_culling_matches_testing_every_ray():
    rng = np.random.default_rng(0)
    prims = [box((0, 1.5, 3), (3, 1.5, 4), 0)]
    for i in range(30):
        c = (rng.uniform(-2, 2), rng.uniform(0.2, 2), rng.uniform(1, 6))
        prims.append([box(c, rng.uniform(0.05, 0.4, 3), 1, yaw=rng.uniform(0, 3)), sphere(c, rng.uniform(0.05, 0.3), 2),
                      frustum(c, 0.2, 0.3, 0.05, 3, rot=rotation(0.3, 1.0, 0.2))][i % 3])
    cam = Camera(48, 64, 70.0, (0.0, 1.2, -0.5), yaw=0.2, pitch=-0.2)
    culled = cast(cam, prims)
    cam.screen_rects = lambda ps: np.array([[0, 48, 0, 64]] * len(ps))
    full = cast(cam, prims)
    assert np.array_equal(culled.index, full.index) and np.allclose(culled.depth, full.depth)
    assert len(np.unique(culled.index)) > 10


def test_lit_kind_is_the_same_room_normally_exposed(scenes):
    for i, (dark_rgb, _, dark_label) in enumerate(scenes["indoor-rgbd"][:6]):
        rgb, depth, label = render_scene("indoor-rgbd-lit", 0, i, (90, 120))
        assert np.array_equal(label, dark_label) and depth.dtype == np.uint16
        assert rgb.mean() > 3 * dark_rgb.mean()


def test_a_split_asked_for_gets_a_scene_and_no_split_writes_no_list(tmp_path, capsys):
    """Trial 16 #290: a val fraction that gave no scene dropped the split unsaid; #294: a test fraction of 0 wrote an
    empty test.txt, which `data check` then called a problem."""
    from smmcl.cli import main

    with pytest.raises(ValueError, match=r"--val-fraction 0.4 of 2 scenes gives no val scene \(train 1, val 0, test 1"):
        generate_dataset("indoor-rgbd", tmp_path / "few", 2, size=(32, 40), val_fraction=0.4, test_fraction=0.4)
    assert not (tmp_path / "few").exists()
    generate_dataset("indoor-rgbd", tmp_path / "all", 4, size=(32, 40), test_fraction=0.0)
    assert sorted(p.name for p in (tmp_path / "all").glob("*.txt")) == ["train.txt"]
    assert main(["data", "check", str(tmp_path / "all")]) == 0
    assert "no test split, which eval scores by default" in capsys.readouterr().out
