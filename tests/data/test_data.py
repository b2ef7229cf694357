import re

import numpy as np
import pytest
import torch

from smmcl.config import DataConfig
from smmcl.data.dataset import RGBXDataset
from smmcl.data.io import write_image
from smmcl.data.sampler import ResumableBatchSampler
from smmcl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, TrainAugment, to_tensor_aux
from smmcl.errors import DatasetError


def make_folder(root, n=4, size=(24, 32), num_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(n)]
    for name in names:
        write_image(root / "RGB" / f"{name}.png", rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        write_image(root / "Depth" / f"{name}.png", rng.integers(1, 9000, size, dtype=np.uint16))
        write_image(root / "Label" / f"{name}.png", rng.integers(0, num_classes, size, dtype=np.uint8))
    (root / "train.txt").write_text("\n".join(names[:3]) + "\n")
    (root / "test.txt").write_text(names[3] + "\n")
    return DataConfig(root=str(root), crop_size=[16, 20], aux_max=10000.0, num_workers=0)


def test_loads_shapes_dtypes_and_normalisation(tmp_path):
    cfg = make_folder(tmp_path)
    ds = RGBXDataset(cfg, "test", num_classes=5)
    s = ds[0]
    assert s["rgb"].shape == (3, 24, 32) and s["aux"].shape == (3, 24, 32) and s["label"].dtype == torch.int64
    raw_rgb, raw_depth, _ = ds.load_raw(0)
    expect = (raw_rgb[0, 0, 0] / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert float(s["rgb"][0, 0, 0]) == pytest.approx(expect, abs=1e-5)
    # single-channel depth is repeated to three channels, scaled by aux_max before normalising
    d = raw_depth[0, 0] / 10000.0
    assert [float(s["aux"][c, 0, 0]) for c in range(3)] == pytest.approx(
        [(d - m) / sd for m, sd in zip(IMAGENET_MEAN, IMAGENET_STD)], abs=1e-5
    )


def test_aux_scaling_defaults_to_dtype_max():
    assert float(to_tensor_aux(np.full((2, 2), 255, np.uint8), None).max()) == 1.0
    assert float(to_tensor_aux(np.full((2, 2), 65535, np.uint16), None).max()) == 1.0


def test_missing_folder_and_list_are_named(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        RGBXDataset(DataConfig(root=str(tmp_path / "nowhere")), "train", 5)
    cfg = make_folder(tmp_path / "d")
    (tmp_path / "d" / "Depth").rename(tmp_path / "d" / "Depth_moved")
    with pytest.raises(DatasetError, match="'Depth'"):
        RGBXDataset(cfg, "train", 5)
    cfg = make_folder(tmp_path / "e")
    with pytest.raises(DatasetError, match="val.txt"):
        RGBXDataset(cfg, "val", 5)


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16"])
def test_lists_saved_by_windows_editors_read_alike(tmp_path, codec):
    """Notepad's byte-order mark and PowerShell's UTF-16 (trial 7 #169): the mark is no part of the first name."""
    cfg = make_folder(tmp_path / "d")
    (tmp_path / "d" / "train.txt").write_text("# my frames\r\ns0\r\ns1\r\n  # night\r\ns2\r\n", encoding=codec)
    assert RGBXDataset(cfg, "train", 5).names == ["s0", "s1", "s2"]  # and comment lines skipped (trial 8 #277)


def test_training_refuses_a_folder_named_for_another_modality_than_aux_kind(tmp_path):
    """Trial 6 C263: `Thermal` images trained as depth (the default kind) got depth's augmentation and checks."""
    cfg = make_folder(tmp_path / "d")
    (tmp_path / "d" / "Depth").rename(tmp_path / "d" / "Thermal")
    thermal = DataConfig(**{**vars(cfg), "aux_dir": "Thermal"})
    with pytest.raises(DatasetError, match=r"data.aux_dir='Thermal' names thermal images but data.aux_kind='depth': "
                                           r"set data.aux_kind=thermal"):
        RGBXDataset(thermal, "train", 5, train=True)
    RGBXDataset(thermal, "test", 5)  # scoring a model trained so stays possible
    RGBXDataset(DataConfig(**{**vars(thermal), "aux_kind": "thermal"}), "train", 5, train=True)


def test_label_out_of_range_names_file_and_value(tmp_path):
    cfg = make_folder(tmp_path)
    lbl = np.zeros((24, 32), np.uint8)
    lbl[3, 3] = 7
    lbl[4, 4] = 255  # ignore is allowed
    write_image(tmp_path / "Label" / "s3.png", lbl)
    ds = RGBXDataset(cfg, "test", num_classes=5)
    with pytest.raises(DatasetError, match=r"s3\.png.*value 7.*0\.\.4"):
        ds[0]


def test_size_mismatch_and_missing_partner(tmp_path):
    cfg = make_folder(tmp_path)
    write_image(tmp_path / "Depth" / "s3.png", np.zeros((10, 10), np.uint16))
    with pytest.raises(DatasetError, match=r"size mismatch.*Depth/s3\.png"):
        RGBXDataset(cfg, "test", 5)[0]
    (tmp_path / "Depth" / "s3.png").unlink()
    with pytest.raises(DatasetError, match=r"missing file.*s3\.png"):
        RGBXDataset(cfg, "test", 5)[0]


def test_augmentation_moves_rgb_aux_and_label_together():
    # Encode the pixel position in every modality; after flip/scale/crop all three must still agree.
    h, w = 20, 28
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    code = (yy * w + xx).float()
    rgb = code.expand(3, h, w).clone()
    aux = code.expand(3, h, w).clone()
    label = (yy * w + xx).long()
    aug = TrainAugment(crop_size=(12, 16), scales=(1.0,), hflip=True)
    flips = 0
    for seed in range(20):
        r, a, l = aug(rgb / 1000, aux / 1000, label, np.random.default_rng(seed))
        r_raw = r[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
        a_raw = a[1] * IMAGENET_STD[1] + IMAGENET_MEAN[1]
        torch.testing.assert_close(r_raw * 1000, l.float(), atol=1e-2, rtol=0)
        torch.testing.assert_close(a_raw * 1000, l.float(), atol=1e-2, rtol=0)
        flips += int(l[0, 0] > l[0, 1])
    assert 0 < flips < 20


def test_crop_pads_label_with_ignore_and_scales_follow_the_label():
    rgb = torch.rand(3, 10, 10)
    label = torch.randint(0, 3, (10, 10))
    aug = TrainAugment(crop_size=(16, 16), scales=(1.0,), hflip=False)
    r, a, l = aug(rgb, rgb.clone(), label, np.random.default_rng(0))
    assert l.shape == (16, 16) and r.shape == (3, 16, 16)
    assert int((l == 255).sum()) == 16 * 16 - 100
    assert torch.all(r[:, l == 255] == 0)
    aug = TrainAugment(crop_size=(15, 15), scales=(1.5,), hflip=False)
    r, a, l = aug(rgb, rgb.clone(), label, np.random.default_rng(0))
    assert int((l == 255).sum()) == 0 and set(l.unique().tolist()) <= {0, 1, 2}


def test_batch_sampler_resumes_exactly_and_reshuffles_per_epoch():
    full = list(ResumableBatchSampler(10, 3, seed=5, start=0, total=9))
    resumed = list(ResumableBatchSampler(10, 3, seed=5, start=4, total=9))
    assert resumed == full[4:]
    epoch0 = [i for b in full[:3] for i, _ in b]
    epoch1 = [i for b in full[3:6] for i, _ in b]
    assert len(set(epoch0)) == 9 and epoch0 != epoch1
    seeds = [s for b in full for _, s in b]
    assert len(set(seeds)) == len(seeds)
    with pytest.raises(ValueError, match="batch size 11"):
        ResumableBatchSampler(10, 11, 0, 0, 1)


def test_data_check_names_empty_classes_and_a_label_shift_that_labels_do_not_need(tmp_path, capsys):
    """Trial 16 #334: `data.label_shift=1` on labels counting from 0 read every 0 as ignore and left the top class
    empty, and `data check` said only "no problems found"."""
    from smmcl.cli import main

    root = tmp_path / "d"
    assert main(["data", "synth", "--kind", "indoor-rgbd", "--out", str(root), "--num", "8", "--size", "48x64"]) == 0
    capsys.readouterr()
    assert main(["data", "check", str(root), "data.label_shift=1"]) == 0  # a note: 1-based labels may lack the top one
    out = capsys.readouterr().out
    assert re.search(r"note: data.label_shift=1, but the stored labels are 0..13, which fit the 14 classes unshifted: "
                     r"shifted, [\d.]+% of the labelled pixels \(values below 1\) are read as ignore and class 13 gets "
                     r"none; if the labels count from 0, set data.label_shift=0", out)
    assert "note: 1 of the 14 classes has no labelled pixel in the splits checked (13 (window))" in out
    assert main(["data", "check", str(root)]) == 0
    assert "label_shift" not in capsys.readouterr().out


def test_training_on_label_images_with_no_class_id_is_refused(tmp_path):
    """Trial 17: a train split whose labels were all the ignore index trained to a NaN loss and wrote its weights;
    eval refused the same split. Training refuses it (judged on a sample; the whole split when it is that small)."""
    from smmcl.config import load_config
    from smmcl.data.dataset import RGBXDataset
    from smmcl.data.io import write_image
    from smmcl.data.synth import generate_dataset
    from smmcl.errors import DatasetError

    root = tmp_path / "d"
    generate_dataset("indoor-rgbd", root, 6, size=(32, 40))
    for label in (root / "Label").glob("*.png"):
        write_image(label, np.full((32, 40), 255, np.uint8))
    cfg = load_config(None, [f"data.root={root}"]).data
    with pytest.raises(DatasetError, match=r"split 'train' of .*: no pixel of its \d label images holds a class id; "
                                           r"every one is the ignore index 255, so there is nothing to learn from"):
        RGBXDataset(cfg, "train", 14, train=True)
    RGBXDataset(cfg, "train", 14)  # opened to read, nothing is judged: eval says it of what it scores
    from smmcl.data.check import check_dataset

    assert any("no pixel of the label images checked holds a class id" in p
               for p in check_dataset(cfg, 14, progress=False).problems)  # and data check, as a problem


def test_a_crop_larger_than_every_training_image_is_said(tmp_path):
    """Trial 18 B047: crops of 480x640 from 48x64 images trained 99% padding, 50x slower, without a word."""
    from smmcl.config import load_config
    from smmcl.data.dataset import RGBXDataset
    from smmcl.data.synth import generate_dataset
    from smmcl.errors import InputWarning

    generate_dataset("indoor-rgbd", tmp_path / "d", 4, size=(32, 40))
    cfg = load_config(None, [f"data.root={tmp_path / 'd'}", "data.crop_size=[120,160]", "data.scales=[1.0,1.5]"]).data
    with pytest.warns(InputWarning, match=r"data.crop_size 120x160 is larger than the training images \(32x40 at most, "
                                          r"x1.5 at the largest of data.scales\): each crop is mostly padding; set "
                                          r"data.crop_size to at most 48x60"):
        RGBXDataset(cfg, "train", 14, train=True)
