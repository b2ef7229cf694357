"""Map where a bare depth-wise conv hangs on this CPU under bf16 autocast with NHWC tensors (no guard).

Each probe runs in a forked child with a 3 s alarm; "hang" means it did not return. This is the evidence
behind `smmcl.models.cpu_guard.hang_prone`; rerun it after a torch upgrade to see whether the guard is
still needed:  .venv/bin/python benchmarks/onednn_hang.py
"""

from __future__ import annotations

import os
import signal

import torch

torch.set_num_threads(1)  # a forked child must not inherit a running OpenMP pool


def probe(channels: int, kernel: tuple[int, int], width: int, dtype: torch.dtype = torch.bfloat16) -> str:
    pid = os.fork()
    if pid == 0:
        signal.alarm(3)
        conv = nn_conv(channels, kernel)
        x = torch.randn(1, channels, 30, width).contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
            conv(x)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return "ok" if status == 0 else "hang"


def nn_conv(channels: int, kernel: tuple[int, int]) -> torch.nn.Conv2d:
    pad = (kernel[0] // 2, kernel[1] // 2)
    return torch.nn.Conv2d(channels, channels, kernel, padding=pad, groups=channels).to(memory_format=torch.channels_last)


def main() -> None:
    print(f"torch {torch.__version__}; depth-wise conv, input 1 x C x 30 x W, bf16 autocast, channels_last")
    widths = [11, 13, 14, 15, 17, 21, 31]
    print("kernel 1 x k, W = 40:  C \\ k " + " ".join(f"{k:>5}" for k in widths))
    for c in [2, 4, 8, 16, 17, 24, 32, 64]:
        print(f"{c:>26}   " + " ".join(f"{probe(c, (1, k), 40):>5}" for k in widths))
    print("C = 16, kernel 1 x 21 by feature width W: " + ", ".join(f"W={w} {probe(16, (1, 21), w)}" for w in (16, 24, 30, 40, 80)))
    print(f"C = 16, kernel 21 x 1 (tall): {probe(16, (21, 1), 40)};  fp16 autocast, 1 x 21: {probe(16, (1, 21), 40, torch.float16)}")


if __name__ == "__main__":
    main()
