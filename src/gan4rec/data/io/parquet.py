"""Parquet files: typed columns, integer or string ids, numeric ratings, integer or datetime timestamps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl

from gan4rec.data.io.common import (
    Locator,
    OnBadRows,
    Spec,
    Table,
    is_rust_panic,
    one_line,
    resolve_columns,
    validate_rows,
)
from gan4rec.errors import DataError

__all__ = ["read_parquet_table"]

_T = TypeVar("_T")


def _guarded(path: Path, read: Callable[[], _T]) -> _T:
    """Run one polars read of ``path``, its failures on a corrupt file turned into a one-line DataError.

    A damaged data page can make polars' decoder panic (``PanicException``, a :class:`BaseException`)
    rather than raise; both are caught, and the original stays the DataError's ``__cause__``.
    """
    try:
        return read()
    except (pl.exceptions.PolarsError, OSError) as e:
        raise DataError(f"{path} is not a readable parquet file ({one_line(e)})") from e
    except BaseException as e:
        if not is_rust_panic(e):
            raise
        raise DataError(f"{path} is not a readable parquet file (corrupt data: the decoder failed)") from e

def read_parquet_table(path: Path, spec: Spec, on_bad_rows: OnBadRows) -> Table:
    """Read and validate the columns of a parquet file that ``spec`` maps to roles into a :class:`Table`."""
    schema = _guarded(path, lambda: pl.read_parquet_schema(path))
    names = list(schema)
    positions = resolve_columns(path, spec.columns, names, len(names))
    raw_names = {role: names[p] for role, p in positions.items()}
    source_names = {role: f"column {name!r}" for role, name in raw_names.items()}
    for role in ("user", "item"):
        dtype = schema[raw_names[role]]
        if not (dtype.is_integer() or dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)):
            raise DataError(
                f"{path}: {source_names[role]} (the {role} ids) has dtype {dtype}; "
                "expected integers or strings (ids never pass through float)"
            )
    df = _guarded(path, lambda: pl.read_parquet(path, columns=list(raw_names.values())))
    df = df.rename({v: k for k, v in raw_names.items()})
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
    return validate_rows(
        path,
        df,
        n_fields=None,
        source_names=source_names,
        locator=Locator(path, "row"),
        on_bad_rows=on_bad_rows,
    )


