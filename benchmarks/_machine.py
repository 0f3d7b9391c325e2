"""What every benchmark prints about the machine it ran on: the CPU model and the load average.

Imported by the scripts in this folder (each puts the folder on ``sys.path`` first, since they are run as
``python benchmarks/NAME.py`` and also loaded by file path from the tests).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> str:
    """The 1/5/15-minute load averages as ``"a/b/c"`` (``"n/a"`` where the OS has none)."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def matmul_seconds(n: int = 2048, repeats: int = 5, device: str = "cpu", dtype: torch.dtype | None = None) -> float:
    """Best time of a dense ``n x n`` torch product (float32 unless ``dtype``) with the current threads.

    The reference every benchmark divides by, measured in its own process.
    """
    import torch

    dt = torch.float32 if dtype is None else dtype
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    out = torch.empty(n, n, device=device, dtype=dt)

    def sync() -> None:
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()

    torch.mm(a, b, out=out)
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        sync()
        best = min(best, time.perf_counter() - t)
    return best
