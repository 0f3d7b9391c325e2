"""Side information as model input: one sparse matrix of content, and the way knowledge enters it.

A content or hybrid model never reads the feature files: it asks the training data for its features,

::

    >>> X = feature_matrix(train, "item", ["text", "tags"], l2_normalize=True)  # doctest: +SKIP
    >>> X.shape                                   # (n_items, n_text_words + n_tags)  # doctest: +SKIP

which works for cold items too, because a cold-start split keeps every item in the item map and their
feature rows in ``train.item_features`` (only their interactions are held out).

Knowledge (item-to-item links such as citations, or one relation of a knowledge graph read by
:func:`gan4rec.data.io.read_relations`) enters in ONE way in gan4rec: :func:`propagate`, which adds to each
item's content the weighted mean content of the items it links to. A model that wants knowledge takes the
propagated matrix as its content; the links themselves are item features too (CiteULike-t's ``"cites"``),
so they survive splits and filters with the items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError

__all__ = ["column_labels", "feature_column_names", "feature_matrix", "propagate"]

_SIDES = ("item", "user")


def _as_csr(name: str, value: object, n_rows: int) -> sp.csr_matrix:
    """One feature as float32 CSR with ``n_rows`` rows: sparse as is, dense 1-D as one column, 2-D as is."""
    if sp.issparse(value):
        return sp.csr_matrix(value, dtype=np.float32)
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"feature {name!r} has dtype {arr.dtype} (not numeric); expected numbers, a 0/1 array or a sparse matrix"
        )
    if arr.ndim == 1:
        arr = arr.reshape(n_rows, 1)
    elif arr.ndim != 2:
        raise DataError(f"feature {name!r} has {arr.ndim} dimensions; expected 1 or 2")
    return sp.csr_matrix(arr.astype(np.float32))


def feature_matrix(
    inter: Interactions,
    side: str = "item",
    names: Sequence[str] | str | None = None,
    *,
    l2_normalize: bool = False,
) -> sp.csr_matrix:
    """The named features of one side, side by side in one float32 CSR matrix aligned with the id map.

    Parameters
    ----------
    inter
        Interactions carrying the features (for a split, its ``train``: every item is there, cold or not).
    side
        ``"item"`` (rows = items) or ``"user"`` (rows = users).
    names
        Feature names, in the order their columns are stacked; ``None`` means all of them, sorted by name.
        Dense features become sparse (a 1-D array is one column); text features (strings) are refused.
    l2_normalize
        Scale each row of the result to unit Euclidean length (rows of zeros stay zero), as cosine
        similarity and most content encoders want.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_items or n_users, total columns)``, float32, a new matrix the caller may modify.

    Raises
    ------
    DataError
        An unknown side or name, no features at all, or a non-numeric feature.
    """
    if side not in _SIDES:
        raise DataError(f"side={side!r}; expected 'item' or 'user'")
    feats = inter.item_features if side == "item" else inter.user_features
    n_rows = inter.n_items if side == "item" else inter.n_users
    wanted = sorted(feats) if names is None else [names] if isinstance(names, str) else list(names)
    if not wanted:
        raise DataError(f"these interactions carry no {side} features; expected at least one")
    for name in wanted:
        if name not in feats:
            known = ", ".join(sorted(feats)) or "none"
            raise DataError(f"{side} feature {name!r} is unknown; the {side} features are: {known}")
    out = sp.hstack([_as_csr(name, feats[name], n_rows) for name in wanted], format="csr", dtype=np.float32)
    out = sp.csr_matrix(out)
    if l2_normalize:
        norms = np.sqrt(np.asarray(out.multiply(out).sum(axis=1), dtype=np.float64).reshape(-1))  # (n_rows,)
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        out = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ out)
    return out


def column_labels(name: str, n_columns: int, columns: np.ndarray | None, *, one_d: bool = False) -> list[str]:
    """Labels of one feature's columns: ``"name=column"`` (``"name=j"`` for a column without a name).

    A 1-D feature (one column, no name) is labelled ``name`` alone.
    """
    if columns is not None and len(columns) == n_columns:
        return [f"{name}={c}" for c in np.asarray(columns).tolist()]
    if one_d and n_columns == 1:
        return [name]
    return [f"{name}={j}" for j in range(n_columns)]


def feature_column_names(
    inter: Interactions, side: str = "item", names: Sequence[str] | str | None = None
) -> list[str]:
    """One label per column of :func:`feature_matrix` (same ``side`` and ``names``), e.g. ``"genres=Action"``.

    Columns named in ``inter.item_feature_columns`` (or ``user_feature_columns``) get ``"feature=column"``,
    the others ``"feature=j"`` (their index within the feature), a 1-D feature just its name.
    """
    if side not in _SIDES:
        raise DataError(f"side={side!r}; expected 'item' or 'user'")
    feats = inter.item_features if side == "item" else inter.user_features
    cols = inter.item_feature_columns if side == "item" else inter.user_feature_columns
    wanted = sorted(feats) if names is None else [names] if isinstance(names, str) else list(names)
    out: list[str] = []
    for name in wanted:
        if name not in feats:
            known = ", ".join(sorted(feats)) or "none"
            raise DataError(f"{side} feature {name!r} is unknown; the {side} features are: {known}")
        shape = feats[name].shape
        width = 1 if len(shape) == 1 else int(shape[1])
        out.extend(column_labels(name, width, cols.get(name), one_d=len(shape) == 1))
    return out


def propagate(features: sp.spmatrix, links: sp.spmatrix, weight: float = 0.5) -> sp.csr_matrix:
    """Item content plus the weighted mean content of the items it links to: how knowledge enters.

    ``out[i] = features[i] + weight * mean(features[j] for j linked from i)``, i.e.
    ``X + weight * D^-1 A X`` with ``A`` the 0/1 link matrix without its diagonal (a self-link would count
    an item's own content twice) and ``D`` its row sums. An item without links keeps its content; link
    values are ignored (a link is there or not). For CiteULike-t's citations, which are symmetric, "links
    to" is "cites or is cited by". One hop only: apply it again for two.

    Parameters
    ----------
    features
        ``(n_items, n_features)`` content, e.g. :func:`feature_matrix` of the text.
    links
        ``(n_items, n_items)`` links, row ``i`` the items that item ``i`` links to (e.g. the item
        feature ``"cites"``, or one relation of :func:`gan4rec.data.io.read_relations`).
    weight
        How much the neighbours count, ``>= 0``; ``0`` returns the content unchanged.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_items, n_features)`` float32.
    """
    if isinstance(weight, bool) or not np.isfinite(weight) or weight < 0:
        raise DataError(f"weight={weight!r}; expected a finite number >= 0")
    X = sp.csr_matrix(features, dtype=np.float32)  # (n_items, n_features)
    A = sp.csr_matrix(links, dtype=np.float32, copy=True)  # (n_items, n_items)
    if A.shape != (X.shape[0], X.shape[0]):
        raise DataError(f"links have shape {A.shape}; expected ({X.shape[0]}, {X.shape[0]}) for {X.shape[0]} items")
    A.setdiag(0)
    A.eliminate_zeros()
    A.data[:] = 1.0
    degree = np.asarray(A.sum(axis=1), dtype=np.float64).reshape(-1)  # (n_items,)
    inv = np.divide(weight, degree, out=np.zeros_like(degree), where=degree > 0)
    return sp.csr_matrix(X + sp.diags(inv.astype(np.float32)) @ (A @ X), dtype=np.float32)
