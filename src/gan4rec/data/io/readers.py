"""The public readers: one file, a pre-split train/test pair, with the format inferred or given."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypedDict, Unpack

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Duplicates, Interactions
from gan4rec.data.io.common import (
    FORMATS,
    UIR_SUFFIXES,
    BadRows,
    ColumnSpec,
    Format,
    OnBadRows,
    Spec,
    Table,
    apply_kcore,
    assemble,
    check_exists,
    check_read_args,
)
from gan4rec.data.io.delimited import read_text_table, text_spec
from gan4rec.data.io.movielens import ml_family_of_file, movielens_ratings_spec, read_movielens_report
from gan4rec.data.io.parquet import read_parquet_table
from gan4rec.errors import DataError

__all__ = ["ReadOptions", "infer_format", "read_interactions", "read_interactions_report", "read_uir_pair"]


def _read_table(path: Path, spec: Spec, on_bad_rows: OnBadRows) -> Table:
    """Parse and validate one file (any non-MovieLens-folder format) into a :class:`Table`."""
    check_exists(path)
    if spec.format == "parquet":
        return read_parquet_table(path, spec, on_bad_rows)
    return read_text_table(path, spec, on_bad_rows)


# -------------------------------------------------------------------------------- formats
def _sniff_double_colon(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(65536)
    first = next((ln for ln in head.splitlines() if ln.strip()), b"")
    return b"::" in first


def infer_format(path: str | os.PathLike[str]) -> str:
    """The reader format for ``path``, from its name (and, for ``.dat``, its first line).

    A folder is ``"movielens"``; ``.parquet``/``.pq`` is ``"parquet"``; ``.csv`` is ``"csv"``; ``.tsv`` is
    ``"tsv"``; ``u.data`` and a ``.dat`` file with ``::`` separators are ``"movielens"``; ``.train``,
    ``.test``, ``.txt``, ``.base``, ``.uir`` and a ``.dat`` without ``::`` are ``"uir"``.

    Raises
    ------
    MissingInputError
        If ``path`` does not exist.
    DataError
        If the name says nothing about the format.
    """
    p = Path(path)
    check_exists(p)
    if p.is_dir():
        return "movielens"
    name, suffix = p.name.lower(), p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    if suffix == ".tsv":
        return "tsv"
    if name == "u.data":
        return "movielens"
    if suffix == ".dat":
        return "movielens" if _sniff_double_colon(p) else "uir"
    if suffix in UIR_SUFFIXES:
        return "uir"
    raise DataError(
        f"cannot infer the format of {p} from its name (suffix {suffix or 'none'!r}); "
        "pass format= one of csv, tsv, uir, parquet, movielens"
    )


def _file_spec(
    path: Path, fmt: str, sep: str | None, header: bool | None, columns: ColumnSpec | None, encoding: str
) -> Spec:
    """The :class:`Spec` for one file of :func:`read_uir_pair` (MovieLens ratings files allowed)."""
    if fmt == "auto":
        fmt = infer_format(path)
    if fmt == "movielens":
        if path.is_dir():
            raise DataError(f"{path} is a folder; expected a ratings file")
        if sep is not None or header is not None or columns is not None:
            raise DataError("sep=, header= and columns= do not apply to MovieLens files; leave them unset")
        return movielens_ratings_spec(path, ml_family_of_file(path))
    return text_spec(fmt, sep, header, columns, encoding)


# -------------------------------------------------------------------------------- public readers
def read_interactions_report(
    path: str | os.PathLike[str],
    *,
    format: Format = "auto",
    sep: str | None = None,
    columns: ColumnSpec | None = None,
    header: bool | None = None,
    min_rating: float | None = None,
    duplicates: Duplicates = "last",
    min_user_interactions: int = 0,
    min_item_interactions: int = 0,
    on_bad_rows: OnBadRows = "error",
    user_map: IdMap | None = None,
    item_map: IdMap | None = None,
    encoding: str = "utf-8",
) -> tuple[Interactions, BadRows]:
    """:func:`read_interactions`, also returning the rows skipped with ``on_bad_rows="skip"``.

    Returns
    -------
    interactions
        As :func:`read_interactions`.
    bad_rows
        Counts and first lines of the dropped rows per reason (empty with ``on_bad_rows="error"``).
    """
    check_read_args(on_bad_rows, min_rating, min_user_interactions, min_item_interactions)
    p = Path(path)
    check_exists(p)
    if format not in FORMATS:
        raise DataError(f"format={format!r}; expected one of {', '.join(FORMATS)}")
    fmt = infer_format(p) if format == "auto" else format
    if fmt == "movielens":
        if sep is not None or header is not None or columns is not None:
            raise DataError("sep=, header= and columns= do not apply to format='movielens'; leave them unset")
        return read_movielens_report(
            p,
            layout="auto",
            min_rating=min_rating,
            duplicates=duplicates,
            min_user_interactions=min_user_interactions,
            min_item_interactions=min_item_interactions,
            on_bad_rows=on_bad_rows,
            features=True,
            user_map=user_map,
            item_map=item_map,
        )
    spec = text_spec(fmt, sep, header, columns, encoding)
    table = _read_table(p, spec, on_bad_rows)
    [(inter, bad)] = assemble(
        [table],
        user_map=user_map,
        item_map=item_map,
        min_rating=min_rating,
        duplicates=duplicates,
        on_bad_rows=on_bad_rows,
    )
    fixed = user_map is not None or item_map is not None
    inter = apply_kcore(inter, p, min_user_interactions, min_item_interactions, fixed)
    return inter, bad


class ReadOptions(TypedDict, total=False):
    """The keyword options of :func:`read_interactions` and :func:`read_interactions_report`.

    Declared once here so the two readers share one list; the defaults live in
    :func:`read_interactions_report`'s signature, the meanings in :func:`read_interactions`'s docstring.
    """

    format: Format
    sep: str | None
    columns: ColumnSpec | None
    header: bool | None
    min_rating: float | None
    duplicates: Duplicates
    min_user_interactions: int
    min_item_interactions: int
    on_bad_rows: OnBadRows
    user_map: IdMap | None
    item_map: IdMap | None
    encoding: str


def read_interactions(path: str | os.PathLike[str], **options: Unpack[ReadOptions]) -> Interactions:
    """Read user-item interactions from a file.

    Every option is keyword-only (:class:`ReadOptions`); the defaults are those of
    :func:`read_interactions_report`, which this calls.

    Parameters
    ----------
    path
        The file (or, for ``format="movielens"``, a MovieLens folder).
    format
        ``"csv"``, ``"tsv"``, ``"uir"``, ``"parquet"``, ``"movielens"`` or ``"auto"`` (inferred from the name,
        see :func:`infer_format`).
    sep
        Field separator; defaults to ``","`` for csv, tab for tsv and runs of whitespace for uir. A separator
        of several characters (``"::"``) is allowed, without quoting.
    columns
        Maps the roles ``"user"``, ``"item"``, ``"rating"``, ``"timestamp"`` to column names (files with a
        header) or 0-based positions; a role mapped to ``None`` is not read. By default headered files look
        for common names (``user``/``userId``/``user_id``, ``item``/``itemId``/``movieId``, ``rating``,
        ``timestamp``) and header-less files use positions 0, 1, 2, 3 as far as the first row has fields.
    header
        Whether the first non-blank line is a header. Defaults to ``True`` for csv/tsv, ``False`` for uir.
    min_rating
        The positive-feedback rule: keep interactions with ``rating >= min_rating``. ``None`` (the default)
        counts every interaction as positive.
    duplicates
        Repeated (user, item) pairs: keep the ``"last"`` or ``"first"`` in file order, the ``"max"`` rating,
        or raise (``"error"``).
    min_user_interactions, min_item_interactions
        k-core thresholds applied after reading (0 = no filter).
    on_bad_rows
        ``"error"`` raises on the first bad row naming ``file:line``; ``"skip"`` drops bad rows and logs a
        warning with the counts per reason (see :func:`read_interactions_report` to get them).
    user_map, item_map
        Fixed id maps to index into; an id outside them is a bad row (``"unknown user id"``). By default
        the maps are the sorted distinct ids read.
    encoding
        Text encoding of the file (UTF-8 by default; a leading byte-order mark is ignored).

    Returns
    -------
    Interactions
        Ratings and timestamps are attached when those columns were read.

    Raises
    ------
    MissingInputError
        If ``path`` does not exist.
    DataError
        On a bad row (``"{file}:{line}: {what}"``), an empty file, or no interaction left after filtering.

    Examples
    --------
    >>> inter = read_interactions("ML100K.train", format="uir")  # doctest: +SKIP
    >>> inter = read_interactions("ratings.csv", min_rating=4.0, on_bad_rows="skip")  # doctest: +SKIP
    """
    inter, _ = read_interactions_report(path, **options)
    return inter


def read_uir_pair(
    train_path: str | os.PathLike[str],
    test_path: str | os.PathLike[str],
    *,
    format: Format = "auto",
    sep: str | None = None,
    columns: ColumnSpec | None = None,
    header: bool | None = None,
    min_rating: float | None = None,
    duplicates: Duplicates = "last",
    on_bad_rows: OnBadRows = "error",
    user_map: IdMap | None = None,
    item_map: IdMap | None = None,
    encoding: str = "utf-8",
) -> tuple[Interactions, Interactions]:
    """Read a pre-split train file and test file into the same user and item maps.

    The maps are the sorted union of the ids of both files (after ``min_rating``), so a user or item seen
    only in the test file still has a row or a column, and ``train.same_space(test)`` holds. The keyword
    arguments apply to both files as in :func:`read_interactions` (``format="auto"`` is inferred per file).

    Returns
    -------
    train, test
        Two :class:`Interactions` over the same maps.
    """
    check_read_args(on_bad_rows, min_rating)
    if format not in FORMATS:
        raise DataError(f"format={format!r}; expected one of {', '.join(FORMATS)}")
    tables = []
    for path in (Path(train_path), Path(test_path)):
        check_exists(path)
        tables.append(
            _read_table(path, _file_spec(path, format, sep, header, columns, encoding), on_bad_rows)
        )
    (train, _), (test, _) = assemble(
        tables,
        user_map=user_map,
        item_map=item_map,
        min_rating=min_rating,
        duplicates=duplicates,
        on_bad_rows=on_bad_rows,
    )
    return train, test


