"""Batched full-ranking evaluation of any scoring function, and the deterministic top-K it relies on.

A model is evaluated through ``score_fn(users) -> scores``: ``users`` is an ``int64`` array of user indices
and ``scores`` a numpy array or torch tensor of shape ``(len(users), n_items)``, higher is better. The
evaluator never sees a model class, which keeps this package below the models in the import graph.

Users are scored ``batch_size`` at a time; only a ``(batch, n_items)`` block of scores ever exists.

Notes
-----
Evaluation protocol (the defaults; :data:`PROTOCOL` holds the same list and every :class:`EvalResult`
records it, with the options actually used):

- relevant: every test interaction of the user is relevant (binary relevance).
- cold_test_items: test items with no train interaction stay relevant and count as misses (option
  drop_cold_test=True removes them from the relevant set).
- ties: equal scores rank the lower item index first (stable); masked items never rank before real ones.
- candidates: full ranking over all items, excluding the user's train items (and the validation items at
  test time).
- recall: Recall@K = hits / |test items| (option recall='min': hits / min(K, |test items|)).
- ndcg: binary gains, DCG = sum of 1/log2(rank+1) over hit ranks, IDCG over min(K, |test items|) hits.
- average_precision: AP@K = sum of Precision@k over hit ranks k <= K, divided by min(K, |test items|); MAP
  is the mean AP.
- users: metrics average over the users with at least one test item.
- validation: 20% of each user's train interactions, seed 42.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gan4rec._progress import progress, step
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.evaluation.metrics import (
    ALL_METRICS,
    CATALOG_METRICS,
    RANKING_METRICS,
    RecallMode,
    catalog_metrics_from_counts,
    metric_name,
    ranking_metrics,
)

__all__ = ["PROTOCOL", "EvalResult", "ScoreFn", "evaluate", "topk"]

logger = logging.getLogger(__name__)

ScoreFn = Callable[[np.ndarray], "np.ndarray | torch.Tensor"]

#: The evaluation protocol's defaults, in one place; every :class:`EvalResult` records a copy.
PROTOCOL: dict[str, str] = {
    "relevant": "every test interaction of the user is relevant (binary relevance)",
    "cold_test_items": (
        "test items with no train interaction stay relevant and count as misses "
        "(option drop_cold_test=True removes them from the relevant set)"
    ),
    "ties": "equal scores rank the lower item index first (stable); masked items never rank before real ones",
    "candidates": (
        "full ranking over all items, excluding the user's train items (and the validation items at test time)"
    ),
    "recall": "Recall@K = hits / |test items| (option recall='min': hits / min(K, |test items|))",
    "ndcg": "binary gains, DCG = sum of 1/log2(rank+1) over hit ranks, IDCG over min(K, |test items|) hits",
    "average_precision": (
        "AP@K = sum of Precision@k over hit ranks k <= K, divided by min(K, |test items|); MAP is the mean AP"
    ),
    "users": "metrics average over the users with at least one test item",
    "validation": "20% of each user's train interactions, seed 42",
}


# ------------------------------------------------------------------------------------------------ topk
def topk(scores: torch.Tensor | np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best items of each row, with a deterministic tie rule.

    Equal scores rank the lower item index first. ``-inf`` marks a masked item: it never ranks before a
    real one, and where fewer than ``k`` items are left unmasked the tail is padded with index ``-1`` and
    value ``-inf``. ``+inf`` is an ordinary (very high) score.

    Parameters
    ----------
    scores
        ``(n_items,)`` or ``(batch, n_items)``; integer and boolean scores are ranked as float64.
    k
        Length of the lists, ``>= 0``; may exceed ``n_items`` (the rest is padding).

    Returns
    -------
    values, indices
        ``(batch, k)`` (or ``(k,)`` for 1-D input) on the input's device; indices are int64.

    Raises
    ------
    DataError
        On a NaN score, a bad shape or a bad ``k``.

    Notes
    -----
    ``torch.topk`` finds the right *values* but picks an arbitrary subset of items tied at the k-th value
    and leaves their order unspecified. Here it is asked for ``k + 1`` items: a row whose (k+1)-th value
    differs from its k-th has an exact top-k set; only rows where a tie straddles the cut are redone,
    taking every item above the k-th value plus the lowest-index items equal to it (a cumulative count).
    A stable descending sort of the chosen items, held in index order, then gives the ranking. Work is
    one ``torch.topk`` plus ``O(k log k)`` per row, and a linear pass only over rows with a straddling tie.

    Examples
    --------
    >>> values, items = topk(torch.tensor([0.0, 2.0, 0.0, float("-inf")]), 4)
    >>> items.tolist()
    [1, 0, 2, -1]
    """
    t = scores if isinstance(scores, torch.Tensor) else torch.as_tensor(np.asarray(scores))
    if t.ndim not in (1, 2):
        raise DataError(f"scores must be 1-D (n_items,) or 2-D (batch, n_items), got shape {tuple(t.shape)}")
    if t.is_complex():
        raise DataError(f"scores must be real numbers, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    try:
        return _topk(t, k)
    except _NaNScores as exc:
        raise DataError(f"scores contain NaN in row {exc.row}; expected real numbers or -inf for masked items") from None


class _NaNScores(DataError):
    """Raised by :func:`_topk` on a NaN score; ``row`` lets the caller name the user."""

    def __init__(self, row: int) -> None:
        super().__init__(f"NaN score in row {row}")
        self.row = row


def _topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`topk` on a 1-D or 2-D floating tensor; raises :class:`_NaNScores`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise DataError(f"k={k!r}; expected a non-negative integer")
    k = int(k)
    squeeze = scores.ndim == 1
    s = scores.unsqueeze(0) if squeeze else scores  # (batch, n_items)
    batch, n_items = s.shape
    kk = min(k, n_items)
    values = torch.full((batch, k), -math.inf, dtype=s.dtype, device=s.device)
    indices = torch.full((batch, k), -1, dtype=torch.int64, device=s.device)
    if batch and kk:
        # One extra place tells whether a tie straddles the cut: torch.topk picks an arbitrary subset of
        # the items tied at the k-th value, so only rows where the (k+1)-th value equals the k-th need care.
        nan_rows = torch.isnan(s).any(dim=1)  # (batch,); a cheap pass next to topk, and device-agnostic
        if bool(nan_rows.any()):
            raise _NaNScores(int(nan_rows.nonzero()[0, 0]))
        m = min(kk + 1, n_items)
        top_vals, cols = torch.topk(s, m, dim=1, sorted=True)  # (batch, m)
        cols = cols[:, :kk]
        if m > kk:
            kth = top_vals[:, kk - 1]  # (batch,)
            # A tie among -inf (masked) items does not matter: they all become padding.
            tied = ((top_vals[:, kk] == kth) & (kth > -math.inf)).nonzero()[:, 0]
            if tied.numel():
                cols = cols.clone()
                cols[tied] = _lowest_index_topk(s[tied], kth[tied].unsqueeze(1), kk)
        # Hold the chosen items in index order, then a stable sort by score: ties keep index order.
        cols, _ = torch.sort(cols, dim=1)
        vals = s.gather(1, cols)  # (batch, kk)
        vals, order = torch.sort(vals, dim=1, descending=True, stable=True)
        cols = cols.gather(1, order)
        cols[vals == -math.inf] = -1
        values[:, :kk] = vals
        indices[:, :kk] = cols
    if squeeze:
        return values[0], indices[0]
    return values, indices


def _lowest_index_topk(s: torch.Tensor, kth: torch.Tensor, kk: int) -> torch.Tensor:
    """The ``kk`` items of each row scoring above ``kth``, plus the lowest-index ones scoring exactly ``kth``.

    ``s`` is ``(rows, n_items)``, ``kth`` ``(rows, 1)`` each row's kk-th best value. Returns ``(rows, kk)``
    item indices, ascending.
    """
    above = s > kth  # (rows, n_items), fewer than kk per row
    at = s == kth  # (rows, n_items)
    need = kk - above.sum(dim=1, keepdim=True)  # (rows, 1), >= 1
    tie_rank = torch.cumsum(at, dim=1, dtype=torch.int32)  # (rows, n_items): running count of tied items
    chosen = above | (at & (tie_rank <= need))  # exactly kk per row
    return chosen.nonzero()[:, 1].view(s.shape[0], kk)


# ---------------------------------------------------------------------------------------------- result
@dataclass
class EvalResult:
    """The outcome of :func:`evaluate`.

    Attributes
    ----------
    metrics
        ``"NDCG@20" -> mean over the evaluated users`` (float64 arithmetic), plus catalog metrics
        (``Coverage@K``, ``Gini@K``, ``Novelty@K``) over all their top-K lists.
    per_user
        ``"NDCG@20" -> (n_users,) float64``, aligned with ``users``; per-user metrics only.
    users
        Evaluated user indices, ascending.
    protocol
        JSON-ready description of the rules and settings (see :data:`PROTOCOL`).
    n_users
        ``len(users)``.
    seconds
        Wall-clock time of the evaluation.
    """

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    users: np.ndarray
    protocol: dict[str, Any]
    n_users: int
    seconds: float

    def to_json(self, *, per_user: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``); ``per_user=True`` adds the users and per-user arrays."""
        out: dict[str, Any] = {
            "metrics": {name: _json_float(v) for name, v in self.metrics.items()},
            "n_users": int(self.n_users),
            "seconds": float(self.seconds),
            "protocol": self.protocol,
        }
        if per_user:
            out["users"] = self.users.tolist()
            out["per_user"] = {name: [_json_float(v) for v in arr.tolist()] for name, arr in self.per_user.items()}
        return out


def _json_float(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


# ------------------------------------------------------------------------------------------- evaluate
def evaluate(
    score_fn: ScoreFn,
    train: Interactions,
    test: Interactions,
    *,
    ks: Iterable[int] | int = (5, 10, 20),
    metrics: Sequence[str] | None = None,
    exclude: Interactions | Sequence[Interactions] = (),
    users: np.ndarray | Sequence[int] | None = None,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
    recall: RecallMode = "test",
    drop_cold_test: bool = False,
) -> EvalResult:
    """Rank every item for every test user and score the top-K lists against the test items.

    Parameters
    ----------
    score_fn
        ``score_fn(users: int64 array) -> (len(users), n_items)`` scores, numpy or torch, higher is
        better. Its output is copied before masking, so it may return cached arrays.
    train
        Interactions the model was fitted on; a user's train items are never recommended to them.
        Its item popularity also defines Novelty.
    test
        Held-out interactions, in the same user and item maps as ``train``; they define relevance.
    ks
        Cut-offs (one int or several).
    metrics
        Names among ``Precision, Recall, NDCG, MAP, MRR, HitRate, Coverage, Gini, Novelty``;
        ``None`` means all.
    exclude
        Further interactions (one set or several, same maps) whose items are removed from each user's
        ranking, e.g. the validation items when evaluating on test.
    users
        Restrict to these user indices (those without a relevant test item are still skipped).
    batch_size
        Users scored at once.
    device
        Torch device for masking and ranking; ``None`` means CUDA when available, else CPU.
    recall
        ``"test"``: Recall@K = hits / |test items|; ``"min"``: hits / min(K, |test items|).
    drop_cold_test
        Remove test items that have no train interaction from the relevant sets (by default they stay
        relevant, and since a model cannot know them, they mostly count as misses).

    Returns
    -------
    EvalResult

    Raises
    ------
    DataError
        On interactions over different maps, a bad argument, a ``score_fn`` output of the wrong shape or
        with NaN, or when no user has a relevant test item.
    """
    t0 = time.perf_counter()
    _check_interactions(train, "train")
    _check_interactions(test, "test")
    if not train.same_space(test):
        raise DataError("test does not share train's user and item maps; build both over the same IdMaps")
    excl = _check_exclude(exclude, train)
    ks_ = _check_ks(ks)
    wanted = _check_metrics(metrics)
    if recall not in ("test", "min"):
        raise DataError(f"recall={recall!r}; expected 'test' (hits / |test|) or 'min' (hits / min(K, |test|))")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batch_size={batch_size!r}; expected a positive integer")
    dev = _resolve_device(device)
    n_items = train.n_items

    train_pop = train.item_counts()  # (n_items,) distinct train users per item (no duplicate entries)
    relevant = test.subset(train_pop[test.indices] > 0) if drop_cold_test else test
    n_relevant = relevant.user_counts()  # (n_users,)
    eval_users = _users_to_evaluate(n_relevant, users, train.n_users, drop_cold_test)
    masks = [train, *excl]
    _log_masked_relevant(relevant, masks, eval_users)

    t_rank = time.perf_counter()
    # A long evaluation announces itself while it runs; the line below is its end.
    with step(f"evaluating {len(eval_users)} users x {n_items} items", logger, log_end=False):
        per_user, rec_counts = _rank_and_score(
            score_fn, masks, relevant, n_relevant, eval_users, n_items, ks_, wanted, recall, int(batch_size), dev
        )
    rank_seconds = time.perf_counter() - t_rank
    summary = _summarise(per_user, rec_counts, ks_, wanted, train, train_pop)

    eval_users.flags.writeable = False
    seconds = time.perf_counter() - t0
    logger.info(
        "evaluated %d users x %d items on %s in %.2f s (%.0f users/s ranking)",
        len(eval_users), n_items, dev, seconds, len(eval_users) / max(rank_seconds, 1e-9),
    )
    protocol = _protocol(
        ks_, wanted, recall, drop_cold_test, excl, users is not None, train, test, n_relevant, eval_users
    )
    return EvalResult(
        metrics=summary, per_user=per_user, users=eval_users, protocol=protocol,
        n_users=len(eval_users), seconds=seconds,
    )


# ------------------------------------------------------------------------------------------ its steps
def _users_to_evaluate(
    n_relevant: np.ndarray, users: np.ndarray | Sequence[int] | None, n_users: int, drop_cold_test: bool
) -> np.ndarray:
    """The users with at least one relevant item (among ``users`` if given), ascending; never empty."""
    eval_users = np.flatnonzero(n_relevant > 0).astype(np.int64)
    if users is not None:
        eval_users = np.intersect1d(eval_users, _check_users(users, n_users))
    if len(eval_users) == 0:
        raise DataError(
            "no user has a relevant test item"
            + (" among the given users" if users is not None else "")
            + (" after drop_cold_test" if drop_cold_test else "")
            + "; expected at least one"
        )
    return eval_users


def _rank_and_score(
    score_fn: ScoreFn,
    masks: Sequence[Interactions],
    relevant: Interactions,
    n_relevant: np.ndarray,
    eval_users: np.ndarray,
    n_items: int,
    ks: list[int],
    wanted: list[str],
    recall: RecallMode,
    batch_size: int,
    dev: torch.device,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Score, mask and rank ``eval_users`` a batch at a time.

    Returns the per-user ranking metrics (read-only arrays aligned with ``eval_users``) and, for the
    catalog metrics, how often each item was recommended in the top ``k`` of each cut-off ``(n_ks, n_items)``.
    """
    kmax = max(ks)
    ranking_wanted = [m for m in wanted if m in RANKING_METRICS]
    catalog_wanted = [m for m in wanted if m in CATALOG_METRICS]
    parts: dict[str, list[np.ndarray]] = {}
    rec_counts = np.zeros((len(ks), n_items), dtype=np.int64)  # (n_ks, n_items)
    with torch.no_grad():
        starts = range(0, len(eval_users), batch_size)
        for start in progress(starts, desc="evaluate", total=len(starts), unit="batch", logger=logger):
            ub = eval_users[start : start + batch_size]  # (batch,)
            scores = _scores_to_tensor(score_fn(ub.copy()), ub, n_items, dev)  # (batch, n_items), ours
            rows, cols = _gather_rows(masks, ub)
            if rows.size:
                scores[torch.from_numpy(rows).to(dev), torch.from_numpy(cols).to(dev)] = -math.inf
            try:
                _, top = _topk(scores, kmax)  # (batch, kmax), -1 = padding
            except _NaNScores as exc:
                raise DataError(
                    f"score_fn returned NaN scores for user index {int(ub[exc.row])}; expected real numbers"
                ) from None
            del scores

            rel_rows, rel_cols = _gather_rows([relevant], ub)
            # One spare column at n_items, never relevant, absorbs the -1 padding of short lists.
            rel = torch.zeros((len(ub), n_items + 1), dtype=torch.bool, device=dev)  # (batch, n_items+1)
            rel[torch.from_numpy(rel_rows).to(dev), torch.from_numpy(rel_cols).to(dev)] = True
            hits = rel.gather(1, torch.where(top >= 0, top, n_items)).cpu().numpy()  # (batch, kmax)
            top_np = top.cpu().numpy()  # (batch, kmax)

            for name, values in ranking_metrics(
                hits, n_relevant[ub], ks, metrics=ranking_wanted, recall=recall
            ).items():
                parts.setdefault(name, []).append(values)
            if catalog_wanted:
                for j, k in enumerate(ks):
                    head = top_np[:, :k].reshape(-1)
                    rec_counts[j] += np.bincount(head[head >= 0], minlength=n_items)
    per_user = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    for arr in per_user.values():
        arr.flags.writeable = False
    return per_user, rec_counts


def _summarise(
    per_user: dict[str, np.ndarray],
    rec_counts: np.ndarray,
    ks: list[int],
    wanted: list[str],
    train: Interactions,
    train_pop: np.ndarray,
) -> dict[str, float]:
    """The means of the per-user metrics and the catalog metrics, family first, then cut-off."""
    summary: dict[str, float] = {}
    for m in (m for m in wanted if m in RANKING_METRICS):
        for k in ks:
            name = metric_name(m, k)
            summary[name] = float(np.mean(per_user[name], dtype=np.float64))
    catalog_wanted = [m for m in wanted if m in CATALOG_METRICS]
    n_train_users = max(int(np.count_nonzero(train.user_counts())), 1)
    for j, k in enumerate(ks):
        summary.update(
            catalog_metrics_from_counts(
                rec_counts[j], k, train_item_users=train_pop, n_train_users=n_train_users, metrics=catalog_wanted
            )
        )
    # Report order: metric family first, then cut-off.
    order = {metric_name(m, k): i for i, (m, k) in enumerate((m, k) for m in wanted for k in ks)}
    return dict(sorted(summary.items(), key=lambda kv: order[kv[0]]))


# -------------------------------------------------------------------------------------------- helpers
def _check_interactions(obj: Any, name: str) -> None:
    if not isinstance(obj, Interactions):
        raise DataError(f"{name} is a {type(obj).__name__}; expected gan4rec.data.interactions.Interactions")


def _check_exclude(exclude: Any, train: Interactions) -> list[Interactions]:
    sets = [exclude] if isinstance(exclude, Interactions) else list(exclude)
    for j, s in enumerate(sets):
        _check_interactions(s, f"exclude[{j}]")
        if not train.same_space(s):
            raise DataError(f"exclude[{j}] does not share train's user and item maps; build it over the same IdMaps")
    return sets


def _check_ks(ks: Iterable[int] | int) -> list[int]:
    values = [ks] if isinstance(ks, (int, np.integer)) else list(ks)
    for k in values:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise DataError(f"ks contains {k!r}; expected positive integers")
    if not values:
        raise DataError("ks is empty; expected at least one cut-off")
    return sorted({int(k) for k in values})


def _check_metrics(metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        return list(ALL_METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    for m in metrics:
        if m not in ALL_METRICS:
            raise DataError(f"unknown metric {m!r}; expected names among {', '.join(ALL_METRICS)} (without @K)")
    if not metrics:
        raise DataError("metrics is empty; expected at least one name (or None for all)")
    return [m for m in ALL_METRICS if m in set(metrics)]


def _check_users(users: Any, n_users: int) -> np.ndarray:
    arr = np.asarray(users)
    if arr.ndim != 1:
        raise DataError(f"users must be a 1-D array of user indices, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        if len(arr) != n_users:
            raise DataError(f"users is a boolean mask of length {len(arr)}, expected {n_users} (one per user)")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise DataError(f"users must hold integer user indices, got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= n_users)
    if bad.any():
        raise DataError(f"users contains index {arr[bad][0]}, outside 0..{n_users - 1}")
    return np.unique(arr.astype(np.int64))


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DataError(f"device={device!r} is not a torch device; expected e.g. 'cpu' or 'cuda'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device={device!r} but CUDA is not available; pass 'cpu' or None")
    return dev


def _scores_to_tensor(raw: Any, users: np.ndarray, n_items: int, device: torch.device) -> torch.Tensor:
    """A fresh, contiguous floating ``(batch, n_items)`` tensor on ``device`` holding ``score_fn``'s output.

    Always a copy: masking writes into it, and ``score_fn`` may hand out a cached array or a view.
    """
    shape = (len(users), n_items)
    if isinstance(raw, torch.Tensor):
        src = raw.detach()
        if src.is_complex():
            raise DataError(f"score_fn returned complex scores (dtype {src.dtype}); expected real numbers")
        dtype = src.dtype if src.is_floating_point() else torch.float64
        got = tuple(src.shape)
    else:
        arr = np.asarray(raw)
        if arr.dtype.kind not in "biuf":
            raise DataError(f"score_fn returned dtype {arr.dtype}; expected real-valued scores")
        dtype = torch.float64  # integer, boolean and long-double scores are ranked as float64
        if arr.dtype.kind == "f":
            dtype = {2: torch.float16, 4: torch.float32}.get(arr.itemsize, torch.float64)
        got = arr.shape
    if got != shape:
        raise DataError(f"score_fn returned shape {got} for {len(users)} users; expected {shape}")
    out = torch.empty(shape, dtype=dtype, device=device)
    if isinstance(raw, torch.Tensor):
        out.copy_(src)
    elif device.type == "cpu":
        out.numpy()[...] = arr
    else:
        host = torch.empty(shape, dtype=dtype)
        host.numpy()[...] = arr
        out.copy_(host)
    return out


def _csr_rows(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch row, item) pairs of the CSR rows ``users``: row ``j`` of the batch is user ``users[j]``."""
    starts = indptr[users]  # (batch,)
    lengths = indptr[users + 1] - starts  # (batch,)
    total = int(lengths.sum())
    rows = np.repeat(np.arange(len(users), dtype=np.int64), lengths)  # (total,)
    # Position of each entry within its row: a global ramp minus the row's offset in the ramp.
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cols = indices[np.repeat(starts, lengths) + within].astype(np.int64)  # (total,)
    return rows, cols


def _gather_rows(sets: Sequence[Interactions], users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [_csr_rows(s.indptr, s.indices, users) for s in sets]
    if len(pairs) == 1:
        return pairs[0]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def _log_masked_relevant(relevant: Interactions, masks: Sequence[Interactions], users: np.ndarray) -> None:
    """Warn when relevant test items are also masked: they can never be hit and count as misses."""
    rel = relevant.csr()[users]  # (n_eval, n_items) sparse
    masked = masks[0].csr()[users]
    for extra in masks[1:]:
        masked = masked + extra.csr()[users]
    n_overlap = rel.multiply(masked).count_nonzero()
    if n_overlap:
        logger.warning(
            "%d relevant test interactions (of %d) are also train or excluded items; they cannot be ranked "
            "and count as misses",
            n_overlap, rel.nnz,
        )


def _protocol(
    ks: list[int],
    wanted: list[str],
    recall: str,
    drop_cold_test: bool,
    excl: list[Interactions],
    subset: bool,
    train: Interactions,
    test: Interactions,
    n_relevant: np.ndarray,
    eval_users: np.ndarray,
) -> dict[str, Any]:
    """:data:`PROTOCOL`, with the rules an option changed rewritten, and the settings used."""
    out: dict[str, Any] = dict(PROTOCOL)
    if recall == "min":
        out["recall"] = "Recall@K = hits / min(K, |test items|) (recall='min')"
    if drop_cold_test:
        out["cold_test_items"] = "test items with no train interaction are removed from the relevant set"
    if not excl:
        out["candidates"] = "full ranking over all items, excluding the user's train items"
    if subset:
        out["users"] = "metrics average over the given users with at least one test item"
    out["settings"] = {
        "ks": ks,
        "metrics": wanted,
        "recall": recall,
        "drop_cold_test": bool(drop_cold_test),
        "n_exclude_sets": len(excl),
        "user_subset": bool(subset),
        "n_users_evaluated": len(eval_users),
        "n_relevant_interactions": int(n_relevant[eval_users].sum()),
        "n_items": train.n_items,
        "train_fingerprint": train.fingerprint(),
        "test_fingerprint": test.fingerprint(),
        "exclude_fingerprints": [s.fingerprint() for s in excl],
    }
    return out
