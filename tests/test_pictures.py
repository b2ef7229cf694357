"""Pictures for people: one palette per dataset shared by `predict` and the demo, legends, colour bars."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from smmcl.cli import main
from smmcl.config import load_config
from smmcl.data.classes import LLRGBD_PALETTE, MFNET_PALETTE, colorize, dataset_palette
from smmcl.data.dataset import RGBXDataset
from smmcl.demo import _pictures
from smmcl.visualize import colorbar, legend, panel, scalar_tile
from smmcl.weights import save_pretrained

from support import TINY_CONFIG, build_tiny_model


def _biased_model(cfg, classes: list[int]):
    """A random model whose output is decided by per-class biases favouring `classes`."""
    model = build_tiny_model(cfg, seed=0).eval()
    bias = torch.full((cfg.model.num_classes,), -5.0)
    bias[classes] = torch.linspace(0.0, 0.5, len(classes))
    with torch.no_grad():
        model.decoder.conv_seg.weight.mul_(0.01)
        model.decoder.conv_seg.bias.copy_(bias)
    return model


def test_predict_and_the_demo_colour_every_class_alike(indoor_data, tmp_path):
    # The demo's config names LLRGBD's classes and gives no palette, as the magenta-wall case did.
    cfg = load_config(TINY_CONFIG, [f"data.root={indoor_data}", "data.palette=[]"])
    model = _biased_model(cfg, [12, 5, 3])  # wall, floor, ceiling
    weights = save_pretrained(model, cfg, tmp_path / "m.safetensors")
    test_set = RGBXDataset(cfg.data, "test", cfg.model.num_classes)
    name = test_set[0]["name"]
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(indoor_data / "RGB" / f"{name}.png"),
                 "--aux", str(indoor_data / "Depth" / f"{name}.png"), "--out", str(out)]) == 0
    label_png = Image.open(out / f"{name}.png")
    labels = np.asarray(label_png)
    embedded = np.asarray(label_png.getpalette()[: 3 * 14], np.uint8).reshape(14, 3)
    assert {int(v) for v in np.unique(labels)} & {12, 5, 3}
    assert embedded.tolist() == [list(c) for c in LLRGBD_PALETTE]
    assert tuple(embedded[12]) == (170, 170, 170)  # wall is grey, as the demo's legend says

    # The demo's panel: its last tile (left of the legend) is this model's prediction, 2x enlarged.
    [panel_path] = _pictures(tmp_path / "demo", test_set, {"M": model}, cfg, count=1)
    picture = np.asarray(Image.open(panel_path))
    h, w = labels.shape
    strip = 18  # the title strip of `panel`
    widths = [2 * w, 2 * w, 2 * w + 64, 2 * w, 2 * w]
    x0 = sum(widths[:-1])
    tile = picture[strip: strip + 2 * h: 2, x0: x0 + 2 * w: 2]
    np.testing.assert_array_equal(tile, np.asarray(LLRGBD_PALETTE, np.uint8)[labels])
    legend_file = tmp_path / "demo" / "predictions" / "legend.png"
    assert Image.open(legend_file).size[1] >= 14 * 18


def test_overlay_carries_a_legend_of_the_classes_it_shows(indoor_data, tmp_path):
    cfg = load_config(TINY_CONFIG, [f"data.root={indoor_data}"])
    weights = save_pretrained(_biased_model(cfg, [12]), cfg, tmp_path / "m.safetensors")
    rgb, aux = indoor_data / "RGB" / "scene_00000.png", indoor_data / "Depth" / "scene_00000.png"
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(weights), "--rgb", str(rgb), "--aux", str(aux), "--out", str(out)]) == 0
    labels = np.asarray(Image.open(out / "scene_00000.png"))
    overlay = Image.open(out / "scene_00000_overlay.png")
    assert overlay.height >= labels.shape[0] and overlay.width > labels.shape[1]  # a legend column on the right
    shown = np.unique(labels)
    key = np.asarray(overlay)[:, labels.shape[1]:]
    for k in shown:  # each shown class's swatch is in the legend
        assert (key.reshape(-1, 3) == np.asarray(LLRGBD_PALETTE[k], np.uint8)).all(1).any()


def test_dataset_palette_prefers_the_datasets_own_colours():
    names = [f"c{k}" for k in range(3)]
    assert dataset_palette(names, [[1, 2, 3], [4, 5, 6], [7, 8, 9]], 3) == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    from smmcl.data.classes import LLRGBD_CLASSES, MFNET_CLASSES

    assert dataset_palette(LLRGBD_CLASSES, [], 14) == list(LLRGBD_PALETTE)
    assert dataset_palette(MFNET_CLASSES, [], 9) == list(MFNET_PALETTE)
    generated = dataset_palette(names, [], 3)
    assert len(set(generated)) == 3


def test_depth_tile_has_a_colour_bar_labelled_in_the_given_unit():
    depth = np.tile(np.linspace(500, 4500, 40), (30, 1))
    bar = np.asarray(colorbar(0.5, 4.5, 60, " m"))
    assert bar.shape == (60, 64, 3)
    assert (bar[:, 4:16] != 255).any(axis=2).all()  # the ramp runs the full height
    tile = scalar_tile(depth, depth > 0, scale=2, unit=" m", factor=1e-3)
    assert tile.size == (2 * 40 + 64, 60)
    row = panel([np.zeros((30, 40, 3), np.uint8), tile], ["a", "b"])
    assert row.size == (80 + 144, 60 + 18)


def test_legend_rows_match_the_palette():
    img = np.asarray(legend(["a", "long class name"], [(255, 0, 0), (0, 0, 255)]))
    assert (img.reshape(-1, 3) == [255, 0, 0]).all(1).sum() > 50
    assert (img.reshape(-1, 3) == [0, 0, 255]).all(1).sum() > 50
    assert colorize(np.array([[0, 1]], np.uint8), [(255, 0, 0), (0, 0, 255)]).tolist() == [[[255, 0, 0], [0, 0, 255]]]


def test_brighten_from_a_histogram_equals_the_float_formula():
    """The uint8 fast path (histogram percentile, 256-entry table) against np.percentile and the float64 formula."""
    from smmcl.visualize import brighten, percentile_u8

    rng = np.random.default_rng(0)
    for _ in range(500):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)), int(rng.integers(1, 4)))
        x = rng.integers(0, int(rng.integers(1, 257)), shape, dtype=np.uint8)
        q = float(rng.choice([99.0, 50.0, 0.0, 100.0, rng.uniform(0, 100)]))
        assert percentile_u8(x, q) == np.percentile(x, q)
        hi = max(np.percentile(x.astype(np.float64), 99.0), 1.0)
        slow = (np.clip(x.astype(np.float64) / hi, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
        assert np.array_equal(brighten(x), slow)
    a = legend(["wall", "floor"], [(1, 2, 3), (4, 5, 6)])
    a.putpixel((0, 0), (9, 9, 9))  # drawn once and cached: a caller's change stays in its own copy
    assert legend(["wall", "floor"], [(1, 2, 3), (4, 5, 6)]).getpixel((0, 0)) == (255, 255, 255)


def test_the_overlay_blend_in_integers_equals_the_float_formula():
    from smmcl.engine.predict import overlay_picture
    from smmcl.visualize import brighten

    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (14, 3)).astype(np.uint8)
    for alpha in (0.5, 0.3):
        for _ in range(30):
            rgb = rng.integers(0, int(rng.integers(1, 257)), (17, 23, 3), dtype=np.uint8)
            labels = rng.integers(0, 14, (17, 23))
            blend = (1 - alpha) * brighten(rgb).astype(np.float32) + alpha * palette[labels].astype(np.float32)
            slow = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
            assert np.array_equal(np.asarray(overlay_picture(rgb, labels, palette, alpha=alpha)), slow)
