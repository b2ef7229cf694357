"""Weights in and out: ImageNet files of each backbone's release, released SMMCL checkpoints, our format."""

from __future__ import annotations

import re

import pytest
import torch

from smmcl.cli import main
from smmcl.config import load_config
from smmcl.errors import CheckpointError
from smmcl.models import build_model
from smmcl.weights import (
    load_backbone_weights,
    load_official_smmcl,
    load_pretrained,
    load_weights,
    read_pretrained_config,
    save_pretrained,
)

from support.imagenet_files import official_mit_state_dict, torchvision_resnet_state_dict
from support.released_reference import reference_decoder, reference_encoder, released_state_dict

SMALL_MSCAN = dict(embed_dims=(8, 16, 32, 64), depths=(1, 1, 2, 1), mlp_ratios=(8, 8, 4, 4))


def small_mscan_config(ham_out_norm: bool = False, **decoder) -> dict:
    return {
        "num_classes": 14,
        "backbone": {"name": "mscan", "preset": "B", "embed_dims": list(SMALL_MSCAN["embed_dims"]),
                     "depths": list(SMALL_MSCAN["depths"]), "drop_path_rate": 0.0},
        "decoder": {"name": "lightham", "channels": 32, "ham_out_norm": ham_out_norm, **decoder},
        "projector": {"dim": 16},
    }


def segnext_imagenet_state_dict(**dims) -> dict:
    """A SegNeXt `mscan_*.pth` state dict: the released SMMCL visible-branch keys (the same names,
    taken from an independent key list) plus the ImageNet classifier."""
    released = released_state_dict(**dims, decoder_channels=32, projector_dim=16)
    state = {k[len("backbone."):]: v for k, v in released.items() if re.match(r"backbone\.(patch_embed|block|norm)\d", k)}
    state["head.weight"] = torch.randn(1000, dims["embed_dims"][-1])
    state["head.bias"] = torch.zeros(1000)
    return state


# --- ImageNet backbone files --------------------------------------------------------------------------

def _check_both_branches(model, state, rename) -> None:
    ours = model.state_dict()
    for key, value in state.items():
        target = rename(key)
        if target is None:
            continue
        for branch in ("vis", "aux"):
            assert torch.equal(ours[f"encoder.{branch}.{target}"], value.to(ours[f"encoder.{branch}.{target}"].dtype)), key


def _staged(key: str):
    if key.startswith("head."):
        return None
    m = re.match(r"(patch_embed|block|norm)(\d+)\.(.+)", key)
    return f"stages.{int(m.group(2)) - 1}.{m.group(1)}.{m.group(3).replace('mlp.dwconv.dwconv.', 'mlp.dwconv.')}"


def _torchvision(key: str):
    if key.startswith("fc."):
        return None
    if key.startswith(("conv1.", "bn1.")):
        return f"stages.0.stem.{key}"
    m = re.match(r"layer(\d+)\.(.+)", key)
    return f"stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}"


MIT_B0 = dict(embed_dims=[32, 64, 160, 256], depths=[2, 2, 2, 2], num_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1],
              mlp_ratios=[4, 4, 4, 4])
FORMATS = {
    "mscan": (
        {"backbone": {"name": "mscan", "preset": "B", "embed_dims": [8, 16, 32, 64], "depths": [1, 1, 2, 1]},
         "decoder": {"channels": 32}, "projector": {"dim": 16}},
        lambda: segnext_imagenet_state_dict(**SMALL_MSCAN), _staged, ["head.weight", "head.bias"],
    ),
    "mit": (
        {"backbone": {"name": "mit", "preset": "B0"}, "decoder": {"channels": 32}, "projector": {"dim": 16}},
        lambda: official_mit_state_dict(**MIT_B0), _staged, ["head.weight", "head.bias"],
    ),
    "resnet": (
        {"backbone": {"name": "resnet", "preset": "18"}, "decoder": {"channels": 32}, "projector": {"dim": 16}},
        lambda: torchvision_resnet_state_dict([2, 2, 2, 2], "basic"), _torchvision, ["fc.weight", "fc.bias"],
    ),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("wrapped", [False, True])
def test_imagenet_file_fills_both_branches(fmt, wrapped, tmp_path):
    cfg, make_state, rename, ignored = FORMATS[fmt]
    model = build_model(cfg)
    state = make_state()
    path = tmp_path / f"{fmt}.pth"
    torch.save({"state_dict": state, "meta": {"epoch": 300}} if wrapped else state, path)
    report = load_backbone_weights(model, path, strict=True)
    assert report.missing_keys == [] and report.unexpected_keys == []
    assert sorted(report.ignored_keys) == sorted(ignored)
    assert report.loaded == 2 * (len(state) - len(ignored))
    _check_both_branches(model, state, rename)
    assert str(path) in report.summary()


def test_old_torchvision_file_without_bn_counters_is_complete():
    model = build_model(FORMATS["resnet"][0])
    state = {k: v for k, v in torchvision_resnet_state_dict([2, 2, 2, 2], "basic").items()
             if not k.endswith("num_batches_tracked")}
    report = load_backbone_weights(model, state, strict=True)
    assert report.missing_keys == []


def test_model_pretrained_config_loads_backbone(tmp_path):
    cfg, make_state, rename, _ = FORMATS["mit"]
    state = make_state()
    torch.save(state, tmp_path / "mit_b0.pth")
    model = build_model(cfg)
    report = load_weights(model, tmp_path / "mit_b0.pth")
    assert report.loaded > 0 and not report.missing_keys
    _check_both_branches(model, state, rename)


def test_shape_mismatch_names_key_shapes_and_file(tmp_path):
    model = build_model(FORMATS["resnet"][0])
    state = torchvision_resnet_state_dict([3, 4, 6, 3], "bottleneck")  # a ResNet-50 file for a ResNet-18 model
    path = tmp_path / "resnet50.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_backbone_weights(model, path)
    msg = str(err.value)
    assert str(path) in msg and "layer1.0.conv1.weight" in msg
    assert "[64, 64, 1, 1]" in msg and "[64, 64, 3, 3]" in msg


def test_wrong_format_and_bad_files(tmp_path):
    model = build_model(FORMATS["resnet"][0])
    mit_file = tmp_path / "mit_b0.pth"
    torch.save(official_mit_state_dict(**MIT_B0), mit_file)
    with pytest.raises(CheckpointError, match="torchvision resnet"):
        load_backbone_weights(model, mit_file)
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(mit_file.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=re.escape(str(truncated))):
        load_backbone_weights(model, truncated)
    with pytest.raises(CheckpointError, match="not found"):
        load_backbone_weights(model, tmp_path / "absent.pth")


class Payload:
    """An arbitrary class: unpickling it would need to import and run code."""


def test_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "obj": Payload()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_backbone_weights(build_model(FORMATS["resnet"][0]), path)


# --- released SMMCL checkpoints ---------------------------------------------------------------------

def _compare_with_reference(model, sd, embed_dims, depths, ham_out_norm, size=(64, 96)):
    torch.manual_seed(1)
    rgb, aux = torch.randn(2, 3, *size), torch.randn(2, 3, *size)
    model.eval()
    with torch.no_grad():
        fused, r_vis, r_aux = model.encode(rgb, aux)
        ref_fused, ref_vis, ref_aux = reference_encoder(sd, rgb, aux, embed_dims, depths)
        for ours, ref in zip(fused, ref_fused):
            torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(r_vis, ref_vis, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(r_aux, ref_aux, atol=1e-4, rtol=1e-4)
        # Decoder: feed both implementations the bases our eval mode draws.
        ham = model.decoder.hamburger.ham
        c = model.decoder.squeeze.conv.out_channels
        bases = ham._initial_bases(torch.zeros(2, c, 1))
        logits = model.decoder(fused)
        ref_logits = reference_decoder(sd, ref_fused, bases, eval_steps=ham.eval_steps, ham_out_norm=ham_out_norm)
        torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)


def test_released_mscan_b_matches_reference_encoder_and_decoder(tmp_path):
    """Full SegNeXt-B size: the released checkpoint layout loads strictly and reproduces the reference."""
    sd = released_state_dict(seed=0)
    path = tmp_path / "epoch-500.pth"
    torch.save({"model": sd, "optimizer": {"state": {}, "param_groups": []}, "epoch": 500, "iteration": 1000}, path)
    model = build_model({"num_classes": 14, "backbone": {"name": "mscan", "preset": "B"},
                         "decoder": {"ham_out_norm": False}})
    report = load_official_smmcl(model, path)
    assert report.missing_keys == [] and report.unexpected_keys == []
    assert report.loaded == len(sd)
    _compare_with_reference(model, sd, (64, 128, 320, 512), (3, 3, 12, 3), ham_out_norm=False)


@pytest.mark.parametrize("ham_out_norm", [False, True])
def test_released_layout_small_both_ham_variants(ham_out_norm):
    sd = released_state_dict(**SMALL_MSCAN, decoder_channels=32, projector_dim=16, seed=2, ham_out_norm=ham_out_norm)
    model = build_model(small_mscan_config(ham_out_norm=ham_out_norm))
    load_official_smmcl(model, sd)
    _compare_with_reference(model, sd, SMALL_MSCAN["embed_dims"], SMALL_MSCAN["depths"], ham_out_norm)


def test_encoder_only_state_dict_without_prefix():
    sd = released_state_dict(**SMALL_MSCAN, decoder_channels=32, projector_dim=16, seed=3)
    encoder_only = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    model = build_model(small_mscan_config())
    report = load_official_smmcl(model, encoder_only, strict=True)
    assert report.unexpected_keys == []
    assert report.missing_keys and all(k.startswith("decoder.") for k in report.missing_keys)
    assert torch.equal(model.encoder.cross_modal[2].channel[4].weight, encoder_only["module3.Channel.encode.4.weight"])
    assert torch.equal(model.encoder.aux.stages[1].block[0].mlp.dwconv.weight,
                       encoder_only["block_other2.0.mlp.dwconv.dwconv.weight"])


def test_ham_out_mismatch_explains_the_fix():
    sd = released_state_dict(**SMALL_MSCAN, decoder_channels=32, projector_dim=16, ham_out_norm=False)
    model = build_model(small_mscan_config(ham_out_norm=True))
    with pytest.raises(CheckpointError, match="ham_out_norm=false"):
        load_official_smmcl(model, sd)
    report = load_official_smmcl(model, sd, strict=False)
    assert "decoder.hamburger.ham_out.gn.weight" in report.missing_keys
    assert "decode_head.hamburger.ham_out.conv.bias" in report.unexpected_keys


# --- our format ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_save_load_pretrained_round_trip_is_exact(fmt, tmp_path):
    torch.manual_seed(0)
    cfg = load_config({"name": f"rt-{fmt}", "model": {**FORMATS[fmt][0], "num_classes": 5}})
    model = build_model(cfg.model).eval()
    # Non-trivial BN statistics, so the buffers must travel too.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = save_pretrained(model, cfg, tmp_path / "w.safetensors")
    loaded = load_pretrained(path)
    assert not loaded.training
    assert read_pretrained_config(path) == cfg
    rgb, aux = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(rgb, aux), loaded(rgb, aux))


def test_pretrained_file_errors(tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="not smmcl weights"):
        load_pretrained(plain)
    cfg = load_config({"model": small_mscan_config()})
    good = save_pretrained(build_model(cfg.model), cfg, tmp_path / "good.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=re.escape(str(broken))):
        load_pretrained(broken)
    torch.save({"x": torch.zeros(2)}, tmp_path / "model.safetensors")  # a PyTorch file, whatever its name
    with pytest.raises(CheckpointError, match="smmcl weights are .safetensors files"):
        load_pretrained(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrained(tmp_path / "missing.safetensors")


def test_convert_cli_official_then_load_pretrained(tmp_path, capsys):
    sd = released_state_dict(**SMALL_MSCAN, decoder_channels=32, projector_dim=16, seed=4)
    src = tmp_path / "epoch-500.pth"
    torch.save({"model": sd, "epoch": 500}, src)
    cfg_path = tmp_path / "model.yaml"
    Config_yaml = "model:\n" + "".join(
        f"  {line}\n" for line in __import__("yaml").safe_dump(small_mscan_config()).splitlines()
    )
    cfg_path.write_text(Config_yaml)
    out = tmp_path / "converted.safetensors"
    assert main(["convert", str(src), "--from", "official-smmcl", "--config", str(cfg_path), "--out", str(out)]) == 0
    assert "missing in the file, kept as initialised: 0" in capsys.readouterr().out
    direct = build_model(small_mscan_config())
    load_official_smmcl(direct, sd)
    converted = load_pretrained(out)
    rgb, aux = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(direct.eval()(rgb, aux), converted(rgb, aux))
    # A backbone format that does not match the config's backbone is refused.
    assert main(["convert", str(src), "--from", "mit", "--config", str(cfg_path), "--out", str(out)]) == 2
    assert "mscan" in capsys.readouterr().err


def test_info_cli_counts_released_dual_encoder(tmp_path, capsys):
    cfg = tmp_path / "b.yaml"
    cfg.write_text("model:\n  backbone: {name: mscan, preset: B}\n  decoder: {ham_out_norm: false}\n")
    assert main(["info", str(cfg), "--size", "480x640"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"dual encoder\s+71,600,516", out)
    assert main(["info", str(cfg), "--size", "480x640", "--json"]) == 0
    info = __import__("json").loads(capsys.readouterr().out)
    assert info["params"]["dual encoder"] == 71_600_516
    flops = info["flops"]
    parts = ["visible encoder branch", "auxiliary encoder branch", "cross-modal modules", "fusion convs", "decoder"]
    assert flops["visible encoder branch"] == flops["auxiliary encoder branch"] > 0
    assert sum(flops[p] for p in parts) == flops["inference total"]
    assert flops["projectors"] > 0


def test_pretrained_parts_branches_loads_the_two_encoder_branches_only(tmp_path):
    """model.pretrained_parts=branches, the paper's start: the branches take the file's weights; cross-modal
    modules, fusion, projectors and decoder keep their own initialisation; `all` takes every part."""
    cfg = load_config({"model": small_mscan_config()})
    torch.manual_seed(1)
    path = save_pretrained(build_model(cfg.model), cfg, tmp_path / "source.safetensors")
    source = build_model(cfg.model)
    source.load_state_dict(load_pretrained(path).state_dict())
    torch.manual_seed(2)
    fresh = build_model(cfg.model)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    report = load_weights(fresh, path, parts="branches")
    branches = ("encoder.vis.", "encoder.aux.")
    after, theirs = fresh.state_dict(), source.state_dict()
    assert report.loaded == sum(k.startswith(branches) for k in after) and not report.missing_keys
    assert report.not_asked and all(not k.startswith(branches) for k in report.not_asked) and not report.ignored_keys
    # Trial 6 C94: said as left out by choice, not as tensors with no place in a model.
    assert f"not loaded (model.pretrained_parts=branches): {len(report.not_asked)}: " in report.summary()
    assert "no place" not in report.summary()
    for k, v in after.items():
        if k.endswith("num_batches_tracked"):
            continue
        expected = theirs[k] if k.startswith(branches) else before[k]
        assert torch.equal(v, expected), k
    assert any(not torch.equal(before[k], theirs[k]) for k in after if k.startswith("decoder."))
    load_weights(fresh, path, parts="all")
    assert all(torch.equal(v, theirs[k]) for k, v in fresh.state_dict().items())
    with pytest.raises(CheckpointError, match="pretrained_parts='head'.*all, branches"):
        load_weights(fresh, path, parts="head")
    # A model of other classes started from these weights whole: the shape error names the way (trial 6 C92).
    other = load_config({"model": {**small_mscan_config(), "num_classes": cfg.model.num_classes + 2}})
    with pytest.raises(CheckpointError, match=r"has shape .*; to start a model of other classes .* "
                                              r"model.pretrained_parts=branches"):
        load_weights(build_model(other.model), path, parts="all")
    assert load_weights(build_model(other.model), path, parts="branches").loaded == report.loaded
