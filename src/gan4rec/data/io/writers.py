"""Writers: interactions (csv, tsv, uir, parquet) and streamed top-k recommendation lists, atomically."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from gan4rec.atomic import atomic_path, atomic_write_bytes
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.io.common import UIR_SUFFIXES, WRITE_FORMATS, data_error
from gan4rec.errors import DataError

__all__ = ["write_interactions", "write_recommendations"]

# -------------------------------------------------------------------------------- writer
def _write_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in WRITE_FORMATS:
            raise DataError(f"format={fmt!r}; expected one of {', '.join(WRITE_FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return suffix[1:]
    if suffix in UIR_SUFFIXES:
        return "uir"
    raise DataError(
        f"cannot infer the output format of {path} from its suffix {suffix or 'none'!r}; "
        f"pass format= one of {', '.join(WRITE_FORMATS)}"
    )


_RECOMMENDATION_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}


def _recommendation_format(path: Path, fmt: str | None) -> str:
    """The format of a recommendations file: ``fmt``, or the one its extension names."""
    if fmt is not None:
        if fmt not in ("csv", "tsv", "parquet"):
            raise DataError(f"format={fmt!r}; recommendations are written as 'csv', 'tsv' or 'parquet'")
        return fmt
    suffix = path.suffix.lower()
    if suffix not in _RECOMMENDATION_SUFFIXES:
        found = f"the extension {suffix!r}" if suffix else "no extension"
        *others, last = _RECOMMENDATION_SUFFIXES
        accepted = f"{', '.join(others)} or {last}"
        raise data_error(
            f"cannot write recommendations to {path}: it has {found}; use a name ending in {accepted}, "
            "or pass format='csv', 'tsv' or 'parquet'",
            f"--out {path}: it has {found}; recommendations are written to a file ending in {accepted}",
        )
    return _RECOMMENDATION_SUFFIXES[suffix]


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
    that replaces ``path`` only once complete and fsynced (:func:`gan4rec.artifacts.atomic_path`). The
    file gets the mode a plain ``open()`` would give it, so the umask decides who may read it.

    Parameters
    ----------
    path
        Destination (``.csv``, ``.tsv``, ``.parquet`` or ``.pq``, or say ``format=``).
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

    Raises
    ------
    DataError
        If the extension (or ``format``) is not one of those above; the error's ``cli_message`` says the
        same for ``--out``.
    """
    target = Path(path)
    fmt = _recommendation_format(target, format)
    empty = _recommendation_frame(
        np.zeros(0, np.int64), np.zeros((0, 1), np.int64), np.zeros((0, 1)), user_map, item_map
    )
    n_rows = 0
    with atomic_path(target) as tmp:
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
    return n_rows
