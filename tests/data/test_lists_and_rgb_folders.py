"""What a dataset's lists and folders hold that its names do not say: label maps in the RGB folder (said by
`data check`, training and eval as predict says it), list lines that are paths to other files than the samples'
own, files counted once per read in `data check`'s folder table, and a folder clash blamed on the key not changed
(trial 12 #1, #152, #153-155, #157-160)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import smmcl
from smmcl.cli import main
from smmcl.data.dataset import RGBXDataset
from smmcl.data.io import write_image
from smmcl.errors import ConfigError, DatasetError, InputWarning

from support import build_tiny_model, tiny_config

SIZE = (24, 32)
FLAT = r"RGB images sampled from the {} split hold as few distinct colours as label maps do"


def _dataset(root, n: int = 4, flat: tuple = (), lists: dict | None = None):
    """RGB/ (random photos, or for the indices in `flat` the label map itself), Depth/ (16-bit mm), Label/ (0..2);
    train lists s0..s(n-2), test s(n-1) unless `lists` gives them."""
    rng = np.random.default_rng(0)
    for i in range(n):
        label = np.kron(rng.integers(0, 3, (SIZE[0] // 4, SIZE[1] // 4)), np.ones((4, 4))).astype(np.uint8)  # regions
        write_image(root / "RGB" / f"s{i}.png", label if i in flat else rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8))
        write_image(root / "Depth" / f"s{i}.png", rng.integers(500, 9000, SIZE).astype(np.uint16))
        write_image(root / "Label" / f"s{i}.png", label)
    for split, text in (lists or {"train": "".join(f"s{i}\n" for i in range(n - 1)), "test": f"s{n - 1}\n"}).items():
        (root / f"{split}.txt").write_text(text)
    return root


def _check(root, capsys, *keys: str) -> tuple[int, str]:
    code = main(["data", "check", str(root), "--preset", "generic", "model.num_classes=3", *keys])
    return code, capsys.readouterr().out


# --- label maps in the RGB folder (trial 12 #153-155) ---------------------------------------------------------

def test_data_check_says_label_maps_in_the_rgb_folder(tmp_path, capsys):
    code, out = _check(_dataset(tmp_path / "all", flat=(0, 1, 2, 3)), capsys)
    assert code == 1 and "no problems found" not in out
    assert re.search(r"3 of the 3 RGB images of the train split hold as few distinct colours as label maps do "
                     r"\(e\.g\. .*RGB/s0\.png: 3\).* should hold photos", out)
    code, out = _check(_dataset(tmp_path / "one", flat=(1,)), capsys)
    assert code == 0 and "no problems found" in out  # one such image is noted, not refused
    assert re.search(r"note: 1 of the 3 RGB images of the train split .*RGB/s1\.png: 3", out)
    code, out = _check(_dataset(tmp_path / "photos"), capsys)
    assert code == 0 and "distinct colours" not in out


def test_training_and_eval_say_label_maps_in_the_rgb_folder(tmp_path):
    root = _dataset(tmp_path / "d", flat=(0, 1, 2, 3))
    cfg = tiny_config(f"data.root={root}")
    with pytest.warns(InputWarning, match=FLAT.format("train") + r".*a model trained on them learns nothing"):
        RGBXDataset(cfg.data, "train", cfg.model.num_classes, train=True)
    weights = smmcl.save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, tmp_path / "m.safetensors")
    with pytest.warns(InputWarning, match=FLAT.format("test") + r".*their scores mean nothing"):
        smmcl.evaluate_checkpoint(weights, cfg, progress=False)
    photos = tiny_config(f"data.root={_dataset(tmp_path / 'p')}", "data.crop_size=[24,32]")  # a crop within them
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        RGBXDataset(photos.data, "train", photos.model.num_classes, train=True)


# --- split list lines that are paths (trial 12 #157-160) ------------------------------------------------------

@pytest.mark.parametrize("line", ["/elsewhere/RGB/s0.png", "../other/RGB/s0.png", "Label/s0.png",
                                  "RGB/s0.png Label/s1.png", "RGB/s0.png /elsewhere/Label/s0.png"])
def test_a_list_line_naming_another_file_than_the_samples_is_refused(tmp_path, capsys, line):
    root = _dataset(tmp_path / "mine", lists={"train": f"s1\n{line}\n", "test": "s3\n"})
    cfg = tiny_config(f"data.root={root}")
    with pytest.raises(DatasetError, match=r"train\.txt, line 2: .* but a split list names samples, each read from "
                                           r".*RGB .*write the sample name 's0'"):
        RGBXDataset(cfg.data, "train", 3)
    code, out = _check(root, capsys)
    assert code == 1 and "train.txt, line 2" in out


def test_list_lines_naming_the_samples_own_files_are_read(tmp_path, capsys):
    root = _dataset(tmp_path / "mine", lists={"test": "s3\n"})
    lines = ["s0", "s1.png", "RGB/s2.png Label/s2.png", f"{root / 'RGB' / 's3.png'}", "../mine/RGB/s0.png"]
    for line in lines:
        (root / "train.txt").write_text(f"{line}\n")
        assert len(RGBXDataset(tiny_config(f"data.root={root}").data, "train", 3)) == 1, line


# --- the folder table counts files (trial 12 #1) and a folder clash names both keys (#152) ----------------------

def test_the_folder_table_counts_each_file_once(tmp_path, capsys):
    root = _dataset(tmp_path / "d", lists={"train": "s0\ns1\n", "test": "s2\ns3\n", "val": "s2\n"})
    code, out = _check(root, capsys)
    assert code == 0
    assert re.search(r"^RGB\s+4\s", out, re.M) and re.search(r"^Depth\s+4\s", out, re.M), out


def test_a_folder_clash_names_both_keys_and_their_values():
    with pytest.raises(ConfigError, match=r"data\.rgb_dir='Label' and data\.label_dir='Label': expected a folder "
                                          r"other than data\.rgb_dir for data\.label_dir"):
        tiny_config("data.rgb_dir=Label")
