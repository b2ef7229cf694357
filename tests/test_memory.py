"""`smmcl.memory.keep_freed_memory`: freed large blocks are reused, not page-faulted in again at the next
allocation (what made fp32 eager inference swing 2x, docs/benchmarks.md). Counted in page faults, not seconds."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from smmcl.memory import keep_freed_memory
    assert keep_freed_memory()
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(64 * 2**20 // 8)  # 64 MiB, touched, then freed
    del a
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults[-1])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_reused_without_page_faults():
    faults = {mode: int(subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("default", "keep")}
    # numpy asks for 2 MiB pages where the kernel allows (madvise), so a fresh 64 MiB block takes at least 32 faults.
    assert faults["default"] >= 32, faults  # glibc unmapped the block at free: faulted in again
    assert faults["keep"] < 8, faults  # reused as it was
