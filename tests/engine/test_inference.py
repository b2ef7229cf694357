"""Inference protocols (whole, sliding window, multi-scale, flip) and evaluation under them."""

import warnings
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from smmcl.engine.evaluate import score_dataset, format_scores
from smmcl.engine.inference import InferenceProtocol, predict_probs, window_starts, window_stride
from smmcl.engine.metrics import confusion_matrix
from smmcl.errors import InputWarning

from support import build_tiny_model, tiny_config

K = 5
# The tiny model with a narrow MLP decoder in place of LightHam, a smaller projector, and K classes.
TINY_MLP = [f"model.num_classes={K}", "data.class_names=[]", "model.decoder.name=mlp", "model.decoder.channels=16", "model.projector.dim=8"]


class Pointwise(nn.Module):
    """Logits from each pixel's own rgb and aux values only: 1x1 convs with a nonlinearity between."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(6, 16, 1), nn.Tanh(), nn.Conv2d(16, K, 1))

    def forward(self, rgb, aux):
        return 4 * self.net(torch.cat([rgb, aux], 1))


class Mirror(nn.Module):
    """A 3x3 conv with a left-right symmetric kernel: mirroring the input mirrors the logits."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(6, K, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(3 * (self.conv.weight + self.conv.weight.flip(-1)))

    def forward(self, rgb, aux):
        return self.conv(torch.cat([rgb, aux], 1))


class XRamp(Pointwise):
    """Pointwise logits plus a per-class ramp in the x coordinate: not mirror-equivariant."""

    def forward(self, rgb, aux):
        x = torch.linspace(-1, 1, rgb.shape[-1])
        return super().forward(rgb, aux) + torch.arange(K, dtype=torch.float32).view(1, K, 1, 1) * x


class Recorder(nn.Module):
    """Records, for every forward pass, the padding rows on top, the first real row and column, the size.

    Channel 0 of the input holds row + 1 and channel 1 holds column + 1, so zero padding is recognisable.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list = []

    def forward(self, rgb, aux):
        column = rgb[0, 0, :, -1]
        top = int((column == 0).long().cumprod(0).sum())
        self.calls.append((top, int(rgb[0, 0, top, -1]) - 1, int(rgb[0, 1, top, 0]) - 1, tuple(rgb.shape[-2:])))
        return torch.zeros(rgb.shape[0], K, *rgb.shape[-2:])


def coordinate_image(h: int, w: int) -> torch.Tensor:
    rows = torch.arange(1, h + 1, dtype=torch.float32).view(h, 1).expand(h, w)
    cols = torch.arange(1, w + 1, dtype=torch.float32).view(1, w).expand(h, w)
    return torch.stack([rows, cols, torch.ones(h, w)])[None]


def images(b: int, h: int, w: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, h, w, generator=g), torch.randn(b, 3, h, w, generator=g)


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(tiny_config(*TINY_MLP), seed=0).eval()


class TinySet(Dataset):
    """In-memory samples shaped like RGBXDataset's: normalised rgb/aux 3 x H x W, int64 label H x W, name."""

    def __init__(self, sizes, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.samples = []
        for i, (h, w) in enumerate(sizes):
            label = torch.randint(0, K, (h, w), generator=g)
            label[: h // 5] = 255  # some ignored pixels
            rgb, aux = torch.randn(3, h, w, generator=g), torch.randn(3, h, w, generator=g)
            self.samples.append({"rgb": rgb, "aux": aux, "label": label, "name": f"img{i}"})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]


# ----------------------------------------------------------------------------- sliding window


def test_slide_with_crop_equal_to_image_is_whole_exactly(tiny):
    rgb, aux = images(2, 40, 56)
    whole = predict_probs(tiny, rgb, aux)
    assert torch.equal(predict_probs(tiny, rgb, aux, mode="slide", crop_size=(40, 56)), whole)
    assert torch.allclose(whole.sum(1), torch.ones(2, 40, 56), atol=1e-6)


@pytest.mark.parametrize(
    "h, w, crop, rate",
    [
        (100, 130, (48, 64), 2 / 3),  # non-square crop, both directions slide
        (37, 53, (16, 24), 0.5),  # image not a multiple of either stride
        (61, 47, (20, 20), 1 / 3),  # heavy overlap: up to 9 windows on a pixel
        (30, 90, (48, 32), 2 / 3),  # shorter than the crop: padded in height, slides in width
        (70, 20, (32, 48), 1.0),  # narrower than the crop, no overlap in height
        (20, 25, (32, 40), 2 / 3),  # smaller than the crop both ways: one padded window
    ],
)
def test_slide_of_pointwise_model_equals_whole(h, w, crop, rate):
    model = Pointwise()
    rgb, aux = images(2, h, w)
    got = predict_probs(model, rgb, aux, mode="slide", crop_size=crop, stride_rate=rate)
    assert got.shape == (2, K, h, w)
    torch.testing.assert_close(got, predict_probs(model, rgb, aux), atol=1e-6, rtol=0)


def test_window_grid_by_hand():
    # 100 x 130 image, crop (48, 64), stride_rate 2/3:
    # height stride ceil(48 * 2/3) = 32: starts 0, 32; 64 + 48 > 100, so the last window starts at 100 - 48 = 52.
    # width stride ceil(64 * 2/3) = ceil(42.67) = 43: starts 0, 43; 86 + 64 > 130, so the last starts at 130 - 64 = 66.
    # (Swapped strides would give rows 0, 43, 52 and columns 0, 32, 64, 66.)
    rows, cols = [0, 32, 52], [0, 43, 66]
    assert (window_stride(48, 2 / 3), window_stride(64, 2 / 3)) == (32, 43)
    assert window_starts(100, 48, 32) == rows and window_starts(130, 64, 43) == cols
    model = Recorder()
    predict_probs(model, coordinate_image(100, 130), torch.zeros(1, 3, 100, 130), mode="slide", crop_size=(48, 64))
    assert model.calls == [(0, r, c, (48, 64)) for r in rows for c in cols]


def test_window_grid_of_an_image_shorter_than_the_crop():
    # 30 x 90 image, crop (48, 32): height padded by 18 zeros, 9 on top; one window row.
    # Width stride ceil(32 * 2/3) = 22: starts 0, 22, 44; 66 + 32 > 90, so the last starts at 90 - 32 = 58.
    model = Recorder()
    # Said, for a model sees a padded image unlike its training crops (trial 16 #296: no word of it).
    with pytest.warns(InputWarning, match=r"the sliding window 48x32 is larger than the 30x90 images: each is "
                                          r"zero-padded .*set eval.crop_size to at most the image size"):
        predict_probs(model, coordinate_image(30, 90), torch.zeros(1, 3, 30, 90), mode="slide", crop_size=(48, 32))
    assert model.calls == [(9, 0, c, (48, 32)) for c in (0, 22, 44, 58)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)  # a window within the image says nothing
        predict_probs(Recorder(), coordinate_image(48, 90), torch.zeros(1, 3, 48, 90), mode="slide", crop_size=(48, 32))


def test_window_stride_ignores_float_noise():
    assert window_stride(10, 0.1 * 3) == 3  # 0.1 * 3 = 0.30000000000000004
    assert window_stride(64, 1.0) == 64 and window_stride(1, 0.01) == 1


# ----------------------------------------------------------------------------- flip and scales


def test_flip_of_mirror_equivariant_model_changes_nothing():
    model = Mirror()
    rgb, aux = images(1, 24, 31)
    plain = predict_probs(model, rgb, aux)
    assert not torch.allclose(plain, plain.flip(-1), atol=1e-3)  # the outputs are not symmetric themselves
    torch.testing.assert_close(predict_probs(model, rgb, aux, flip=True), plain, atol=1e-6, rtol=0)


def test_flip_averages_the_two_passes():
    model = XRamp()
    rgb, aux = images(2, 24, 31)
    plain = model(rgb, aux).softmax(1)
    mirrored = model(rgb.flip(-1), aux.flip(-1)).softmax(1).flip(-1)
    got = predict_probs(model, rgb, aux, flip=True)
    assert not torch.allclose(got, plain, atol=1e-3)
    torch.testing.assert_close(got, (plain + mirrored) / 2, atol=1e-6, rtol=0)


def test_single_scale_one_is_whole_exactly(tiny):
    rgb, aux = images(2, 40, 56)
    assert torch.equal(predict_probs(tiny, rgb, aux, scales=(1.0,)), tiny(rgb, aux).softmax(1))


def test_two_scales_average_the_resized_passes(tiny):
    rgb, aux = images(2, 36, 50)
    half = [F.interpolate(x, size=(18, 25), mode="bilinear", align_corners=False) for x in (rgb, aux)]
    small = F.interpolate(tiny(*half).softmax(1), size=(36, 50), mode="bilinear", align_corners=False)
    expected = (small + tiny(rgb, aux).softmax(1)) / 2
    torch.testing.assert_close(predict_probs(tiny, rgb, aux, scales=(0.5, 1.0)), expected, atol=1e-6, rtol=0)


def test_scaled_sizes_round_like_the_released_resize():
    # round(): 37 * 0.5 = 18.5 -> 18 and 51 * 0.5 = 25.5 -> 26 (half to even, as cv2.resize with fx/fy).
    model = Recorder()
    predict_probs(model, coordinate_image(37, 51), torch.zeros(1, 3, 37, 51), scales=(0.5, 1.0, 1.5))
    assert [c[3] for c in model.calls] == [(18, 26), (37, 51), (56, 76)]


def test_a_scale_that_leaves_less_than_one_encoder_cell_is_warned_of():
    """Trial 7 #177: `--scales 0.01` scored 1 x 1 images without a word; a scale keeping 32 pixels says nothing."""
    rgb, aux = torch.zeros(1, 3, 48, 64), torch.zeros(1, 3, 48, 64)
    with pytest.warns(InputWarning, match=r"scale 0.01 shrinks 48x64 images to 1x1, less than one cell of the "
                                          r"encoder's coarsest stage \(32 pixels\)"):
        predict_probs(Pointwise(), rgb, aux, scales=(0.01, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict_probs(Pointwise(), torch.zeros(1, 3, 64, 96), torch.zeros(1, 3, 64, 96), scales=(0.5, 1.0, 1.75))


def test_slide_flip_and_scales_of_pointwise_model_equal_whole():
    model = Pointwise(seed=3)
    rgb, aux = images(1, 45, 70)
    kw = dict(scales=(0.75, 1.0, 1.25), flip=True)
    got = predict_probs(model, rgb, aux, mode="slide", crop_size=(24, 40), stride_rate=0.5, **kw)
    torch.testing.assert_close(got, predict_probs(model, rgb, aux, **kw), atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- the protocol object


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"mode": "tiled"}, "mode"),
        ({"crop_size": (0, 64)}, "crop_size"),
        ({"crop_size": (48,)}, "crop_size"),
        ({"crop_size": (48.0, 64)}, "crop_size"),
        ({"stride_rate": 0}, "stride_rate"),
        ({"stride_rate": 1.5}, "stride_rate"),
        ({"scales": ()}, "scales"),
        ({"scales": (1.0, -0.5)}, "scales"),
        ({"scales": (float("nan"),)}, "scales"),
        ({"flip": "yes"}, "flip"),
    ],
)
def test_protocol_rejects_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"{field}=") as err:
        InferenceProtocol(**kwargs)
    assert repr(next(iter(kwargs.values()))) in str(err.value)
    with pytest.raises(ValueError, match=f"{field}="):
        predict_probs(Pointwise(), *images(1, 8, 8), **kwargs)


def test_protocol_from_config_lists_and_both_call_styles():
    p = InferenceProtocol("slide", [24, 32], 0.5, [1, 1.5], True)
    assert p.crop_size == (24, 32) and p.scales == (1.0, 1.5) and hash(p) == hash(InferenceProtocol(**asdict(p)))
    model = XRamp()
    rgb, aux = images(1, 30, 45)
    assert torch.equal(p.apply(model, rgb, aux), predict_probs(model, rgb, aux, **asdict(p)))


# ----------------------------------------------------------------------------- evaluation

SIZES = [(40, 56), (40, 56), (36, 48), (40, 56)]  # mixed sizes in one split


def test_evaluate_is_deterministic_and_none_means_whole(tiny):
    data = TinySet(SIZES)
    slide = InferenceProtocol("slide", crop_size=(24, 32), scales=(0.75, 1.0), flip=True)
    first = score_dataset(tiny, data, K, batch_size=2, progress=False, protocol=slide)
    np.testing.assert_equal(score_dataset(tiny, data, K, batch_size=2, progress=False, protocol=slide), first)
    default = score_dataset(tiny, data, K, batch_size=2, progress=False)
    explicit = score_dataset(tiny, data, K, batch_size=2, progress=False, protocol=InferenceProtocol("whole"))
    np.testing.assert_equal(explicit, default)
    assert default["confusion"] != first["confusion"]  # the protocol really changes the predictions
    assert first["protocol"]["mode"] == "slide" and default["protocol"]["mode"] == "whole"


def test_evaluate_counts_the_argmax_of_the_protocol_probabilities(tiny):
    data = TinySet(SIZES, seed=1)
    protocol = InferenceProtocol("slide", crop_size=(32, 32), stride_rate=0.5)
    conf = torch.zeros(K, K, dtype=torch.int64)
    for s in data.samples:
        pred = protocol.apply(tiny, s["rgb"][None], s["aux"][None]).argmax(1)
        conf += confusion_matrix(pred, s["label"][None], K)
    scores = score_dataset(tiny, data, K, batch_size=3, progress=False, protocol=protocol)
    assert scores["confusion"] == conf.tolist() and scores["num_images"] == len(SIZES)
    assert sum(map(sum, scores["confusion"])) == sum((s["label"] != 255).sum().item() for s in data.samples)


def test_format_scores_shows_fwiou_and_both_mious():
    conf = np.array([[5, 1, 0], [1, 3, 0], [0, 2, 4]])
    from smmcl.engine.metrics import segmentation_scores

    table = format_scores(["wall", "floor", "bed"], {"run": segmentation_scores(conf, exclude=[0])})
    rows = {line.split("  ")[0].strip(): line for line in table.splitlines()}
    assert {"mIoU", "mIoU (all)", "fwIoU", "pixel acc"} <= set(rows)
    assert "wall" in table and "(excluded)" in table
    table = format_scores(["wall", "floor", "bed"], {"run": segmentation_scores(conf)})
    assert "mIoU (all)" not in table and "fwIoU" in table


def test_bf16_and_channels_last_inference_agree_with_fp32():
    model = build_tiny_model(tiny_config(*TINY_MLP), seed=0).eval()
    rgb, aux = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96)
    ref = predict_probs(model, rgb, aux)
    fast = InferenceProtocol(precision="bf16", channels_last=True).apply(model, rgb, aux)
    assert fast.dtype == torch.float32 and fast.shape == ref.shape
    assert (fast - ref).abs().max() < 0.05
    assert (fast.argmax(1) == ref.argmax(1)).float().mean() > 0.95
    with pytest.raises(ValueError, match="precision"):
        InferenceProtocol(precision="fp8")


def test_compiled_frozen_inference_matches_eager():
    """`train.compile` at inference: Inductor with frozen weights (BN folded into convs) computes the same."""
    from smmcl.models.compiled import prepare_model
    from smmcl.models.cpu_guard import GuardedConv2d

    # Two stages, not four: the guarded strip conv of the 8-channel stage breaks the graph inside the
    # encoder's stage generator, so every module call compiles on its own, some ten graphs per stage.
    # Two stages still hold the stem and a patch embedding, a guarded and an in-graph 1x21 conv, BNs to
    # fold and two scales for the decoder to fuse.
    cfg = tiny_config(*TINY_MLP, "model.num_classes=4", "model.backbone.embed_dims=[8,32]", "model.backbone.depths=[1,1]",
                      "model.backbone.mlp_ratios=[8,8]", "model.projector.stage=2")
    model = build_tiny_model(cfg, seed=0).eval()
    assert any(isinstance(m, GuardedConv2d) for m in model.modules())
    model.aux_max = 1000.0
    rgb, aux = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96)
    ref = predict_probs(model, rgb, aux)
    compiled = prepare_model(model, compile=True, freeze=True)
    assert compiled.aux_max == 1000.0  # the wrapper forwards attributes evaluation and prediction read
    out = predict_probs(compiled, rgb, aux)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_compiling_narrows_inductor_cpu_vectors_unless_the_user_chose(monkeypatch):
    """torch 2.13's 512-bit Inductor CPU kernels corrupt the heap on these models (benchmarks/compile_vectors.py):
    compiling asks for 256-bit ones where Inductor would pick wider, and leaves a width the user set alone."""
    import torch._inductor.config as inductor_config
    import torch._inductor.cpu_vec_isa as vec

    from smmcl.models.compiled import SAFE_SIMD_BITS, narrow_cpu_vectors

    class Wide:
        def bit_width(self):
            return 512 if inductor_config.cpp.simdlen is None else inductor_config.cpp.simdlen

    monkeypatch.setattr(vec, "pick_vec_isa", lambda: Wide())
    monkeypatch.setattr(inductor_config.cpp, "simdlen", None)
    narrow_cpu_vectors()
    assert inductor_config.cpp.simdlen == SAFE_SIMD_BITS == 256
    monkeypatch.setattr(inductor_config.cpp, "simdlen", 512)  # the user's own choice
    narrow_cpu_vectors()
    assert inductor_config.cpp.simdlen == 512


def test_a_frozen_compiled_model_that_disagrees_with_eager_runs_eagerly():
    """Frozen kernels that compute something else (torch 2.13, ATen's AVX2 kernels on an AVX-512 CPU: off by 0.16)
    are caught on the first batch: a warning, the eager result, and eager from then on."""
    from smmcl.models.compiled import FrozenCompiled

    model = nn.Conv2d(3, 4, 1).eval()

    class Wrong(nn.Module):  # stands in for torch.compile's wrapper of `model`
        def __init__(self):
            super().__init__()
            self._orig_mod = model

        def forward(self, x):
            return model(x) + 0.5

    frozen = FrozenCompiled(model)
    frozen.compiled = Wrong()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        with pytest.warns(RuntimeWarning, match="disagrees with eager by 0.5 on its first batch.*runs eagerly"):
            first = frozen(x)
        assert torch.equal(first, model(x)) and torch.equal(frozen(x), model(x)) and not frozen.frozen


def test_images_far_smaller_than_a_cell_of_the_coarsest_stage_are_said(tiny):
    """Trial 17 P-tiny: 8x8 images were predicted as one class without a word (a scale that shrinks them was said)."""
    rgb, aux = images(1, 8, 8)
    with pytest.warns(InputWarning, match=r"8x8 images are less than half a cell of the encoder's coarsest stage"):
        predict_probs(tiny, rgb, aux)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        predict_probs(tiny, *images(1, 24, 32))


class Constant(nn.Module):
    """Class 0 everywhere."""

    def forward(self, rgb, aux):
        logits = torch.zeros(rgb.shape[0], K, *rgb.shape[-2:])
        logits[:, 0] = 1.0
        return logits


def test_no_scored_class_in_labels_or_predictions_is_refused_not_a_nan_miou():
    """Trial 18 D027: "mIoU -" printed and NaN written to the scores file (which strict JSON readers refuse)."""
    from smmcl.errors import DatasetError

    data = TinySet([(16, 20)])
    data.samples[0]["label"][:] = 0  # only class 0, which is excluded; the model predicts only class 0
    with pytest.raises(DatasetError, match=r"none of the classes scored \(1, .*eval.exclude_classes=\[0\]\) has a "
                                           r"labelled or predicted pixel"):
        score_dataset(Constant(), data, K, progress=False, exclude=[0])
