"""New items at serve time: items with content features but no interactions, ranked without retraining.

A cold-start hybrid (``model.cold_start``, e.g. ``content-knn``, ``ridge-map``, ``gar``) scores items outside
its item map from a content row in the columns of ``model.features_``
(:meth:`~gan4rec.models.hybrid.common.HybridRecommender.score_new_items`), calibrated as its cold items, so
they rank together with the catalog. A new item is defined by its raw id and a ``{column: value}`` dict;
columns are named by ``model.feature_names_`` where the model has it, else by their index (``"0"``,
``"1"``, ...). Columns not given are 0.

Two sources feed a server (:class:`gan4rec.serve.state.ModelSlot` keeps both, in memory):

- ``POST /items`` / ``DELETE /items/{id}`` (one worker only: another worker would not see them);
- a long-table file ``item,feature[,value]`` (csv, tsv or parquet; ``value`` defaults to 1, repeated
  pairs are summed), given as ``gan4rec serve --new-items FILE`` and re-read when it changes (and on every
  model reload), or as ``gan4rec recommend --new-items FILE``.

Definitions are kept raw and encoded for each model snapshot (:func:`encode_new_items`), so a reload that
brings a model with other columns re-checks them. Bad input is a one-line :class:`~gan4rec.errors.DataError`
naming the field (``items[0].features``) or ``file:line``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from gan4rec.data.idmap import IdMap
from gan4rec.errors import ArtifactError, DataError, MissingInputError

__all__ = [
    "MAX_POSTED_ITEMS",
    "NO_NEW_ITEMS",
    "NewItemConflictError",
    "NewItemDef",
    "NewItems",
    "NewItemsUnsupportedError",
    "canonical_id",
    "encode_new_items",
    "feature_columns",
    "new_items_support",
    "read_new_items_file",
]

_INT_ID = re.compile(r"-?[0-9]{1,19}")
_SHOWN_COLUMNS = 8


#: Most items a server holds from ``POST /items`` (the file has no limit).
MAX_POSTED_ITEMS = 10_000


class NewItemsUnsupportedError(DataError):
    """New items were given for a model that cannot score them (the message names the model)."""


class NewItemConflictError(DataError):
    """A new item's id is already taken: by the catalog, by another new item, or given twice."""


@dataclass(frozen=True)
class NewItemDef:
    """One new item as given: its raw id (in the model's id kind), its features, and where it came from.

    ``where`` locates it for error messages: ``items[2]`` for a request, ``FILE:LINE`` for a file.
    ``from_file`` tells the two sources apart (a file item is removed by editing the file).
    """

    id: Any
    features: Mapping[str, float]
    where: str
    from_file: bool = False


@dataclass(frozen=True, eq=False)
class NewItems:
    """New items encoded for one model: ``item_map`` (their raw ids) and ``features`` ``(m, n_features)``.

    Index ``j`` of ``item_map`` is row ``j`` of ``features``; a ranking puts them after the catalog, at
    ``n_items + j``. ``from_file[j]`` is true for items of the new-items file. Never mutated.
    """

    item_map: IdMap | None
    features: sp.csr_matrix | None
    from_file: np.ndarray

    def __len__(self) -> int:
        return 0 if self.item_map is None else len(self.item_map)

    def get(self, raw: Any) -> int:
        """Position of a raw id among the new items, ``-1`` when it is none of them."""
        if self.item_map is None:
            return -1
        if self.item_map.kind == "int" and isinstance(raw, str) and not _INT_ID.fullmatch(raw):
            return -1
        return self.item_map.get(raw)

    def raw(self, positions: np.ndarray) -> list[Any]:
        """Raw ids of positions ``0 .. m-1``."""
        assert self.item_map is not None  # only called with positions of existing items
        return self.item_map.to_raw(np.asarray(positions, dtype=np.int64)).tolist()


#: No new items.
NO_NEW_ITEMS = NewItems(None, None, np.zeros(0, dtype=bool))


def new_items_support(model: Any) -> str | None:
    """``None`` when ``model`` scores new items from their features, else one sentence saying why not."""
    name = getattr(model, "name", type(model).__name__)
    if not getattr(model, "cold_start", False) or not callable(getattr(model, "score_new_items", None)):
        return (f"model {name!r} cannot score new items: it ranks only the items it was trained on (cold-start "
                "hybrids such as content-knn, ridge-map, ease-side, dropoutnet or gar can)")
    if int(getattr(model, "n_features", 0)) == 0:
        return f"model {name!r} was fitted without item features, so it cannot score new items from features"
    try:
        feature_columns(model)
    except ArtifactError as e:
        return f"model {name!r} cannot name its content columns for new items: {e}"
    return None


def feature_columns(model: Any) -> tuple[str, ...]:
    """Names of the model's content columns: ``model.feature_names_`` where present, else ``"0"``, ``"1"``...

    Raises
    ------
    ArtifactError
        ``feature_names_`` does not hold one distinct string per column.
    """
    n = int(model.n_features)
    names = getattr(model, "feature_names_", None)
    if names is None:
        return tuple(str(j) for j in range(n))
    out = tuple(str(v) for v in (names.tolist() if isinstance(names, np.ndarray) else names))
    if len(out) != n or len(set(out)) != n:
        raise ArtifactError(f"the model's feature_names_ holds {len(out)} names ({len(set(out))} distinct) for "
                            f"{n} content columns")
    return out


def canonical_id(kind: str, raw: Any, where: str) -> Any:
    """A raw id in the model's id ``kind``: ``int`` ids take JSON integers or decimal strings, ``str`` ids
    take strings (an integer becomes its decimal string). Anything else is a :class:`DataError`."""
    if isinstance(raw, bool) or raw is None or (isinstance(raw, str) and not raw):
        raise DataError(f"{where}: id {raw!r} is not an item id")
    if kind == "str":
        return raw if isinstance(raw, str) else str(raw)
    if isinstance(raw, str):
        if not _INT_ID.fullmatch(raw):
            raise DataError(f"{where}: id {raw!r} is not an integer, as the model's item ids are")
        raw = int(raw)
    if not isinstance(raw, int | np.integer) or not -(2**63) <= int(raw) < 2**63:
        raise DataError(f"{where}: id {raw!r} is not a 64-bit integer, as the model's item ids are")
    return int(raw)


def _shown(columns: Sequence[str]) -> str:
    head = ", ".join(repr(c) for c in columns[:_SHOWN_COLUMNS])
    return head + (f" and {len(columns) - _SHOWN_COLUMNS} more" if len(columns) > _SHOWN_COLUMNS else "")


def encode_new_items(model: Any, defs: Sequence[NewItemDef]) -> NewItems:
    """New items for ``model``: ids checked against its catalog and each other, features in its columns.

    Raises
    ------
    NewItemsUnsupportedError
        ``defs`` is not empty and the model cannot score new items.
    NewItemConflictError
        An id of the catalog or a repeated id.
    DataError
        An empty feature dict, an unknown column or a non-finite value;
        the message names the item (``where``) and the field.
    """
    if not defs:
        return NO_NEW_ITEMS
    reason = new_items_support(model)
    if reason is not None:
        raise NewItemsUnsupportedError(reason)
    columns = feature_columns(model)
    position = {c: j for j, c in enumerate(columns)}
    catalog = model.item_map_
    ids: list[Any] = []
    seen: dict[Any, str] = {}
    rows, cols, vals = [], [], []
    for r, d in enumerate(defs):
        key = canonical_id(catalog.kind, d.id, d.where)
        if catalog.get(key) >= 0:
            raise NewItemConflictError(
                f"{d.where}: id {key!r} is already an item of the model's catalog; new items need new ids")
        if key in seen:
            raise NewItemConflictError(f"{d.where}: id {key!r} is given twice (also at {seen[key]})")
        seen[key] = d.where
        if not d.features:
            raise DataError(f"{d.where}: features is empty; expected at least one {{column: value}}")
        for name, value in d.features.items():
            j = position.get(name)
            if j is None:
                raise DataError(f"{d.where}: features: unknown column {name!r}; the model's columns are "
                                f"{_shown(columns)}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise DataError(f"{d.where}: features[{name!r}] is {value!r}; expected a finite number")
            rows.append(r)
            cols.append(j)
            vals.append(float(value))
        ids.append(key)
    features = sp.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(defs), len(columns)),
                             dtype=np.float32)  # (m, n_features)
    features.sum_duplicates()
    return NewItems(IdMap(np.asarray(ids, dtype=object if catalog.kind == "str" else np.int64)), features,
                    np.array([d.from_file for d in defs], dtype=bool))


# ------------------------------------------------------------------------------------------------ the file
def _rows(path: Path) -> tuple[list[tuple[str, str, str | None, str]], bool]:
    """``(item, feature, value or None, where)`` of every row, and whether the file has a value column."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import polars as pl

        try:
            df = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as e:
            raise DataError(f"{path} is not a readable parquet file ({str(e).splitlines()[0]})") from None
        missing = [c for c in ("item", "feature") if c not in df.columns]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r} (columns: {', '.join(df.columns) or 'none'}); "
                            "expected item,feature[,value]")
        has_value = "value" in df.columns
        text = df.select([pl.col(c).cast(pl.String) for c in ("item", "feature", "value") if c in df.columns])
        out = [(r[0] or "", r[1] or "", (r[2] if r[2] is not None else "") if has_value else None,
                f"{path}:row {n}") for n, r in enumerate(text.iter_rows(), 1)]
        return out, has_value
    try:
        text_data = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    reader = csv.reader(io.StringIO(text_data), dialect="excel-tab" if suffix == ".tsv" else "excel")
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in ("item", "feature") if c not in header]
    if missing:
        raise DataError(f"{path}:1: no column {missing[0]!r} in the header {header!r}; expected item,feature[,value]")
    i, f = header.index("item"), header.index("feature")
    v = header.index("value") if "value" in header else None
    width = max(i, f, v if v is not None else 0)
    out = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= width:
            raise DataError(f"{where}: {len(row)} field(s); expected {len(header)} as in the header")
        out.append((row[i].strip(), row[f].strip(), row[v].strip() if v is not None else None, where))
    return out, v is not None


def read_new_items_file(path: str | Path) -> list[NewItemDef]:
    """The new items of a long table ``item,feature[,value]`` (csv, tsv or parquet), in first-seen order.

    ::

        item,feature,value        ->   NewItemDef("n1", {"drama": 1.0, "year": 0.5})
        n1,drama,1                     NewItemDef("n2", {"comedy": 2.0})
        n1,year,0.5
        n2,comedy,2

    Without a ``value`` column every value is 1; repeated ``(item, feature)`` pairs are summed. Ids are
    kept as text here; :func:`encode_new_items` converts them to the model's id kind and checks the
    columns. An empty item or feature, or a value that is not a finite number, is a :class:`DataError`
    naming ``file:line``; an empty file is one too.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"{p}: no such new-items file")
    rows, _ = _rows(p)
    items: dict[str, tuple[dict[str, float], str]] = {}
    for item, feature, value, where in rows:
        if not item:
            raise DataError(f"{where}: the item is empty; expected an id")
        if not feature:
            raise DataError(f"{where}: the feature is empty; expected a column name")
        number = 1.0
        if value is not None:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise DataError(f"{where}: value {value!r} is not a finite number")
        feats, _ = items.setdefault(item, ({}, where))
        feats[feature] = feats.get(feature, 0.0) + number
    if not items:
        raise DataError(f"{p}: holds no new item; expected rows item,feature[,value]")
    return [NewItemDef(item, feats, where, from_file=True) for item, (feats, where) in items.items()]
