"""The HTTP service: a FastAPI application serving one saved model, and the runner behind ``gan4rec serve``.

Endpoints (raw ids in and out; OpenAPI at ``/openapi.json``):

- ``GET /recommend?user=ID&k=10&exclude_seen=true[&exclude=ID,...][&candidates=ID,...]``;
- ``POST /recommend``: a batch of users, or an ad-hoc ``history`` of item ids (fold-in models only);
- ``GET /explain?user=ID&item=ID[&top=10]``, ``POST /explain`` (several items, a user or a history);
- ``GET /similar?item=ID&k=10``; ``GET /history?user=ID``; ``GET /items?q=TEXT`` (title/id search);
- ``GET /healthz`` (the process answers), ``GET /readyz`` (a verified model is live), ``GET /info``;
- ``GET /metrics`` (Prometheus text); ``POST /admin/reload`` (needs an API key); ``GET /`` (web page).

Cold start: an unknown user, or a known user without training interactions, gets the training
popularity ranking, marked ``"strategy": "popularity_fallback"`` (with ``strict_users``, an unknown user
is a 404). Unknown item ids in a history, ``exclude`` or ``candidates`` are ignored and listed in
``"warnings"``. Non-finite scores never reach a response: such items are left out and counted.

Nothing is ever read from a path or URL given in a request: the only files the server reads are the
artifact directory, the items file and the API-key file named on its command line.

Workers and reload
------------------
With one worker (the default), ``SIGHUP`` or ``POST /admin/reload`` loads and verifies the artifact's
current version in a thread, then swaps it in; requests in flight finish on the model they started with,
and a corrupt artifact is refused (logged, counted, 409 for HTTP) while the old model keeps serving.

With ``workers > 1``, ``POST /admin/reload`` reaches one worker. It reloads as above (409 if the artifact
is refused) and, on success, writes a token into a file the workers share; every worker polls that file
(every :data:`RELOAD_POLL_S` seconds) and reloads itself the same way, so within about a second all
workers serve the new version, and a worker that cannot load the artifact keeps its old model. ``SIGHUP``
belongs to uvicorn's supervisor there: it starts a new worker (which loads and verifies the artifact
before it reports ready), retires an old one (draining its requests) and repeats; a new worker that fails
to start (a corrupt artifact) aborts the restart and the old workers stay. Metrics use prometheus_client's
multiprocess mode in a temporary folder, so ``/metrics`` adds up every worker whichever one answers.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime, and
# those built inside create_app (query types, the key dependency) are local names a string cannot reach.
import asyncio
import contextlib
import gc
import hmac
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np

from gan4rec.artifacts import atomic_write_text
from gan4rec.errors import DataError, MissingInputError
from gan4rec.serve.middleware import BodyLimitMiddleware, Metrics, MetricsMiddleware
from gan4rec.serve.schemas import (
    MAX_BATCH_USERS,
    MAX_EXPLAIN_ITEMS,
    MAX_ID_CHARS,
    MAX_K,
    MAX_LIST,
    MAX_TOP,
    BatchExplanation,
    BatchRecommendation,
    ErrorBody,
    ExplainRequest,
    ExplanationBody,
    Health,
    HistoryBody,
    Info,
    ItemList,
    Readiness,
    Recommendation,
    RecommendRequest,
    ReloadBody,
    SimilarBody,
    UserExplainRequest,
    UsersRecommendRequest,
)
from gan4rec.serve.state import LiveModel, ModelSlot, lookup_id

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "RELOAD_POLL_S",
    "SETTINGS_ENV",
    "create_app",
    "create_app_from_env",
    "read_api_keys",
    "run_server",
    "top_k",
]

log = logging.getLogger(__name__)

#: Default request-body limit: a 10,000-item history of long string ids fits.
DEFAULT_MAX_BODY_BYTES = 4 * 2**20
#: Environment variable carrying the settings to each worker process (``workers > 1``).
SETTINGS_ENV = "GAN4REC_SERVE_SETTINGS"
#: Seconds between two checks of the shared reload file by each worker (``workers > 1``).
RELOAD_POLL_S = 0.5
_MAX_QUERY_CHARS = 200
_LIST_QUERY_CHARS = MAX_LIST * (MAX_ID_CHARS + 1)
_SHOWN_UNKNOWN = 10  # unknown ids quoted in a warning


def _read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def read_api_keys(path: str | Path) -> tuple[str, ...]:
    """API keys from a file, one per line; blank lines and ``#`` comments are skipped."""
    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"{p}: no such API-key file")
    keys = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if len(text) < 16:
            raise DataError(f"{p}:{lineno}: API key is {len(text)} characters long; expected at least 16")
        keys.append(text)
    if not keys:
        raise DataError(f"{p}: holds no API key; expected one key per line")
    return tuple(keys)


def top_k(row: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries of a 1-d array, best first; ties rank the lower index first.

    The ranking rule of :func:`gan4rec.evaluation.evaluator.topk` (and so of ``Recommender.recommend``),
    for one row in numpy: one ``O(n)`` partition finds the k-th value, every entry above it is taken and
    the lowest-index entries equal to it fill the rest. About ten times faster than the batched torch
    version on the single rows a server ranks.
    """
    n = row.shape[0]
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(row, n - k)[n - k]  # the k-th largest value
    above = np.flatnonzero(row > kth)
    ties = np.flatnonzero(row == kth)[: k - len(above)]
    chosen = np.concatenate([above, ties])
    return chosen[np.lexsort((chosen, -row[chosen]))].astype(np.int64)


# ------------------------------------------------------------------------------------------------ errors
class _HTTPError(Exception):
    """An error answer: status and one-sentence detail."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "Unsupported for this model", 401: "Missing or invalid API key",
            403: "Admin endpoints are disabled", 404: "Unknown user or item", 409: "Reload refused",
            413: "Request body too large", 422: "Invalid input"}
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


# Pydantic names the branches of a union in error locations. A bad id is one error to a client, and a body
# that matches neither request shape is explained by the shape the client meant (the key it sent).
_ID_BRANCHES = ("int", "str", "constrained-str", "function-before")
_ID_MESSAGE = f"expected an integer or a string id of 1..{MAX_ID_CHARS} characters"
_BODY_BRANCHES = {"UsersRecommendRequest": "users", "HistoryRecommendRequest": "history",
                  "UserExplainRequest": "user", "HistoryExplainRequest": "history"}


def _validation_detail(errors: Sequence[dict[str, Any]]) -> str:
    """One sentence from pydantic's errors: ``field: problem`` for the first three distinct fields."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for e in errors:
        branch = next((str(x) for x in e.get("loc", ()) if str(x) in _BODY_BRANCHES), None)
        groups.setdefault(branch, []).append(e)
    branches = [b for b in groups if b is not None]
    if len(branches) >= 2:
        keys = " or ".join(repr(_BODY_BRANCHES[b]) for b in branches)
        meant = [b for b in branches
                 if not any(e.get("type") == "missing" and list(e.get("loc", ()))[-1:] == [_BODY_BRANCHES[b]]
                            for e in groups[b])]
        if len(meant) != 1:
            return f"body: give exactly one of {keys}"
        errors = groups[meant[0]]
    parts: list[str] = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ())
               if x not in ("body", "query") and str(x) not in _BODY_BRANCHES]
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "json_invalid":
            loc, msg = [], f"invalid JSON (at character {'.'.join(loc) or '?'})"
        elif loc and loc[-1].startswith(_ID_BRANCHES):
            loc, msg = loc[:-1], _ID_MESSAGE
        text = f"{'.'.join(loc) or 'body'}: {msg}"
        if text not in parts:
            parts.append(text)
    more = f" (and {len(parts) - 3} more)" if len(parts) > 3 else ""
    return "; ".join(parts[:3]) + more


_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})
_DECIMAL = re.compile(r"[0-9]{1,9}")


def _query_int(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    if not _DECIMAL.fullmatch(text) or not low <= int(text) <= high:
        raise _HTTPError(422, f"{name}: expected an integer in {low}..{high}, got {text[:40]!r}")
    return int(text)


def _query_bool(text: str | None, name: str, default: bool) -> bool:
    if text is None:
        return default
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise _HTTPError(422, f"{name}: expected true or false, got {text[:40]!r}")


# ------------------------------------------------------------------------------------------------ service
class _Service:
    """Request logic, independent of FastAPI plumbing. Every method takes the :class:`LiveModel` snapshot
    it works on, read once per request."""

    def __init__(self, slot: ModelSlot, metrics: Metrics, *, strict_users: bool) -> None:
        self.slot = slot
        self.metrics = metrics
        self.strict_users = strict_users

    # -------------------------------------------------------------- ids
    @staticmethod
    def _raw_items(live: LiveModel, idx: np.ndarray) -> list[Any]:
        return live.model.item_map_.to_raw(idx).tolist()

    def _items_in(self, live: LiveModel, raws: Sequence[Any], what: str,
                  warnings: list[str]) -> np.ndarray:
        """Indices of the known ids among ``raws`` (first-seen order, no duplicates); unknown ones warned."""
        if not raws:
            return np.zeros(0, dtype=np.int64)
        imap = live.model.item_map_
        idx = np.fromiter((lookup_id(imap, r) for r in raws), dtype=np.int64, count=len(raws))
        unknown = [r for r, i in zip(raws, idx.tolist()) if i < 0]
        if unknown:
            shown = ", ".join(json.dumps(r) for r in unknown[:_SHOWN_UNKNOWN])
            more = f" and {len(unknown) - _SHOWN_UNKNOWN} more" if len(unknown) > _SHOWN_UNKNOWN else ""
            warnings.append(f"ignored {len(unknown)} unknown item id(s) in {what}: {shown}{more}")
        known = idx[idx >= 0]
        _, first = np.unique(known, return_index=True)
        return known[np.sort(first)]

    def _item(self, live: LiveModel, raw: Any, what: str = "item") -> int:
        i = lookup_id(live.model.item_map_, raw)
        if i < 0:
            raise _HTTPError(404, f"unknown {what} {json.dumps(raw)}: the model was not trained on it")
        return i

    def _user(self, live: LiveModel, raw: Any) -> int:
        u = lookup_id(live.model.user_map_, raw)
        if u < 0:
            raise _HTTPError(404, f"unknown user {json.dumps(raw)}: the model was not trained on it")
        return u

    @staticmethod
    def _split(text: str | None, what: str) -> list[str]:
        """Comma-separated ids; empty entries (``a,,b``, a trailing comma) are skipped."""
        if text is None or text == "":
            return []
        parts = [p for p in (p.strip() for p in text.split(",")) if p]
        if len(parts) > MAX_LIST:
            raise _HTTPError(422, f"{what}: {len(parts)} ids, at most {MAX_LIST} are allowed")
        if any(len(p) > MAX_ID_CHARS for p in parts):
            raise _HTTPError(422, f"{what}: an id is longer than {MAX_ID_CHARS} characters")
        return parts

    # -------------------------------------------------------------- ranking
    def _rank(self, live: LiveModel, scores: np.ndarray, k: int, *, seen_users: np.ndarray | None = None,
              drop: Sequence[np.ndarray] = (), candidates: np.ndarray | None = None
              ) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
        """Top-``k`` of each row with masks applied and non-finite scores left out.

        ``scores`` is ``(n, n_items)`` (modified); ``drop[r]`` are items removed from row ``r`` only.
        """
        n_items = scores.shape[1]
        bad = ~np.isfinite(scores)  # (n, n_items)
        n_bad = bad.sum(axis=1)
        scores[bad] = -np.inf
        if seen_users is not None:
            indptr, indices = live.model.seen_.indptr, live.model.seen_.indices
            for r, u in enumerate(seen_users.tolist()):
                scores[r, indices[indptr[u] : indptr[u + 1]]] = -np.inf
        for r, items in enumerate(drop):
            if len(items):
                scores[r, items] = -np.inf
        if candidates is not None:
            allowed = np.zeros(n_items, dtype=bool)
            allowed[candidates] = True
            scores[:, ~allowed] = -np.inf
        out = []
        for r in range(scores.shape[0]):
            idx = top_k(scores[r], k)
            idx = idx[scores[r, idx] > -np.inf]
            warns = []
            if n_bad[r]:
                warns.append(f"{int(n_bad[r])} item(s) with a non-finite score were left out")
                self.metrics.nonfinite.inc(int(n_bad[r]))
            out.append((idx, scores[r, idx], warns))
        return out

    def _items_body(self, live: LiveModel, idx: np.ndarray, values: np.ndarray) -> list[dict[str, Any]]:
        raws = self._raw_items(live, idx)
        vals = values.astype(np.float64).tolist()
        if live.titles is None:
            return [{"item": r, "score": v} for r, v in zip(raws, vals)]
        titles = live.titles[idx].tolist()
        return [{"item": r, "score": v, "title": t} for r, v, t in zip(raws, vals, titles)]

    def _recommendation(self, live: LiveModel, user: Any, idx: np.ndarray, values: np.ndarray,
                        strategy: str, warnings: list[str]) -> dict[str, Any]:
        self.metrics.recommendations.labels(strategy).inc()
        return {"user": user, "items": self._items_body(live, idx, values), "strategy": strategy,
                "model_version": live.version, "warnings": warnings}

    # -------------------------------------------------------------- recommend
    def model_user(self, live: LiveModel, raw: Any) -> int:
        """Index of a user the model itself scores (known, with training interactions), else -1."""
        u = lookup_id(live.model.user_map_, raw)
        return u if u >= 0 and live.user_counts[u] > 0 else -1

    def recommend_users(self, live: LiveModel, raw_users: Sequence[Any], k: int, exclude_seen: bool,
                        exclude_raw: Sequence[Any], candidates_raw: Sequence[Any] | None,
                        scores: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Recommendation bodies for raw user ids, in order.

        ``scores`` optionally holds the model's ``(m, n_items)`` scores of the users the model scores
        (:meth:`model_user` >= 0), in order, already computed (by the micro-batcher).
        """
        common: list[str] = []
        exclude = self._items_in(live, exclude_raw, "exclude", common)
        candidates = (self._items_in(live, candidates_raw, "candidates", common)
                      if candidates_raw is not None else None)
        user_idx = [lookup_id(live.model.user_map_, r) for r in raw_users]
        # Known users are answered with the model's own id (an int for int maps, even if sent as "42").
        canonical = [self._user_raw(live, u) if u >= 0 else r for r, u in zip(raw_users, user_idx)]
        if self.strict_users:
            for raw, u in zip(raw_users, user_idx):
                if u < 0:
                    raise _HTTPError(404, f"unknown user {json.dumps(raw)}: the model was not trained on it "
                                          "(the server runs with --strict-users)")
        results: list[dict[str, Any] | None] = [None] * len(raw_users)
        model_rows = [p for p, u in enumerate(user_idx) if u >= 0 and live.user_counts[u] > 0]
        if model_rows:
            users = np.array([user_idx[p] for p in model_rows], dtype=np.int64)
            if scores is None:
                scores = live.model.score(users)
            scores = np.array(scores, dtype=np.float32)  # (n, n_items), a private copy: _rank writes it
            ranked = self._rank(live, scores, k, seen_users=users if exclude_seen else None,
                                drop=[exclude] * len(users), candidates=candidates)
            for p, (idx, vals, warns) in zip(model_rows, ranked):
                results[p] = self._recommendation(live, canonical[p], idx, vals, "model", common + warns)
        fallback_rows = [p for p in range(len(raw_users)) if results[p] is None]
        if fallback_rows:
            scores = np.repeat(live.popularity[None, :], len(fallback_rows), axis=0)  # (n, n_items)
            ranked = self._rank(live, scores, k, drop=[exclude] * len(fallback_rows), candidates=candidates)
            for p, (idx, vals, warns) in zip(fallback_rows, ranked):
                why = ("has no training interactions" if user_idx[p] >= 0
                       else "is unknown to the model")
                note = f"user {json.dumps(raw_users[p])} {why}: recommending the most popular training items"
                results[p] = self._recommendation(live, canonical[p], idx, vals, "popularity_fallback",
                                                  [note, *common, *warns])
        return [r for r in results if r is not None]

    def recommend_history(self, live: LiveModel, history_raw: Sequence[Any], k: int, exclude_seen: bool,
                          exclude_raw: Sequence[Any], candidates_raw: Sequence[Any] | None) -> dict[str, Any]:
        from gan4rec.explain import fold_in_scores, history_matrix

        if live.fold_in_reason is not None:
            raise _HTTPError(400, f"unsupported for this model: {live.fold_in_reason}")
        warnings: list[str] = []
        hist = self._items_in(live, history_raw, "history", warnings)
        exclude = self._items_in(live, exclude_raw, "exclude", warnings)
        candidates = (self._items_in(live, candidates_raw, "candidates", warnings)
                      if candidates_raw is not None else None)
        drop = np.union1d(hist, exclude) if exclude_seen else exclude
        if len(hist) == 0:
            warnings.insert(0, "the history holds no item known to the model: recommending the most popular "
                               "training items")
            scores = live.popularity[None, :].copy()
            strategy = "popularity_fallback"
        else:
            scores = np.array(fold_in_scores(live.model, history_matrix([hist], live.model.n_items)),
                              dtype=np.float32)  # (1, n_items)
            strategy = "model"
        ((idx, vals, warns),) = self._rank(live, scores, k, drop=[drop], candidates=candidates)
        return self._recommendation(live, None, idx, vals, strategy, warnings + warns)

    # -------------------------------------------------------------- explain / similar / history
    def explain(self, live: LiveModel, user_raw: Any, history_raw: Sequence[Any] | None,
                items_raw: Sequence[Any], top: int) -> list[dict[str, Any]]:
        from gan4rec.explain import explain_items

        warnings: list[str] = []
        items = [self._item(live, r) for r in items_raw]
        user_out: Any = None
        if history_raw is not None:
            hist = self._items_in(live, history_raw, "history", warnings)
            exps = explain_items(live.model, items, history=hist, top=top)
        else:
            u = self._user(live, user_raw)
            user_out = self._user_raw(live, u)
            exps = explain_items(live.model, items, user=u, top=top)
        out = []
        for e in exps:
            raws = self._raw_items(live, e.items)
            titles = live.titles[e.items].tolist() if live.titles is not None else [None] * len(raws)
            finite_score = float(e.score) if np.isfinite(e.score) else None
            out.append({
                "user": user_out,
                "item": self._raw_items(live, np.array([e.item]))[0],
                "title": live.title(e.item),
                "score": finite_score,
                "method": e.method,
                "approximate": e.approximate,
                "contributions": [{"item": r, "weight": w, "title": t}
                                  for r, w, t in zip(raws, e.weights.tolist(), titles)],
                "total": e.total,
                "baseline": e.baseline,
                "history_size": e.history_size,
                "model_version": live.version,
                "warnings": warnings + list(e.warnings)
                            + ([] if finite_score is not None else ["the item's score is not finite"]),
            })
        return out

    def similar(self, live: LiveModel, item_raw: Any, k: int) -> dict[str, Any]:
        from gan4rec.explain import similar_items

        i = self._item(live, item_raw)
        idx, vals, method = similar_items(live.model, i, k)
        return {"item": self._raw_items(live, np.array([i]))[0], "title": live.title(i),
                "items": self._items_body(live, idx, vals), "method": method, "model_version": live.version}

    def history(self, live: LiveModel, user_raw: Any, limit: int) -> dict[str, Any]:
        u = self._user(live, user_raw)
        row = np.asarray(live.model.seen_.row(u), dtype=np.int64)
        shown = row[:limit]
        raws = self._raw_items(live, shown)
        titles = live.titles[shown].tolist() if live.titles is not None else [None] * len(raws)
        items = [{"item": r, "title": t} for r, t in zip(raws, titles)]
        return {"user": self._user_raw(live, u), "items": items, "total": len(row),
                "model_version": live.version}

    @staticmethod
    def _user_raw(live: LiveModel, u: int) -> Any:
        return live.model.user_map_.to_raw(np.array([u])).tolist()[0]

    def search(self, live: LiveModel, q: str, limit: int) -> dict[str, Any]:
        q = q.strip()
        found: list[int] = []
        exact = lookup_id(live.model.item_map_, q) if q else -1
        if exact >= 0:
            found.append(exact)
        if live.titles_lower is not None and q:
            hits = np.flatnonzero(np.char.find(live.titles_lower, q.lower()) >= 0)
            # Most popular first: the film a user types is more likely the well-known one.
            hits = hits[np.argsort(-live.popularity[hits], kind="stable")]
            found.extend(int(h) for h in hits[: limit + 1] if h != exact)
        idx = np.asarray(found[:limit], dtype=np.int64)
        raws = self._raw_items(live, idx)
        titles = live.titles[idx].tolist() if live.titles is not None else [None] * len(raws)
        return {"items": [{"item": r, "title": t} for r, t in zip(raws, titles)]}


class _Batcher:
    """Scores the users of concurrent ``GET /recommend`` requests with one model call (micro-batching).

    A request queues its user and awaits a future; the first one of an event-loop iteration schedules a
    flush for the next iteration, so every request whose bytes arrived in the same wake-up is scored in
    the same ``model.score`` call, with no added wait. On EASE / ML-100K one call costs ~0.33 ms for one
    user and ~0.10 ms per user for 8 or more (scipy's per-call overhead is paid once).
    """

    #: Most users scored by one model call.
    max_batch: ClassVar[int] = 32

    def __init__(self) -> None:
        self._pending: list[tuple[LiveModel, int, asyncio.Future[np.ndarray]]] = []

    async def score(self, live: LiveModel, user: int) -> np.ndarray:
        """The model's ``(n_items,)`` scores of one user index."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((live, user, future))
        return await future

    def _flush(self) -> None:
        # At most max_batch users per call: the requests of one chunk are answered (their tasks were woken
        # first) before the next chunk is scored, so one large burst does not hold every answer back.
        pending, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        if self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        # A reload may land between two requests of one batch: each snapshot scores its own users.
        groups: dict[int, list[tuple[LiveModel, int, asyncio.Future[np.ndarray]]]] = {}
        for entry in pending:
            groups.setdefault(id(entry[0]), []).append(entry)
        for entries in groups.values():
            live = entries[0][0]
            try:
                users = np.array([u for _, u, _ in entries], dtype=np.int64)
                scores = live.model.score(users)  # (m, n_items)
            except Exception as e:  # noqa: BLE001 -- every waiting request gets the error, none hangs
                for _, _, fut in entries:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for r, (_, _, fut) in enumerate(entries):
                if not fut.done():  # a client that went away cancelled its future
                    fut.set_result(scores[r])


# ------------------------------------------------------------------------------------------------ app
def create_app(
    model_dir: str | Path,
    *,
    api_key: str | Sequence[str] | None = None,
    api_key_file: str | Path | None = None,
    strict_users: bool = False,
    items_file: str | Path | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    handle_sighup: bool = True,
    reload_signal: str | Path | None = None,
) -> Any:
    """A FastAPI application serving the model saved in ``model_dir``.

    The model is loaded and verified here, so a missing or corrupt artifact fails at once.

    Parameters
    ----------
    model_dir
        Artifact directory written by :meth:`Recommender.save`. Reloads read its current version.
    api_key, api_key_file
        Accepted API keys (a key, several, or a file of one key per line). With keys, every endpoint but
        ``/``, ``/healthz``, ``/readyz`` and ``/openapi.json`` needs an ``X-API-Key`` header. Without keys
        the API is open and ``/admin/reload`` is disabled (403).
    strict_users
        Answer 404 to an unknown user instead of the popularity fallback.
    items_file
        Titles of the items (MovieLens ``u.item``/``movies.dat``/``movies.csv`` or a CSV with ``item`` and
        ``title`` columns), shown in responses and on the web page.
    max_body_bytes
        Largest request body; a larger one gets 413 before it is read.
    handle_sighup
        Reload on ``SIGHUP`` (only where the app runs in the main thread, i.e. under uvicorn).
    reload_signal
        A file shared by the workers of one server (set by :func:`run_server` when ``workers > 1``). A
        worker that completes ``POST /admin/reload`` writes a new token into it; every worker polls it
        (:data:`RELOAD_POLL_S`) and then reloads on its own, loading and verifying the artifact itself.
    """
    from fastapi import Body, Depends, FastAPI, Query, Request, Security
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from fastapi.security import APIKeyHeader
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from gan4rec import __version__
    from gan4rec.explain import UnsupportedError

    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1024:
        raise DataError(f"max_body_bytes must be an integer >= 1024, got {max_body_bytes!r}")
    keys: list[str] = []
    if api_key is not None:
        keys.extend([api_key] if isinstance(api_key, str) else list(api_key))
    if api_key_file is not None:
        keys.extend(read_api_keys(api_key_file))
    key_bytes = tuple(k.encode("utf-8") for k in keys)
    signal_file = Path(reload_signal) if reload_signal is not None else None
    seen_token = [_read_token(signal_file)]  # the token this worker has acted on

    metrics = Metrics()
    slot = ModelSlot(model_dir, items_file=items_file)
    metrics.set_model(None, (slot.current.name, slot.current.version))
    service = _Service(slot, metrics, strict_users=strict_users)
    batcher = _Batcher()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        installed = False
        if handle_sighup and threading.current_thread() is threading.main_thread():
            try:
                loop.add_signal_handler(signal.SIGHUP, _reload_in_background)
                installed = True
            except (NotImplementedError, RuntimeError, ValueError, AttributeError):
                log.debug("SIGHUP reload is not available in this environment")
        # Everything loaded so far (libraries, the model) lives as long as the server: move it out of the
        # cyclic collector's reach, so that its full collections, triggered by the allocations of
        # requests, no longer walk those objects (measured: they made the slowest /recommend answers).
        gc.collect()
        gc.freeze()
        follower = loop.create_task(_follow_reloads()) if signal_file is not None else None
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            if installed:
                loop.remove_signal_handler(signal.SIGHUP)
            metrics.process_exit()

    async def _follow_reloads() -> None:
        """Reload when another worker announces a verified reload in the shared signal file."""
        while True:
            await asyncio.sleep(RELOAD_POLL_S)
            token = _read_token(signal_file)
            if token is not None and token != seen_token[0]:
                seen_token[0] = token
                log.info("another worker reloaded the model; reloading this one")
                await _reload_quietly()

    async def _reload() -> tuple[LiveModel, LiveModel]:
        import anyio.to_thread

        try:
            old, new = await anyio.to_thread.run_sync(slot.reload)
        except Exception:
            metrics.reloads.labels("refused").inc()
            raise
        metrics.reloads.labels("ok").inc()
        metrics.set_model((old.name, old.version), (new.name, new.version))
        # The replaced model was frozen with everything else at start: thaw, let one full collection
        # reclaim whatever of it sits in reference cycles, and freeze what remains (the new model).
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return old, new

    async def _reload_quietly() -> None:
        with contextlib.suppress(Exception):  # already logged and counted by the slot
            await _reload()

    background: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    def _reload_in_background() -> None:
        task = asyncio.get_running_loop().create_task(_reload_quietly())
        background.add(task)
        task.add_done_callback(background.discard)

    app = FastAPI(
        title="gan4rec",
        version=__version__,
        description="Recommendations, explanations and similar items from a saved gan4rec model. Raw ids in "
                    "and out.",
        lifespan=lifespan,
    )
    app.state.slot = slot
    app.state.metrics = metrics

    # -------------------------------------------------------------- errors
    @app.exception_handler(_HTTPError)
    async def _on_http_error(request: Request, exc: _HTTPError) -> Any:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(UnsupportedError)
    async def _on_unsupported(request: Request, exc: UnsupportedError) -> Any:
        return JSONResponse({"detail": f"unsupported for this model: {exc}"}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, exc: RequestValidationError) -> Any:
        # Only location, message and type: pydantic's "input" would echo a request body back.
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        return JSONResponse({"detail": _validation_detail(errors), "errors": errors}, status_code=422)

    @app.exception_handler(DataError)
    async def _on_data_error(request: Request, exc: DataError) -> Any:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _on_starlette(request: Request, exc: StarletteHTTPException) -> Any:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> Any:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    # -------------------------------------------------------------- auth
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="Needed when the server was started with API keys.")

    def _key_ok(key: str | None) -> bool:
        if key is None:
            return False
        given = key.encode("utf-8", "surrogateescape")
        # Compare with every key, without an early exit, so timing does not reveal which one matched.
        return sum(hmac.compare_digest(given, k) for k in key_bytes) > 0

    async def auth(key: Annotated[str | None, Security(key_header)] = None) -> None:
        if key_bytes and not _key_ok(key):
            raise _HTTPError(401, "missing or invalid API key; send it in the X-API-Key header",
                             {"WWW-Authenticate": "ApiKey"})

    async def admin(key: Annotated[str | None, Security(key_header)] = None) -> None:
        if not key_bytes:
            raise _HTTPError(403, "admin endpoints are disabled; start the server with --api-key-file to "
                                  "enable them")
        if not _key_ok(key):
            raise _HTTPError(401, "missing or invalid API key; send it in the X-API-Key header",
                             {"WWW-Authenticate": "ApiKey"})

    protected = [Depends(auth)]
    UserQ = Annotated[str, Query(min_length=1, max_length=MAX_ID_CHARS, description="A raw user id.")]
    ItemQ = Annotated[str, Query(min_length=1, max_length=MAX_ID_CHARS, description="A raw item id.")]
    KQ = Annotated[int, Query(ge=1, le=MAX_K, description=f"List length, 1..{MAX_K}.")]

    # -------------------------------------------------------------- endpoints
    # The hot path parses its query by hand: FastAPI's generic parameter machinery costs more than the
    # ranking itself (measured: ~0.5 ms of ~1.1 ms per request on one core). The parameters are declared
    # in the OpenAPI schema below and validated with the same bounds and 422 answers.
    recommend_params = [
        {"name": "user", "in": "query", "required": True, "description": "A raw user id.",
         "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}},
        {"name": "k", "in": "query", "required": False, "description": f"List length, 1..{MAX_K}.",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10}},
        {"name": "exclude_seen", "in": "query", "required": False,
         "description": "Drop the user's training items.", "schema": {"type": "boolean", "default": True}},
        {"name": "exclude", "in": "query", "required": False,
         "description": f"Comma-separated item ids to leave out (at most {MAX_LIST}).",
         "schema": {"type": "string", "maxLength": _LIST_QUERY_CHARS}},
        {"name": "candidates", "in": "query", "required": False,
         "description": f"Comma-separated item ids to rank among (at most {MAX_LIST}).",
         "schema": {"type": "string", "maxLength": _LIST_QUERY_CHARS}},
    ]

    @app.get("/recommend", response_model=Recommendation, tags=["recommend"],
             responses=_errors(401, 404, 422),
             openapi_extra={"parameters": recommend_params, "security": [{"APIKeyHeader": []}]})
    async def get_recommend(request: Request) -> Any:
        """Top-``k`` items for a user; unknown users get the popularity fallback (404 with --strict-users)."""
        if key_bytes and not _key_ok(request.headers.get("x-api-key")):
            raise _HTTPError(401, "missing or invalid API key; send it in the X-API-Key header",
                             {"WWW-Authenticate": "ApiKey"})
        q = request.query_params
        user = q.get("user")
        if user is None:
            raise _HTTPError(422, "user: field required")
        if not 1 <= len(user) <= MAX_ID_CHARS:
            raise _HTTPError(422, f"user: expected 1..{MAX_ID_CHARS} characters, got {len(user)}")
        k = _query_int(q.get("k"), "k", 10, 1, MAX_K)
        exclude_seen = _query_bool(q.get("exclude_seen"), "exclude_seen", True)
        exclude, candidates = q.get("exclude"), q.get("candidates")
        for name, value in (("exclude", exclude), ("candidates", candidates)):
            if value is not None and len(value) > _LIST_QUERY_CHARS:
                raise _HTTPError(422, f"{name}: longer than {_LIST_QUERY_CHARS} characters")
        cands = service._split(candidates, "candidates") if candidates is not None else None
        excl = service._split(exclude, "exclude")
        live = slot.current
        u = service.model_user(live, user)
        row = None if u < 0 else (await batcher.score(live, u))[None, :]
        (result,) = service.recommend_users(live, [user], k, exclude_seen, excl, cands, scores=row)
        return JSONResponse(result)

    @app.post("/recommend", response_model=BatchRecommendation, dependencies=protected, tags=["recommend"],
              responses=_errors(400, 401, 404, 413, 422))
    def post_recommend(req: Annotated[RecommendRequest, Body()]) -> Any:
        """A batch of users, or one ad-hoc history of item ids (models that fold in new users; 400 for the
        others)."""
        live = slot.current
        if isinstance(req, UsersRecommendRequest):
            results = service.recommend_users(live, req.users, req.k, req.exclude_seen, req.exclude,
                                              req.candidates)
        else:
            results = [service.recommend_history(live, req.history, req.k, req.exclude_seen, req.exclude,
                                                 req.candidates)]
        return JSONResponse({"results": results, "model_version": live.version})

    @app.get("/explain", response_model=ExplanationBody, dependencies=protected, tags=["explain"],
             responses=_errors(400, 401, 404, 422))
    def get_explain(user: UserQ, item: ItemQ,
                    top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 10) -> Any:
        """The user's history items that most drove the item's score, with weights and the method used."""
        live = slot.current
        (result,) = service.explain(live, user, None, [item], top)
        return JSONResponse(result)

    @app.post("/explain", response_model=BatchExplanation, dependencies=protected, tags=["explain"],
              responses=_errors(400, 401, 404, 413, 422))
    def post_explain(req: Annotated[ExplainRequest, Body()]) -> Any:
        """Explain up to 100 items for one user or one ad-hoc history."""
        live = slot.current
        if isinstance(req, UserExplainRequest):
            results = service.explain(live, req.user, None, req.items, req.top)
        else:
            results = service.explain(live, None, req.history, req.items, req.top)
        return JSONResponse({"results": results, "model_version": live.version})

    @app.get("/similar", response_model=SimilarBody, dependencies=protected, tags=["items"],
             responses=_errors(401, 404, 422))
    def get_similar(item: ItemQ, k: KQ = 10) -> Any:
        """Items most related to ``item`` under the model (see ``method``)."""
        return JSONResponse(service.similar(slot.current, item, k))

    @app.get("/history", response_model=HistoryBody, dependencies=protected, tags=["items"],
             responses=_errors(401, 404, 422))
    def get_history(user: UserQ, limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100) -> Any:
        """The user's training items (what the model knows about them)."""
        return JSONResponse(service.history(slot.current, user, limit))

    @app.get("/items", response_model=ItemList, dependencies=protected, tags=["items"],
             responses=_errors(401, 422))
    def get_items(q: Annotated[str, Query(min_length=1, max_length=_MAX_QUERY_CHARS)],
                  limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Any:
        """Items whose id equals ``q`` or whose title contains it (case-insensitive), popular first."""
        return JSONResponse(service.search(slot.current, q, limit))

    @app.get("/info", response_model=Info, dependencies=protected, tags=["service"],
             responses=_errors(401))
    async def get_info() -> Any:
        """The live model and what this server can do with it."""
        live = slot.current
        order = np.argsort(-live.user_counts, kind="stable")[:20]
        return JSONResponse({
            "model": live.name, "model_version": live.version, "n_users": live.model.n_users,
            "n_items": live.model.n_items, "fold_in": live.fold_in_reason is None,
            "explain_method": live.explain_method, "titles": live.titles is not None,
            "example_users": live.model.user_map_.to_raw(np.sort(order)).tolist(), "auth": bool(key_bytes),
            "limits": {"k": MAX_K, "list": MAX_LIST, "batch_users": MAX_BATCH_USERS,
                       "explain_items": MAX_EXPLAIN_ITEMS, "top": MAX_TOP, "body_bytes": max_body_bytes},
        })

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> Any:
        """The process is up and answering."""
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", response_model=Readiness, tags=["service"])
    async def readyz() -> Any:
        """A verified model is live (a refused reload does not change that)."""
        live = slot.current
        return JSONResponse({
            "status": "ready", "model": live.name, "model_version": live.version,
            "loaded_at": datetime.fromtimestamp(live.loaded_at, UTC).isoformat(),
            "n_users": live.model.n_users, "n_items": live.model.n_items, "reloads": slot.reloads,
            "refused_reloads": slot.refused, "last_reload_error": slot.last_error, "pid": os.getpid(),
        })

    @app.get("/metrics", dependencies=protected, tags=["service"], responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"},
        **_errors(401)})
    async def get_metrics() -> Any:
        """Prometheus metrics: request counts and latency histograms by route, reloads, fallbacks."""
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    @app.post("/admin/reload", response_model=ReloadBody, dependencies=[Depends(admin)], tags=["admin"],
              responses=_errors(401, 403, 409))
    async def admin_reload() -> Any:
        """Load and verify the artifact's current version, then swap it in (409 if it is refused)."""
        try:
            old, new = await _reload()
        except Exception as e:  # noqa: BLE001 -- whatever made the artifact unloadable, it is refused
            raise _HTTPError(409, f"reload refused, still serving version {slot.current.version}: {e}") \
                from None
        if signal_file is not None:
            # The other workers cannot be reached from here: tell them through the shared file. Each one
            # loads and verifies the artifact itself, so none can go live with something it could not load.
            token = f"{os.getpid()}-{time.time_ns()}-{new.version}"
            seen_token[0] = token
            atomic_write_text(signal_file, token)
        return JSONResponse({"status": "reloaded", "model_version": new.version,
                             "previous_version": old.version, "workers": "all" if signal_file else "this"})

    page = resources.files("gan4rec.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> Any:
        return HTMLResponse(page, headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                       "style-src 'self' 'unsafe-inline'; img-src 'self' data:",
            "X-Content-Type-Options": "nosniff",
        })

    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics,
                       routes=lambda: frozenset(getattr(r, "path", "") for r in app.routes))
    return app


def create_app_from_env() -> Any:
    """:func:`create_app` with the settings :func:`run_server` put in the environment (one per worker)."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise DataError(f"{SETTINGS_ENV} is not set; start workers with `gan4rec serve --workers N`")
    settings = json.loads(raw)
    return create_app(settings.pop("model_dir"), **settings)


def run_server(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    api_key_file: str | Path | None = None,
    items_file: str | Path | None = None,
    strict_users: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    graceful_timeout: float = 30.0,
    access_log: bool = True,
    log_level: str = "info",
    threads: int | None = None,
) -> None:
    """Serve ``model_dir`` with uvicorn until SIGTERM/SIGINT (which drain requests in flight, then exit).

    With ``workers > 1`` each worker loads the model itself, metrics use prometheus_client's multiprocess
    mode in a temporary folder, and SIGHUP goes to uvicorn's supervisor (see the module docstring).
    """
    import tempfile

    import uvicorn

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DataError(f"workers must be an integer >= 1, got {workers!r}")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise DataError(f"threads must be an integer >= 1, got {threads!r}")
        import torch

        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # spawned workers read it when they import torch
    common: dict[str, Any] = {"host": host, "port": port, "timeout_graceful_shutdown": graceful_timeout,
              "access_log": access_log, "log_level": log_level}
    if workers == 1:
        app = create_app(model_dir, api_key_file=api_key_file, items_file=items_file,
                         strict_users=strict_users, max_body_bytes=max_body_bytes)
        uvicorn.run(app, **common)
        return
    # Fail here, once, with a clear message, rather than in every worker.
    if api_key_file is not None:
        read_api_keys(api_key_file)
    ModelSlot(model_dir, items_file=items_file)
    with tempfile.TemporaryDirectory(prefix="gan4rec-serve-") as shared:
        metrics_dir = Path(shared) / "metrics"
        metrics_dir.mkdir()
        settings = {"model_dir": str(Path(model_dir).resolve()), "strict_users": strict_users,
                    "max_body_bytes": max_body_bytes,
                    "api_key_file": str(Path(api_key_file).resolve()) if api_key_file else None,
                    "items_file": str(Path(items_file).resolve()) if items_file else None,
                    "reload_signal": str(Path(shared) / "reload")}
        env = {SETTINGS_ENV: json.dumps(settings)}
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        previous = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # spawned workers inherit the environment
        try:
            uvicorn.run("gan4rec.serve.app:create_app_from_env", factory=True, workers=workers, **common)
        finally:
            for k, v in previous.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
