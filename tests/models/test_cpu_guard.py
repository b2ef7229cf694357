"""The guard that keeps slim depth-wise strip convs out of a oneDNN bf16 NHWC hang (models/cpu_guard.py).

The hang itself is exercised in a child process with a timeout, so a regression fails instead of blocking CI.
"""

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from smmcl.models.compiled import prepare_model
from smmcl.models import build_model
from smmcl.models.cpu_guard import GuardedConv2d, guard_cpu_depthwise, hang_prone

SLIM = {"num_classes": 4, "backbone": {"name": "mscan", "preset": "T", "embed_dims": [16, 32, 64, 128], "depths": [1, 1, 1, 1]},
        "decoder": {"name": "mlp", "channels": 16}, "projector": {"dim": 8}}


def test_only_slim_wide_depthwise_convs_are_hang_prone():
    assert hang_prone(nn.Conv2d(16, 16, (1, 21), groups=16))
    assert hang_prone(nn.Conv2d(2, 2, (1, 15), groups=2))
    assert not hang_prone(nn.Conv2d(17, 17, (1, 21), groups=17))  # wider
    assert not hang_prone(nn.Conv2d(16, 16, (21, 1), groups=16))  # tall kernel
    assert not hang_prone(nn.Conv2d(16, 16, (1, 13), groups=16))  # narrower kernel
    assert not hang_prone(nn.Conv2d(16, 32, (1, 21), groups=16))  # not depth-wise
    assert not hang_prone(nn.Linear(16, 16))


def test_build_model_guards_the_slim_strip_convs_only():
    model = build_model(SLIM)
    # Stage 1 (16 channels) of each branch: one block, one 1x21 strip conv (the 1x7 and 1x11 are narrower).
    assert guard_cpu_depthwise(model) == 2
    assert guard_cpu_depthwise(build_model({**SLIM, "backbone": {"name": "mscan", "preset": "T", "depths": [1, 1, 1, 1]}})) == 0


def test_guarded_layers_compute_the_same_in_nchw():
    torch.manual_seed(0)
    model = build_model(SLIM).eval()
    rgb, aux = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ref = model(rgb, aux)
        fast = prepare_model(model, channels_last=True)
        out = fast(rgb.contiguous(memory_format=torch.channels_last), aux.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    guarded = [m for m in model.modules() if hang_prone(m)]
    assert guarded and all(m.weight.stride() == (21, 21, 21, 1) for m in guarded)
    assert all(isinstance(m, GuardedConv2d) for m in guarded)
    assert set(model.state_dict()) == set(build_model(SLIM).state_dict())  # checkpoint names unchanged


def test_slim_mscan_bf16_channels_last_returns():
    code = textwrap.dedent(
        f"""
        import torch
        from smmcl.models.compiled import prepare_model
        from smmcl.models import build_model
        torch.set_num_threads(1)
        model = prepare_model(build_model({SLIM!r}).eval(), channels_last=True)
        x = torch.randn(1, 3, 160, 192).contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            print(tuple(model(x, x).shape))
        """
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("bf16 channels_last forward of a slim MSCAN hung: the oneDNN guard did not apply")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(1, 4, 160, 192)"
