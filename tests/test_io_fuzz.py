"""Damaged files: every read either succeeds or raises a one-line DataError naming the file, nothing else.

Small valid files (parquet, quoted csv, tsv, uir) are written with our writers from a tiny synthetic
dataset, then damaged at seeded positions: one flipped byte, a truncation, or a few garbage bytes
inserted. Each damaged file is read with the public readers (half of the cases with
``on_bad_rows="skip"``). A polars error or a panic in its Rust code (``PanicException``, a
``BaseException``) getting out of a reader fails the test, as does a message over several lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.io import read_interactions, read_interactions_report, write_interactions
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError

FORMATS = ("parquet", "csv", "tsv", "uir")
SUFFIX = {"parquet": ".parquet", "csv": ".csv", "tsv": ".tsv", "uir": ".txt"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The valid file of each format, as bytes."""
    folder = tmp_path_factory.mktemp("fuzz-sources")
    inter = make_synthetic(12, 10, 40, random_state=3)
    # String ids with a comma and a quote make the csv writer quote them, so the quoted-CSV engine runs.
    quoted = Interactions(
        inter.indptr,
        inter.indices,
        IdMap([f"u,{k}" for k in range(inter.n_users)]),
        IdMap([f'i"{k}' for k in range(inter.n_items)]),
        ratings=inter.ratings,
        timestamps=inter.timestamps,
    )
    out = {}
    for fmt in FORMATS:
        data = quoted if fmt == "csv" else inter
        out[fmt] = write_interactions(data, folder / f"valid{SUFFIX[fmt]}", format=fmt).read_bytes()
    return out


def _damage(data: bytes, rng: np.random.Generator, kind: int) -> bytes:
    """``data`` with one byte flipped (kind 0), cut short (1), or 1-8 random bytes inserted (2)."""
    b = bytearray(data)
    pos = int(rng.integers(len(b)))
    if kind == 0:
        b[pos] ^= int(rng.integers(1, 256))
    elif kind == 1:
        del b[pos:]
    else:
        b[pos:pos] = rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    return bytes(b)


def _failures(fmt: str, source: bytes, folder: Path, cases: range) -> list[str]:
    """Read each damaged case; describe every outcome that is neither a result nor a one-line DataError."""
    bad = []
    for case in cases:
        rng = np.random.default_rng([17, FORMATS.index(fmt), case])
        path = folder / f"case{case}{SUFFIX[fmt]}"
        path.write_bytes(_damage(source, rng, case % 3))
        try:
            if case % 2:
                read_interactions_report(path, format=fmt, on_bad_rows="skip")  # type: ignore[arg-type]
            else:
                read_interactions(path, format=fmt)  # type: ignore[arg-type]
        except DataError as e:
            message = str(e)
            if "\n" in message or path.name not in message:
                bad.append(f"case {case}: DataError not one line naming the file: {message!r}")
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3's PanicException is a BaseException
            bad.append(f"case {case}: {type(e).__module__}.{type(e).__name__}: {str(e)[:200]!r}")
        path.unlink()
    return bad


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_file_reads_or_raises_one_line_data_error(
    fmt: str, sources: dict[str, bytes], tmp_path: Path
) -> None:
    assert _failures(fmt, sources[fmt], tmp_path, range(25)) == []  # 4 x 25 = 100 cases


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_file_reads_or_raises_one_line_data_error_many(
    fmt: str, sources: dict[str, bytes], tmp_path: Path
) -> None:
    assert _failures(fmt, sources[fmt], tmp_path, range(25, 25 + 300)) == []  # 4 x 300 = 1,200 cases


def test_the_fuzzer_damages_every_format(sources: dict[str, bytes]) -> None:
    """The quoted engine is exercised (the csv holds quotes) and every damage kind changes the bytes."""
    assert b'"' in sources["csv"] and b'"' not in sources["tsv"]
    rng = np.random.default_rng(0)
    for kind in range(3):
        assert _damage(sources["parquet"], rng, kind) != sources["parquet"]
