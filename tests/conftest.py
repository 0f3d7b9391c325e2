"""Shared fixtures. Real datasets are read from ../shared/datasets and skipped cleanly where absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GAN4REC_SHARED", ROOT.parent / "shared")) / "datasets"

# Small-batch work on 2 cores: one torch thread each (see DEVELOPERS guide).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (real datasets live in ../shared/datasets beside the checkout)")
    return path


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder of real datasets; skips the test where it is absent."""
    return _need(SHARED)


@pytest.fixture(scope="session")
def cfgan_split() -> tuple[Path, Path]:
    """Paths of the CFGAN paper's ML-100K train and test files; skips where absent."""
    d = _need(SHARED / "cfgan-ml100k")
    return _need(d / "ML100K.train"), _need(d / "ML100K.test")


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """Raw MovieLens 100K folder; skips where absent."""
    return _need(SHARED / "ml-100k")
