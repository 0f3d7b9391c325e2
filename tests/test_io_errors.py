"""Reader and writer errors: one line naming the file, worded for Python and for the command line; and the
modes of written files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from gan4rec.data.idmap import IdMap
from gan4rec.data.io import read_interactions, write_interactions, write_recommendations
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _batches() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [(np.array([0, 1]), np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.5], [0.7, 0.2]]))]


def test_data_error_has_no_cli_wording_by_default() -> None:
    assert DataError("x").cli_message is None


# -------------------------------------------------------------------------------- one line
def test_polars_parse_error_becomes_one_line_naming_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "open-quote.csv", 'user,item\n"1,2\n3,4\n')
    with pytest.raises(DataError) as info:
        read_interactions(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "could not be parsed" in message
    assert isinstance(info.value.__cause__, pl.exceptions.PolarsError)  # the full detail, for --debug
    assert "\n" in str(info.value.__cause__)


def test_parquet_data_read_errors_become_data_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.parquet"
    write_interactions(make_synthetic(10, 8, 30, random_state=0), path)

    def compute_error(*args: object, **kwargs: object) -> None:
        raise pl.exceptions.ComputeError("parquet: File out of specification\n\nmore detail\nand more")

    monkeypatch.setattr(pl, "read_parquet", compute_error)
    with pytest.raises(DataError, match=r"is not a readable parquet file \(parquet: File out of spec") as info:
        read_interactions(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_parquet_decoder_panic_becomes_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.parquet"
    write_interactions(make_synthetic(10, 8, 30, random_state=0), path)

    class PanicException(BaseException):  # what pyo3 raises when polars' Rust code panics
        pass

    def panic(*args: object, **kwargs: object) -> None:
        raise PanicException("called `Result::unwrap()` on an `Err` value\nbacktrace ...")

    monkeypatch.setattr(pl, "read_parquet", panic)
    with pytest.raises(DataError, match="corrupt data") as info:
        read_interactions(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert isinstance(info.value.__cause__, PanicException)


def test_other_base_exceptions_are_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.parquet"
    write_interactions(make_synthetic(10, 8, 30, random_state=0), path)

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pl, "read_parquet", interrupt)
    with pytest.raises(KeyboardInterrupt):
        read_interactions(path)


def test_a_column_name_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "n.csv", '"who\nis it",item\n1,2\n')
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert "\n" not in str(info.value) and "'who\\nis it'" in str(info.value)


# -------------------------------------------------------------------------------- two wordings
def test_missing_column_error_speaks_python_and_the_command_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", "who,what\n1,10\n")
    with pytest.raises(DataError) as info:
        read_interactions(path)
    message, cli = str(info.value), info.value.cli_message
    assert "no recognisable user column (columns: who, what)" in message
    assert 'columns={"user": "COL"}' in message and "--columns" not in message
    assert cli is not None and "no recognisable user column" in cli and str(path) in cli
    assert "--columns user=COL" in cli and "columns={" not in cli
    # Once the user is named, the item is the next one missing.
    with pytest.raises(DataError) as info:
        read_interactions(path, columns={"user": "who"})
    assert 'columns={"item": "COL"}' in str(info.value)
    assert "--columns item=COL" in (info.value.cli_message or "")


def test_missing_field_of_a_headerless_file_speaks_both(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.txt", "1\n2\n")
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert 'columns={"item": POSITION}' in str(info.value)
    assert "--format csv" in (info.value.cli_message or "")
    assert "columns=" not in (info.value.cli_message or "")


def test_column_name_for_a_headerless_file_speaks_both(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.txt", "1 2\n")
    with pytest.raises(DataError, match="pass a 0-based position") as info:
        read_interactions(path, columns={"user": "userId"})
    assert "--columns user=userId names a column" in (info.value.cli_message or "")


def test_min_rating_without_ratings_speaks_both(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.txt", "1 2\n")
    with pytest.raises(DataError, match=r"min_rating=4.0 needs ratings") as info:
        read_interactions(path, min_rating=4.0)
    assert "--min-rating 4.0 needs ratings" in (info.value.cli_message or "")
    assert "--columns rating=COL" in (info.value.cli_message or "")


@pytest.mark.parametrize("name", ["recs.txt", "recs.train", "recs"])
def test_unsupported_recommendation_extension_lists_the_accepted_ones(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(DataError) as info:
        write_recommendations(path, iter(_batches()), IdMap([1, 2]), IdMap([10, 20]))
    cli = info.value.cli_message or ""
    for text in (str(info.value), cli):
        assert all(suffix in text for suffix in (".parquet", ".pq", ".csv", ".tsv")), text
        assert "uir" not in text and str(path) in text and "\n" not in text
    assert "--out" in cli and "format=" not in cli
    assert list(tmp_path.iterdir()) == []  # nothing half-written


# -------------------------------------------------------------------------------- file modes
@pytest.fixture
def umask() -> Iterator[None]:
    """Lets a test set the process umask (``os.umask``) and puts the old one back afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600)])
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_recommendations_file_honours_the_umask(
    tmp_path: Path, umask: None, mask: int, mode: int, suffix: str
) -> None:
    os.umask(mask)
    path = tmp_path / f"recs{suffix}"
    assert write_recommendations(path, iter(_batches()), IdMap([1, 2]), IdMap([10, 20])) == 4
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_interactions_file_honours_the_umask(tmp_path: Path, umask: None, mask: int, mode: int) -> None:
    os.umask(mask)
    path = write_interactions(make_synthetic(10, 8, 30, random_state=0), tmp_path / "d.csv")
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_failed_recommendation_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "recs.csv"
    path.write_text("old\n")

    def broken() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        yield from _batches()
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        write_recommendations(path, broken(), IdMap([1, 2]), IdMap([10, 20]))
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["recs.csv"]
