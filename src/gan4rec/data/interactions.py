"""Immutable users x items implicit-feedback matrix, with optional ratings, timestamps and side features.

An :class:`Interactions` is a CSR matrix (rows = users, columns = items) whose stored entries are the
positive interactions. Entries within a row are sorted by item index. Optional per-entry arrays
(``ratings``, ``timestamps``) are aligned with the CSR ``indices``. Side features are named arrays whose
first axis runs over users (``user_features``) or items (``item_features``): dense numpy arrays (genre
flags, embeddings, titles) or scipy sparse matrices (bag of words, tags, item-to-item links), which are
stored as canonical ``scipy.sparse.csr_matrix`` with read-only arrays. Row ``j`` of a feature belongs to
index ``j`` of the id map, through every operation (:meth:`subset` keeps the maps and the features,
:meth:`filter` drops the rows of the users and items it drops, the splitters keep them). A SQUARE sparse
feature is taken to be links between the same users or items (CiteULike's ``"cites"``): :meth:`filter`
drops its columns as well as its rows. Build model input with :func:`gan4rec.data.features.feature_matrix`.

Columns of a feature may have names (``item_feature_columns["genres"]`` = ``["Action", "Adventure", ...]``,
the TF-IDF vocabulary of a text, ...): optional, one read-only ``str`` array per named 2-D feature (or 1-D:
one name), kept through the same operations and saved with the features. The readers fill them where the
source knows them; :func:`gan4rec.data.features.feature_column_names` turns them into the ``"genres=Action"``
labels models and explanations show. Names enter no fingerprint.

Features do not enter :meth:`Interactions.fingerprint` (the identity of the interaction data, unchanged
by this choice for every existing dataset); :meth:`Interactions.feature_fingerprint` hashes them, and
``fingerprint(features=True)`` covers both (the cold-start split records it).

All arrays are read-only; operations return new objects. Raw ids live in the two :class:`IdMap`; everything
inside is an index.

::

    users x items          indptr  = [0, 2, 3]
        i0 i1 i2           indices = [0, 2, 1]
    u0 [ 1  .  1 ]         ratings = [4, 5, 3]   (optional, aligned with indices)
    u1 [ .  1  . ]
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import scipy.sparse as sp

from gan4rec.data.idmap import IdMap
from gan4rec.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import polars as pl

__all__ = ["Duplicates", "Feature", "Interactions"]

Duplicates = Literal["last", "first", "max", "error"]
_DUPLICATES = ("last", "first", "max", "error")


def _readonly(a: np.ndarray | None) -> np.ndarray | None:
    if a is not None:
        a.flags.writeable = False
    return a


def _show(value: Any) -> str:
    """repr of a raw id without numpy's type wrapper (``30``, not ``np.int64(30)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


Feature: TypeAlias = "np.ndarray | sp.csr_matrix"
"""One side feature: a dense array or a CSR matrix whose first axis runs over users or items."""


def _frozen(a: np.ndarray) -> bool:
    """Whether ``a`` is an array nobody can write to through another name (ours, made read-only)."""
    return a.flags.owndata and not a.flags.writeable


def _freeze_csr(m: Any) -> sp.csr_matrix:
    """A canonical CSR copy of sparse ``m`` with read-only arrays.

    A canonical ``csr_matrix`` whose three arrays are all read-only already (one made here, shared by the
    parts of a split) is taken as it is, not copied.
    """
    if (
        isinstance(m, sp.csr_matrix)
        and not any(a.flags.writeable for a in (m.data, m.indices, m.indptr))
        and m.has_canonical_format
    ):
        return m
    out = sp.csr_matrix(m.tocsr(copy=True))
    out.sum_duplicates()  # also sorts the indices of each row
    for a in (out.data, out.indices, out.indptr):
        while isinstance(a, np.ndarray):  # views and the arrays they view
            a.flags.writeable = False
            a = a.base
    return out


def _check_features(feats: Mapping[str, Any] | None, n: int, what: str) -> dict[str, Feature]:
    out: dict[str, Feature] = {}
    for name, values in (feats or {}).items():
        if sp.issparse(values):
            if values.shape[0] != n:
                raise DataError(f"{what} feature {name!r} has {values.shape[0]} rows, expected {n}")
            out[str(name)] = _freeze_csr(values)
            continue
        arr = np.asarray(values)
        if arr.ndim == 0 or arr.shape[0] != n:
            raise DataError(f"{what} feature {name!r} has {arr.shape[0] if arr.ndim else 0} rows, expected {n}")
        out[str(name)] = arr if _frozen(arr) else _readonly(arr.copy())  # type: ignore[assignment]
    return out


def _n_columns(value: Any) -> int:
    """Columns of a feature: its second axis, 1 for a 1-D array."""
    shape = value.shape
    return 1 if len(shape) == 1 else int(shape[1])


def _check_columns(
    cols: Mapping[str, Any] | None, feats: dict[str, Feature], what: str
) -> dict[str, np.ndarray]:
    """Column names per feature: 1-D ``str`` arrays as long as the feature is wide, for known features only."""
    out: dict[str, np.ndarray] = {}
    for name, values in (cols or {}).items():
        if name not in feats:
            raise DataError(f"{what} feature columns name feature {name!r}, which is not a {what} feature "
                            f"({', '.join(sorted(feats)) or 'none'})")
        arr = np.asarray(values)
        if arr.ndim == 1 and (arr.size == 0 or arr.dtype.kind == "O" and all(isinstance(v, str) for v in arr.tolist())):
            arr = np.asarray(arr.tolist(), dtype=str).reshape(-1)
        if arr.ndim != 1 or arr.dtype.kind != "U":
            raise DataError(f"{what} feature columns of {name!r}: expected a 1-D array of strings")
        if len(arr) != _n_columns(feats[name]):
            raise DataError(f"{what} feature {name!r} has {_n_columns(feats[name])} columns but {len(arr)} "
                            "column names")
        out[str(name)] = arr if _frozen(arr) else _readonly(arr.copy())  # type: ignore[assignment]
    return out


def _take_rows(value: Feature, keep: np.ndarray) -> Feature:
    """Rows ``keep`` of a feature; a square sparse one (links between the same users or items) also columns."""
    if sp.issparse(value) and value.shape[0] == value.shape[1]:
        return value[keep][:, keep]
    return value[keep]


def _take_columns(cols: dict[str, np.ndarray], feats: dict[str, Feature], keep: np.ndarray) -> dict[str, np.ndarray]:
    """Column names after :func:`_take_rows`: a square sparse feature's columns are cut like its rows."""
    return {k: v[keep] if _square(feats[k]) else v for k, v in cols.items()}


def _square(value: Feature) -> bool:
    return bool(sp.issparse(value) and value.shape[0] == value.shape[1])


def _array_digest(h: Any, a: np.ndarray) -> None:
    """Feed ``a`` (dtype, shape, values) into the hash ``h``; object arrays by their values' ``str``."""
    h.update(f"{a.dtype.str}{a.shape}".encode())
    if a.dtype.kind == "O":
        h.update("\x1f".join(map(str, a.reshape(-1).tolist())).encode("utf-8", "surrogatepass"))
    else:
        h.update(np.ascontiguousarray(a).tobytes())


class Interactions:
    """Positive user-item interactions over fixed user and item :class:`IdMap`.

    Build one with :meth:`from_arrays`, :meth:`from_indices`, :meth:`from_pandas` or :meth:`from_polars`
    rather than with the constructor, which trusts its input to be canonical (rows sorted, no duplicates).
    """

    __slots__ = (
        "_csr",
        "indices",
        "indptr",
        "item_feature_columns",
        "item_features",
        "item_map",
        "ratings",
        "timestamps",
        "user_feature_columns",
        "user_features",
        "user_map",
    )

    def __init__(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        user_map: IdMap,
        item_map: IdMap,
        *,
        ratings: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
        user_features: Mapping[str, Any] | None = None,
        item_features: Mapping[str, Any] | None = None,
        user_feature_columns: Mapping[str, Any] | None = None,
        item_feature_columns: Mapping[str, Any] | None = None,
    ) -> None:
        self.indptr: np.ndarray = _readonly(np.asarray(indptr, dtype=np.int64))  # type: ignore[assignment]
        self.indices: np.ndarray = _readonly(np.asarray(indices, dtype=np.int32))  # type: ignore[assignment]
        nnz = len(self.indices)
        if len(self.indptr) != len(user_map) + 1 or self.indptr[-1] != nnz:
            raise DataError("indptr does not match the user map and the number of entries")
        if nnz and (self.indices.min() < 0 or self.indices.max() >= len(item_map)):
            raise DataError("item index out of range of the item map")
        for name, arr in (("ratings", ratings), ("timestamps", timestamps)):
            if arr is not None and len(arr) != nnz:
                raise DataError(f"{name} has {len(arr)} values, expected one per interaction ({nnz})")
        self.ratings = _readonly(None if ratings is None else np.asarray(ratings, dtype=np.float32))
        self.timestamps = _readonly(None if timestamps is None else np.asarray(timestamps, dtype=np.int64))
        self.user_map = user_map
        self.item_map = item_map
        self.user_features = _check_features(user_features, len(user_map), "user")
        self.item_features = _check_features(item_features, len(item_map), "item")
        self.user_feature_columns = _check_columns(user_feature_columns, self.user_features, "user")
        self.item_feature_columns = _check_columns(item_feature_columns, self.item_features, "item")
        self._csr: sp.csr_matrix | None = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_indices(
        cls,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
        user_map: IdMap,
        item_map: IdMap,
        *,
        ratings: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
        duplicates: Duplicates = "last",
        user_features: Mapping[str, Any] | None = None,
        item_features: Mapping[str, Any] | None = None,
        user_feature_columns: Mapping[str, Any] | None = None,
        item_feature_columns: Mapping[str, Any] | None = None,
    ) -> Interactions:
        """Build from index arrays (one entry per interaction, any order).

        ``duplicates`` says what to do with repeated (user, item) pairs: keep the ``"last"`` or
        ``"first"`` in input order, keep the one with the ``"max"`` rating, or raise (``"error"``).
        """
        if duplicates not in _DUPLICATES:
            raise DataError(f"duplicates={duplicates!r}; expected one of {', '.join(_DUPLICATES)}")
        u = np.asarray(user_idx, dtype=np.int64).reshape(-1)
        i = np.asarray(item_idx, dtype=np.int64).reshape(-1)
        if len(u) != len(i):
            raise DataError(f"{len(u)} users but {len(i)} items: arrays must have the same length")
        if len(u) and (u.min() < 0 or u.max() >= len(user_map)):
            raise DataError("user index out of range of the user map")
        if len(i) and (i.min() < 0 or i.max() >= len(item_map)):
            raise DataError("item index out of range of the item map")
        r = None if ratings is None else np.asarray(ratings, dtype=np.float32).reshape(-1)
        t = None if timestamps is None else np.asarray(timestamps, dtype=np.int64).reshape(-1)
        for name, arr in (("ratings", r), ("timestamps", t)):
            if arr is not None and len(arr) != len(u):
                raise DataError(f"{name} has {len(arr)} values, expected {len(u)}")
        if duplicates == "max" and r is None:
            raise DataError("duplicates='max' needs ratings")

        n_items = len(item_map)
        key = u * max(n_items, 1) + i
        order = np.arange(len(u), dtype=np.int64)
        if duplicates == "max":
            assert r is not None
            # Sort by key, then rating, then input order: the last of each run is the max (ties: last).
            perm = np.lexsort((order, r, key))
        else:
            # A stable sort keeps input order within equal keys (and is several times faster than lexsort).
            perm = np.argsort(key, kind="stable")
        key_s = key[perm]
        if len(key_s):
            new_run = np.empty(len(key_s), dtype=bool)
            new_run[0] = True
            np.not_equal(key_s[1:], key_s[:-1], out=new_run[1:])
            if duplicates == "error" and not new_run.all():
                j = perm[np.flatnonzero(~new_run)[0]]
                raise DataError(
                    f"duplicate interaction (user {_show(user_map.ids[u[j]])}, item {_show(item_map.ids[i[j]])}); "
                    "pass duplicates='last', 'first' or 'max' to resolve"
                )
            if duplicates == "first":
                keep = perm[new_run]
            else:
                last_of_run = np.empty(len(key_s), dtype=bool)
                last_of_run[-1] = True
                last_of_run[:-1] = new_run[1:]
                keep = perm[last_of_run]
        else:
            keep = perm
        u_k, i_k = u[keep], i[keep]
        indptr = np.zeros(len(user_map) + 1, dtype=np.int64)
        np.cumsum(np.bincount(u_k, minlength=len(user_map)), out=indptr[1:])
        return cls(
            indptr, i_k.astype(np.int32), user_map, item_map,
            ratings=None if r is None else r[keep], timestamps=None if t is None else t[keep],
            user_features=user_features, item_features=item_features,
            user_feature_columns=user_feature_columns, item_feature_columns=item_feature_columns,
        )

    @classmethod
    def from_arrays(
        cls,
        users: Any,
        items: Any,
        ratings: Any = None,
        timestamps: Any = None,
        *,
        user_map: IdMap | None = None,
        item_map: IdMap | None = None,
        min_rating: float | None = None,
        duplicates: Duplicates = "last",
        user_features: Mapping[str, Any] | None = None,
        item_features: Mapping[str, Any] | None = None,
        user_feature_columns: Mapping[str, Any] | None = None,
        item_feature_columns: Mapping[str, Any] | None = None,
    ) -> Interactions:
        """Build from raw-id arrays.

        Parameters
        ----------
        users, items
            Raw ids, integers or strings (never floats), one per interaction.
        ratings, timestamps
            Optional values, one per interaction.
        user_map, item_map
            Fixed maps to index into (an unknown id is a :class:`DataError`). By default the maps are the
            sorted distinct ids seen here.
        min_rating
            The positive-feedback rule: keep interactions whose rating is ``>= min_rating``. ``None`` (the
            default) counts every interaction as positive.
        duplicates
            Policy for repeated (user, item) pairs; see :meth:`from_indices`.
        user_features, item_features, user_feature_columns, item_feature_columns
            Side features and the names of their columns (module docstring).
        """
        users = np.asarray(users)
        items = np.asarray(items)
        r = None if ratings is None else np.asarray(ratings, dtype=np.float64)
        t = None if timestamps is None else np.asarray(timestamps)
        if t is not None and t.dtype.kind not in "iu":
            raise DataError(f"timestamps must be integers, got dtype {t.dtype}")
        if r is not None and len(r) and not np.isfinite(r).all():
            j = int(np.flatnonzero(~np.isfinite(r))[0])
            raise DataError(f"rating of interaction {j} is not a finite number ({r[j]})")
        if min_rating is not None:
            if r is None:
                raise DataError("min_rating needs ratings")
            keep = r >= min_rating
            users, items, r = users[keep], items[keep], r[keep]
            t = None if t is None else t[keep]
        if user_map is None:
            user_map, u_idx = IdMap.encode(users)
        else:
            u_idx = cls._map(user_map, users, "user")
        if item_map is None:
            item_map, i_idx = IdMap.encode(items)
        else:
            i_idx = cls._map(item_map, items, "item")
        return cls.from_indices(
            u_idx, i_idx, user_map, item_map, ratings=r, timestamps=t, duplicates=duplicates,
            user_features=user_features, item_features=item_features,
            user_feature_columns=user_feature_columns, item_feature_columns=item_feature_columns,
        )

    @staticmethod
    def _map(idmap: IdMap, raws: np.ndarray, what: str) -> np.ndarray:
        idx = idmap.lookup(raws)
        if len(idx) and idx.min() < 0:
            j = int(np.flatnonzero(idx < 0)[0])
            raise DataError(f"unknown {what} id {_show(raws[j])} (not in the {what} map)")
        return idx

    @classmethod
    def from_polars(
        cls,
        df: pl.DataFrame,
        *,
        user: str = "user",
        item: str = "item",
        rating: str | None = None,
        timestamp: str | None = None,
        **kwargs: Any,
    ) -> Interactions:
        """Build from a polars DataFrame; column names are given by ``user``, ``item``, ... ."""
        cols = [c for c in (user, item, rating, timestamp) if c is not None]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise DataError(f"data frame has no column {missing[0]!r} (columns: {', '.join(df.columns)})")
        return cls.from_arrays(
            df[user].to_numpy(), df[item].to_numpy(),
            None if rating is None else df[rating].to_numpy(),
            None if timestamp is None else df[timestamp].to_numpy(),
            **kwargs,
        )

    @classmethod
    def from_pandas(
        cls,
        df: pd.DataFrame,
        *,
        user: str = "user",
        item: str = "item",
        rating: str | None = None,
        timestamp: str | None = None,
        **kwargs: Any,
    ) -> Interactions:
        """Build from a pandas DataFrame; column names are given by ``user``, ``item``, ... ."""
        cols = [c for c in (user, item, rating, timestamp) if c is not None]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise DataError(f"data frame has no column {missing[0]!r} (columns: {', '.join(map(str, df.columns))})")

        def col(name: str) -> np.ndarray:
            values = df[name].to_numpy()
            return values.astype(object) if values.dtype.kind == "O" else values

        return cls.from_arrays(
            col(user), col(item),
            None if rating is None else df[rating].to_numpy(dtype=np.float64),
            None if timestamp is None else df[timestamp].to_numpy(),
            **kwargs,
        )

    # ------------------------------------------------------------------ shape and views
    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def __len__(self) -> int:
        return self.nnz

    def __repr__(self) -> str:
        extras = [n for n in ("ratings", "timestamps") if getattr(self, n) is not None]
        feats = list(self.user_features) + list(self.item_features)
        return (
            f"Interactions({self.n_users} users x {self.n_items} items, {self.nnz} interactions"
            + (f", with {', '.join(extras)}" if extras else "")
            + (f", features {feats}" if feats else "")
            + ")"
        )

    def csr(self) -> sp.csr_matrix:
        """The 0/1 matrix as ``scipy.sparse.csr_matrix`` (float32). Cached and shared: do not modify."""
        if self._csr is None:
            data = np.ones(self.nnz, dtype=np.float32)
            self._csr = sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)
            self._csr.has_sorted_indices = True
        return self._csr

    def rating_csr(self) -> sp.csr_matrix:
        """The ratings as a CSR matrix (float32); raises if there are no ratings."""
        if self.ratings is None:
            raise DataError("these interactions carry no ratings")
        return sp.csr_matrix((self.ratings.copy(), self.indices, self.indptr), shape=self.shape)

    def user_index(self) -> np.ndarray:
        """User index of every entry, aligned with ``indices`` (int64)."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.indptr))

    def row(self, user: int) -> np.ndarray:
        """Item indices of one user (sorted)."""
        return self.indices[self.indptr[user] : self.indptr[user + 1]]

    def user_counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.n_items)

    # ------------------------------------------------------------------ derived sets
    def subset(self, mask: np.ndarray) -> Interactions:
        """Keep the entries where ``mask`` (aligned with ``indices``) is true; maps and features are kept."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.nnz,):
            raise DataError(f"mask has shape {mask.shape}, expected ({self.nnz},)")
        # Kept entries before each row start; np.add.reduceat failed when the last rows were empty.
        kept_before = np.zeros(self.nnz + 1, dtype=np.int64)
        np.cumsum(mask, out=kept_before[1:])
        indptr = kept_before[self.indptr]  # (n_users + 1,)
        return Interactions(
            indptr, self.indices[mask], self.user_map, self.item_map,
            ratings=None if self.ratings is None else self.ratings[mask],
            timestamps=None if self.timestamps is None else self.timestamps[mask],
            user_features=self.user_features, item_features=self.item_features,
            user_feature_columns=self.user_feature_columns, item_feature_columns=self.item_feature_columns,
        )

    def filter(
        self, *, min_user_interactions: int = 0, min_item_interactions: int = 0, max_rounds: int = 100
    ) -> Interactions:
        """k-core filter: repeatedly drop users and items with too few interactions, then re-index.

        Users and items left without interactions disappear from the maps (and their features rows too;
        a square sparse feature, links among the same items or users, loses their columns as well).
        """
        if min_user_interactions < 0 or min_item_interactions < 0:
            raise DataError("k-core thresholds must be >= 0")
        keep = np.ones(self.nnz, dtype=bool)
        users = self.user_index()
        for _ in range(max_rounds):
            ucount = np.bincount(users[keep], minlength=self.n_users)
            icount = np.bincount(self.indices[keep], minlength=self.n_items)
            new_keep = keep & (ucount[users] >= min_user_interactions) & (icount[self.indices] >= min_item_interactions)
            if (new_keep == keep).all():
                break
            keep = new_keep
        if not keep.any():
            raise DataError(
                f"no interaction is left after the k-core filter (min_user_interactions={min_user_interactions}, "
                f"min_item_interactions={min_item_interactions})"
            )
        used_u = np.unique(users[keep])
        used_i = np.unique(self.indices[keep])
        if len(used_u) == self.n_users and len(used_i) == self.n_items and keep.all():
            return self
        u_new = np.full(self.n_users, -1, dtype=np.int64)
        u_new[used_u] = np.arange(len(used_u))
        i_new = np.full(self.n_items, -1, dtype=np.int64)
        i_new[used_i] = np.arange(len(used_i))
        return Interactions.from_indices(
            u_new[users[keep]], i_new[self.indices[keep]],
            IdMap(self.user_map.ids[used_u]), IdMap(self.item_map.ids[used_i]),
            ratings=None if self.ratings is None else self.ratings[keep],
            timestamps=None if self.timestamps is None else self.timestamps[keep],
            user_features={k: _take_rows(v, used_u) for k, v in self.user_features.items()},
            item_features={k: _take_rows(v, used_i) for k, v in self.item_features.items()},
            user_feature_columns=_take_columns(self.user_feature_columns, self.user_features, used_u),
            item_feature_columns=_take_columns(self.item_feature_columns, self.item_features, used_i),
        )

    def add_items(self, ids: Any, item_features: Mapping[str, Any] | None = None) -> Interactions:
        """The same interactions over an item map extended by new items (e.g. at serve time).

        The new ids are APPENDED to the item map, so every existing item index keeps its meaning (a model's
        item tables stay valid and only need rows for the new items). Every item feature needs the new
        items' rows in ``item_features`` (same name, one row per new id, same width). A square sparse
        feature (links among items) gets the new rows with ``n_old + n_new`` columns, and its old rows gain
        zero columns for the new items.

        Raises
        ------
        DataError
            An id already in the map (or of the other kind, int vs str), a missing, unknown or
            wrongly-shaped feature.
        """
        added = IdMap(np.asarray(ids).reshape(-1))  # checks the ids: all int or all str, unique, no floats
        if added.kind != self.item_map.kind:
            raise DataError(f"the new item ids are {added.kind} ids; the item map holds {self.item_map.kind} ids")
        item_map = IdMap(np.concatenate([self.item_map.ids, added.ids]))
        new_ids = added.ids
        given = dict(item_features or {})
        extra = sorted(set(given) - set(self.item_features))
        if extra:
            raise DataError(f"item feature {extra[0]!r} is unknown; the item features are: {sorted(self.item_features)}")
        n_old, n_new = self.n_items, len(new_ids)
        feats: dict[str, Any] = {}
        for name, old in self.item_features.items():
            if name not in given:
                raise DataError(f"item feature {name!r} has no rows for the new items; pass item_features={{{name!r}: ...}}")
            rows = given[name]
            square = sp.issparse(old) and old.shape[0] == old.shape[1]
            width = n_old + n_new if square else (old.shape[1] if old.ndim > 1 else None)
            shape = rows.shape if hasattr(rows, "shape") else np.shape(rows)
            if shape[0] != n_new or (width is not None and (len(shape) < 2 or shape[1] != width)):
                raise DataError(f"item feature {name!r} for the new items has shape {shape}, expected ({n_new}, {width})")
            if sp.issparse(old):
                top = sp.hstack([old, sp.csr_matrix((n_old, n_new), dtype=old.dtype)]) if square else old
                feats[name] = sp.vstack([top, sp.csr_matrix(rows, dtype=old.dtype)], format="csr")
            else:
                feats[name] = np.concatenate([old, np.asarray(rows, dtype=old.dtype)])
        cols = {k: np.concatenate([v, np.asarray([str(i) for i in new_ids.tolist()], dtype=str)])
                if _square(self.item_features[k]) else v for k, v in self.item_feature_columns.items()}
        return Interactions(
            self.indptr, self.indices, self.user_map, item_map, ratings=self.ratings, timestamps=self.timestamps,
            user_features=self.user_features, item_features=feats,
            user_feature_columns=self.user_feature_columns, item_feature_columns=cols,
        )

    def with_features(
        self,
        side: Literal["item", "user"],
        features: Mapping[str, Any],
        columns: Mapping[str, Any] | None = None,
    ) -> Interactions:
        """The same interactions with more features on one side (and their column names, where known).

        Each new feature has one row per id of that side's map, in map order (read it aligned with the map,
        e.g. :func:`gan4rec.data.io.read_feature_table`). A name already present is a :class:`DataError`:
        nothing is replaced silently.
        """
        if side not in ("item", "user"):
            raise DataError(f"side={side!r}; expected 'item' or 'user'")
        old = self.item_features if side == "item" else self.user_features
        old_cols = self.item_feature_columns if side == "item" else self.user_feature_columns
        clash = sorted(set(old) & set(features))
        if clash:
            raise DataError(f"{side} feature {clash[0]!r} is already in the data; give the new one another name")
        feats = {**old, **features}
        cols = {**old_cols, **(columns or {})}
        kw: dict[str, Any] = {
            "user_features": self.user_features, "item_features": self.item_features,
            "user_feature_columns": self.user_feature_columns, "item_feature_columns": self.item_feature_columns,
        }
        kw[f"{side}_features"], kw[f"{side}_feature_columns"] = feats, cols
        return Interactions(self.indptr, self.indices, self.user_map, self.item_map, ratings=self.ratings,
                            timestamps=self.timestamps, **kw)

    def same_space(self, other: Interactions) -> bool:
        """Whether ``other`` indexes the same users and items (the maps are equal)."""
        return (self.user_map is other.user_map or self.user_map == other.user_map) and (
            self.item_map is other.item_map or self.item_map == other.item_map
        )

    def to_raw(self) -> dict[str, np.ndarray]:
        """Entries as raw-id columns: ``user``, ``item`` and, when present, ``rating`` and ``timestamp``."""
        out = {"user": self.user_map.to_raw(self.user_index()), "item": self.item_map.to_raw(self.indices)}
        if self.ratings is not None:
            out["rating"] = np.asarray(self.ratings)
        if self.timestamps is not None:
            out["timestamp"] = np.asarray(self.timestamps)
        return out

    def feature_fingerprint(self) -> str:
        """sha256 of the user and item features (names, kinds, dtypes, shapes and values)."""
        h = hashlib.sha256()
        for side, feats in (("user", self.user_features), ("item", self.item_features)):
            for name in sorted(feats):
                value = feats[name]
                h.update(f"\x1e{side}:{name}:{'csr' if sp.issparse(value) else 'dense'}".encode())
                if isinstance(value, sp.csr_matrix):
                    h.update(f"{value.shape}".encode())
                    for a in (value.indptr.astype("<i8"), value.indices.astype("<i8"), value.data):
                        _array_digest(h, np.asarray(a))
                else:
                    _array_digest(h, np.asarray(value))
        return h.hexdigest()

    def fingerprint(self, *, features: bool = False) -> str:
        """sha256 of the entries and the id maps: equal data in the same index space, equal fingerprint.

        Side features are left out (so adding a feature file changes no split or result fingerprint) unless
        ``features=True``, which also hashes :meth:`feature_fingerprint`.
        """
        if features:
            return hashlib.sha256(f"{self.fingerprint()}:{self.feature_fingerprint()}".encode()).hexdigest()
        h = hashlib.sha256()
        h.update(f"{self.n_users}x{self.n_items}:{self.nnz}".encode())
        h.update(np.ascontiguousarray(self.indptr, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self.indices, dtype="<i4").tobytes())
        for m in (self.user_map, self.item_map):
            h.update(m.kind.encode())
            if m.kind == "int":
                h.update(np.ascontiguousarray(m.ids, dtype="<i8").tobytes())
            else:
                h.update("\x1f".join(m.ids.tolist()).encode("utf-8", "surrogatepass"))
        return h.hexdigest()
