"""Photometric augmentation for dark scenes (`data.photometric`, not in the paper): seeding, each operation,
training only, and the config checks."""

import numpy as np
import pytest
import torch

from smmcl.config import DataConfig, PhotometricConfig, load_config
from smmcl.data.dataset import RGBXDataset
from smmcl.data.io import write_image
from smmcl.data.photometric import PhotometricAugment, photometric_rng
from smmcl.data.transforms import eval_transform, to_tensor_aux, to_tensor_rgb
from smmcl.errors import ConfigError

from support import ROOT

CONFIGS = ROOT / "configs"
SEEDS = (0, 7, 2**31 + 5)
STRONG = dict(enabled=True, exposure=[0.3, 3.0], gamma=[0.7, 1.4], shot_noise=[0.02, 0.05], read_noise=[0.0, 0.02],
              aux_holes=0.2, aux_noise=0.05)
IDENTITY = dict(enabled=True, exposure=[1.0, 1.0], gamma=[1.0, 1.0], shot_noise=[0.0, 0.0], read_noise=[0.0, 0.0])


def make_folder(root, n=3, size=(24, 32)):
    """Dark RGB (0..60), 16-bit depth in mm (all valid), labels; train = all, test = the last one."""
    rng = np.random.default_rng(0)
    names = [f"s{i}" for i in range(n)]
    for name in names:
        write_image(root / "RGB" / f"{name}.png", rng.integers(0, 60, (*size, 3), dtype=np.uint8))
        write_image(root / "Depth" / f"{name}.png", rng.integers(500, 9000, size, dtype=np.uint16))
        write_image(root / "Label" / f"{name}.png", rng.integers(0, 5, size, dtype=np.uint8))
    (root / "train.txt").write_text("\n".join(names) + "\n")
    (root / "test.txt").write_text(names[-1] + "\n")


def data_config(root, **photometric) -> DataConfig:
    return DataConfig(root=str(root), crop_size=[16, 20], scales=[0.75, 1.0, 1.25], aux_max=10000.0, num_workers=0,
                      photometric=PhotometricConfig(**photometric))


def todays_pipeline(ds: RGBXDataset, i: int, seed: int):
    """The training sample as the code before photometric augmentation built it."""
    rgb, aux, label = ds.load_raw(i)
    return ds.augment(to_tensor_rgb(rgb), to_tensor_aux(aux, ds.cfg.aux_max), torch.from_numpy(label),
                      np.random.default_rng(seed))


def same(a: dict, b) -> bool:
    b = b if isinstance(b, dict) else dict(zip(("rgb", "aux", "label"), b))
    return all(torch.equal(a[k], b[k]) for k in ("rgb", "aux", "label"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photometric")
    make_folder(root)
    return root


def test_disabled_is_todays_pipeline_bit_for_bit(folder):
    ds = RGBXDataset(data_config(folder), "train", 5, train=True)
    assert ds.photometric is None
    # Enabled with every range neutral: the images pass unchanged and the geometric draws are the same,
    # so the photometric stream is separate from the geometric one.
    neutral = RGBXDataset(data_config(folder, **IDENTITY), "train", 5, train=True)
    assert neutral.photometric is not None
    for i in range(len(ds)):
        for seed in SEEDS:
            assert same(ds[(i, seed)], todays_pipeline(ds, i, seed))
            assert same(neutral[(i, seed)], ds[(i, seed)])


def test_same_seed_same_images_other_seed_other_images(folder):
    ds = RGBXDataset(data_config(folder, **STRONG), "train", 5, train=True)
    again = RGBXDataset(data_config(folder, **STRONG), "train", 5, train=True)
    for i in range(len(ds)):
        assert same(ds[(i, 3)], again[(i, 3)])
    raw_rgb, raw_aux, _ = ds.load_raw(0)
    a = ds.photometric(raw_rgb, raw_aux, photometric_rng(3))
    b = ds.photometric(raw_rgb, raw_aux, photometric_rng(4))
    assert not np.array_equal(a[0], b[0]) and not np.array_equal(a[1], b[1])
    # The photometric stream is a child of the seed, not the geometric stream itself.
    assert photometric_rng(3).random() != np.random.default_rng(3).random()


def test_labels_and_geometry_untouched(folder):
    plain = RGBXDataset(data_config(folder), "train", 5, train=True)
    ds = RGBXDataset(data_config(folder, **STRONG), "train", 5, train=True)
    for i in range(len(ds)):
        for seed in SEEDS:
            out = ds[(i, seed)]
            assert torch.equal(out["label"], plain[(i, seed)]["label"])
            # Exactly: photometric on the raw arrays from its own stream, then today's geometric ops and
            # normalisation with today's generator.
            rgb, aux, label = ds.load_raw(i)
            rgb2, aux2 = ds.photometric(rgb, aux, photometric_rng(seed))
            expect = ds.augment(to_tensor_rgb(rgb2), to_tensor_aux(aux2, 10000.0), torch.from_numpy(label),
                                np.random.default_rng(seed))
            assert same(out, expect)
            assert not torch.equal(out["rgb"], plain[(i, seed)]["rgb"])


def test_cached_raw_arrays_are_not_written(folder):
    cfg = data_config(folder, **STRONG)
    cfg.cache = True
    ds = RGBXDataset(cfg, "train", 5, train=True)
    before = [np.copy(a) for a in ds.load_raw(0)]
    ds[(0, 1)]
    assert all(np.array_equal(a, b) for a, b in zip(before, ds.load_raw(0)))


def test_eval_split_is_never_augmented(folder):
    ds = RGBXDataset(data_config(folder, **STRONG), "test", 5)
    assert ds.photometric is None and ds.augment is None
    rgb, aux, label = ds.load_raw(0)
    expect = eval_transform(to_tensor_rgb(rgb), to_tensor_aux(aux, 10000.0), torch.from_numpy(label))
    assert same(ds[0], expect) and same(ds[(0, 5)], expect)


def test_exposure_gain_two_doubles_a_dark_image():
    rgb = np.random.default_rng(0).integers(0, 100, (32, 32, 3), dtype=np.uint8)
    aug = PhotometricAugment(exposure=(2.0, 2.0))
    out = aug.rgb(rgb, aug.draw(photometric_rng(0)), photometric_rng(0))
    assert out.dtype == np.uint8 and np.array_equal(out, 2 * rgb.astype(np.int64))
    assert out.mean() == pytest.approx(2 * rgb.mean())
    clipped = aug.rgb(np.full((4, 4, 3), 200, np.uint8), aug.draw(photometric_rng(0)), photometric_rng(0))
    assert (clipped == 255).all()
    # A log-uniform gain over [0.5, 2] is darker as often as brighter.
    gains = [PhotometricAugment(exposure=(0.5, 2.0)).draw(photometric_rng(s)).exposure for s in range(400)]
    assert min(gains) >= 0.5 and max(gains) <= 2.0 and 150 < sum(g < 1 for g in gains) < 250


def test_gamma_and_noise_requantise_to_8bit():
    flat = np.full((128, 128, 3), 64, np.uint8)  # signal 0.251
    rng = photometric_rng(1)
    aug = PhotometricAugment(gamma=(2.0, 2.0))
    assert (aug.rgb(flat, aug.draw(rng), rng) == round(255 * (64 / 255) ** 2)).all()
    x = 64 / 255
    cases = ((0.05, 0.0, 0.05 * np.sqrt(x)), (0.0, 0.02, 0.02), (0.04, 0.02, np.hypot(0.04 * np.sqrt(x), 0.02)))
    for shot, read, std in cases:
        aug = PhotometricAugment(shot_noise=(shot, shot), read_noise=(read, read))
        out = aug.rgb(flat, aug.draw(rng), rng)
        assert out.dtype == np.uint8 and out.min() >= 0 and out.max() <= 255
        assert out.std() / 255 == pytest.approx(std, rel=0.08)
        assert out.mean() == pytest.approx(64, abs=0.3)  # zero-mean noise far from the clip limits
    # Shot noise grows with the signal, read noise does not.
    aug = PhotometricAugment(shot_noise=(0.05, 0.05))
    dark, bright = (aug.rgb(np.full((128, 128, 3), v, np.uint8), aug.draw(rng), rng).std() for v in (16, 144))
    assert bright / dark == pytest.approx(3.0, rel=0.12)


def test_depth_holes_only_create_zeros():
    rng = np.random.default_rng(0)
    depth = rng.integers(1, 10000, (96, 128), dtype=np.uint16)
    depth[:8] = 0  # holes already there stay
    for size in (1, 8):
        aug = PhotometricAugment(aux_holes=0.15, aux_hole_size=size)
        out = aug.aux(depth, aug.draw(photometric_rng(2)), photometric_rng(2))
        assert out.dtype == np.uint16
        changed = out != depth
        assert (out[changed] == 0).all() and (out[:8] == 0).all()
        assert (out == 0).mean() == pytest.approx(8 / 96 + 0.15 * 88 / 96, abs=0.03)
    # HHA: a hole is 0 in all three channels; holes and noise leave the RGB alone.
    hha = rng.integers(1, 256, (32, 40, 3), dtype=np.uint8)
    aug = PhotometricAugment(aux_holes=0.3, aux_kind="hha")
    rgb = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    out_rgb, out = aug(rgb, hha, photometric_rng(3))
    assert np.array_equal(out_rgb, rgb)
    hole = (out == 0).all(-1)
    assert 0.2 < hole.mean() < 0.4 and np.array_equal(out[~hole], hha[~hole])
    assert ((out == 0).any(-1) == hole).all()


def test_depth_noise_is_relative_and_keeps_holes():
    depth = np.full((128, 128), 4000, np.uint16)
    depth[::7] = 0
    aug = PhotometricAugment(aux_noise=0.02)
    out = aug.aux(depth, aug.draw(photometric_rng(4)), photometric_rng(4))
    valid = depth > 0
    assert out.dtype == np.uint16 and (out[~valid] == 0).all() and (out[valid] > 0).all()
    assert (out[valid] / 4000.0).std() == pytest.approx(0.02, rel=0.08)
    far = np.full((8, 8), 1.0, np.float32)
    assert aug.aux(far, aug.draw(photometric_rng(5)), photometric_rng(5)).dtype == np.float32
    # Depth options do nothing to thermal.
    thermal = np.full((8, 8), 100, np.uint8)
    both = PhotometricAugment(aux_noise=0.2, aux_holes=0.5, aux_kind="thermal")
    assert np.array_equal(both.aux(thermal, both.draw(photometric_rng(0)), photometric_rng(0)), thermal)


def test_thermal_gain_and_offset():
    thermal = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    aug = PhotometricAugment(aux_gain=(2.0, 2.0), aux_offset=(0.1, 0.1), aux_kind="thermal")
    out = aug.aux(thermal, aug.draw(photometric_rng(0)), photometric_rng(0))
    expect = np.clip(np.rint(2.0 * thermal + 0.1 * 255), 0, 255).astype(np.uint8)
    assert out.dtype == np.uint8 and np.array_equal(out, expect)
    # The offset is a fraction of the value mapped to 1.0 (data.aux_max when set).
    aug = PhotometricAugment(aux_offset=(-0.01, -0.01), aux_kind="thermal", aux_max=4000.0)
    wide = np.full((4, 4), 1000, np.uint16)
    assert (aug.aux(wide, aug.draw(photometric_rng(0)), photometric_rng(0)) == 960).all()


def test_config_defaults_off_and_paper_configs_unchanged():
    assert load_config(CONFIGS / "demo.yaml").data.photometric == PhotometricConfig()
    assert PhotometricConfig().enabled is False
    for path in sorted((CONFIGS / "paper").glob("*.yaml")):
        assert load_config(path).data.photometric.enabled is False, path.name
    cfg = load_config(CONFIGS / "demo.yaml", ["data.photometric.enabled=true", "data.photometric.exposure=[0.25,1]",
                                              "data.photometric.aux_holes=0.05", "data.photometric.aux_hole_size=6"])
    assert cfg.data.photometric.enabled and cfg.data.photometric.exposure == [0.25, 1.0]


@pytest.mark.parametrize("override, match", [
    ("data.photometric.exposure=[0,2]",
     r"data\.photometric\.exposure=\[0\.0, 2\.0\]: expected \[low, high\] with both numbers > 0"),
    ("data.photometric.gamma=[1.2,0.8]", r"data\.photometric\.gamma=.*low <= high"),
    ("data.photometric.gamma=[1.0]", r"data\.photometric\.gamma=\[1\.0\]: expected \[low, high\]"),
    ("data.photometric.shot_noise=[0,1.5]", r"data\.photometric\.shot_noise=.*both numbers in \[0, 1\]"),
    ("data.photometric.read_noise=[-0.1,0]", r"data\.photometric\.read_noise=.*both numbers in \[0, 1\]"),
    ("data.photometric.aux_holes=1.0", r"data\.photometric\.aux_holes=1\.0: expected a number in \[0, 1\)"),
    ("data.photometric.aux_hole_size=0", r"data\.photometric\.aux_hole_size=0: expected an integer >= 1"),
    ("data.photometric.aux_noise=-0.01", r"data\.photometric\.aux_noise=-0\.01: expected a number in \[0, 1\)"),
    ("data.photometric.aux_offset=[-2,0]", r"data\.photometric\.aux_offset=.*both numbers in \[-1, 1\]"),
    ("data.photometric.brightness=1", r"brightness"),
])
def test_config_ranges_are_named(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(CONFIGS / "demo.yaml", [override])


def test_config_refuses_options_of_another_modality():
    on = "data.photometric.enabled=true"
    with pytest.raises(ConfigError,
                       match=r"data\.photometric\.aux_noise=0\.1: expected 0 with data\.aux_kind=thermal \(depth only\)"):
        load_config(CONFIGS / "demo.yaml", [on, "data.aux_kind=thermal", "data.photometric.aux_noise=0.1"])
    with pytest.raises(ConfigError, match=r"data\.photometric\.aux_noise=.*data\.aux_kind=hha"):
        load_config(CONFIGS / "demo.yaml", [on, "data.aux_kind=hha", "data.photometric.aux_noise=0.1"])
    with pytest.raises(ConfigError,
                       match=r"data\.photometric\.aux_gain=.*expected \[1, 1\] with data\.aux_kind=depth \(thermal only\)"):
        load_config(CONFIGS / "demo.yaml", [on, "data.photometric.aux_gain=[0.8,1.2]"])
    with pytest.raises(ConfigError, match=r"data\.photometric\.aux_holes=.*data\.aux_kind=thermal \(depth/hha only\)"):
        load_config(CONFIGS / "demo.yaml", [on, "data.aux_kind=thermal", "data.photometric.aux_holes=0.1"])
    # Allowed where they apply, and never an error while the augmentation is off.
    load_config(CONFIGS / "demo.yaml", [on, "data.aux_kind=hha", "data.photometric.aux_holes=0.1"])
    load_config(CONFIGS / "demo.yaml", [on, "data.aux_kind=thermal", "data.photometric.aux_gain=[0.8,1.2]",
                                        "data.photometric.aux_offset=[-0.05,0.05]"])
    load_config(CONFIGS / "demo.yaml", ["data.aux_kind=thermal", "data.photometric.aux_noise=0.1"])
