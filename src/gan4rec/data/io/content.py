"""Readers of side information: item (or user) features, text, links, and the CiteULike-t layout.

Every reader returns sparse matrices aligned with a given :class:`~gan4rec.data.idmap.IdMap` (row ``j`` is
id ``j`` of the map), ready to become ``Interactions.item_features`` / ``user_features``:

* :func:`read_feature_table`: a long table ``item,feature[,value]`` (csv, tsv or parquet), e.g. genres,
  tags, attribute flags: one row per (item, feature), repeated pairs summed;
* :func:`read_text_table` and :func:`tfidf`: a text column made TF-IDF with scikit-learn;
* :func:`read_relations`: a ``head,relation,tail`` table (item-to-item knowledge) as one item x item link
  matrix per relation;
* :func:`read_count_lists` and :func:`read_citeulike`: the count-prefixed line files of CiteULike
  (``users.dat``, ``mult.dat``, ``tag-item.dat``, ``citations.dat``);
* :func:`write_features` and :func:`read_features`: a features dict saved as one ``.npz`` with its ids
  and column names, without pickle (read back with ``allow_pickle=False``), e.g. beside a saved split.

Bad input raises a one-line :class:`~gan4rec.errors.DataError` naming ``file:line`` (``file:row N`` for
parquet). An id that is not in the given map is an error unless ``on_unknown="drop"``, which drops the row,
logs the count and reports it in :attr:`FeatureTable.n_dropped` (a file whose ids are ALL unknown is
still an error: its ids are not the map's); ``on_unknown="ignore"`` drops such rows silently.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from gan4rec.artifacts import atomic_write_bytes
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Feature, Interactions
from gan4rec.data.io.common import Locator, check_exists, encode_ids, is_rust_panic, one_line
from gan4rec.data.io.delimited import text_fields
from gan4rec.errors import DataError

__all__ = [
    "CITEULIKE_FILES",
    "FeatureTable",
    "OnUnknown",
    "read_citeulike",
    "read_count_lists",
    "read_feature_columns",
    "read_feature_table",
    "read_features",
    "read_relations",
    "read_text_table",
    "tfidf",
    "write_features",
]

logger = logging.getLogger(__name__)

OnUnknown = Literal["error", "drop", "ignore"]

#: The CiteULike-t files :func:`read_citeulike` reads: interactions, text, tags, citations.
CITEULIKE_FILES = ("users.dat", "mult.dat", "tag-item.dat", "citations.dat")


@dataclass(frozen=True)
class FeatureTable:
    """A feature matrix read from a file, and what its columns mean.

    Attributes
    ----------
    matrix
        ``(len(map), len(names))`` CSR, float32; a row of zeros for an id the file does not mention.
    names
        Column names: the distinct feature values (sorted), or the TF-IDF vocabulary.
    n_dropped
        Rows dropped because their id was not in the map (``on_unknown="drop"``).
    """

    matrix: sp.csr_matrix
    names: np.ndarray
    n_dropped: int = 0


# -------------------------------------------------------------------------------- tables
def _table(
    path: Path, columns: Sequence[str], optional: Sequence[str], sep: str | None
) -> tuple[pl.DataFrame, Locator]:
    """The named columns of a csv / tsv / parquet file as strings, with ``_key`` for the locator."""
    check_exists(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            names = list(pl.read_parquet_schema(path))
            _need(path, names, columns)
            wanted = [c for c in (*columns, *optional) if c in names]
            df = pl.read_parquet(path, columns=wanted).with_columns(
                pl.all().cast(pl.String), pl.int_range(0, pl.len(), dtype=pl.Int64).alias("_key")
            )
        except (pl.exceptions.PolarsError, OSError) as e:
            raise DataError(f"{path} is not a readable parquet file ({one_line(e)})") from e
        except BaseException as e:  # a panic in polars' decoder on a damaged file
            if not is_rust_panic(e):
                raise
            raise DataError(f"{path} is not a readable parquet file (corrupt data: the decoder failed)") from e
        return df, Locator(path, "row")
    if sep is None:
        sep = "\t" if suffix == ".tsv" else ","
    fields = text_fields(path, sep=sep, header=True, encoding="utf-8", quote_aware=True)
    names = list(fields.names or [])
    _need(path, names, columns)
    exprs = [fields.field(names.index(c)).str.strip_chars().alias(c) for c in (*columns, *optional) if c in names]
    return fields.frame.select("_key", *exprs), fields.locator


def _need(path: Path, names: list[str], columns: Sequence[str]) -> None:
    for c in columns:
        if c not in names:
            raise DataError(f"{path}: no column {c!r} (columns: {', '.join(names) or 'none'})")


def _non_empty(df: pl.DataFrame, col: str, locator: Locator) -> None:
    bad = df.filter(pl.col(col).is_null() | (pl.col(col) == ""))
    if len(bad):
        raise DataError(f"{locator.where(int(bad['_key'][0]))}: the {col} is empty; expected a value")


def _index(
    df: pl.DataFrame, col: str, idmap: IdMap, locator: Locator, on_unknown: OnUnknown
) -> tuple[pl.DataFrame, np.ndarray, int]:
    """Rows whose ``col`` id is in ``idmap``, and their indices; an unknown id raises or is dropped."""
    if on_unknown not in ("error", "drop", "ignore"):
        raise DataError(f"on_unknown={on_unknown!r}; expected 'error', 'drop' or 'ignore'")
    _, [idx] = encode_ids([df[col]], idmap)
    unknown = idx < 0
    n = int(np.count_nonzero(unknown))
    if n and on_unknown == "error":
        j = int(np.flatnonzero(unknown)[0])
        raise DataError(
            f"{locator.where(int(df['_key'][j]))}: unknown {col} id {df[col][j]!r} (not in the map); "
            "pass on_unknown='drop' to drop such rows"
        )
    if n and n == len(df) and on_unknown == "drop":  # nothing left: the ids are not the map's at all
        raise DataError(f"{locator.where(int(df['_key'][0]))}: unknown {col} id {df[col][0]!r}, and so are all "
                        f"{n} rows' ids: none is in the map (the ids must be the data's raw {col} ids)")
    if n:
        if on_unknown == "drop":
            logger.warning("%s: dropped %d row(s) whose %s id is not in the map", locator.path, n, col)
        keep = ~unknown
        return df.filter(pl.Series(keep)), idx[keep], n
    return df, idx, 0


def _values(df: pl.DataFrame, col: str | None, locator: Locator) -> np.ndarray:
    if col is None or col not in df.columns:
        return np.ones(len(df), dtype=np.float32)
    v = df[col].cast(pl.Float64, strict=False)
    bad = v.is_null() | ~v.is_finite().fill_null(False)
    if bad.any():
        j = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{locator.where(int(df['_key'][j]))}: {col} {df[col][j]!r} is not a finite number")
    return v.to_numpy().astype(np.float32)


def read_feature_table(
    path: str | os.PathLike[str],
    idmap: IdMap,
    *,
    id_column: str = "item",
    feature_column: str = "feature",
    value_column: str | None = "value",
    sep: str | None = None,
    on_unknown: OnUnknown = "error",
) -> FeatureTable:
    """Read a long feature table (one row per id and feature) into a CSR aligned with ``idmap``.

    ::

        item,feature,value           ->        a    b        (names = ["a", "b"])
        10,a,1                          10 [ 1    2 ]
        10,b,2                          20 [ 0    0 ]      (an id the file does not mention: zeros)
        30,a,1                          30 [ 1    0 ]

    Parameters
    ----------
    path
        A csv (``,``), tsv (tab) or parquet file with a header; ``sep`` overrides the separator.
    idmap
        The map the rows follow, e.g. ``inter.item_map``.
    id_column, feature_column
        Column names of the ids and the features (any strings).
    value_column
        Column of numeric values; when the file has no such column every value is 1. Repeated (id, feature)
        pairs are summed (counts of a tag, of a word).
    on_unknown
        ``"error"`` (default) on an id outside ``idmap``, naming ``file:line``; ``"drop"`` drops the row and
        counts it (with a warning); ``"ignore"`` too, silently (a file of many items read for a few).
    """
    p = Path(path)
    df, loc = _table(p, [id_column, feature_column], [value_column] if value_column else [], sep)
    _non_empty(df, id_column, loc)
    _non_empty(df, feature_column, loc)
    df = df.with_columns(pl.Series("_v", _values(df, value_column, loc)))
    df, rows, dropped = _index(df, id_column, idmap, loc, on_unknown)
    values = df["_v"].to_numpy()
    names, cols = np.unique(np.asarray(df[feature_column].to_list(), dtype=str), return_inverse=True)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(idmap), len(names)), dtype=np.float32)
    matrix.sum_duplicates()
    return FeatureTable(matrix, names, dropped)


def tfidf(
    texts: Sequence[str], *, max_features: int | None = None, min_df: float = 1
) -> tuple[sp.csr_matrix, np.ndarray]:
    """TF-IDF of texts with scikit-learn's ``TfidfVectorizer``.

    Its defaults otherwise: lower-cased words of two or more letters or digits, no stop-word list, smooth
    idf, rows scaled to unit length.

    Parameters
    ----------
    texts
        One text per row; an empty text gives a row of zeros.
    max_features
        Keep the most frequent terms only (vocabulary size); ``None`` keeps all.
    min_df
        Ignore terms in fewer documents than this (an int) or than this share of them (a float).

    Returns
    -------
    (matrix, vocabulary)
        ``(len(texts), n_terms)`` float32 CSR and the terms of its columns.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    if max_features is not None and (
        isinstance(max_features, bool) or not isinstance(max_features, int) or max_features < 1
    ):
        raise DataError(f"max_features={max_features!r}; expected a positive integer or None")
    if isinstance(min_df, bool) or not (
        (isinstance(min_df, int) and min_df >= 1) or (isinstance(min_df, float) and 0 < min_df <= 1)
    ):
        raise DataError(f"min_df={min_df!r}; expected a document count >= 1 or a share in (0, 1]")
    vec = TfidfVectorizer(max_features=max_features, min_df=min_df, dtype=np.float32)
    try:
        X = vec.fit_transform(list(texts))
    except ValueError as e:
        raise DataError(
            f"no term left to build TF-IDF from ({one_line(e)}); the texts are empty or min_df is too high"
        ) from None
    return sp.csr_matrix(X, dtype=np.float32), np.asarray(vec.get_feature_names_out(), dtype=str)


def read_text_table(
    path: str | os.PathLike[str],
    idmap: IdMap,
    *,
    id_column: str = "item",
    text_column: str = "text",
    max_features: int | None = None,
    min_df: float = 1,
    sep: str | None = None,
    on_unknown: OnUnknown = "error",
) -> FeatureTable:
    """Read a table with one text per id (title, abstract, description) and make it TF-IDF.

    Parameters
    ----------
    path
        A csv, tsv or parquet file with a header and the columns ``id_column`` and ``text_column``. Texts
        with commas or newlines must be quoted in csv.
    idmap
        The map the rows follow; ids the file does not mention get a row of zeros.
    max_features, min_df
        Vocabulary size and minimum document frequency, as in :func:`tfidf`.
    on_unknown
        As in :func:`read_feature_table`.

    Raises
    ------
    DataError
        An empty text or id (naming ``file:line``), an id given twice, an unknown id, or no term at all.
    """
    p = Path(path)
    df, loc = _table(p, [id_column, text_column], [], sep)
    _non_empty(df, id_column, loc)
    _non_empty(df, text_column, loc)
    df, rows, dropped = _index(df, id_column, idmap, loc, on_unknown)
    _, first = np.unique(rows, return_index=True)
    if len(first) < len(rows):
        is_first = np.zeros(len(rows), dtype=bool)
        is_first[first] = True
        j = int(np.flatnonzero(~is_first)[0])
        raise DataError(f"{loc.where(int(df['_key'][j]))}: {id_column} {df[id_column][j]!r} has a second text")
    texts = [""] * len(idmap)
    for r, t in zip(rows.tolist(), df[text_column].to_list(), strict=True):
        texts[r] = t
    try:
        matrix, vocab = tfidf(texts, max_features=max_features, min_df=min_df)
    except DataError as e:
        raise DataError(f"{p}: {e}") from None
    return FeatureTable(matrix, vocab, dropped)


def read_relations(
    path: str | os.PathLike[str],
    idmap: IdMap,
    *,
    head: str = "head",
    relation: str = "relation",
    tail: str = "tail",
    sep: str | None = None,
    on_unknown: OnUnknown = "error",
) -> dict[str, sp.csr_matrix]:
    """Read a knowledge table ``head,relation,tail`` into one link matrix per relation.

    ``out[r][h, t] = 1`` when the file has the row ``h, r, t`` (repeated rows count once); ``h`` and ``t``
    are ids of ``idmap`` (item-to-item knowledge: cites, same author, sequel of). Links are directed as
    written. Feed a relation to :func:`gan4rec.data.features.propagate`, the one way knowledge enters.

    Returns
    -------
    dict
        Relation name -> ``(len(idmap), len(idmap))`` float32 CSR, sorted by name.
    """
    p = Path(path)
    df, loc = _table(p, [head, relation, tail], [], sep)
    for c in (head, relation, tail):
        _non_empty(df, c, loc)
    df, heads, _ = _index(df, head, idmap, loc, on_unknown)
    df, tails, _ = _index(df.with_columns(pl.Series("_h", heads)), tail, idmap, loc, on_unknown)
    heads = df["_h"].to_numpy()
    n = len(idmap)
    rels = np.asarray(df[relation].to_list(), dtype=str)
    out: dict[str, sp.csr_matrix] = {}
    for name in np.unique(rels).tolist():
        sel = rels == name
        m = sp.csr_matrix(
            (np.ones(int(sel.sum()), dtype=np.float32), (heads[sel], tails[sel])), shape=(n, n), dtype=np.float32
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        out[name] = m
    return out


# -------------------------------------------------------------------------------- CiteULike
def _count_line(path: Path, ln: int, line: str, pairs: bool) -> tuple[np.ndarray, np.ndarray]:
    """Columns and values of one ``count e1 e2 ...`` line (``e`` = ``col`` or ``col:value``)."""
    parts = line.split()
    if not parts:
        raise DataError(f"{path}:{ln}: the line is empty; expected a count, then that many entries")
    try:
        count = int(parts[0])
    except ValueError:
        raise DataError(f"{path}:{ln}: the count {parts[0]!r} is not an integer") from None
    if count != len(parts) - 1:
        raise DataError(f"{path}:{ln}: the count says {count} entries, the line has {len(parts) - 1}")
    entries = parts[1:]
    split = [e.split(":") for e in entries] if pairs else []
    if any(len(s) != 2 for s in split):
        bad = next(e for e, s in zip(entries, split, strict=True) if len(s) != 2)
        raise DataError(f"{path}:{ln}: entry {bad!r} is not 'index:count'")
    try:
        if pairs:
            cols = np.array([s[0] for s in split], dtype=np.int64)
            vals = np.array([s[1] for s in split], dtype=np.float64)
        else:
            cols = np.array(entries, dtype=np.int64)
            vals = np.ones(len(cols), dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}:{ln}: an entry is not {'index:count' if pairs else 'an integer index'}") from None
    if len(cols) and cols.min() < 0:
        raise DataError(f"{path}:{ln}: index {int(cols.min())} is negative; expected 0-based indices")
    if pairs and len(vals) and not np.isfinite(vals).all():
        raise DataError(f"{path}:{ln}: a count is not a finite number")
    return cols, vals


def read_count_lists(
    path: str | os.PathLike[str], *, n_cols: int | None = None, pairs: bool = False, n_rows: int | None = None
) -> sp.csr_matrix:
    """Read a file of count-prefixed lists (the CiteULike layout) into a CSR matrix, one row per line.

    ::

        users.dat (pairs=False)      mult.dat (pairs=True)        ->  row i: line i+1
        3 0 7 12                     2 5:1 17:3                       cols 0, 7, 12  /  5 (1), 17 (3)
        0                            (an empty list: "0")

    Parameters
    ----------
    path
        The file; line ``i + 1`` is row ``i``. Each line holds a count, then that many 0-based column
        indices (``pairs=False``, values 1) or ``index:value`` pairs (``pairs=True``).
    n_cols
        Number of columns; an index at or beyond it is an error naming ``file:line``. Default: the largest
        index + 1.
    n_rows
        Expected number of lines (an error when it differs).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(lines, n_cols)`` float32; a column repeated within a line has its values summed.
    """
    p = Path(path)
    check_exists(p)
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not UTF-8 text (byte {e.start})") from None
    lines = text.splitlines()
    if n_rows is not None and len(lines) != n_rows:
        raise DataError(f"{p}: {len(lines)} lines, expected {n_rows} (one per row)")
    parsed = _count_lists_fast(lines, pairs)
    if parsed is None:  # something is off: the line-by-line parser finds it and names the line
        parsed = _count_lists_slow(p, lines, pairs)
    indptr, cols, vals = parsed
    if n_cols is not None and len(cols) and cols.max() >= n_cols:
        j = int(np.flatnonzero(cols >= n_cols)[0])
        ln = int(np.searchsorted(indptr, j, side="right"))
        raise DataError(f"{p}:{ln}: index {int(cols[j])} is out of range; expected < {n_cols}")
    width = n_cols if n_cols is not None else (int(cols.max()) + 1 if len(cols) else 0)
    out = sp.csr_matrix((vals.astype(np.float32), cols, indptr), shape=(len(lines), width))
    out.sum_duplicates()
    return out


_LIST_LINE = re.compile(r"[ \t]*\d+(?:[ \t]+\d+)*[ \t]*")
_PAIR_LINE = re.compile(r"[ \t]*\d+(?:[ \t]+\d+:\d+)*[ \t]*")
_Parsed = tuple[np.ndarray, np.ndarray, np.ndarray]  # indptr (n_lines + 1,), cols (nnz,), values (nnz,)


def _count_lists_fast(lines: list[str], pairs: bool) -> _Parsed | None:
    """Parse well-formed lines in a few vectorised steps; ``None`` when any line is not well-formed."""
    pattern = _PAIR_LINE if pairs else _LIST_LINE
    if not all(pattern.fullmatch(line) for line in lines):
        return None
    n_entries = np.fromiter((len(line.split()) - 1 for line in lines), dtype=np.int64, count=len(lines))
    try:
        numbers = np.array(" ".join(lines).replace(":", " ").split(), dtype=np.int64)  # (all numbers,)
    except OverflowError:
        return None
    width = 2 if pairs else 1
    starts = np.zeros(len(lines), dtype=np.int64)  # position of each line's count in ``numbers``
    np.cumsum(1 + width * n_entries[:-1], out=starts[1:])
    if len(lines) and not np.array_equal(numbers[starts], n_entries):
        return None
    is_count = np.zeros(len(numbers), dtype=bool)
    is_count[starts] = True
    body = numbers[~is_count]
    cols = body[0::2] if pairs else body
    vals = body[1::2].astype(np.float64) if pairs else np.ones(len(body), dtype=np.float64)
    indptr = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(n_entries, out=indptr[1:])
    return indptr, cols, vals


def _count_lists_slow(path: Path, lines: list[str], pairs: bool) -> _Parsed:
    """Parse line by line, raising on the first bad line (also accepts non-integer values)."""
    indptr = np.zeros(len(lines) + 1, dtype=np.int64)
    cols_parts, val_parts = [], []
    for ln, line in enumerate(lines, start=1):
        cols, vals = _count_line(path, ln, line, pairs)
        indptr[ln] = indptr[ln - 1] + len(cols)
        cols_parts.append(cols)
        val_parts.append(vals)
    cols = np.concatenate(cols_parts) if cols_parts else np.zeros(0, dtype=np.int64)
    vals = np.concatenate(val_parts) if val_parts else np.zeros(0, dtype=np.float64)
    return indptr, cols, vals


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(m, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    return out


def read_citeulike(folder: str | os.PathLike[str], *, text: Literal["counts", "tfidf"] = "counts") -> Interactions:
    """Read the CiteULike-t (or -a) folder: users saving articles, with the articles' text, tags and citations.

    ::

        users.dat     line u: count, then the 0-based articles user u saved   -> the interactions
        mult.dat      line i: count, then word:count pairs of article i       -> item_features["text"]
        tag-item.dat  line t: count, then the articles carrying tag t          -> item_features["tags"] (transposed)
        citations.dat line i: count, then the articles linked to article i    -> item_features["cites"]

    Users and items are indexed by their 0-based line (the id maps are ``0 .. n-1``); the number of items
    is the number of lines of ``mult.dat``. The interactions are implicit (no ratings). ``tag-item.dat``
    and ``citations.dat`` are optional (their feature is then absent).

    Item features (all CSR, float32, one row per article):

    ``"text"``
        ``(n_items, n_words)``: the raw word counts (``text="counts"``, the default) or their TF-IDF
        (``text="tfidf"``: scikit-learn's ``TfidfTransformer``, smooth idf, l2 rows), over the published
        vocabulary (``vocabulary.dat``, 20,000 words for CiteULike-t).
    ``"tags"``
        ``(n_items, n_tags)`` 0/1: article x tag.
    ``"cites"``
        ``(n_items, n_items)`` 0/1 links as published (CiteULike-t's are symmetric and include some
        self-links), the knowledge part: use them through :func:`gan4rec.data.features.propagate`.

    Column names (``item_feature_columns``): the words of ``vocabulary.dat`` for ``"text"`` and the tags of
    ``tags.dat`` for ``"tags"`` (line ``t + 1`` names column ``t``), where the file is there; a names file
    whose line count differs from the columns is a :class:`DataError` naming it.
    """
    root = Path(folder)
    words = read_count_lists(root / "mult.dat", pairs=True, n_cols=_vocabulary_size(root))
    n_items = words.shape[0]
    saved = read_count_lists(root / "users.dat", n_cols=n_items)  # (n_users, n_items)
    if saved.data.max(initial=1.0) > 1:
        row = int(np.flatnonzero(saved.max(axis=1).toarray().reshape(-1) > 1)[0])
        raise DataError(f"{root / 'users.dat'}:{row + 1}: an article is listed twice")
    if text == "tfidf":
        from sklearn.feature_extraction.text import TfidfTransformer

        words = sp.csr_matrix(TfidfTransformer().fit_transform(words), dtype=np.float32)
    elif text != "counts":
        raise DataError(f"text={text!r}; expected 'counts' or 'tfidf'")
    feats: dict[str, sp.csr_matrix] = {"text": words}
    if (root / "tag-item.dat").is_file():
        feats["tags"] = _binary(read_count_lists(root / "tag-item.dat", n_cols=n_items).T.tocsr())
    if (root / "citations.dat").is_file():
        feats["cites"] = _binary(read_count_lists(root / "citations.dat", n_cols=n_items, n_rows=n_items))
    columns = {name: names for name, file in (("text", "vocabulary.dat"), ("tags", "tags.dat"))
               if name in feats and (names := _line_names(root / file, feats[name].shape[1])) is not None}
    users = np.arange(saved.shape[0], dtype=np.int64)
    return Interactions(
        saved.indptr, saved.indices, IdMap(users), IdMap(np.arange(n_items, dtype=np.int64)), item_features=feats,
        item_feature_columns=columns,
    )


def _line_names(path: Path, n: int) -> np.ndarray | None:
    """The stripped lines of ``path`` as ``n`` column names, or ``None`` when the file is absent."""
    if not path.is_file():
        return None
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    if len(lines) != n:
        raise DataError(f"{path}: {len(lines)} lines, expected {n} (one name per column)")
    return np.asarray([line.strip() for line in lines], dtype=str)


def _vocabulary_size(root: Path) -> int | None:
    """Words in ``vocabulary.dat`` (one per line), or ``None`` when the file is absent."""
    vocab = root / "vocabulary.dat"
    if not vocab.is_file():
        return None
    return len(vocab.read_bytes().splitlines())


# -------------------------------------------------------------------------------- save / load
_FORMAT = "gan4rec-features/1"


def _plain(name: str, arr: np.ndarray) -> np.ndarray:
    """A dense feature as an array numpy saves without pickle (object arrays of strings become ``str``)."""
    if arr.dtype.kind != "O":
        return arr
    flat = arr.reshape(-1).tolist()
    if not all(isinstance(v, str) for v in flat):
        raise DataError(f"feature {name!r} holds Python objects that are not strings; it cannot be saved without pickle")
    return np.asarray(flat, dtype=str).reshape(arr.shape)


def write_features(
    path: str | os.PathLike[str],
    features: Mapping[str, Feature],
    idmap: IdMap,
    columns: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Save a features dict (``inter.item_features``) and the ids of its rows to one ``.npz``, atomically.

    Dense arrays are stored as they are (object arrays of strings as unicode), CSR matrices as their three
    arrays and shape; a JSON manifest names them. ``columns`` (``inter.item_feature_columns``) are saved
    beside them, read back by :func:`read_feature_columns`. Nothing is pickled: :func:`read_features` reads
    the file with ``allow_pickle=False``.
    """
    arrays: dict[str, np.ndarray] = {"ids": _plain("ids", np.asarray(idmap.ids))}
    manifest: dict[str, object] = {"format": _FORMAT, "id_kind": idmap.kind, "features": []}
    for j, (name, value) in enumerate(sorted(features.items())):
        if value.shape[0] != len(idmap):
            raise DataError(f"feature {name!r} has {value.shape[0]} rows, expected {len(idmap)} (one per id)")
        if sp.issparse(value):
            m = sp.csr_matrix(value)
            arrays.update({f"f{j}_data": m.data, f"f{j}_indices": m.indices, f"f{j}_indptr": m.indptr})
            manifest["features"].append({"name": name, "kind": "csr", "shape": list(m.shape)})  # type: ignore[attr-defined]
        else:
            arrays[f"f{j}"] = _plain(name, np.asarray(value))
            manifest["features"].append({"name": name, "kind": "dense"})  # type: ignore[attr-defined]
        if columns is not None and name in columns:
            arrays[f"f{j}_columns"] = np.asarray(columns[name], dtype=str)
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_feature_columns(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The column names a file of :func:`write_features` holds, by feature (features without names absent)."""
    p = Path(path)
    files, manifest = _load_npz(p)
    try:
        return {e["name"]: files[f"f{j}_columns"].astype(str) for j, e in enumerate(manifest["features"])
                if f"f{j}_columns" in files}
    except (KeyError, TypeError) as e:
        raise DataError(f"{p}: a feature is damaged ({one_line(e)})") from None


def _load_npz(p: Path) -> tuple[dict[str, np.ndarray], dict]:  # type: ignore[type-arg]
    check_exists(p)
    try:
        with np.load(p, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
        manifest = json.loads(bytes(files["manifest"]).decode())
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise DataError(f"{p}: not a features file ({one_line(e)})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise DataError(f"{p}: format {manifest.get('format') if isinstance(manifest, dict) else None!r}; "
                        f"expected {_FORMAT!r}")
    return files, manifest


def read_features(path: str | os.PathLike[str], idmap: IdMap) -> dict[str, Feature]:
    """Read a file of :func:`write_features`, its rows reordered to follow ``idmap``.

    Every id of ``idmap`` must have a row in the file (else :class:`DataError` naming the id); rows of ids
    that ``idmap`` lacks (e.g. dropped by a k-core filter) are left out. A square sparse feature (links
    among the ids, like CiteULike's ``"cites"``) has its columns reordered and cut the same way.
    """
    p = Path(path)
    files, manifest = _load_npz(p)
    stored = IdMap(files["ids"] if manifest["id_kind"] == "int" else files["ids"].astype(object))
    rows = stored.lookup(idmap.ids)
    if len(rows) and rows.min() < 0:
        missing = idmap.ids[int(np.flatnonzero(rows < 0)[0])]
        raise DataError(f"{p}: id {missing.item() if isinstance(missing, np.generic) else missing!r} "
                        "of the map has no row in the file")
    out: dict[str, Feature] = {}
    try:
        for j, entry in enumerate(manifest["features"]):
            if entry["kind"] == "csr":
                m = sp.csr_matrix(
                    (files[f"f{j}_data"], files[f"f{j}_indices"], files[f"f{j}_indptr"]), shape=tuple(entry["shape"])
                )
                # A square matrix over the ids is links among them: reorder its columns too.
                square = m.shape[0] == m.shape[1] == len(stored)
                out[entry["name"]] = m[rows][:, rows] if square else m[rows]
            else:
                out[entry["name"]] = files[f"f{j}"][rows]
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(f"{p}: a feature is damaged ({one_line(e)})") from None
    return out
