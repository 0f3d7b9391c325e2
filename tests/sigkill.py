"""Shared by the resume tests: run a training script, SIGKILL it mid-run, check it really died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def run_and_sigkill(script: Path, ckpt: Path, *, timeout: float = 60.0, max_delay: float = 1.2) -> None:
    """Start ``script``; once its first checkpoint is complete, SIGKILL it at a random later moment.

    Fails the test if the child dies on its own, writes no checkpoint within ``timeout`` seconds, or
    finishes before it could be killed.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not list(ckpt.glob("epoch-*/CURRENT")):
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else "child died"
            assert time.monotonic() < deadline, "the child wrote no checkpoint in time"
            time.sleep(0.02)
        time.sleep(float(np.random.default_rng().uniform(0.0, max_delay)))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
