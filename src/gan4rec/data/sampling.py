"""Vectorised negative sampling over a CSR of positives (BPR, IRGAN, CFGAN).

Two samplers, both driven only by an explicit ``np.random.Generator`` or ``torch.Generator``:

- :class:`NegativeSampler`: for each user of a batch (typically the user of a (user, positive) pair),
  items drawn uniformly from the items the user has *not* interacted with. It is exact and needs no
  rejection rounds: drawing ``r`` uniformly in ``[0, n_items - n_pos(u))`` and returning the ``r``-th
  unobserved item is a uniform draw over the unobserved items, and the ``r``-th unobserved item is
  ``r + #{t : p_t - t <= r}`` for the user's sorted positives ``p_0 < p_1 < ...`` (each positive at or
  before the answer shifts it by one). ``p_t - t`` is non-decreasing within a row, so with the row offset
  ``u * n_items`` added, one global ``searchsorted`` answers a whole batch.

  ::

      positives of u: [1, 2, 5]  (n_items = 7, unobserved: 0 3 4 6)
      p_t - t:        [1, 1, 3]
      r = 0 -> 0 + #{<= 0} = 0      r = 1 -> 1 + #{<= 1} = 3
      r = 2 -> 2 + #{<= 2} = 4      r = 3 -> 3 + #{<= 3} = 6

- :func:`sample_unobserved` / :func:`sample_unobserved_dense`: for each row of a batch, a set of
  ``floor(ratio * n_unobserved)`` distinct unobserved columns (CFGAN's zero-reconstruction and
  partial-masking schemes). Each row gets one uniform random key per item, observed items get ``+inf``, and
  the row's ``k`` smallest keys win: a uniform ``k``-subset, drawn for the whole batch at once.
  :func:`sample_unobserved_dense_select` returns exactly what :func:`sample_unobserved_dense` returns for
  the same generator state, finding each row's ``k`` smallest keys by selection (:func:`smallest_k_mask`,
  ``O(n_items)`` a row) instead of a full sort (about 10x faster on CPU for CiteULike-t's 7,947 users).
"""

from __future__ import annotations

import numpy as np
import torch

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError

__all__ = [
    "NegativeSampler", "sample_unobserved", "sample_unobserved_dense", "sample_unobserved_dense_select",
    "smallest_k_mask",
]

Rng = np.random.Generator | torch.Generator


class NegativeSampler:
    """Uniform sampling of each user's unobserved items.

    Parameters
    ----------
    indptr, indices
        CSR of the positives (rows = users); column indices sorted within each row, no duplicates (as in
        :class:`~gan4rec.data.interactions.Interactions`).
    n_items
        Number of columns.

    Examples
    --------
    >>> sampler = NegativeSampler(np.array([0, 3]), np.array([1, 2, 5]), n_items=7)
    >>> neg = sampler.sample(np.zeros(1000, dtype=np.int64), np.random.default_rng(0))
    >>> sorted(set(neg.tolist()))
    [0, 3, 4, 6]
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, n_items: int) -> None:
        indptr = np.asarray(indptr, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        if indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(indices):
            raise DataError("indptr is not a CSR row pointer matching indices (starts at 0, ends at nnz)")
        counts = np.diff(indptr)
        if (counts < 0).any():
            raise DataError("indptr must be non-decreasing")
        if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
            raise DataError(f"indices hold an item outside 0..{n_items - 1}")
        rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)  # (nnz,)
        rank = np.arange(len(indices), dtype=np.int64) - indptr[rows]  # position within the row
        shifted = indices - rank  # p_t - t, in [0, n_items - n_pos]
        keys = rows * n_items + shifted  # (nnz,)
        if len(keys) > 1 and (np.diff(keys) < 0).any():
            raise DataError("indices must be sorted and distinct within each row")
        self.n_users = len(counts)
        self.n_items = int(n_items)
        self.n_pos = counts  # (n_users,)
        self.indptr = indptr
        self._keys = keys
        self._pos_keys = rows * n_items + indices  # (nnz,) sorted: membership tests

    @classmethod
    def from_interactions(cls, inter: Interactions) -> NegativeSampler:
        """The sampler of ``inter``'s positives."""
        return cls(inter.indptr, inter.indices, inter.n_items)

    def n_unobserved(self, users: np.ndarray) -> np.ndarray:
        """Number of items each user has not interacted with."""
        return self.n_items - self.n_pos[users]

    def sample(self, users: np.ndarray, rng: Rng, n: int | None = None) -> np.ndarray:
        """Uniform unobserved items for each user in ``users``, drawn independently (with replacement).

        Parameters
        ----------
        users
            ``(m,)`` user indices (repeat a user to draw several).
        rng
            ``np.random.Generator`` or a CPU ``torch.Generator``.
        n
            ``None``: one item per user, shape ``(m,)``; else ``n`` per user, shape ``(m, n)``.

        Raises
        ------
        DataError
            When a user has interacted with every item (nothing to sample).
        """
        users = np.asarray(users, dtype=np.int64)
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise DataError(f"users hold an index outside 0..{self.n_users - 1}")
        shape = users.shape if n is None else (*users.shape, int(n))
        flat = users.reshape(-1) if n is None else np.repeat(users.reshape(-1), int(n))
        free = self.n_items - self.n_pos[flat]  # (m,)
        if free.size and free.min() <= 0:
            bad = int(flat[np.argmin(free)])
            raise DataError(f"user {bad} has interacted with all {self.n_items} items; no negative to sample")
        r = _uniform_below(free, rng)  # (m,) r-th unobserved item of the user
        base = flat * self.n_items
        below = np.searchsorted(self._keys, base + r, side="right") - self.indptr[flat]
        return (r + below).reshape(shape)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array: whether each ``(users[j], items[j])`` is a positive."""
        keys = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items, dtype=np.int64)
        if len(self._pos_keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self._pos_keys, keys), len(self._pos_keys) - 1)
        return self._pos_keys[pos] == keys


def _uniform_below(highs: np.ndarray, rng: Rng) -> np.ndarray:
    """One uniform integer in ``[0, highs[j])`` per entry."""
    if isinstance(rng, np.random.Generator):
        return rng.integers(0, highs, dtype=np.int64) if highs.size else np.zeros(0, dtype=np.int64)
    if isinstance(rng, torch.Generator):
        if rng.device.type != "cpu":
            raise DataError(f"NegativeSampler needs a CPU torch.Generator, got one on {rng.device}")
        u = torch.rand(highs.shape, generator=rng, dtype=torch.float64).numpy()
        # float64 uniforms: the bias of flooring is ~ highs / 2**53, far below anything measurable.
        return np.minimum((u * highs).astype(np.int64), highs - 1)
    raise DataError(f"rng must be a numpy Generator or a torch.Generator, got {type(rng).__name__}")


def _check_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.floating)) or not 0.0 <= ratio <= 1.0:
        raise DataError(f"ratio={ratio!r}; expected a fraction in [0, 1]")
    return float(ratio)


def sample_unobserved(
    indptr: np.ndarray,
    indices: np.ndarray,
    rows: np.ndarray,
    n_items: int,
    ratio: float,
    rng: np.random.Generator,
    *,
    chunk_cells: int = 1 << 24,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row in ``rows``, ``floor(ratio * n_unobserved)`` distinct unobserved columns, uniformly.

    Parameters
    ----------
    indptr, indices
        CSR of the observed entries.
    rows
        ``(b,)`` row indices of the batch.
    n_items
        Number of columns.
    ratio
        Fraction in ``[0, 1]`` of each row's unobserved columns to draw.
    rng
        The generator.
    chunk_cells
        Bound on ``rows_per_chunk * n_items`` (memory of the random keys).

    Returns
    -------
    batch_pos, items
        COO pairs: ``items[j]`` is drawn for row ``rows[batch_pos[j]]``; grouped by ``batch_pos``
        ascending, items ascending within a row.
    """
    ratio = _check_ratio(ratio)
    if not isinstance(rng, np.random.Generator):
        raise DataError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    rows = np.asarray(rows, dtype=np.int64)
    indptr = np.asarray(indptr, dtype=np.int64)
    n_rows = len(indptr) - 1
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise DataError(f"rows hold an index outside 0..{n_rows - 1}")
    counts = np.floor(ratio * (n_items - (indptr[rows + 1] - indptr[rows]))).astype(np.int64)  # (b,)
    step = max(1, int(chunk_cells) // max(n_items, 1))
    out_b, out_i = [], []
    for start in range(0, len(rows), step):
        sub = rows[start : start + step]
        keys = rng.random((len(sub), n_items))  # (chunk, n_items)
        r, c = _csr_cells(indptr, indices, sub)
        keys[r, c] = np.inf  # observed never win
        k = counts[start : start + step]  # (chunk,)
        order = np.argsort(keys, axis=1, kind="stable")  # (chunk, n_items)
        take = np.arange(n_items)[None, :] < k[:, None]  # (chunk, n_items) first k of each row
        bpos, j = np.nonzero(take)
        items = order[bpos, j]
        # Sort items within each row so that the output does not leak the random order.
        perm = np.lexsort((items, bpos))
        out_b.append(bpos[perm] + start)
        out_i.append(items[perm])
    if not out_b:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_b).astype(np.int64), np.concatenate(out_i).astype(np.int64)


def _csr_cells(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch position, column) of every stored entry of the CSR rows ``rows``."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts  # (b,)
    pos = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)  # (total,)
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return pos, np.asarray(indices, dtype=np.int64)[np.repeat(starts, lengths) + within]


def _unobserved_keys(
    observed: torch.Tensor, ratio: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keys (b, n_items), counts (b,))``: one uniform key per entry (observed ones 2.0, after every
    unobserved) and each row's number to draw, ``floor(ratio * n_unobserved)``; one ``(b, n_items)`` draw."""
    ratio = _check_ratio(ratio)
    if observed.ndim != 2:
        raise DataError(f"observed must be 2-D (batch, n_items), got shape {tuple(observed.shape)}")
    obs = observed.bool()
    b, n_items = obs.shape
    counts = torch.floor(ratio * (~obs).sum(dim=1).to(torch.float64)).to(torch.int64)  # (b,)
    keys = torch.rand((b, n_items), generator=generator, device=obs.device)  # (b, n_items)
    return keys.masked_fill(obs, 2.0), counts


def sample_unobserved_dense(observed: torch.Tensor, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Dense version of :func:`sample_unobserved` for batches already on a device.

    Parameters
    ----------
    observed
        ``(b, n_items)`` boolean (or 0/1) mask of the observed entries.
    ratio
        Fraction in ``[0, 1]`` of each row's unobserved entries to draw.
    generator
        A ``torch.Generator`` on ``observed``'s device.

    Returns
    -------
    torch.Tensor
        ``(b, n_items)`` boolean mask with exactly ``floor(ratio * n_unobserved)`` True entries per row, all
        unobserved, each ``k``-subset equally likely.
    """
    keys, counts = _unobserved_keys(observed, ratio, generator)
    n_items = keys.shape[1]
    order = keys.argsort(dim=1, stable=True)  # (b, n_items)
    take = torch.arange(n_items, device=keys.device)[None, :] < counts[:, None]  # (b, n_items)
    mask = torch.zeros_like(keys, dtype=torch.bool)
    mask.scatter_(1, order, take)
    return mask


def smallest_k_mask(keys: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``(b, n)`` mask of each row's ``counts[r]`` smallest keys, ties going to the lower column.

    The same set as the first ``counts[r]`` entries of ``keys.argsort(dim=1, stable=True)``, found by
    selecting each row's ``counts[r]``-th smallest key ``v_r`` (``np.partition`` of each row on CPU, a
    sort elsewhere) and taking every key below
    ``v_r`` and, of the keys equal to ``v_r``, the leftmost ones still needed.

    Parameters
    ----------
    keys
        ``(b, n)`` float keys without NaN.
    counts
        ``(b,)`` int64 in ``[0, n]``.

    Returns
    -------
    torch.Tensor
        ``(b, n)`` boolean mask with ``counts[r]`` True entries in row ``r``.
    """
    b, n = keys.shape
    if b == 0 or n == 0:
        return torch.zeros((b, n), dtype=torch.bool, device=keys.device)
    live = counts > 0  # (b,)
    kth = torch.full((b,), -torch.inf, dtype=keys.dtype, device=keys.device)  # (b,) v_r, -inf: take none
    if bool(live.any()):
        rank = (counts.clamp(min=1) - 1)  # (b,) 0-based rank of v_r
        if keys.device.type == "cpu":
            rows = keys.numpy()
            v = torch.from_numpy(np.array([[np.partition(row, r)[r]] for row, r in zip(rows, rank.tolist())],
                                          dtype=rows.dtype))
        else:
            v = keys.sort(dim=1).values.gather(1, rank[:, None])
        kth = torch.where(live, v[:, 0].to(keys.dtype), kth)
    below = keys < kth[:, None]  # (b, n)
    tie = keys == kth[:, None]  # (b, n)
    need = counts - below.sum(dim=1)  # (b,) ties still to take, leftmost first
    return below | (tie & (tie.cumsum(dim=1) <= need[:, None]))


def sample_unobserved_dense_select(
    observed: torch.Tensor, ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """:func:`sample_unobserved_dense` by selection instead of a sort: the same mask for the same generator state.

    Parameters and return value as in :func:`sample_unobserved_dense`; the generator advances by the same
    one ``(b, n_items)`` uniform draw.
    """
    return smallest_k_mask(*_unobserved_keys(observed, ratio, generator))
