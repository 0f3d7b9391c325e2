"""What every benchmark prints about the machine it ran on: the CPU model and the load average.

Imported by the scripts in this folder (each puts the folder on ``sys.path`` first, since they are run as
``python benchmarks/NAME.py`` and also loaded by file path from the tests).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


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
