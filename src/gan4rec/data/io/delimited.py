"""Delimited text: CSV and TSV (quoted fields understood) and whitespace-separated ``uir`` lines.

:func:`text_fields` splits a file into fields with one of three engines (see its docstring), keeping for
every row its physical line so that a bad row is reported as ``file:line``; :func:`read_text_table` maps
the fields to roles and checks every row (:func:`~gan4rec.data.io.common.validate_rows`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from gan4rec.data.io.common import (
    FORMATS,
    ColumnSpec,
    Locator,
    OnBadRows,
    Spec,
    Table,
    check_exists,
    is_rust_panic,
    one_line,
    resolve_columns,
    validate_rows,
)
from gan4rec.errors import DataError

__all__ = ["TextFields", "read_text_table", "text_fields", "text_spec"]

_TAB_TO_SPACE = bytes.maketrans(b"\t", b" ")
_SPARE_SEP = b"\x1f"  # ASCII unit separator
_LEADING_SPACE = re.compile(rb"[ \t\r\n\v\f]*")


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")


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
        raise DataError(f"{path} cannot be decoded as {encoding!r} ({one_line(e)})") from e


def _split_lines(path: Path, data: bytes, encoding: str) -> pl.Series:
    """Every physical line of ``data`` (``\\n``-terminated, trailing ``\\r`` removed); index i is line i+1."""
    try:
        text = pl.Series("text", [data], dtype=pl.Binary).cast(pl.String)
    except pl.exceptions.PolarsError as e:
        raise DataError(
            f"{path} is not valid UTF-8 text; pass encoding= (for example 'latin-1') to read it"
            if _is_utf8(encoding)
            else f"{path} could not be decoded ({one_line(e)})"
        ) from e
    lines = text.str.split("\n").explode()
    if len(lines) and lines[-1] == "":
        lines = lines.slice(0, len(lines) - 1)  # the empty piece after the final newline is not a line
    return lines.str.strip_chars_end("\r")


@dataclass
class TextFields:
    """A delimited file split into fields, one row per non-blank line (or CSV record).

    ``frame`` holds ``_key`` (the locator key), ``_nf`` (fields on the row; null when the parser does not
    say) and the fields: either one list column ``_f`` (line splitting) or one column per field named in
    ``wide`` (the polars CSV parser). :meth:`field` hides the difference.
    """

    frame: pl.DataFrame
    names: list[str] | None
    n_fields: int
    locator: Locator
    wide: list[str] | None = None

    def field(self, position: int) -> pl.Expr:
        """Field ``position`` (0-based) as a String expression, null where the row is shorter."""
        if self.wide is None:
            return pl.col("_f").list.get(position, null_on_oob=True)
        if position < len(self.wide):
            return pl.col(self.wide[position])
        return pl.lit(None, dtype=pl.String)


def text_fields(path: Path, *, sep: str | None, header: bool, encoding: str, quote_aware: bool) -> TextFields:
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
    return TextFields(frame, names, n_fields, Locator(path, "line"))


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


def _native_fields(path: Path, data: bytes, *, sep: str, header: bool, offset: int) -> TextFields | None:
    """The fast engine: polars' CSV parser without quoting; ``None`` when the line splitter must take over."""
    n_lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    try:
        df = pl.read_csv(
            data, has_header=header, separator=sep, quote_char=None, infer_schema=False, raise_if_empty=False
        )
    except pl.exceptions.PolarsError:
        return None  # ragged rows (too many fields): the line splitter reports them exactly
    except BaseException as e:
        if not is_rust_panic(e):
            raise
        return None  # a parser panic (odd bytes): the line splitter reads the file its own way
    # polars keeps blank lines as all-null records, so every line is a record; if not, do not guess.
    if df.width == 0 or len(df) + int(header) != n_lines:
        return None
    names = [c.strip() for c in df.columns] if header else None
    first = 1 + int(header) + offset
    frame, wide = _wide_frame(df, pl.int_range(first, first + len(df), dtype=pl.Int64))
    # The parser reads an empty field and a missing one both as null; the line splitter tells them apart.
    if frame.select(pl.any_horizontal([pl.col(c).is_null() for c in wide]).any()).item():
        return None
    return TextFields(frame, names, len(wide), Locator(path, "line"), wide)


def _csv_fields(path: Path, data: bytes, *, sep: str, header: bool, encoding: str) -> TextFields:
    """The engine for quoted CSV: polars' parser; rows keyed by record index."""
    locator = Locator(path, "record", sep, header, encoding)
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
        raise DataError(f"{path} could not be parsed as {sep!r}-separated text ({one_line(e)})") from e
    except BaseException as e:
        if not is_rust_panic(e):
            raise
        raise DataError(f"{path} could not be parsed as {sep!r}-separated text (the parser failed)") from e
    names = [c.strip() for c in df.columns] if header else None
    if df.width == 0:
        frame = pl.DataFrame(schema={"_key": pl.Int64, "_nf": pl.Int64})
        return TextFields(frame, names, 0, locator, [])
    frame, wide = _wide_frame(df, pl.int_range(0, pl.len(), dtype=pl.Int64))
    return TextFields(frame, names, len(wide), locator, wide)


def text_spec(
    fmt: str, sep: str | None, header: bool | None, columns: ColumnSpec | None, encoding: str
) -> Spec:
    """How a file of format ``fmt`` is read, with the format's default separator and header filled in."""
    if fmt == "csv":
        return Spec(
            "csv", "," if sep is None else sep, True if header is None else header, columns, encoding
        )
    if fmt == "tsv":
        return Spec(
            "tsv", "\t" if sep is None else sep, True if header is None else header, columns, encoding
        )
    if fmt == "uir":
        return Spec("uir", sep, False if header is None else header, columns, encoding)
    if fmt == "parquet":
        if sep is not None or header is not None:
            raise DataError("sep= and header= do not apply to parquet files; leave them unset")
        return Spec("parquet", None, True, columns, encoding)
    raise DataError(f"format={fmt!r}; expected one of {', '.join(FORMATS)}")


def read_text_table(path: Path, spec: Spec, on_bad_rows: OnBadRows) -> Table:
    """Parse and validate one delimited text file (csv, tsv or uir ``spec``) into a :class:`Table`."""
    check_exists(path)
    fields = text_fields(
        path,
        sep=spec.sep,
        header=spec.header,
        encoding=spec.encoding,
        quote_aware=spec.format in ("csv", "tsv"),
    )
    if len(fields.frame) == 0:
        raise DataError(f"{path}: no interactions, the file has no data rows")
    positions = resolve_columns(path, spec.columns, fields.names, fields.n_fields)
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
    return validate_rows(
        path,
        df,
        n_fields=n_fields,
        source_names=source_names,
        locator=fields.locator,
        on_bad_rows=on_bad_rows,
    )


