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

Modules
-------
One reader family per module; everything public is re-exported here, so ``from gan4rec.data.io import
read_interactions`` is the way to use them.

* :mod:`~gan4rec.data.io.common`: formats, :class:`BadRows`, column mapping, the row checks and the
  assembly into :class:`~gan4rec.data.interactions.Interactions` (positive feedback, duplicates, k-core);
* :mod:`~gan4rec.data.io.delimited`: csv, tsv and whitespace ``uir`` text;
* :mod:`~gan4rec.data.io.parquet`: Parquet files;
* :mod:`~gan4rec.data.io.movielens`: the MovieLens layouts and their side files;
* :mod:`~gan4rec.data.io.readers`: the public readers, which pick one of the above;
* :mod:`~gan4rec.data.io.writers`: interactions and recommendation lists, atomically.

* :mod:`~gan4rec.data.io.content`: side information (feature tables, TF-IDF text, knowledge relations, the
  CiteULike layout) as sparse matrices aligned with an id map;
* :mod:`~gan4rec.data.io.feature_files`: a user's item-feature file (long table or text) joined to
  interactions by id (``--item-features``).
"""

from __future__ import annotations

from gan4rec.data.io.common import BAD_ROW_REASONS, FORMATS, BadRows, ColumnSpec, Format, OnBadRows
from gan4rec.data.io.content import (
    CITEULIKE_FILES,
    FeatureTable,
    OnUnknown,
    read_citeulike,
    read_count_lists,
    read_feature_columns,
    read_feature_table,
    read_features,
    read_relations,
    read_text_table,
    tfidf,
    write_features,
)
from gan4rec.data.io.feature_files import attach_item_features
from gan4rec.data.io.movielens import MOVIELENS_GENRES, MOVIELENS_LAYOUTS, read_movielens
from gan4rec.data.io.readers import (
    ReadOptions,
    infer_format,
    read_interactions,
    read_interactions_report,
    read_uir_pair,
)
from gan4rec.data.io.writers import write_interactions, write_recommendations

__all__ = [
    "BAD_ROW_REASONS",
    "CITEULIKE_FILES",
    "FORMATS",
    "MOVIELENS_GENRES",
    "MOVIELENS_LAYOUTS",
    "BadRows",
    "ColumnSpec",
    "FeatureTable",
    "Format",
    "OnBadRows",
    "OnUnknown",
    "ReadOptions",
    "attach_item_features",
    "infer_format",
    "read_citeulike",
    "read_count_lists",
    "read_feature_columns",
    "read_feature_table",
    "read_features",
    "read_interactions",
    "read_interactions_report",
    "read_movielens",
    "read_relations",
    "read_text_table",
    "read_uir_pair",
    "tfidf",
    "write_features",
    "write_interactions",
    "write_recommendations",
]
