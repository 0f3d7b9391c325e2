"""What every interactions reader shares: formats, bad-row reports, column mapping, row checks, id indexing.

The format modules (:mod:`~gan4rec.data.io.delimited`, :mod:`~gan4rec.data.io.parquet`,
:mod:`~gan4rec.data.io.movielens`) turn a file into a polars frame with one column per role read; this
module checks those rows (:func:`validate_rows`, the bad-row machinery), maps header names to roles
(:func:`resolve_columns`), and builds :class:`~gan4rec.data.interactions.Interactions` from validated tables
(:func:`assemble`: the positive-feedback rule, shared id maps, duplicates; :func:`apply_kcore`).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Duplicates, Interactions
from gan4rec.errors import DataError, MissingInputError

__all__ = [
    "BAD_ROW_REASONS",
    "FORMATS",
    "UIR_SUFFIXES",
    "WRITE_FORMATS",
    "BadRows",
    "ColumnSpec",
    "Format",
    "Locator",
    "OnBadRows",
    "Spec",
    "Table",
    "apply_kcore",
    "assemble",
    "check_exists",
    "check_read_args",
    "data_error",
    "encode_ids",
    "is_rust_panic",
    "one_line",
    "printable",
    "resolve_columns",
    "validate_rows",
]

logger = logging.getLogger(__name__)

Format = Literal["auto", "csv", "tsv", "uir", "parquet", "movielens"]
OnBadRows = Literal["error", "skip"]
ColumnSpec = Mapping[str, "str | int | None"]

#: Formats :func:`read_interactions` understands (``"auto"`` infers one of the others from the path).
FORMATS: tuple[str, ...] = ("auto", "csv", "tsv", "uir", "parquet", "movielens")
WRITE_FORMATS = ("csv", "tsv", "uir", "parquet")

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
UIR_SUFFIXES = (".train", ".test", ".txt", ".base", ".uir", ".valid", ".val")



# -------------------------------------------------------------------------------- messages
def one_line(error: BaseException) -> str:
    """The first paragraph of ``error``'s message on one line, for a one-line :class:`DataError`.

    polars' messages run over several paragraphs (hints, backtraces) and may quote file content with its
    newlines; those are shown as ``\\n`` and the text is cut at 200 characters. The whole message stays
    reachable as the new error's ``__cause__`` (``raise ... from error``).
    """
    first = re.split(r"\n\s*\n", str(error).strip(), maxsplit=1)[0].strip()
    first = first.replace("\r", "\\r").replace("\n", "\\n")
    if len(first) > 200:
        first = first[:197] + "..."
    return first or type(error).__name__


def is_rust_panic(error: BaseException) -> bool:
    """Whether ``error`` is a panic inside polars' Rust code, which pyo3 raises as ``PanicException``.

    That class derives from :class:`BaseException` (``except Exception`` misses it) and is not importable
    cleanly, so it is matched by name.
    """
    return type(error).__name__ == "PanicException"


def printable(name: str) -> str:
    """A column name as it can appear in a one-line message (quoted and escaped when it holds a newline)."""
    return name if name.isprintable() else repr(name)


def data_error(message: str, cli_message: str | None = None) -> DataError:
    """A :class:`DataError`, with the same error worded for the command line when that differs."""
    error = DataError(message)
    error.cli_message = cli_message
    return error


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
class Locator:
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


def check_exists(path: Path) -> None:
    if not path.exists():
        raise MissingInputError(f"input {path} does not exist")



# -------------------------------------------------------------------------------- columns
def _norm_name(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def resolve_columns(
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
                    raise data_error(
                        f"columns[{role!r}]={value!r} names a column, but {path} is read without a header; "
                        "pass a 0-based position instead",
                        f"--columns {role}={value} names a column, but {path} is read without a header row; "
                        "for a file with one, pass --format csv or --format tsv",
                    )
                if value in names:
                    out[role] = names.index(value)
                else:
                    raise DataError(
                        f"{path} has no column {value!r} for the {role} (columns: {_column_list(names)})"
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
            raise _missing_role(path, role, names, n_fields)
    positions = list(out.values())
    if len(set(positions)) != len(positions):
        raise DataError(f"columns map two roles to the same column of {path}: {out}")
    return out


def _column_list(names: Sequence[str]) -> str:
    return ", ".join(printable(n) for n in names)


def _missing_role(path: Path, role: str, names: list[str] | None, n_fields: int) -> DataError:
    """The error for a file where no column was found for ``role``, in Python's and the CLI's words."""
    if names is not None:
        found = f"{path} has no recognisable {role} column (columns: {_column_list(names)})"
        return data_error(
            f'{found}; name it with columns={{"{role}": "COL"}}', f"{found}; name it with --columns {role}=COL"
        )
    found = f"{path} has no {role} field (its rows have {n_fields} field(s) and no header row is read)"
    return data_error(
        f'{found}; give its 0-based position with columns={{"{role}": POSITION}}, or header=True',
        f"{found}; for a file with a header row, pass --format csv or --format tsv",
    )


# -------------------------------------------------------------------------------- validation
@dataclass
class Table:
    """One file's valid rows: raw ids (polars String or Int64), values, and where each row came from."""

    path: Path
    users: pl.Series
    items: pl.Series
    ratings: np.ndarray | None  # (n,) float64
    timestamps: np.ndarray | None  # (n,) int64
    keys: np.ndarray  # (n,) int64 locator keys
    locator: Locator
    bad: BadRows

    def __len__(self) -> int:
        return len(self.users)

    def take(self, mask: np.ndarray) -> Table:
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


def validate_rows(
    path: Path,
    df: pl.DataFrame,
    *,
    n_fields: int | None,
    source_names: Mapping[str, str],
    locator: Locator,
    on_bad_rows: OnBadRows,
) -> Table:
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
    return Table(
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
class Spec:
    """How one file is read: the engine format, separator, header and column roles."""

    format: str  # csv | tsv | uir | parquet
    sep: str | None
    header: bool
    columns: ColumnSpec | None
    encoding: str




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


def encode_ids(series: list[pl.Series], idmap: IdMap | None) -> tuple[IdMap, list[np.ndarray]]:
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


def assemble(
    tables: list[Table],
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
                raise data_error(
                    f"min_rating={min_rating} needs ratings, but no rating column was read from {t.path}; "
                    "pass columns={'rating': ...} or min_rating=None",
                    f"--min-rating {min_rating} needs ratings, but no rating column was read from {t.path}; "
                    "pass --columns rating=COL or leave out --min-rating",
                )
            t2 = t.take(t.ratings >= min_rating)
            if len(t2) == 0:
                raise DataError(f"{t.path}: no interactions left, no rating is >= min_rating={min_rating}")
            kept.append(t2)
        tables = kept
    user_map, ucodes = encode_ids([t.users for t in tables], user_map)
    item_map, icodes = encode_ids([t.items for t in tables], item_map)
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


def apply_kcore(inter: Interactions, path: Path, min_user: int, min_item: int, fixed_maps: bool) -> Interactions:
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


def check_read_args(
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


