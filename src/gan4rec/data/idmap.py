"""Raw id <-> contiguous index.

Models speak indices ``0 .. n-1``; raw ids (MovieLens movie ids, UUID strings, ...) exist only at the
edges: readers, serving, reports. An :class:`IdMap` keeps raw ids exactly as given: integer ids stay
``int64`` and string ids stay ``str``. Nothing ever passes through float, so ``"007"`` stays ``"007"`` and
``2**60 + 1`` stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from gan4rec.errors import DataError

__all__ = ["IdMap"]


def _as_id_array(values: Any) -> np.ndarray:
    """Coerce raw ids to an ``int64`` or ``str`` (object) array, refusing floats and bools."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"ids must be one-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "iu":
        if kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise DataError("integer ids must fit in int64")
        return arr.astype(np.int64, copy=False)
    if kind in "US":
        return arr.astype(str).astype(object)
    if kind == "O":
        if all(isinstance(v, str) for v in arr):
            return arr
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
            return arr.astype(np.int64)
        raise DataError("ids must be all integers or all strings, not a mix (floats are never accepted)")
    if arr.size == 0:
        return arr.astype(np.int64)
    raise DataError(f"ids must be integers or strings, got dtype {arr.dtype} (floats are never accepted)")


class IdMap:
    """A bijection between raw ids and indices ``0 .. len-1``.

    Parameters
    ----------
    ids
        The raw ids, index ``i`` being ``ids[i]``. All integers (kept as ``int64``) or all strings.
        Must be unique.

    Examples
    --------
    >>> m, codes = IdMap.encode(["b", "a", "b"])
    >>> m.ids.tolist(), codes.tolist()
    (['a', 'b'], [1, 0, 1])
    >>> m.index(["a"]).tolist()
    [0]
    """

    __slots__ = ("_ids", "_lookup", "_order")

    def __init__(self, ids: Sequence[Any] | np.ndarray) -> None:
        arr = _as_id_array(ids)
        arr.flags.writeable = False
        self._ids = arr
        self._lookup: dict[Any, int] = {v: i for i, v in enumerate(arr.tolist())}
        if len(self._lookup) != len(arr):
            raise DataError("ids must be unique")
        # For vectorised lookup of integer ids: positions of the ids in sorted order.
        self._order = np.argsort(arr, kind="stable") if self.kind == "int" else None

    @classmethod
    def encode(cls, values: Sequence[Any] | np.ndarray) -> tuple[IdMap, np.ndarray]:
        """Build a map over the distinct values (sorted) and return it with each value's index."""
        arr = _as_id_array(values)
        uniq, codes = np.unique(arr, return_inverse=True)
        return cls(uniq), codes.astype(np.int64).reshape(-1)

    @property
    def ids(self) -> np.ndarray:
        """Raw ids in index order (read-only)."""
        return self._ids

    @property
    def kind(self) -> str:
        """``"int"`` or ``"str"``."""
        return "int" if self._ids.dtype.kind == "i" else "str"

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, raw: Any) -> bool:
        return self._key(raw) in self._lookup

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self.kind == other.kind and np.array_equal(self._ids, other._ids)

    def __hash__(self) -> int:
        return hash((self.kind, len(self)))

    def __repr__(self) -> str:
        head = ", ".join(repr(v) for v in self._ids[:3].tolist())
        return f"IdMap({len(self)} {self.kind} ids: {head}{', ...' if len(self) > 3 else ''})"

    def _key(self, raw: Any) -> Any:
        if self.kind == "int":
            if isinstance(raw, (bool, np.bool_, float, np.floating)):
                return None
            if isinstance(raw, str):
                try:
                    return int(raw)
                except ValueError:
                    return None
            return int(raw) if isinstance(raw, (int, np.integer)) else None
        return raw if isinstance(raw, str) else str(raw)

    def get(self, raw: Any, default: int = -1) -> int:
        """Index of ``raw``, or ``default`` if unknown. String forms of integer ids are accepted."""
        return self._lookup.get(self._key(raw), default)

    def index(self, raws: Iterable[Any], *, what: str = "id") -> np.ndarray:
        """Indices of ``raws``; raises :class:`DataError` naming the first unknown one."""
        out = []
        for raw in raws:
            i = self._lookup.get(self._key(raw), -1)
            if i < 0:
                raise DataError(f"unknown {what} {raw.item() if isinstance(raw, np.generic) else raw!r}")
            out.append(i)
        return np.asarray(out, dtype=np.int64)

    def lookup(self, raws: Iterable[Any] | np.ndarray) -> np.ndarray:
        """Indices of ``raws``, ``-1`` for unknown ones (vectorised for integer arrays)."""
        if isinstance(raws, np.ndarray) and raws.dtype.kind in "iu" and self._order is not None:
            out = np.full(raws.shape, -1, dtype=np.int64)
            if len(self) == 0:
                return out
            sorted_ids = self._ids[self._order]
            pos = np.searchsorted(sorted_ids, raws)
            pos_c = np.minimum(pos, len(self) - 1)
            hit = sorted_ids[pos_c] == raws
            out[hit] = self._order[pos_c[hit]]
            return out
        return np.asarray([self.get(r) for r in raws], dtype=np.int64)

    def to_raw(self, idx: np.ndarray | Sequence[int]) -> np.ndarray:
        """Raw ids at the given indices."""
        return self._ids[np.asarray(idx, dtype=np.int64)]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description: ``{"kind": "int"|"str", "ids": [...]}``."""
        return {"kind": self.kind, "ids": self._ids.tolist()}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> IdMap:
        kind, ids = obj.get("kind"), obj.get("ids")
        if kind not in ("int", "str") or not isinstance(ids, list):
            raise DataError("id map JSON needs 'kind' ('int' or 'str') and a list 'ids'")
        if kind == "int":
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in ids):
                raise DataError("id map of kind 'int' holds a non-integer id")
            return cls(np.asarray(ids, dtype=np.int64))
        if not all(isinstance(v, str) for v in ids):
            raise DataError("id map of kind 'str' holds a non-string id")
        return cls(np.asarray(ids, dtype=object))
