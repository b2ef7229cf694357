"""`smmcl analyze features`: the paper's Fig. 8 as a picture plus numbers (k-NN accuracy, silhouette)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smmcl.analysis.features import choose_pixels, feature_scores
from smmcl.cli import main
from smmcl.config import load_config
from smmcl.weights import save_pretrained

from support import TINY_CONFIG, build_tiny_model


def test_scores_separate_clustered_from_random_features():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 60)
    images = np.tile(np.arange(12), 20)
    centres = rng.normal(size=(4, 16)) * 5
    clustered = centres[labels] + rng.normal(size=(240, 16))
    good = feature_scores(clustered, labels, images, k=5)
    bad = feature_scores(rng.normal(size=(240, 16)), labels, images, k=5)
    assert good["knn_accuracy"] > 0.95 and good["silhouette"] > 0.5
    assert bad["knn_accuracy"] < 0.45 and abs(bad["silhouette"]) < 0.1
    assert good["points"] == 240 and good["classes"] == 4


def test_knn_folds_keep_each_image_out_of_its_own_neighbours():
    """Points that only match within their own image (a per-image offset) get no credit for it."""
    rng = np.random.default_rng(1)
    images = np.repeat(np.arange(30), 10)
    labels = images % 2  # one class per image, and each image a tight cluster of its own somewhere
    feats = rng.normal(size=(30, 8))[images] * 10 + rng.normal(size=(300, 8))
    # Neighbours within an image would give 100%; across images the class is a coin toss.
    assert feature_scores(feats, labels, images, k=5)["knn_accuracy"] < 0.8


def test_too_few_classes_sampled_names_what_adds_pixels():
    """Trial 15 AF1: small images at stage 4 kept a pixel or two of one class each, said without a way out."""
    from smmcl.errors import DatasetError

    with pytest.raises(DatasetError, match=r"at least two classes, but the pixels sampled hold one class: use more "
                                           r"images .*--stage 2"):
        feature_scores(np.ones((6, 4)), np.zeros(6, np.int64), np.arange(6), k=2)


def test_pixel_choice_depends_on_labels_only_and_balances_classes():
    labels = [np.array([[0, 0, 1], [2, 2, 2]]), np.array([[1, -1, 2], [0, 0, 0]])]
    a = choose_pixels(labels, keep=[0, 1, 2], per_class=2, seed=3)
    b = choose_pixels(labels, keep=[0, 1, 2], per_class=2, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    picked = np.concatenate([lab.reshape(-1)[p] for lab, p in zip(labels, a)])
    assert sorted(picked.tolist()) == [0, 0, 1, 1, 2, 2]
    assert -1 not in picked


def test_analyze_features_cli_writes_figure_and_numbers(indoor_data, tmp_path, capsys):
    cfg = load_config(TINY_CONFIG, [f"data.root={indoor_data}"])
    paths = []
    for seed in (0, 1):
        path = tmp_path / f"run{seed}" / "model.safetensors"
        path.parent.mkdir()
        save_pretrained(build_tiny_model(cfg, seed=seed).eval(), cfg, path)
        paths.append(str(path))
    code = main(["analyze", "features", str(TINY_CONFIG), f"data.root={indoor_data}", "--checkpoint", paths[0],
                 "--compare", paths[1], "--out", str(tmp_path / "feat"), "--per-class", "20", "--images", "8",
                 "--stage", "3"])
    assert code == 0
    result = json.loads((tmp_path / "feat" / "features.json").read_text())
    assert set(result["scores"]) == {"run0", "run1"}
    for per_model in result["scores"].values():
        for modality in ("vis", "aux"):
            s = per_model[modality]
            assert 0.0 <= s["knn_accuracy"] <= 1.0 and -1.0 <= s["silhouette"] <= 1.0
    assert result["stage"] == 3 and result["split"] == "test" and "void" not in result["points_per_class"]
    assert (tmp_path / "feat" / "tsne.png").stat().st_size > 20_000
    assert "k-NN" in capsys.readouterr().out


def test_analyze_features_rejects_mismatched_names(indoor_data, tmp_path):
    code = main(["analyze", "features", str(TINY_CONFIG), f"data.root={indoor_data}", "--checkpoint", "a.safetensors",
                 "--names", "x,y", "--out", str(tmp_path)])
    assert code == 2


def test_analyze_features_refuses_a_config_of_another_dataset(indoor_data, tmp_path, capsys):
    """As eval does: a model's classes and input scaling are its file's, so a config saying others is refused."""
    cfg = load_config(TINY_CONFIG, [f"data.root={indoor_data}", "data.aux_max=255"])
    path = tmp_path / "model.safetensors"
    save_pretrained(build_tiny_model(cfg, seed=0).eval(), cfg, path)
    code = main(["analyze", "features", str(TINY_CONFIG), f"data.root={indoor_data}", "--checkpoint", str(path),
                 "--out", str(tmp_path / "feat"), "--per-class", "5", "--images", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "was trained with data.aux_max=255.0 but the analysis config gives data.aux_max=" in err
    assert not (tmp_path / "feat").exists()
