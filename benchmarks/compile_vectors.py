"""Inductor's CPU vector width and the correctness of a compiled smmcl model (torch 2.13).

Each try compiles a small smmcl model (the compiled-inference test's) in a fresh process and compares its class
probabilities with eager; a process that dies (glibc heap corruption) counts as a crash. Run:

    python benchmarks/compile_vectors.py [--tries 3]

With the CPU's own width (512 bits on AVX-512) the processes crash; with 256 bits (what
`smmcl.models.compiled.narrow_cpu_vectors` sets) they agree with eager to about 1e-7.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, torch
sys.path.insert(0, {tests!r})
import torch._inductor.config as c
c.cpp.simdlen = {simdlen}
from support import build_tiny_model, tiny_config
from smmcl.engine.inference import predict_probs
cfg = tiny_config("model.num_classes=4", "data.class_names=[]", "model.decoder.name=mlp", "model.decoder.channels=16",
                  "model.projector.dim=8", "model.backbone.embed_dims=[8,32]", "model.backbone.depths=[1,1]",
                  "model.backbone.mlp_ratios=[8,8]", "model.projector.stage=2")
model = build_tiny_model(cfg, seed=0).eval()
torch.manual_seed(0)
rgb, aux = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96)
ref = predict_probs(model, rgb, aux)
out = predict_probs(torch.compile(model), rgb, aux)
print(float((out - ref).abs().max()))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=3)
    args = parser.parse_args()
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    print(f"CPU vectors Inductor picks here: {pick_vec_isa().bit_width()} bits ({type(pick_vec_isa()).__name__})")
    for simdlen in (None, 256):
        results = []
        for _ in range(args.tries):
            run = subprocess.run([sys.executable, "-c", CHILD.format(tests=str(ROOT / "tests"), simdlen=simdlen)],
                                 capture_output=True, text=True, cwd=ROOT)
            lines = run.stdout.strip().splitlines()
            results.append(f"max |compiled - eager| {float(lines[-1]):.1e}" if run.returncode == 0 and lines else
                           f"crashed (exit {run.returncode}: {(run.stderr.strip().splitlines() or ['?'])[-1][:60]})")
        print(f"simdlen {simdlen or 'CPU default'}: " + "; ".join(results))


if __name__ == "__main__":
    main()
