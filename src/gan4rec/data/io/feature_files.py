"""A user's item-feature file joined to interactions: what ``--item-features FILE`` and ``[data] item_features`` do.

Two kinds of file, both csv / tsv / parquet with a header and an ``item`` column of the interactions' raw
item ids:

* a long table ``item,feature[,value]`` (:func:`~gan4rec.data.io.content.read_feature_table`): one row per
  item and feature (genres, tags, attributes), the value 1 when there is no ``value`` column; the feature
  is named after the file (``genres.csv`` -> ``"genres"``, columns ``"genres=Action"``, ...);
* a text table ``item,TEXT`` (``text_column="TEXT"``, :func:`~gan4rec.data.io.content.read_text_table`):
  one text per item, made TF-IDF (vocabulary size ``max_features``, minimum document frequency
  ``min_df``); the feature is named after the text column (``"abstract=neural"``, ...).

Rows are joined by id, never by position. The rules for a file that does not cover the data exactly:

* an item id of the file that the data does not have (not in its item map, e.g. dropped by ``min_rating``
  or a k-core filter) is WARNED about and dropped, with the count logged and recorded
  (``rows_dropped``); a file none of whose items is in the data is an error naming its first line (the
  ids do not match), and so is a file that gives no item any feature;
* an item of the data that the file does not mention gets a row of zeros (counted: ``items_without``);
* an empty id, feature or text, a value that is not a number, an item with two texts: an error naming
  ``file:line``; a feature name the data already has (MovieLens's ``genres``): an error.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from gan4rec.data.interactions import Interactions
from gan4rec.data.io.common import check_exists
from gan4rec.data.io.content import read_feature_table, read_text_table
from gan4rec.errors import DataError

__all__ = ["attach_item_features"]

logger = logging.getLogger(__name__)


def attach_item_features(
    data: Interactions,
    path: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    max_features: int | None = None,
    min_df: float = 1,
) -> tuple[Interactions, dict[str, Any]]:
    """``data`` with the item feature of ``path`` added (see the module docstring), and what was read.

    Parameters
    ----------
    data
        The interactions, after every filter (the feature rows follow its item map).
    path
        The feature file.
    text_column
        ``None`` for a long table ``item,feature[,value]``; else the column of a text table to make TF-IDF.
    max_features, min_df
        TF-IDF vocabulary size and minimum document frequency (text tables only).

    Returns
    -------
    (Interactions, dict)
        The data with one more item feature (and its column names), and a JSON-ready record: ``file``,
        ``feature``, ``columns``, ``rows_dropped``, ``items_without``.

    Raises
    ------
    MissingInputError
        No such file.
    DataError
        A bad row (naming ``file:line``), no item of the file in the data, a feature name already taken.
    """
    p = Path(path)
    check_exists(p)
    if text_column is None:
        if max_features is not None or min_df != 1:
            raise DataError(f"{p}: max_features and min_df apply to a text column (item_features_text), "
                            "not to a long item,feature table")
        table = read_feature_table(p, data.item_map, on_unknown="drop")
        name = p.stem
    else:
        table = read_text_table(p, data.item_map, text_column=text_column, max_features=max_features,
                                min_df=min_df, on_unknown="drop")
        name = text_column
    rows_with = np.diff(table.matrix.indptr) > 0  # (n_items,)
    if not rows_with.any():
        raise DataError(f"{p}: no item of the data has a feature row (the file has no data rows, or only "
                        "zero values)")
    items_without = int(np.count_nonzero(~rows_with))
    # The reader has warned about the rows it dropped (their count is in the record).
    if items_without:
        logger.warning("%s: %d of the data's %d items have no row; their %s features are zeros", p,
                       items_without, data.n_items, name)
    if name in data.item_features:
        after = "the file" if text_column is None else "the text column"
        raise DataError(f"{p}: the data already has an item feature {name!r}; rename {after} (the feature is "
                        "named after it)")
    out = data.with_features("item", {name: table.matrix}, {name: table.names})
    record = {"file": str(p), "feature": name, "columns": int(table.matrix.shape[1]),
              "rows_dropped": int(table.n_dropped), "items_without": items_without}
    return out, record
