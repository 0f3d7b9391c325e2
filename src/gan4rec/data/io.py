"""Readers that turn interaction files into :class:`~gan4rec.data.interactions.Interactions`, and a writer.

Supported inputs
----------------
``csv`` / ``tsv``
    Delimited text with a header by default (quoted fields are understood).
``uir``
    Whitespace-separated ``user item [rating [timestamp]]`` lines without a header: the files shipped with
    the CFGAN paper's code (CRLF line endings are fine).
``parquet``
    Typed columns; integer or string ids, numeric ratings, integer or datetime timestamps.
``movielens``
    A GroupLens MovieLens folder or ratings file (100K ``u.data``, 1M/10M ``ratings.dat``, latest/20M/25M
    ``ratings.csv``), with the side files turned into user and item features (:func:`read_movielens`).

Everything is read column-wise with polars: no Python object is made per row, so a 20M-row file reads in
seconds. Raw ids are kept exactly: an id column becomes ``int64`` only when every value is a canonical
integer (``"42"``, ``"-7"``, but not ``"007"``, ``"+5"`` or ``"1.0"``); otherwise all of its values stay
strings. Ids never pass through float, so ``2**60 + 1`` is read exactly.

Bad rows (a missing field, an empty id, a rating that is not a finite number, a timestamp that is not an
integer, ...) raise :class:`~gan4rec.errors.DataError` naming ``file:line``, the 1-based physical line in the
file (the header is line 1, blank lines count). With ``on_bad_rows="skip"`` they are dropped and counted
per reason instead (:class:`BadRows`, returned by :func:`read_interactions_report`).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import polars as pl

from gan4rec.artifacts import atomic_write_bytes, fsync_dir
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Duplicates, Interactions
from gan4rec.errors import DataError, MissingInputError

__all__ = [
    "BAD_ROW_REASONS",
    "FORMATS",
    "MOVIELENS_GENRES",
    "MOVIELENS_LAYOUTS",
    "BadRows",
    "ReadOptions",
    "infer_format",
    "read_interactions",
    "read_interactions_report",
    "read_movielens",
    "read_uir_pair",
    "write_interactions",
    "write_recommendations",
]

logger = logging.getLogger(__name__)

Format = Literal["auto", "csv", "tsv", "uir", "parquet", "movielens"]
OnBadRows = Literal["error", "skip"]
ColumnSpec = Mapping[str, "str | int | None"]

#: Formats :func:`read_interactions` understands (``"auto"`` infers one of the others from the path).
FORMATS: tuple[str, ...] = ("auto", "csv", "tsv", "uir", "parquet", "movielens")
_WRITE_FORMATS = ("csv", "tsv", "uir", "parquet")

#: Why a row can be bad, in the order the checks run (a row is counted under its first failed check).
BAD_ROW_REASONS: tuple[str, ...] = (
    "missing field",
    "too many fields",
    "empty user id",
    "empty item id",
    "non-numeric rating",
    "non-finite rating",
    "non-integer timestamp",
    "unknown user id",
    "unknown item id",
)
_REASON_CODE = {name: code for code, name in enumerate(BAD_ROW_REASONS, start=1)}

_ROLES = ("user", "item", "rating", "timestamp")
# Header names recognised by default, compared after lower-casing and dropping everything but letters and
# digits ("userId", "user_id" and "USER ID" all read as "userid"). Earlier candidates win.
_DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "uid", "users", "customerid", "visitorid"),
    "item": ("item", "itemid", "movieid", "iid", "movie", "items", "productid", "trackid"),
    "rating": ("rating", "ratings", "score", "stars"),
    "timestamp": ("timestamp", "ts", "unixtime", "unixtimestamp"),
}
_TAB_TO_SPACE = bytes.maketrans(b"\t", b" ")
_SPARE_SEP = b"\x1f"  # ASCII unit separator
_LEADING_SPACE = re.compile(rb"[ \t\r\n\v\f]*")
_UIR_SUFFIXES = (".train", ".test", ".txt", ".base", ".uir", ".valid", ".val")

#: The genre columns of the ``genres`` item feature, the same for every MovieLens layout so that genre
#: matrices of different editions line up. The 100K/1M name "Children's" is read as "Children" and the
#: latest editions' "(no genres listed)" as "unknown" (the 100K name for the same thing).
MOVIELENS_GENRES: tuple[str, ...] = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_GENRE_ALIASES = {"Children's": "Children", "(no genres listed)": "unknown"}
# The 19 genre flags of u.item, in file order (u.genre lists the same).
_ML100K_FLAGS = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

#: MovieLens layouts :func:`read_movielens` accepts, mapped to the file family they use.
MOVIELENS_LAYOUTS: dict[str, str] = {
    "100k": "100k",
    "1m": "dat",
    "10m": "dat",
    "latest": "csv",
    "20m": "csv",
    "25m": "csv",
    "32m": "csv",
}
# family -> (ratings file, item side file, user side file)
_ML_FILES: dict[str, tuple[str, str, str | None]] = {
    "100k": ("u.data", "u.item", "u.user"),
    "dat": ("ratings.dat", "movies.dat", "users.dat"),
    "csv": ("ratings.csv", "movies.csv", None),
}


# -------------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class BadRows:
    """Rows dropped by ``on_bad_rows="skip"``.

    Attributes
    ----------
    counts
        Number of dropped rows per reason (keys from :data:`BAD_ROW_REASONS`; reasons with no bad row are
        absent).
    first_lines
        Per reason, the 1-based physical line of the first dropped row (for parquet files: the 1-based row).
    unit
        What ``first_lines`` counts: ``"line"`` (text files) or ``"row"`` (parquet).
    """

    counts: Mapping[str, int] = field(default_factory=dict)
    first_lines: Mapping[str, int] = field(default_factory=dict)
    unit: str = "line"

    @property
    def total(self) -> int:
        """Number of dropped rows."""
        return int(sum(self.counts.values()))

    def __bool__(self) -> bool:
        return self.total > 0

    def summary(self) -> str:
        """One line such as ``"2 non-finite rating (first at line 7), 1 missing field (first at line 9)"``."""
        if not self.counts:
            return "no bad rows"
        return ", ".join(
            f"{n} {reason} (first at {self.unit} {self.first_lines.get(reason, '?')})"
            for reason, n in self.counts.items()
        )


def _merge_bad(a: BadRows, b: BadRows) -> BadRows:
    counts = dict(a.counts)
    first = dict(a.first_lines)
    for reason, n in b.counts.items():
        counts[reason] = counts.get(reason, 0) + n
        if reason in b.first_lines:
            first[reason] = min(first.get(reason, b.first_lines[reason]), b.first_lines[reason])
    order = {r: k for k, r in enumerate(BAD_ROW_REASONS)}
    keys = sorted(counts, key=lambda r: order.get(r, len(order)))
    return BadRows({r: counts[r] for r in keys}, {r: first[r] for r in keys if r in first}, b.unit)


# -------------------------------------------------------------------------------- locations
@dataclass(frozen=True)
class _Locator:
    """Turns the key stored with each row into a ``file:line`` location.

    ``kind="line"``: the key is the physical line already. ``kind="row"``: the key is a 0-based row of a
    parquet file. ``kind="record"``: the key is polars' 0-based record index in a quoted CSV file, whose
    physical line is only worked out (by rescanning the file) when an error has to name it.
    """

    path: Path
    kind: Literal["line", "record", "row"]
    sep: str = ","
    header: bool = False
    encoding: str = "utf-8"

    def lines(self, keys: Sequence[int]) -> dict[int, int]:
        keys = sorted({int(k) for k in keys})
        if self.kind == "line":
            return {k: k for k in keys}
        if self.kind == "row":
            return {k: k + 1 for k in keys}
        return _record_start_lines(self.path, keys, self.sep, self.header, self.encoding)

    def where(self, key: int) -> str:
        line = self.lines([key])[int(key)]
        return f"{self.path}:row {line}" if self.kind == "row" else f"{self.path}:{line}"


def _record_start_lines(path: Path, keys: list[int], sep: str, header: bool, encoding: str) -> dict[int, int]:
    """Physical first line of the given CSV records (0-based, after the header), by rescanning the file.

    Only runs when an error must be reported. polars keeps a blank line as an all-null record, and so does
    :mod:`csv` (as ``[]``), so record numbers agree; quoted fields may span lines, which is why the start
    line is tracked rather than counted.
    """
    out: dict[int, int] = {}
    wanted = iter(keys)
    target = next(wanted, None)
    with open(path, encoding=_py_encoding(encoding), errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=sep, quotechar='"')
        start, record = 1, -1 if header else 0
        for row in reader:
            if record == (-1 if header else 0) and not any(v.strip() for v in row):
                start = reader.line_num + 1  # a leading blank line, which the parser never saw
                continue
            while target is not None and record == target:
                out[target] = start
                target = next(wanted, None)
            if target is None:
                break
            record += 1
            start = reader.line_num + 1
    # Past the end of what csv saw (should not happen): fall back to the data-row number.
    for k in keys:
        out.setdefault(k, k + 1 + int(header))
    return out


def _py_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")


# -------------------------------------------------------------------------------- text engine
def _check_exists(path: Path) -> None:
    if not path.exists():
        raise MissingInputError(f"input {path} does not exist")


def _read_source(path: Path, encoding: str) -> bytes:
    """File content as UTF-8 bytes (transcoded when ``encoding`` is something else)."""
    try:
        data = path.read_bytes()
    except IsADirectoryError as e:
        raise DataError(
            f"{path} is a folder; expected a file (use format='movielens' for a MovieLens folder)"
        ) from e
    if _is_utf8(encoding):
        return data
    try:
        return data.decode(encoding).encode("utf-8")
    except (LookupError, UnicodeDecodeError) as e:
        raise DataError(f"{path} cannot be decoded as {encoding!r} ({e})") from e


def _split_lines(path: Path, data: bytes, encoding: str) -> pl.Series:
    """Every physical line of ``data`` (``\\n``-terminated, trailing ``\\r`` removed); index i is line i+1."""
    try:
        text = pl.Series("text", [data], dtype=pl.Binary).cast(pl.String)
    except pl.exceptions.PolarsError as e:
        raise DataError(
            f"{path} is not valid UTF-8 text; pass encoding= (for example 'latin-1') to read it"
            if _is_utf8(encoding)
            else f"{path} could not be decoded ({e})"
        ) from e
    lines = text.str.split("\n").explode()
    if len(lines) and lines[-1] == "":
        lines = lines.slice(0, len(lines) - 1)  # the empty piece after the final newline is not a line
    return lines.str.strip_chars_end("\r")


@dataclass
class _Fields:
    """A delimited file split into fields, one row per non-blank line (or CSV record).

    ``frame`` holds ``_key`` (the locator key), ``_nf`` (fields on the row; null when the parser does not
    say) and the fields: either one list column ``_f`` (line splitting) or one column per field named in
    ``wide`` (the polars CSV parser). :meth:`field` hides the difference.
    """

    frame: pl.DataFrame
    names: list[str] | None
    n_fields: int
    locator: _Locator
    wide: list[str] | None = None

    def field(self, position: int) -> pl.Expr:
        """Field ``position`` (0-based) as a String expression, null where the row is shorter."""
        if self.wide is None:
            return pl.col("_f").list.get(position, null_on_oob=True)
        if position < len(self.wide):
            return pl.col(self.wide[position])
        return pl.lit(None, dtype=pl.String)


def _text_fields(path: Path, *, sep: str | None, header: bool, encoding: str, quote_aware: bool) -> _Fields:
    """Split a text file into fields.

    ``sep=None`` splits on runs of whitespace. Three engines, by what the file needs:

    * csv/tsv with a ``"`` in the file go through polars' CSV parser with quoting, and a bad row's line is
      found by rescanning the file (:func:`_record_start_lines`);
    * otherwise polars' CSV parser without quoting (whitespace normalised, ``::`` mapped to one byte, see
      :func:`_native_plan`), where record ``k`` is physical line ``k + 1 + header``; this is checked
      against the newline count, and on any doubt (a row with too many or too few fields, an empty field)
      the line splitter takes over;
    * the line splitter cuts the file into lines and then fields, so every row keeps its line for free.

    A line holding nothing but whitespace and separators is blank and skipped.
    """
    data = _read_source(path, encoding)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # Leading blank lines are cut here, once, because polars' CSV parser treats them inconsistently (it
    # skips them before a header but takes them as a one-field first row without one).
    blank_run = _LEADING_SPACE.match(data).end()  # type: ignore[union-attr]
    cut = data.rfind(b"\n", 0, blank_run) + 1
    offset = data.count(b"\n", 0, cut)
    data = data[cut:]
    if quote_aware and sep is not None and len(sep) == 1 and b'"' in data:
        return _csv_fields(path, data, sep=sep, header=header, encoding=encoding)
    plan = _native_plan(data, sep)
    if plan is not None:
        fast = _native_fields(path, plan[1], sep=plan[0], header=header, offset=offset)
        if fast is not None:
            return fast
    lines = _split_lines(path, data, encoding)
    del data
    blank_chars = " \t\r\n\v\f" + (sep or "")
    first = 1 + offset
    frame = pl.DataFrame(
        {"_key": pl.int_range(first, first + len(lines), eager=True, dtype=pl.Int64), "text": lines}
    )
    frame = frame.filter(pl.col("text").str.strip_chars(blank_chars) != "")
    text = pl.col("text")
    if sep is None:
        split = text.str.strip_chars().str.replace_all(r"\s+", " ").str.split(" ")
    else:
        split = text.str.split(sep)
    frame = frame.select("_key", split.alias("_f")).with_columns(
        pl.col("_f").list.len().cast(pl.Int64).alias("_nf")
    )
    names: list[str] | None = None
    if header and len(frame):
        names = [v.strip() for v in frame["_f"][0].to_list()]
        frame = frame.slice(1)
    n_fields = len(names) if names is not None else (int(frame["_nf"][0]) if len(frame) else 0)
    return _Fields(frame, names, n_fields, _Locator(path, "line"))


def _wide_frame(df: pl.DataFrame, key: pl.Expr) -> tuple[pl.DataFrame, list[str]]:
    """Rename parsed columns to ``_c0, _c1, ...``, add ``_key``/``_nf`` and drop blank records."""
    wide = [f"_c{k}" for k in range(df.width)]
    df = df.rename(dict(zip(df.columns, wide, strict=True)))
    blank = pl.all_horizontal([pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in wide])
    df = df.with_columns(key.alias("_key"), pl.lit(None, dtype=pl.Int64).alias("_nf")).filter(~blank)
    return df, wide


def _native_plan(data: bytes, sep: str | None) -> tuple[str, bytes] | None:
    """A one-byte separator and the bytes to hand to polars' CSV parser, when that parser splits the lines
    exactly as the line splitter would; ``None`` otherwise."""
    if sep is None:
        # Runs of whitespace: fine for the parser when every separator is one space (after tab -> space).
        norm = data.translate(_TAB_TO_SPACE) if b"\t" in data else data
        irregular = (b"  ", b"\n ", b" \n", b" \r", b"\r ", b"\v", b"\f")
        if any(chunk in norm for chunk in irregular) or norm.startswith(b" ") or norm.endswith(b" "):
            return None
        return " ", norm
    if len(sep) == 1:
        return sep, data
    # A multi-character separator ("::") becomes a control byte the data does not hold.
    if _SPARE_SEP in data:
        return None
    return _SPARE_SEP.decode(), data.replace(sep.encode("utf-8"), _SPARE_SEP)


def _native_fields(path: Path, data: bytes, *, sep: str, header: bool, offset: int) -> _Fields | None:
    """The fast engine: polars' CSV parser without quoting; ``None`` when the line splitter must take over."""
    n_lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    try:
        df = pl.read_csv(
            data, has_header=header, separator=sep, quote_char=None, infer_schema=False, raise_if_empty=False
        )
    except pl.exceptions.PolarsError:
        return None  # ragged rows (too many fields): the line splitter reports them exactly
    # polars keeps blank lines as all-null records, so every line is a record; if not, do not guess.
    if df.width == 0 or len(df) + int(header) != n_lines:
        return None
    names = [c.strip() for c in df.columns] if header else None
    first = 1 + int(header) + offset
    frame, wide = _wide_frame(df, pl.int_range(first, first + len(df), dtype=pl.Int64))
    # The parser reads an empty field and a missing one both as null; the line splitter tells them apart.
    if frame.select(pl.any_horizontal([pl.col(c).is_null() for c in wide]).any()).item():
        return None
    return _Fields(frame, names, len(wide), _Locator(path, "line"), wide)


def _csv_fields(path: Path, data: bytes, *, sep: str, header: bool, encoding: str) -> _Fields:
    """The engine for quoted CSV: polars' parser; rows keyed by record index."""
    locator = _Locator(path, "record", sep, header, encoding)
    try:
        df = pl.read_csv(
            data,
            has_header=header,
            separator=sep,
            quote_char='"',
            infer_schema=False,
            truncate_ragged_lines=True,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as e:
        raise DataError(f"{path} could not be parsed as {sep!r}-separated text ({e})") from e
    names = [c.strip() for c in df.columns] if header else None
    if df.width == 0:
        frame = pl.DataFrame(schema={"_key": pl.Int64, "_nf": pl.Int64})
        return _Fields(frame, names, 0, locator, [])
    frame, wide = _wide_frame(df, pl.int_range(0, pl.len(), dtype=pl.Int64))
    return _Fields(frame, names, len(wide), locator, wide)


# -------------------------------------------------------------------------------- columns
def _norm_name(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _resolve_columns(
    path: Path, columns: ColumnSpec | None, names: list[str] | None, n_fields: int
) -> dict[str, int]:
    """Map each role that is read to a 0-based field position."""
    spec = dict(columns or {})
    unknown = [k for k in spec if k not in _ROLES]
    if unknown:
        raise DataError(
            f"columns has an unknown role {unknown[0]!r}; expected roles among {', '.join(_ROLES)}"
        )
    out: dict[str, int] = {}
    for role in _ROLES:
        if role in spec:
            value = spec[role]
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise DataError(f"columns[{role!r}]={value!r}; expected a column name or a 0-based position")
            if isinstance(value, str):
                if names is None:
                    raise DataError(
                        f"columns[{role!r}]={value!r} names a column, but {path} is read without a header; "
                        "pass a 0-based position instead"
                    )
                if value in names:
                    out[role] = names.index(value)
                else:
                    raise DataError(
                        f"{path} has no column {value!r} for the {role} (columns: {', '.join(names)})"
                    )
            else:
                if not 0 <= value < max(n_fields, 1):
                    raise DataError(
                        f"columns[{role!r}]={value} is out of range: {path} has {n_fields} fields per row"
                    )
                out[role] = value
            continue
        if names is not None:
            normed = [_norm_name(n) for n in names]
            for candidate in _DEFAULT_NAMES[role]:
                if candidate in normed:
                    out[role] = normed.index(candidate)
                    break
        else:
            default = _ROLES.index(role)
            if default < n_fields:
                out[role] = default
    for role in ("user", "item"):
        if role not in out:
            raise DataError(
                f"{path} has no recognisable {role} column (columns: {', '.join(names or [])}); "
                f"pass columns={{'{role}': <name or position>}}"
            )
    positions = list(out.values())
    if len(set(positions)) != len(positions):
        raise DataError(f"columns map two roles to the same column of {path}: {out}")
    return out


# -------------------------------------------------------------------------------- validation
@dataclass
class _Table:
    """One file's valid rows: raw ids (polars String or Int64), values, and where each row came from."""

    path: Path
    users: pl.Series
    items: pl.Series
    ratings: np.ndarray | None  # (n,) float64
    timestamps: np.ndarray | None  # (n,) int64
    keys: np.ndarray  # (n,) int64 locator keys
    locator: _Locator
    bad: BadRows

    def __len__(self) -> int:
        return len(self.users)

    def take(self, mask: np.ndarray) -> _Table:
        m = pl.Series(mask)
        return replace(
            self,
            users=self.users.filter(m),
            items=self.items.filter(m),
            ratings=None if self.ratings is None else self.ratings[mask],
            timestamps=None if self.timestamps is None else self.timestamps[mask],
            keys=self.keys[mask],
        )


def _timestamp_value(dtype: pl.DataType, path: Path, name: str) -> pl.Expr:
    col = pl.col("timestamp")
    if dtype == pl.String:
        return col.cast(pl.Int64, strict=False)
    if dtype.is_integer():
        return col.cast(pl.Int64, strict=False)
    if dtype.is_float():
        ok = col.is_finite() & (col == col.floor()) & (col.abs() < 2.0**63)
        return pl.when(ok).then(col.cast(pl.Int64, strict=False)).otherwise(None)
    if isinstance(dtype, pl.Datetime):
        return col.dt.epoch("s")
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.epoch("s")
    raise DataError(f"{path}: {name} (the timestamps) has dtype {dtype}; expected integers or datetimes")


def _rating_value(dtype: pl.DataType, path: Path, name: str) -> pl.Expr:
    if dtype == pl.String or dtype.is_numeric():
        return pl.col("rating").cast(pl.Float64, strict=False)
    raise DataError(f"{path}: {name} (the ratings) has dtype {dtype}; expected numbers")


def _validate(
    path: Path,
    df: pl.DataFrame,
    *,
    n_fields: int | None,
    source_names: Mapping[str, str],
    locator: _Locator,
    on_bad_rows: OnBadRows,
) -> _Table:
    """Check every row column-wise and return the valid ones.

    ``df`` holds ``_key``, ``_nf`` (fields on the row, null when unknown) and one column per role read.
    """
    roles = [r for r in _ROLES if r in df.columns]
    if len(df) == 0:
        raise DataError(f"{path}: no interactions, the file has no data rows")
    # (condition, reason) in check order; a row gets the first reason whose condition holds.
    checks: list[tuple[pl.Expr, str]] = [
        (pl.any_horizontal([pl.col(r).is_null() for r in roles]), "missing field")
    ]
    value_cols: list[pl.Expr] = []
    if n_fields is not None:
        checks.append((pl.col("_nf") > n_fields, "too many fields"))
    for role in ("user", "item"):
        if df.schema[role] == pl.String:
            checks.append((pl.col(role) == "", f"empty {role} id"))
    if "rating" in roles:
        value_cols.append(_rating_value(df.schema["rating"], path, source_names["rating"]).alias("_r"))
        checks.append((pl.col("_r").is_null(), "non-numeric rating"))
        checks.append((~pl.col("_r").is_finite(), "non-finite rating"))
    if "timestamp" in roles:
        value_cols.append(
            _timestamp_value(df.schema["timestamp"], path, source_names["timestamp"]).alias("_t")
        )
        checks.append((pl.col("_t").is_null(), "non-integer timestamp"))
    reason: pl.Expr = pl.lit(0, dtype=pl.UInt8)
    for condition, name in reversed(checks):
        reason = pl.when(condition).then(pl.lit(_REASON_CODE[name], dtype=pl.UInt8)).otherwise(reason)
    df = df.with_columns(value_cols).with_columns(reason.alias("_reason"))

    bad = BadRows()
    bad_rows = df.filter(pl.col("_reason") != 0)
    if len(bad_rows):
        firsts = (
            bad_rows.group_by("_reason")
            .agg(pl.len().alias("n"), pl.all().sort_by("_key").first())
            .sort("_key")
        )
        if on_bad_rows == "error":
            row = firsts.row(0, named=True)
            raise DataError(
                f"{locator.where(row['_key'])}: {_bad_detail(row, roles, n_fields, source_names)}"
            )
        lines = locator.lines(firsts["_key"].to_list())
        ordered = firsts.sort("_reason")
        bad = BadRows(
            {BAD_ROW_REASONS[c - 1]: int(n) for c, n in zip(ordered["_reason"], ordered["n"], strict=True)},
            {
                BAD_ROW_REASONS[c - 1]: lines[k]
                for c, k in zip(ordered["_reason"], ordered["_key"], strict=True)
            },
            "row" if locator.kind == "row" else "line",
        )
        df = df.filter(pl.col("_reason") == 0)
        if len(df) == 0:
            raise DataError(f"{path}: no interactions, every data row is bad ({bad.summary()})")
    return _Table(
        path=path,
        users=df["user"],
        items=df["item"],
        ratings=df["_r"].to_numpy() if "rating" in roles else None,
        timestamps=df["_t"].to_numpy() if "timestamp" in roles else None,
        keys=df["_key"].to_numpy(),
        locator=locator,
        bad=bad,
    )


def _bad_detail(
    row: Mapping[str, Any], roles: list[str], n_fields: int | None, names: Mapping[str, str]
) -> str:
    """The sentence after ``file:line:`` for the first bad row."""
    reason = BAD_ROW_REASONS[row["_reason"] - 1]
    nf = row.get("_nf")
    if reason == "missing field":
        role = next(r for r in roles if row[r] is None)
        found = f" (the row has {nf} fields, expected {n_fields})" if nf is not None and n_fields else ""
        return f"the {role} field ({names[role]}) is missing{found}"
    if reason == "too many fields":
        return f"the row has {nf} fields, expected {n_fields}"
    if reason.startswith("empty"):
        role = reason.split()[1]
        return f"the {role} id is empty; expected a non-empty id"
    if reason == "non-numeric rating":
        return f"rating {row['rating']!r} is not a number"
    if reason == "non-finite rating":
        return f"rating {row['rating']!r} is not a finite number"
    return f"timestamp {row['timestamp']!r} is not an integer (expected whole seconds or a datetime)"


# -------------------------------------------------------------------------------- file tables
@dataclass(frozen=True)
class _Spec:
    """How one file is read: the engine format, separator, header and column roles."""

    format: str  # csv | tsv | uir | parquet
    sep: str | None
    header: bool
    columns: ColumnSpec | None
    encoding: str


def _text_spec(
    fmt: str, sep: str | None, header: bool | None, columns: ColumnSpec | None, encoding: str
) -> _Spec:
    if fmt == "csv":
        return _Spec(
            "csv", "," if sep is None else sep, True if header is None else header, columns, encoding
        )
    if fmt == "tsv":
        return _Spec(
            "tsv", "\t" if sep is None else sep, True if header is None else header, columns, encoding
        )
    if fmt == "uir":
        return _Spec("uir", sep, False if header is None else header, columns, encoding)
    if fmt == "parquet":
        if sep is not None or header is not None:
            raise DataError("sep= and header= do not apply to parquet files; leave them unset")
        return _Spec("parquet", None, True, columns, encoding)
    raise DataError(f"format={fmt!r}; expected one of {', '.join(FORMATS)}")


def _read_table(path: Path, spec: _Spec, on_bad_rows: OnBadRows) -> _Table:
    """Parse and validate one file (any non-MovieLens-folder format) into a :class:`_Table`."""
    _check_exists(path)
    if spec.format == "parquet":
        return _read_parquet_table(path, spec, on_bad_rows)
    fields = _text_fields(
        path,
        sep=spec.sep,
        header=spec.header,
        encoding=spec.encoding,
        quote_aware=spec.format in ("csv", "tsv"),
    )
    if len(fields.frame) == 0:
        raise DataError(f"{path}: no interactions, the file has no data rows")
    positions = _resolve_columns(path, spec.columns, fields.names, fields.n_fields)
    source_names = {
        role: (f"column {fields.names[p]!r}" if fields.names is not None else f"field {p}")
        for role, p in positions.items()
    }
    df = fields.frame.select(
        "_key",
        "_nf",
        *[fields.field(p).str.strip_chars().alias(role) for role, p in positions.items()],
    )
    n_fields = fields.n_fields if fields.wide is None else None  # the CSV parser counts no fields
    return _validate(
        path,
        df,
        n_fields=n_fields,
        source_names=source_names,
        locator=fields.locator,
        on_bad_rows=on_bad_rows,
    )


def _read_parquet_table(path: Path, spec: _Spec, on_bad_rows: OnBadRows) -> _Table:
    try:
        schema = pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError) as e:
        raise DataError(f"{path} is not a readable parquet file ({e})") from e
    names = list(schema)
    positions = _resolve_columns(path, spec.columns, names, len(names))
    raw_names = {role: names[p] for role, p in positions.items()}
    source_names = {role: f"column {name!r}" for role, name in raw_names.items()}
    for role in ("user", "item"):
        dtype = schema[raw_names[role]]
        if not (dtype.is_integer() or dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)):
            raise DataError(
                f"{path}: {source_names[role]} (the {role} ids) has dtype {dtype}; "
                "expected integers or strings (ids never pass through float)"
            )
    df = pl.read_parquet(path, columns=list(raw_names.values())).rename({v: k for k, v in raw_names.items()})
    casts = []
    for role in ("user", "item"):
        dtype = df.schema[role]
        if dtype == pl.UInt64 and (df[role] > np.iinfo(np.int64).max).any():
            casts.append(pl.col(role).cast(pl.String))  # too big for int64: keep the digits exactly as text
        else:
            casts.append(pl.col(role).cast(pl.Int64 if dtype.is_integer() else pl.String))
    df = df.with_columns(casts).with_columns(
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("_key"), pl.lit(None, dtype=pl.Int64).alias("_nf")
    )
    return _validate(
        path,
        df,
        n_fields=None,
        source_names=source_names,
        locator=_Locator(path, "row"),
        on_bad_rows=on_bad_rows,
    )


# -------------------------------------------------------------------------------- ids
def _canonical_ints(s: pl.Series) -> pl.Series:
    """``s`` as Int64 where a value is a canonical integer, null elsewhere.

    A string is canonical when it survives the round trip through int64 unchanged: this rejects leading
    zeros, a sign on zero, ``+``, spaces, decimals and anything out of the int64 range in one vectorised step.
    """
    if s.dtype.is_integer():
        return s.cast(pl.Int64)
    v = s.cast(pl.Int64, strict=False)
    ok = (v.cast(pl.String) == s).fill_null(False)
    return pl.DataFrame({"v": v, "ok": ok}).select(pl.when("ok").then("v").otherwise(None)).to_series()


def _all_canonical(s: pl.Series) -> bool:
    if s.dtype.is_integer():
        return True
    return bool((s.cast(pl.Int64, strict=False).cast(pl.String) == s).fill_null(False).all())


def _lookup(s: pl.Series, ids: pl.Series) -> np.ndarray:
    """Position of each value of ``s`` in ``ids`` (unique), ``-1`` where absent or null."""
    if ids.dtype == pl.Int64 and len(ids):
        lo, hi = int(ids.min()), int(ids.max())  # type: ignore[arg-type]
        span = hi - lo + 1
        if span <= max(1 << 20, 8 * (len(ids) + len(s))) and span <= 1 << 27:
            # Compact integer ids (the usual case): a direct-address table beats hashing or sorting.
            table = np.full(span, -1, dtype=np.int64)  # (span,)
            table[ids.to_numpy() - lo] = np.arange(len(ids))
            values = s.fill_null(lo - 1 if lo > np.iinfo(np.int64).min else hi + 1).to_numpy()
            inside = (values >= lo) & (values <= hi)
            out = np.full(len(values), -1, dtype=np.int64)
            out[inside] = table[values[inside] - lo]
            return out
    table_df = pl.DataFrame({"id": ids, "code": pl.int_range(0, len(ids), eager=True, dtype=pl.Int64)})
    joined = pl.DataFrame({"id": s.cast(ids.dtype)}).join(
        table_df, on="id", how="left", maintain_order="left"
    )
    return joined["code"].fill_null(-1).to_numpy()


def _encode_ids(series: list[pl.Series], idmap: IdMap | None) -> tuple[IdMap, list[np.ndarray]]:
    """Index the ids of several columns into one map (``-1`` where an id is not in a given ``idmap``).

    Without ``idmap`` the map is the sorted union of the ids, integer when every value of every column is a
    canonical integer, string otherwise (so the columns of two files always share one kind).
    """
    if idmap is None:
        kind = pl.Int64 if all(_all_canonical(s) for s in series) else pl.String
        series = [s.cast(kind) for s in series]
        uniq = pl.concat(series).unique().sort()
        raw = uniq.to_numpy() if kind == pl.Int64 else np.asarray(uniq.to_list(), dtype=object)
        return IdMap(raw), [_lookup(s, uniq) for s in series]
    if idmap.kind == "int":
        int_ids = pl.Series(idmap.ids, dtype=pl.Int64)
        return idmap, [_lookup(_canonical_ints(s), int_ids) for s in series]
    str_ids = pl.Series(idmap.ids.tolist(), dtype=pl.String)
    return idmap, [_lookup(s.cast(pl.String), str_ids) for s in series]


def _assemble(
    tables: list[_Table],
    *,
    user_map: IdMap | None,
    item_map: IdMap | None,
    min_rating: float | None,
    duplicates: Duplicates,
    on_bad_rows: OnBadRows,
) -> list[tuple[Interactions, BadRows]]:
    """Apply the positive-feedback rule, index every table into shared maps and build the matrices."""
    if min_rating is not None:
        kept = []
        for t in tables:
            if t.ratings is None:
                raise DataError(
                    f"min_rating={min_rating} needs ratings, but no rating column was read from {t.path}; "
                    "pass columns={'rating': ...} or min_rating=None"
                )
            t2 = t.take(t.ratings >= min_rating)
            if len(t2) == 0:
                raise DataError(f"{t.path}: no interactions left, no rating is >= min_rating={min_rating}")
            kept.append(t2)
        tables = kept
    user_map, ucodes = _encode_ids([t.users for t in tables], user_map)
    item_map, icodes = _encode_ids([t.items for t in tables], item_map)
    out = []
    for t, u, i in zip(tables, ucodes, icodes, strict=True):
        unknown_u, unknown_i = u < 0, i < 0
        bad = t.bad
        if unknown_u.any() or unknown_i.any():
            if on_bad_rows == "error":
                j = int(np.flatnonzero(unknown_u | unknown_i)[0])
                role, value = ("user", t.users[j]) if unknown_u[j] else ("item", t.items[j])
                where = t.locator.where(int(t.keys[j]))
                raise DataError(f"{where}: {role} id {value!r} is not in the given {role} map")
            extra_counts, extra_first = {}, {}
            only_i = unknown_i & ~unknown_u
            for reason, m in (("unknown user id", unknown_u), ("unknown item id", only_i)):
                if m.any():
                    extra_counts[reason] = int(m.sum())
                    first_key = int(t.keys[np.flatnonzero(m)[0]])
                    extra_first[reason] = t.locator.lines([first_key])[first_key]
            unit = "row" if t.locator.kind == "row" else "line"
            bad = _merge_bad(bad, BadRows(extra_counts, extra_first, unit))
            keep = ~(unknown_u | unknown_i)
            if not keep.any():
                raise DataError(
                    f"{t.path}: no interactions left, no row has a user and an item in the given maps"
                )
            t, u, i = t.take(keep), u[keep], i[keep]
        inter = Interactions.from_indices(
            u, i, user_map, item_map, ratings=t.ratings, timestamps=t.timestamps, duplicates=duplicates
        )
        if bad:
            logger.warning("%s: skipped %d bad row(s): %s", t.path, bad.total, bad.summary())
        out.append((inter, bad))
    return out


def _kcore(inter: Interactions, path: Path, min_user: int, min_item: int, fixed_maps: bool) -> Interactions:
    if min_user == 0 and min_item == 0:
        return inter
    if fixed_maps:
        raise DataError(
            "min_user_interactions/min_item_interactions re-index users and items, so they cannot be "
            "combined with user_map/item_map"
        )
    try:
        return inter.filter(min_user_interactions=int(min_user), min_item_interactions=int(min_item))
    except DataError as e:
        raise DataError(f"{path}: {e}") from e


def _check_args(
    on_bad_rows: str, min_rating: float | None = None, min_user: int = 0, min_item: int = 0
) -> None:
    """Refuse bad keyword values before any file is read."""
    if on_bad_rows not in ("error", "skip"):
        raise DataError(f"on_bad_rows={on_bad_rows!r}; expected 'error' or 'skip'")
    if min_rating is not None and (
        isinstance(min_rating, bool)
        or not isinstance(min_rating, (int, float, np.integer, np.floating))
        or not np.isfinite(min_rating)
    ):
        raise DataError(f"min_rating={min_rating!r}; expected a finite number or None")
    for name, value in (("min_user_interactions", min_user), ("min_item_interactions", min_item)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise DataError(f"{name}={value!r}; expected an integer >= 0")


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
    _check_exists(p)
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
    if suffix in _UIR_SUFFIXES:
        return "uir"
    raise DataError(
        f"cannot infer the format of {p} from its name (suffix {suffix or 'none'!r}); "
        "pass format= one of csv, tsv, uir, parquet, movielens"
    )


def _movielens_ratings_spec(path: Path, family: str) -> _Spec:
    if family == "100k":
        return _Spec("uir", "\t", False, None, "utf-8")
    if family == "dat":
        return _Spec("uir", "::", False, None, "utf-8")
    return _Spec("csv", ",", True, None, "utf-8")


def _file_spec(
    path: Path, fmt: str, sep: str | None, header: bool | None, columns: ColumnSpec | None, encoding: str
) -> _Spec:
    """The :class:`_Spec` for one file of :func:`read_uir_pair` (MovieLens ratings files allowed)."""
    if fmt == "auto":
        fmt = infer_format(path)
    if fmt == "movielens":
        if path.is_dir():
            raise DataError(f"{path} is a folder; expected a ratings file")
        if sep is not None or header is not None or columns is not None:
            raise DataError("sep=, header= and columns= do not apply to MovieLens files; leave them unset")
        return _movielens_ratings_spec(path, _ml_family_of_file(path))
    return _text_spec(fmt, sep, header, columns, encoding)


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
    _check_args(on_bad_rows, min_rating, min_user_interactions, min_item_interactions)
    p = Path(path)
    _check_exists(p)
    if format not in FORMATS:
        raise DataError(f"format={format!r}; expected one of {', '.join(FORMATS)}")
    fmt = infer_format(p) if format == "auto" else format
    if fmt == "movielens":
        if sep is not None or header is not None or columns is not None:
            raise DataError("sep=, header= and columns= do not apply to format='movielens'; leave them unset")
        return _read_movielens(
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
    spec = _text_spec(fmt, sep, header, columns, encoding)
    table = _read_table(p, spec, on_bad_rows)
    [(inter, bad)] = _assemble(
        [table],
        user_map=user_map,
        item_map=item_map,
        min_rating=min_rating,
        duplicates=duplicates,
        on_bad_rows=on_bad_rows,
    )
    fixed = user_map is not None or item_map is not None
    inter = _kcore(inter, p, min_user_interactions, min_item_interactions, fixed)
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
    _check_args(on_bad_rows, min_rating)
    if format not in FORMATS:
        raise DataError(f"format={format!r}; expected one of {', '.join(FORMATS)}")
    tables = []
    for path in (Path(train_path), Path(test_path)):
        _check_exists(path)
        tables.append(
            _read_table(path, _file_spec(path, format, sep, header, columns, encoding), on_bad_rows)
        )
    (train, _), (test, _) = _assemble(
        tables,
        user_map=user_map,
        item_map=item_map,
        min_rating=min_rating,
        duplicates=duplicates,
        on_bad_rows=on_bad_rows,
    )
    return train, test


# -------------------------------------------------------------------------------- MovieLens
def _ml_family_of_file(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".dat":
        return "dat"
    if suffix == ".csv":
        return "csv"
    return "100k"  # u.data and the u1.base / ua.test splits: tab-separated, no header


def _ml_locate(path: Path, layout: str) -> tuple[str, Path, Path]:
    """(file family, ratings file, folder of the side files) for a MovieLens path and layout."""
    _check_exists(path)
    if layout != "auto" and layout not in MOVIELENS_LAYOUTS:
        raise DataError(f"layout={layout!r}; expected 'auto' or one of {', '.join(MOVIELENS_LAYOUTS)}")
    if path.is_dir():
        if layout == "auto":
            for family, (ratings, _, _) in _ML_FILES.items():
                if (path / ratings).is_file():
                    return family, path / ratings, path
            raise MissingInputError(
                f"{path} holds no MovieLens ratings file (expected u.data, ratings.dat or ratings.csv)"
            )
        family = MOVIELENS_LAYOUTS[layout]
        ratings_path = path / _ML_FILES[family][0]
        if not ratings_path.is_file():
            raise MissingInputError(f"{ratings_path} does not exist (layout={layout!r})")
        return family, ratings_path, path
    family = _ml_family_of_file(path) if layout == "auto" else MOVIELENS_LAYOUTS[layout]
    return family, path, path.parent


def _side_fields(
    path: Path, *, sep: str, header: bool, quote_aware: bool, min_fields: int, what: str
) -> _Fields:
    """Split a side file (UTF-8, or latin-1 as the older editions are) and check every row's field count."""
    try:
        fields = _text_fields(path, sep=sep, header=header, encoding="utf-8", quote_aware=quote_aware)
    except DataError:
        fields = _text_fields(path, sep=sep, header=header, encoding="latin-1", quote_aware=quote_aware)
    need = [fields.field(k).is_null() for k in range(min_fields)]
    short = fields.frame.filter(pl.any_horizontal(need))
    if len(short):
        row = short.row(0, named=True)
        found = f"{row['_nf']} fields" if row["_nf"] is not None else "missing fields"
        raise DataError(f"{fields.locator.where(row['_key'])}: found {found}, expected {min_fields} ({what})")
    return fields


def _field(fields: _Fields, position: int) -> pl.Series:
    return fields.frame.select(fields.field(position).str.strip_chars()).to_series()


def _align(idmap: IdMap, side_ids: pl.Series) -> np.ndarray:
    """Index of each side-file id in ``idmap`` (``-1`` for ids without interactions)."""
    _, [codes] = _encode_ids([side_ids], idmap)
    return codes


def _genre_matrix(genre_lists: pl.Series, path: Path) -> np.ndarray:
    """``|``-separated genre names -> multi-hot (n, len(MOVIELENS_GENRES)) uint8."""
    vocab = {g: k for k, g in enumerate(MOVIELENS_GENRES)}
    vocab.update({alias: vocab[target] for alias, target in _GENRE_ALIASES.items()})
    long = (
        pl.DataFrame({"g": genre_lists})
        .with_row_index("row")
        .with_columns(pl.col("g").str.split("|"))
        .explode("g")
        .with_columns(pl.col("g").str.strip_chars())
        .filter(pl.col("g").is_not_null() & (pl.col("g") != ""))
    )
    col = long["g"].replace_strict(vocab, default=-1, return_dtype=pl.Int64).to_numpy()
    unknown = long.filter(pl.Series(col < 0))["g"].unique().sort().to_list()
    if unknown:
        logger.warning("%s: ignoring genre(s) outside MOVIELENS_GENRES: %s", path, ", ".join(unknown))
    out = np.zeros((len(genre_lists), len(MOVIELENS_GENRES)), dtype=np.uint8)  # (n_side_rows, n_genres)
    ok = col >= 0
    out[long["row"].to_numpy()[ok], col[ok]] = 1
    return out


def _scatter(n: int, codes: np.ndarray, values: np.ndarray, fill: Any) -> np.ndarray:
    """Rows of ``values`` placed at ``codes`` (skipping -1) in an array of ``n`` rows filled with ``fill``."""
    out = np.empty((n, *values.shape[1:]), dtype=values.dtype)
    out[...] = fill
    ok = codes >= 0
    out[codes[ok]] = values[ok]
    return out


def _strings(s: pl.Series) -> np.ndarray:
    return np.asarray(s.fill_null("").to_list(), dtype=object)


def _ints(s: pl.Series, path: Path, what: str) -> np.ndarray:
    v = s.cast(pl.Int64, strict=False)
    if v.null_count() > s.null_count():
        bad = s.filter(v.is_null() & s.is_not_null())[0]
        raise DataError(f"{path}: {what} {bad!r} is not an integer")
    return v.fill_null(-1).to_numpy()


def _ml_item_features(family: str, folder: Path, item_map: IdMap) -> dict[str, np.ndarray]:
    side = folder / _ML_FILES[family][1]
    if not side.is_file():
        logger.info("%s is absent: no item features", side)
        return {}
    n = len(item_map)
    if family == "100k":
        f = _side_fields(
            side,
            sep="|",
            header=False,
            quote_aware=False,
            min_fields=24,
            what="id|title|release date|video release|IMDb URL|19 genre flags",
        )
        ids, titles = _field(f, 0), _field(f, 1)
        flags = np.stack([_ints(_field(f, 5 + k), side, "genre flag") for k in range(19)], axis=1)
        genres = np.zeros((len(ids), len(MOVIELENS_GENRES)), dtype=np.uint8)  # (n_side_rows, n_genres)
        for k, name in enumerate(_ML100K_FLAGS):
            genres[:, MOVIELENS_GENRES.index(_GENRE_ALIASES.get(name, name))] = flags[:, k] > 0
    elif family == "dat":
        f = _side_fields(
            side, sep="::", header=False, quote_aware=False, min_fields=3, what="MovieID::Title::Genres"
        )
        ids, titles = _field(f, 0), _field(f, 1)
        genres = _genre_matrix(_field(f, 2), side)
    else:
        f = _side_fields(
            side, sep=",", header=True, quote_aware=True, min_fields=3, what="movieId,title,genres"
        )
        ids, titles = _field(f, 0), _field(f, 1)
        genres = _genre_matrix(_field(f, 2), side)
    codes = _align(item_map, ids)
    missing = n - len(np.unique(codes[codes >= 0]))
    if missing:
        logger.warning(
            "%s: %d rated item(s) have no row; their title is '' and genres are all 0", side, missing
        )
    return {
        "title": _scatter(n, codes, _strings(titles), ""),
        "genres": _scatter(n, codes, genres, 0),
    }


def _ml_user_features(family: str, folder: Path, user_map: IdMap) -> dict[str, np.ndarray]:
    name = _ML_FILES[family][2]
    if name is None:
        return {}
    side = folder / name
    if not side.is_file():
        logger.info("%s is absent: no user features", side)
        return {}
    n = len(user_map)
    if family == "100k":
        f = _side_fields(
            side, sep="|", header=False, quote_aware=False, min_fields=5, what="id|age|gender|occupation|zip"
        )
        ids = _field(f, 0)
        age, gender, occupation, zipcode = (_field(f, k) for k in (1, 2, 3, 4))
        occupation_values = _strings(occupation)
        occupation_fill: Any = ""
    else:
        f = _side_fields(
            side,
            sep="::",
            header=False,
            quote_aware=False,
            min_fields=5,
            what="UserID::Gender::Age::Occupation::Zip-code",
        )
        ids = _field(f, 0)
        gender, age, occupation, zipcode = (_field(f, k) for k in (1, 2, 3, 4))
        occupation_values = _ints(occupation, side, "occupation code")
        occupation_fill = -1
    codes = _align(user_map, ids)
    missing = n - len(np.unique(codes[codes >= 0]))
    if missing:
        logger.warning(
            "%s: %d user(s) with interactions have no row; their features are empty", side, missing
        )
    return {
        "age": _scatter(n, codes, _ints(age, side, "age"), -1),
        "gender": _scatter(n, codes, _strings(gender), ""),
        "occupation": _scatter(n, codes, occupation_values, occupation_fill),
        "zip": _scatter(n, codes, _strings(zipcode), ""),
    }


def _read_movielens(
    path: Path,
    *,
    layout: str,
    min_rating: float | None,
    duplicates: Duplicates,
    min_user_interactions: int,
    min_item_interactions: int,
    on_bad_rows: OnBadRows,
    features: bool,
    user_map: IdMap | None,
    item_map: IdMap | None,
) -> tuple[Interactions, BadRows]:
    _check_args(on_bad_rows, min_rating, min_user_interactions, min_item_interactions)
    family, ratings_path, folder = _ml_locate(path, layout)
    table = _read_table(ratings_path, _movielens_ratings_spec(ratings_path, family), on_bad_rows)
    [(inter, bad)] = _assemble(
        [table],
        user_map=user_map,
        item_map=item_map,
        min_rating=min_rating,
        duplicates=duplicates,
        on_bad_rows=on_bad_rows,
    )
    if features:
        inter = Interactions(
            inter.indptr,
            inter.indices,
            inter.user_map,
            inter.item_map,
            ratings=inter.ratings,
            timestamps=inter.timestamps,
            user_features=_ml_user_features(family, folder, inter.user_map),
            item_features=_ml_item_features(family, folder, inter.item_map),
        )
    fixed = user_map is not None or item_map is not None
    return _kcore(inter, ratings_path, min_user_interactions, min_item_interactions, fixed), bad


def read_movielens(
    path: str | os.PathLike[str],
    *,
    layout: str = "auto",
    min_rating: float | None = None,
    duplicates: Duplicates = "last",
    min_user_interactions: int = 0,
    min_item_interactions: int = 0,
    on_bad_rows: OnBadRows = "error",
    features: bool = True,
    user_map: IdMap | None = None,
    item_map: IdMap | None = None,
) -> Interactions:
    """Read a MovieLens dataset as published by GroupLens, with its side files as features.

    Parameters
    ----------
    path
        The dataset folder, or its ratings file (side files are then looked for beside it).
    layout
        ``"100k"`` (``u.data``, ``u.item``, ``u.user``), ``"1m"``/``"10m"`` (``ratings.dat``,
        ``movies.dat``, ``users.dat``; ``::``-separated), ``"latest"``/``"20m"``/``"25m"``/``"32m"``
        (``ratings.csv``, ``movies.csv``), or ``"auto"`` to detect it from the files present.
    min_rating, duplicates, min_user_interactions, min_item_interactions, on_bad_rows, user_map, item_map
        As in :func:`read_interactions`.
    features
        Attach side features (a missing side file just means no such features).

    Returns
    -------
    Interactions
        With ratings and timestamps, and, aligned to the maps (side-file rows without interactions are
        ignored; users/items without a side row get ``""``, ``-1`` or zeros):

        * item features ``title`` (str) and ``genres`` (``(n_items, 20)`` uint8 multi-hot over
          :data:`MOVIELENS_GENRES`);
        * user features (100K and 1M) ``age`` (int; in 1M the publisher's age-group code), ``gender``
          (str), ``occupation`` (str in 100K; the publisher's integer code in 1M) and ``zip`` (str).

    Raises
    ------
    MissingInputError
        If the path, or the layout's ratings file, does not exist.
    DataError
        On a malformed ratings or side file (naming ``file:line``).
    """
    inter, _ = _read_movielens(
        Path(path),
        layout=layout,
        min_rating=min_rating,
        duplicates=duplicates,
        min_user_interactions=min_user_interactions,
        min_item_interactions=min_item_interactions,
        on_bad_rows=on_bad_rows,
        features=features,
        user_map=user_map,
        item_map=item_map,
    )
    return inter


# -------------------------------------------------------------------------------- writer
def _write_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in _WRITE_FORMATS:
            raise DataError(f"format={fmt!r}; expected one of {', '.join(_WRITE_FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return suffix[1:]
    if suffix in _UIR_SUFFIXES:
        return "uir"
    raise DataError(
        f"cannot infer the output format of {path} from its suffix {suffix or 'none'!r}; "
        f"pass format= one of {', '.join(_WRITE_FORMATS)}"
    )


def _id_series(idmap: IdMap, idx: np.ndarray, name: str) -> pl.Series:
    """Raw ids at ``idx`` as a polars column, converting only the distinct ids to Python objects."""
    if idmap.kind == "int":
        return pl.Series(name, idmap.to_raw(idx), dtype=pl.Int64)
    return pl.Series(name, idmap.ids.tolist(), dtype=pl.String).gather(pl.Series(idx, dtype=pl.Int64))


def write_interactions(
    inter: Interactions, path: str | os.PathLike[str], *, format: str | None = None
) -> Path:
    """Write interactions with their raw ids (and ratings/timestamps when present), atomically.

    Columns are ``user``, ``item`` and, when present, ``rating`` and ``timestamp``: csv/tsv with a header,
    ``uir`` as space-separated lines without one, parquet with typed columns. Rows are ordered by user
    index, then item index. Reading the file back gives the same interactions; in csv/tsv/uir, string ids
    that all look like integers come back as integer ids (parquet keeps the type).

    Parameters
    ----------
    inter
        What to write.
    path
        Destination; written to a temporary file in the same folder, fsynced, then renamed over ``path``.
    format
        ``"csv"``, ``"tsv"``, ``"uir"`` or ``"parquet"``; by default inferred from the suffix.

    Returns
    -------
    Path
        The path written.
    """
    p = Path(path)
    fmt = _write_format(p, format)
    cols = [
        _id_series(inter.user_map, inter.user_index(), "user"),
        _id_series(inter.item_map, inter.indices, "item"),
    ]
    if inter.ratings is not None:
        cols.append(pl.Series("rating", inter.ratings, dtype=pl.Float32))
    if inter.timestamps is not None:
        cols.append(pl.Series("timestamp", inter.timestamps, dtype=pl.Int64))
    df = pl.DataFrame(cols)
    if fmt == "uir":
        for m, what in ((inter.user_map, "user"), (inter.item_map, "item")):
            if m.kind == "str" and len(m):
                ids = pl.Series(m.ids.tolist(), dtype=pl.String)
                bad = ids.filter(ids.str.contains(r"\s") | (ids == "") | ids.str.contains('"', literal=True))
                if len(bad):
                    raise DataError(
                        f"{what} id {bad[0]!r} cannot be written to a uir file (whitespace-separated); "
                        "write csv, tsv or parquet instead"
                    )
    buf = io.BytesIO()
    if fmt == "parquet":
        df.write_parquet(buf)
    else:
        sep = {"csv": ",", "tsv": "\t", "uir": " "}[fmt]
        df.write_csv(buf, separator=sep, include_header=fmt != "uir", line_terminator="\n")
    return atomic_write_bytes(p, buf.getvalue())


def _recommendation_frame(
    users: np.ndarray, items: np.ndarray, scores: np.ndarray, user_map: IdMap, item_map: IdMap
) -> pl.DataFrame:
    """One batch of top-k lists as rows ``user, item, rank, score`` (raw ids; padding dropped)."""
    users = np.asarray(users, dtype=np.int64).reshape(-1)  # (n,)
    items = np.asarray(items)  # (n, k)
    scores = np.asarray(scores)  # (n, k)
    if items.ndim != 2 or items.shape[0] != len(users) or scores.shape != items.shape:
        raise DataError(
            f"a recommendation batch has {len(users)} users, items of shape {items.shape} and scores of "
            f"shape {scores.shape}; expected items and scores of shape ({len(users)}, k)"
        )
    n, k = items.shape
    flat_items = items.astype(np.int64).reshape(-1)  # (n * k,)
    keep = flat_items >= 0  # rows with fewer than k eligible items are padded with -1
    ranks = np.tile(np.arange(1, k + 1, dtype=np.int32), n)[keep]
    return pl.DataFrame(
        [
            _id_series(user_map, np.repeat(users, k)[keep], "user"),
            _id_series(item_map, flat_items[keep], "item"),
            pl.Series("rank", ranks, dtype=pl.Int32),
            pl.Series("score", scores.astype(np.float32).reshape(-1)[keep], dtype=pl.Float32),
        ]
    )


def write_recommendations(
    path: str | os.PathLike[str],
    batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    user_map: IdMap,
    item_map: IdMap,
    *,
    format: str | None = None,
) -> int:
    """Stream top-k lists to a csv/tsv/parquet file of ``user, item, rank, score`` rows, atomically.

    Batches are written as they come (memory stays one batch), into a temporary file in the same folder
    that replaces ``path`` only once complete and fsynced.

    Parameters
    ----------
    path
        Destination (``.csv``, ``.tsv`` or ``.parquet``, or say ``format=``).
    batches
        ``(users, items, scores)`` per batch: user indices ``(n,)``, item indices ``(n, k)`` best first, and
        their scores ``(n, k)``, as from ``model.recommend``. Item ``-1`` (padding) is left out.
    user_map, item_map
        Maps the indices back to raw ids.
    format
        ``"csv"``, ``"tsv"`` or ``"parquet"``; by default inferred from the suffix.

    Returns
    -------
    int
        Number of rows written. ``rank`` is 1-based.
    """
    target = Path(path)
    fmt = _write_format(target, format)
    if fmt == "uir":
        raise DataError(f"{target}: recommendations are written as csv, tsv or parquet, not uir")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    empty = _recommendation_frame(
        np.zeros(0, np.int64), np.zeros((0, 1), np.int64), np.zeros((0, 1)), user_map, item_map
    )
    n_rows = 0
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq  # the one writer that appends row groups batch by batch

            with pq.ParquetWriter(tmp, empty.to_arrow().schema) as writer:
                for users, items, scores in batches:
                    frame = _recommendation_frame(users, items, scores, user_map, item_map)
                    writer.write_table(frame.to_arrow())
                    n_rows += len(frame)
        else:
            sep = "," if fmt == "csv" else "\t"
            with open(tmp, "wb") as f:
                empty.write_csv(f, separator=sep, line_terminator="\n")
                for users, items, scores in batches:
                    frame = _recommendation_frame(users, items, scores, user_map, item_map)
                    frame.write_csv(f, separator=sep, include_header=False, line_terminator="\n")
                    n_rows += len(frame)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return n_rows
