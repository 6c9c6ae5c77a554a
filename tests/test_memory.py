"""nanohet.memory: with the allocator setting every step applies, a freed large array's memory serves the next
one (no fresh pages from the kernel); without it glibc maps and unmaps each large block."""

import os
import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
from nanohet.memory import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "reuse" else False
a = np.ones(1 << 25); del a  # 256 MB, freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(1 << 25)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_large_arrays_are_reused():
    applied, reused = _faults("reuse")
    _, fresh = _faults("default")
    assert applied
    assert fresh >= 100  # 65,536 pages of 4 kB, or 128 huge pages: each faulted in anew
    assert reused < fresh / 4
