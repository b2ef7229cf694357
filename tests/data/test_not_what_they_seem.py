"""Images that are pictures of something else. Depth and thermal hold one value per pixel: a colour-mapped picture
of them (a jet or iron palette saved as RGB) is refused by the one auxiliary rule, wherever it enters (`data check`,
the dataset, predict, the `Predictor`); HHA (three channels) and grey saved as three equal channels are read. Label
maps given to predict as the RGB images are said (trial case 199)."""

from __future__ import annotations

import numpy as np
import pytest

import smmcl
from smmcl.cli import main
from smmcl.config import DataConfig
from smmcl.data.dataset import RGBXDataset
from smmcl.data.io import write_image
from smmcl.data.modality import check_aux
from smmcl.deploy.predictor import Predictor
from smmcl.errors import DatasetError, InputWarning

from support import build_tiny_model, tiny_config

SIZE = (24, 32)


def _jet(depth_mm: np.ndarray) -> np.ndarray:
    """A colour-mapped picture of depth, as viewers save it: near blue, far red (8-bit RGB)."""
    t = np.clip(depth_mm / 10000.0, 0, 1)
    return (np.stack([t, 1 - np.abs(2 * t - 1), 1 - t], axis=-1) * 255).astype(np.uint8)


def _dataset(root, aux) -> DataConfig:
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(root / "RGB" / f"s{i}.png", rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8))
        write_image(root / "Depth" / f"s{i}.png", aux)
        write_image(root / "Label" / f"s{i}.png", rng.integers(0, 4, SIZE, dtype=np.uint8))
    (root / "train.txt").write_text("s0\n")
    (root / "test.txt").write_text("s1\n")
    return DataConfig(root=str(root), aux_max=255, aux_kind="depth", num_workers=0)


def test_a_colour_mapped_depth_is_refused_everywhere_and_hha_is_not(tmp_path, capsys):
    depth = np.random.default_rng(1).integers(500, 9000, SIZE)
    coloured = _jet(depth)
    cfg = _dataset(tmp_path / "cmap", coloured)
    with pytest.raises(DatasetError, match=r"s1.png: a colour image \(uint8, shape \(24, 32, 3\).*its channels differ\) "
                                           r"where depth holds one value per pixel: a colour-mapped picture of depth\? "
                                           r".*HHA images: set data.aux_kind=hha"):
        RGBXDataset(cfg, "test", 4)[0]
    assert main(["data", "check", str(cfg.root), "--preset", "generic", "data.aux_max=255", "model.num_classes=4"]) == 1
    assert "a colour-mapped picture of depth?" in capsys.readouterr().out
    hha = DataConfig(root=cfg.root, aux_max=255, aux_kind="hha", num_workers=0)  # three channels are HHA's own
    assert RGBXDataset(hha, "test", 4)[0]["aux"].shape[0] == 3
    grey = np.repeat((depth // 40).astype(np.uint8)[..., None], 3, axis=2)  # grey saved as RGB: one value per pixel
    assert check_aux(grey, "grey.png", 255, kind="depth") is grey
    with pytest.raises(DatasetError, match="where thermal holds one value per pixel"):
        check_aux(coloured, "iron.png", 255, kind="thermal")

    weights = smmcl.save_pretrained(build_tiny_model(tiny_config(), seed=0).eval(), tiny_config(),
                                    tmp_path / "m.safetensors")
    rgb = np.full((*SIZE, 3), 40, np.uint8)
    with pytest.raises(DatasetError, match="auxiliary frame 0: a colour image .*a colour-mapped picture of depth"):
        Predictor(weights)(rgb, coloured)
    with pytest.raises(DatasetError, match=r"Depth/s1.png: a colour image.*HHA images\? a model trained on HHA reads "
                                           r"them$"):  # no data.aux_kind, which a model owns (trial 12 #205)
        smmcl.predict(weights, tmp_path / "cmap" / "RGB" / "s1.png", tmp_path / "cmap" / "Depth" / "s1.png",
                      tmp_path / "out", progress=False)


def test_label_maps_given_as_rgb_are_said_and_photos_are_not(tmp_path):
    import warnings

    weights = smmcl.save_pretrained(build_tiny_model(tiny_config(), seed=0).eval(), tiny_config(),
                                    tmp_path / "m.safetensors")
    rng = np.random.default_rng(0)
    for i in range(3):
        ids = np.kron(rng.integers(0, 4, (SIZE[0] // 4, SIZE[1] // 4)), np.ones((4, 4))).astype(np.uint8)  # regions
        ids[:4] = 255  # an ignored band, as label maps have
        write_image(tmp_path / "Label" / f"s{i}.png", ids)
        dark = np.clip(rng.normal(12, 3, (*SIZE, 3)), 0, 255).astype(np.uint8)  # a night photo: dark, yet noisy
        write_image(tmp_path / "RGB" / f"s{i}.png", dark)
        write_image(tmp_path / "Depth" / f"s{i}.png", rng.integers(500, 9000, SIZE).astype(np.uint16))
    with pytest.warns(InputWarning, match=r"3 of the 3 RGB images hold as few distinct colours as label maps do "
                                          r"\(e.g. .*Label/s0.png: 5\)"):
        smmcl.predict(weights, tmp_path / "Label", tmp_path / "Depth", tmp_path / "p1", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smmcl.predict(weights, tmp_path / "RGB", tmp_path / "Depth", tmp_path / "p2", progress=False)


def test_images_in_subfolders_of_an_input_folder_are_said_not_skipped_silently(tmp_path):
    """Trial 6 C301: frames in subfolders of --rgb were skipped, the only sign a count of 1."""
    from smmcl.engine.predict import pair_inputs

    for sub in ("RGB", "RGB/day", "Depth", "Depth/day"):
        (tmp_path / sub).mkdir()
    for folder in ("RGB", "Depth", "RGB/day", "Depth/day"):
        write_image(tmp_path / folder / "a.png", np.zeros(SIZE, np.uint8))
    with pytest.warns(InputWarning, match=r"RGB: 1 images in its subfolders \(e.g. .*RGB/day/a.png\) are not read"):
        assert len(pair_inputs(tmp_path / "RGB", tmp_path / "Depth")) == 1


def test_single_channel_depth_where_hha_is_expected_is_refused():
    """Trial 7 184-236: a model trained on HHA took 1-channel depth (16-bit, refused with an aux_scale advice that,
    followed, predicted silently; or 8-bit, taken as it was). HHA holds three channels: one is refused, pointing to
    `smmcl data hha`, in files and frames alike (the one auxiliary rule)."""
    for frame in (np.full(SIZE, 2000, np.uint16), np.full(SIZE, 90, np.uint8), np.full((*SIZE, 1), 90, np.uint8)):
        with pytest.raises(DatasetError, match=r"a single-channel image .* where HHA holds three channels .*"
                                               r"`smmcl data hha`; no aux_scale turns depth into HHA"):
            check_aux(frame, "d.png", 255, kind="hha")
        with pytest.raises(DatasetError, match="where HHA holds three channels"):
            check_aux(frame, "d.png", None, for_model="hha", aux_scale=0.01)
    hha = np.random.default_rng(0).integers(0, 255, (*SIZE, 3), dtype=np.uint8)
    assert check_aux(hha, "h.png", 255, kind="hha") is hha


def test_the_colour_count_says_nothing_of_a_tiny_image_and_counts_a_small_one_whole():
    from smmcl.data.label_maps import colour_count

    photo = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)  # trial 7 #197: 35 colours
    assert colour_count(photo, 15) is None
    small = np.zeros((20, 30, 3), np.uint8)
    small[5, 7] = 9  # one odd pixel off the every-4th grid is still counted
    assert colour_count(small, 15) == 2


def test_a_label_map_with_more_ids_than_the_model_has_classes_is_still_a_label_map():
    """Trial 14 #203: a dataset's 9 ids given as RGB to a 4-class model passed the class-count rule."""
    from smmcl.data.label_maps import colour_count

    ids = np.repeat(np.arange(9, dtype=np.uint8), 48 * 64 // 9 + 1)[: 48 * 64].reshape(48, 64)
    assert colour_count(np.repeat(ids[..., None], 3, axis=2), 4 + 1) == 9
    photo = np.random.default_rng(0).integers(0, 40, (48, 64, 3), dtype=np.uint8)  # dark, but noisy
    assert colour_count(photo, 4 + 1) is None
    # Trial 15 F3b: a grey camera's night photo has fewer grey levels than LABEL_MAP_COLOURS, but it is noisy
    # where a label map is flat in regions; a map of scattered single pixels (no such thing) is no label map either.
    grey = np.clip(np.random.default_rng(1).normal(12, 3, (48, 64)), 0, 255).astype(np.uint8)
    assert len(np.unique(grey)) <= 32 and colour_count(np.repeat(grey[..., None], 3, axis=2), 4 + 1) is None
    regions = np.kron(np.random.default_rng(2).integers(0, 9, (12, 16)), np.ones((4, 4))).astype(np.uint8)
    assert colour_count(np.repeat(regions[..., None], 3, axis=2), 4 + 1) == 9


def test_grey_with_alpha_is_read_as_its_grey_values_and_a_two_channel_frame_is_named(tmp_path):
    """Trial 16 #255: a grey+alpha depth file was described as the RGB it had been converted to; B04: a 2-channel
    frame given to the Predictor failed inside numpy ("operands could not be broadcast")."""
    from PIL import Image

    from smmcl.data.io import read_image

    grey = np.random.default_rng(0).integers(0, 255, SIZE, dtype=np.uint8)
    Image.fromarray(np.dstack([grey, np.full(SIZE, 255, np.uint8)]), mode="LA").save(tmp_path / "la.png")
    assert np.array_equal(read_image(tmp_path / "la.png"), grey)
    with pytest.raises(DatasetError, match=r"auxiliary frame 0: auxiliary image with 2 channels \(uint16, shape "
                                           r"\(24, 32, 2\).*grey and alpha\? .*give the first channel alone"):
        Predictor(smmcl.save_pretrained(build_tiny_model(tiny_config(), seed=0).eval(), tiny_config(),
                                        tmp_path / "m.safetensors"))(np.zeros((*SIZE, 3), np.uint8),
                                                                     np.full((*SIZE, 2), 1500, np.uint16))


def test_a_file_of_several_frames_is_refused_not_read_as_its_first(tmp_path):
    """Trial 17: a 2-page TIFF of depth was read as its first page, without a word."""
    from PIL import Image

    from smmcl.data.io import read_image

    pages = [Image.fromarray(np.full(SIZE, v, np.uint16)) for v in (1000, 2000)]
    pages[0].save(tmp_path / "d.tiff", save_all=True, append_images=pages[1:])
    with pytest.raises(DatasetError, match=r"d.tiff: holds 2 frames \(pages, or an animation\); smmcl reads one image "
                                           r"per file"):
        read_image(tmp_path / "d.tiff")
