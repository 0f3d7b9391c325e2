"""Why did a model score an item this way? Attributions of an item's score to the user's history items.

An explanation answers "which of this user's history items most drove the score of item ``i``", with one
weight per history item. How the weight is computed depends on how the model uses the history, and the
answer says which method it used:

``"exact"``
    Models that score a history ``x`` (a 0/1 row over items) as ``x @ W``: EASE, SLIM, ItemKNN, RP3beta
    and PureSVD (``W = V V^T``). The score of ``i`` is ``sum_j x_j W[j, i]``, so history item ``j``
    contributes exactly ``W[j, i]``; the contributions of the whole history add up to the score.
``"integrated_gradients"``
    Models whose score is a differentiable function of the history vector (Mult-VAE, user-based CFGAN).
    Integrated gradients (Sundararajan et al., ICML 2017) of the item's score with respect to the model's
    input, from an all-zero (empty) history along the straight path to the user's input, with a
    midpoint Riemann sum of ``steps`` points. The weights of all history items add up to
    ``score - baseline`` up to the discretisation error, ``baseline`` being the score of an empty history.
    Mult-VAE L2-normalises the history before encoding it, which makes its score constant along the path
    from 0 to ``x``; the path is therefore taken in the normalised input ``x / |x|``, whose components
    are what the encoder sees.
``"embedding_similarity (approximate)"``
    Matrix-factorisation models (BPR, iALS, IRGAN) score with a user vector learned during training,
    not from the history, so no history item "drives" the score. The history items whose embeddings are
    closest (cosine) to the item's embedding are returned as an approximate explanation, flagged
    ``approximate=True``.

Models without any of these (TopPop, UserKNN, item-based CFGAN) raise :class:`UnsupportedError` with the
reason.

A cold item of a cold-start hybrid has no history item to credit: :mod:`gan4rec.explain_cold` explains its
score by the item's content features instead (``gan4rec explain`` picks it for cold items).

Adding a model
--------------
:data:`_RULES` maps a registry name to a function ``model -> rule``, so a model with modes (CFGAN: user-
or item-based) can pick per instance. A new model is one entry: ``_Linear(block_fn)``,
``_Gradient(forward_fn)``, ``_Embedding(embedding_fn)`` or ``_Unsupported(reason)``. Fold-in of a new
history (:func:`fold_in_support`, :func:`fold_in_scores`) needs no entry: a model folds in if it defines
``score_history`` or has a ``_Gradient`` rule, unless :data:`_NO_FOLD_IN` gives a reason why this
instance cannot (item-based CFGAN).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from gan4rec.errors import DataError
from gan4rec.models.base import Recommender

__all__ = [
    "METHOD_EMBEDDING",
    "METHOD_EXACT",
    "METHOD_INTEGRATED_GRADIENTS",
    "Explanation",
    "UnsupportedError",
    "explain",
    "explain_items",
    "explanation_method",
    "fold_in_scores",
    "fold_in_support",
    "history_matrix",
    "similar_items",
]

log = logging.getLogger(__name__)

METHOD_EXACT = "exact"
METHOD_INTEGRATED_GRADIENTS = "integrated_gradients"
METHOD_EMBEDDING = "embedding_similarity (approximate)"

# Upper bound on the floats of one integrated-gradients batch ((items x steps) rows x n_items), 64 MB.
_IG_BATCH_FLOATS = 1 << 24


class UnsupportedError(DataError):
    """The model cannot do what was asked (explain a score, fold in a new history); the message says why."""


@dataclass(frozen=True)
class Explanation:
    """Attribution of one item's score to the history items that drove it.

    Attributes
    ----------
    item
        Index of the explained item.
    score
        The model's score of ``item`` for this user or history.
    method
        :data:`METHOD_EXACT`, :data:`METHOD_INTEGRATED_GRADIENTS` or :data:`METHOD_EMBEDDING`.
    approximate
        ``True`` when the weights do not decompose the score (embedding similarity).
    items, weights
        ``(m,)`` history item indices and their weights, largest weight first (ties: lower index first),
        at most ``top`` of them.
    total
        Sum of the weights of the *whole* history (not only the ``top`` shown): the score for
        ``"exact"``, ``score - baseline`` up to the Riemann error for integrated gradients, ``None`` for
        similarities, whose sum means nothing.
    baseline
        Score of an empty history for integrated gradients, else ``None``.
    history_size
        Number of history items the weights were computed over.
    """

    item: int
    score: float
    method: str
    approximate: bool
    items: np.ndarray
    weights: np.ndarray
    total: float | None
    baseline: float | None
    history_size: int
    warnings: tuple[str, ...] = field(default=())

    def pairs(self) -> list[tuple[int, float]]:
        """``[(history item index, weight), ...]``, largest weight first."""
        return [(int(i), float(w)) for i, w in zip(self.items.tolist(), self.weights.tolist())]


# ------------------------------------------------------------------------------------------------ rules
@dataclass(frozen=True)
class _Linear:
    """Score ``x @ W``: ``block(model, hist, items) -> W[hist][:, items]`` as a dense ``(h, r)`` array."""

    block: Callable[[Any, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Gradient:
    """``forward(model) -> (prepare, f)``: ``prepare`` maps a dense 0/1 history ``(n, n_items)`` tensor to
    the model input, ``f`` maps inputs to scores ``(n, n_items)``; both differentiable torch functions."""

    forward: Callable[[Any], tuple[Callable[[Any], Any], Callable[[Any], Any]]]


@dataclass(frozen=True)
class _Embedding:
    """``embedding(model) -> (n_items, f)`` item embeddings as a numpy array."""

    embedding: Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class _Unsupported:
    reason: str


_Rule = _Linear | _Gradient | _Embedding | _Unsupported


def _dense_block(model: Any, hist: np.ndarray, items: np.ndarray) -> np.ndarray:
    return np.asarray(model.weights_[np.ix_(hist, items)], dtype=np.float64)  # (h, r)


def _sparse_block(model: Any, hist: np.ndarray, items: np.ndarray) -> np.ndarray:
    # Row slicing a CSR costs the non-zeros of those rows only; the column pick is then tiny.
    return np.asarray(model.weights_[hist][:, items].toarray(), dtype=np.float64)  # (h, r)


def _svd_block(model: Any, hist: np.ndarray, items: np.ndarray) -> np.ndarray:
    v = np.asarray(model.item_factors_, dtype=np.float64)  # (n_items, k)
    return v[hist] @ v[items].T  # (h, r): (V V^T)[hist, items]


def _multvae_forward(model: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    import torch.nn.functional as F

    vae = model.modules_["vae"]

    def prepare(x: Any) -> Any:
        return F.normalize(x, dim=1)

    def f(x: Any) -> Any:
        mu, _ = vae.encode(x)  # (n, latent): the posterior mean, as at scoring time
        return vae.decode(mu)  # (n, n_items)

    return prepare, f


def _torch_numpy(t: Any) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _cfgan_forward(model: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """User-based CFGAN's generator ``G(c_u)`` as an autograd function of the dense condition ``c_u``.

    CFGAN trains with hand-written passes; this re-states its generator forward with the same parameters
    (first layer ``c @ W_c (+ mean noise @ W_z) + b``, hidden activations, linear output), so that
    gradients flow to the input. ``tests/test_explain.py`` checks it against ``model.score``.
    """
    import torch

    gen = model.modules_["generator"]
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}.get(model.g_activation)
    noise_dim = int(model.noise_dim or 0)
    mean_noise = 0.0 if model.noise == "normal" else 0.5

    def f(x: Any) -> Any:
        h = x @ gen.inputs[0] + gen.biases[0]  # (n, H1)
        if noise_dim:
            h = h + mean_noise * gen.inputs[-1].sum(dim=0)  # the scoring-time noise is its mean
        a = act(h) if act is not None else h
        for layer, (w, b) in enumerate(zip(gen.weights, list(gen.biases)[1:], strict=True)):
            a = a @ w + b
            if layer < len(gen.weights) - 1 and act is not None:
                a = act(a)
        return a  # (n, n_items)

    return (lambda x: x), f


def _cfgan_rule(model: Any) -> _Rule:
    if model.mode != "user":
        return _Unsupported("item-based CFGAN generates each item's vector over users; its score of an "
                            "item does not depend on the user's history vector")
    if model.class_condition:
        return _Unsupported("this CFGAN is also conditioned on the user's id, not only on the history")
    return _Gradient(_cfgan_forward)


def _cfgan_fold_in(model: Any) -> str | None:
    if model.mode != "user":
        return ("item-based CFGAN is conditioned on items' user vectors; a new user's history is not an "
                "input it can score without retraining")
    if model.class_condition:
        return "this CFGAN is conditioned on the training user's id, so a new user cannot be folded in"
    return None


_RULES: dict[str, Callable[[Recommender], _Rule]] = {
    "ease": lambda m: _Linear(_dense_block),
    "slim": lambda m: _Linear(_sparse_block),
    "itemknn": lambda m: _Linear(_sparse_block),
    "rp3beta": lambda m: _Linear(_sparse_block),
    "puresvd": lambda m: _Linear(_svd_block),
    "multvae": lambda m: _Gradient(_multvae_forward),
    "bpr": lambda m: _Embedding(lambda model: _torch_numpy(model.modules_["mf"].item.weight)),
    "ials": lambda m: _Embedding(lambda model: _torch_numpy(model.modules_["factors"].item)),
    "irgan": lambda m: _Embedding(
        lambda model: _torch_numpy(model.modules_[model.recommend_with].item.weight)),
    "cfgan": _cfgan_rule,
    "toppop": lambda m: _Unsupported(
        "toppop scores every item by its training popularity, the same for every user; no history item "
        "drives the score"
    ),
    "userknn": lambda m: _Unsupported(
        "userknn scores an item by the similarities of the training users who chose it, not by the "
        "user's own history items"
    ),
}

#: Models that define ``score_history`` but cannot fold in a new history in some configuration:
#: registry name -> (model -> reason, or ``None`` when this instance can).
_NO_FOLD_IN: dict[str, Callable[[Recommender], str | None]] = {"cfgan": _cfgan_fold_in}


def _rule(model: Recommender) -> _Rule:
    make = _RULES.get(model.name)
    if make is not None:
        return make(model)
    from gan4rec.models.baselines.knn import ItemSimilarityRecommender

    if isinstance(model, ItemSimilarityRecommender):
        return _Linear(_sparse_block)
    return _Unsupported(f"no explanation method is registered for model {model.name!r}")


def explanation_method(model: Recommender) -> str | None:
    """The method :func:`explain` uses for ``model``, or ``None`` where it cannot explain it."""
    rule = _rule(model)
    if isinstance(rule, _Linear):
        return METHOD_EXACT
    if isinstance(rule, _Gradient):
        return METHOD_INTEGRATED_GRADIENTS
    if isinstance(rule, _Embedding):
        return METHOD_EMBEDDING
    return None


def fold_in_support(model: Recommender) -> str | None:
    """``None`` when ``model`` scores a new user's history without retraining, else why it cannot."""
    check = _NO_FOLD_IN.get(model.name)
    reason = check(model) if check is not None else None
    if reason is not None:
        return reason
    if not callable(getattr(model, "score_history", None)) and not isinstance(_rule(model), _Gradient):
        return (
            f"model {model.name!r} cannot score a history it was not trained on (it learns one vector per "
            "training user, or scores every user alike); send a known user id instead"
        )
    return None


def fold_in_scores(model: Recommender, history: Any) -> np.ndarray:
    """Scores ``(n, n_items)`` float32 of histories the model may not have seen, without retraining.

    Uses the model's ``score_history`` where it has one, else the differentiable forward of its
    explanation rule (user-based CFGAN), run without gradients.

    Parameters
    ----------
    history
        ``(n, n_items)`` scipy sparse matrix (or dense array), 1 for an interaction.

    Raises
    ------
    UnsupportedError
        When the model cannot fold in a history (see :func:`fold_in_support`).
    """
    reason = fold_in_support(model)
    if reason is not None:
        raise UnsupportedError(reason)
    own = getattr(model, "score_history", None)
    if callable(own):
        return np.asarray(own(history), dtype=np.float32)
    import torch

    rule = _rule(model)
    if not isinstance(rule, _Gradient):  # fold_in_support admits only these
        raise UnsupportedError(f"model {model.name!r} has no way to fold in a history")
    h = sp.csr_matrix(history, dtype=np.float32)
    if h.ndim != 2 or h.shape[1] != model.n_items:
        raise DataError(f"history has shape {h.shape}, expected (n, {model.n_items})")
    prepare, f = rule.forward(model)
    for m in getattr(model, "modules_", {}).values():
        m.eval()
    device = getattr(model, "device_", torch.device("cpu"))
    out = np.empty(h.shape, dtype=np.float32)
    step = max(1, _IG_BATCH_FLOATS // max(model.n_items, 1))
    with torch.no_grad():
        for start in range(0, h.shape[0], step):
            x = torch.as_tensor(h[start : start + step].toarray(), device=device)  # (b, n_items)
            out[start : start + len(x)] = _torch_numpy(f(prepare(x)))
    return out


# ------------------------------------------------------------------------------------------------ helpers
def history_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """``(len(histories), n_items)`` float32 0/1 CSR from lists of item indices (duplicates count once)."""
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    parts = [np.asarray(h, dtype=np.int64).reshape(-1) for h in histories]
    cols = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if cols.size and (cols.min() < 0 or cols.max() >= n_items):
        raise DataError(f"history holds an item index outside 0..{n_items - 1}")
    rows = np.repeat(np.arange(len(histories)), lengths)
    m = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(histories), n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _check_index(value: Any, n: int, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise DataError(f"{what} must be an integer index, got {value!r}")
    if not 0 <= int(value) < n:
        raise DataError(f"{what} index {value} is out of range 0..{n - 1}")
    return int(value)


def _check_top(top: Any) -> int:
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise DataError(f"top must be a positive integer, got {top!r}")
    return int(top)


def _history_of(model: Recommender, user: Any, history: Any) -> tuple[np.ndarray, int | None]:
    """The history (sorted unique item indices) and the user index (``None`` for an ad-hoc history)."""
    if (user is None) == (history is None):
        raise DataError("pass exactly one of user (a user index) or history (item indices)")
    if user is not None:
        u = _check_index(user, model.n_users, "user")
        return np.asarray(model.seen_.row(u), dtype=np.int64), u
    arr = np.asarray(history).reshape(-1)
    if arr.size and arr.dtype.kind not in "iu":
        raise DataError(f"history must hold item indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= model.n_items):
        raise DataError(f"history holds an item index outside 0..{model.n_items - 1}")
    return np.unique(arr), None


def _order(weights: np.ndarray) -> np.ndarray:
    """Positions sorted by weight, largest first; ties keep the input (ascending item) order."""
    return np.argsort(-weights, kind="stable")


# ------------------------------------------------------------------------------------------------ explain
def explain(
    model: Recommender,
    item: int,
    *,
    user: int | None = None,
    history: Sequence[int] | np.ndarray | None = None,
    top: int = 10,
    steps: int = 32,
) -> Explanation:
    """Explain ``model``'s score of ``item`` for a training user or an ad-hoc history.

    Parameters
    ----------
    model
        A fitted recommender.
    item
        Item index to explain.
    user, history
        Exactly one: a user index (the history is the user's training items), or item indices of a
        history the model did not see (needs a model that folds in, see :func:`fold_in_support`).
    top
        Number of history items returned, largest weight first.
    steps
        Riemann points of integrated gradients (ignored by the other methods).

    Returns
    -------
    Explanation

    Raises
    ------
    UnsupportedError
        When the model's scores cannot be attributed to history items (TopPop, UserKNN), or an ad-hoc
        history is given to a model that cannot fold one in.
    DataError
        On a bad index, ``top`` or ``steps``.

    Examples
    --------
    >>> e = explain(ease_model, item=42, user=0, top=3)          # doctest: +SKIP
    >>> e.method, e.pairs()                                       # doctest: +SKIP
    ('exact', [(17, 0.21), (5, 0.12), (99, 0.05)])
    """
    return explain_items(model, [item], user=user, history=history, top=top, steps=steps)[0]


def explain_items(
    model: Recommender,
    items: Sequence[int] | np.ndarray,
    *,
    user: int | None = None,
    history: Sequence[int] | np.ndarray | None = None,
    top: int = 10,
    steps: int = 32,
) -> list[Explanation]:
    """:func:`explain` for several items of the same user or history, computed together.

    Integrated gradients run all items' paths in one batched forward and backward pass, and the exact
    methods read one ``(history, items)`` block of the weight matrix.
    """
    model._check_fitted()
    top = _check_top(top)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 1024:
        raise DataError(f"steps must be an integer in 1..1024, got {steps!r}")
    idx = np.asarray([_check_index(i, model.n_items, "item") for i in np.asarray(items).reshape(-1).tolist()],
                     dtype=np.int64)
    rule = _rule(model)
    if isinstance(rule, _Unsupported):
        raise UnsupportedError(f"cannot explain {model.name}: {rule.reason}")
    hist, u = _history_of(model, user, history)
    if u is None:
        reason = fold_in_support(model)
        if reason is not None:
            raise UnsupportedError(reason)
    if len(idx) == 0:
        return []
    if isinstance(rule, _Linear):
        return _explain_linear(model, rule, hist, u, idx, top)
    if isinstance(rule, _Gradient):
        return _explain_gradient(model, rule, hist, idx, top, int(steps))
    return _explain_embedding(model, rule, hist, u, idx, top)


def _scores(model: Recommender, hist: np.ndarray, user: int | None, items: np.ndarray) -> np.ndarray:
    if user is not None:
        return np.asarray(model.score(np.array([user]))[0, items], dtype=np.float64)  # (r,)
    h = history_matrix([hist], model.n_items)
    return np.asarray(fold_in_scores(model, h)[0, items], dtype=np.float64)


def _finish(item: int, score: float, method: str, weights_all: np.ndarray, hist: np.ndarray, top: int,
            *, total: float | None, baseline: float | None, approximate: bool = False) -> Explanation:
    """Keep the finite weights, sort them, cut to ``top``."""
    warnings: list[str] = []
    finite = np.isfinite(weights_all)
    if not finite.all():
        warnings.append(f"{int((~finite).sum())} history item(s) had a non-finite weight and were left out")
        weights_all, hist = weights_all[finite], hist[finite]
        total = None
    order = _order(weights_all)[:top]
    if total is not None and not np.isfinite(total):
        total = None
    if baseline is not None and not np.isfinite(baseline):
        baseline = None
    return Explanation(
        item=int(item), score=float(score), method=method, approximate=approximate, items=hist[order].copy(),
        weights=weights_all[order].astype(np.float64), total=total, baseline=baseline,
        history_size=int(len(hist) + (~finite).sum()), warnings=tuple(warnings),
    )


def _explain_linear(model: Recommender, rule: _Linear, hist: np.ndarray, user: int | None, items: np.ndarray,
                    top: int) -> list[Explanation]:
    block = rule.block(model, hist, items) if len(hist) else np.zeros((0, len(items)))  # (h, r)
    scores = _scores(model, hist, user, items)  # (r,)
    out = []
    for c, i in enumerate(items):
        # A zero weight is an item that does not vote for ``i`` at all (sparse W): not part of the answer.
        nz = block[:, c] != 0.0
        e = _finish(int(i), scores[c], METHOD_EXACT, block[nz, c], hist[nz], top,
                    total=float(block[:, c].sum()), baseline=None)
        out.append(dataclasses.replace(e, history_size=len(hist)))
    return out


def _explain_embedding(model: Recommender, rule: _Embedding, hist: np.ndarray, user: int | None,
                       items: np.ndarray, top: int) -> list[Explanation]:
    emb = np.asarray(rule.embedding(model), dtype=np.float64)  # (n_items, f)
    norms = np.linalg.norm(emb, axis=1)  # (n_items,)
    norms[norms == 0.0] = 1.0  # a zero vector has similarity 0 with everything, not NaN
    unit = emb / norms[:, None]
    sims = unit[hist] @ unit[items].T  # (h, r) cosine similarities
    scores = _scores(model, hist, user, items)
    return [
        _finish(int(i), scores[c], METHOD_EMBEDDING, sims[:, c], hist, top, total=None, baseline=None,
                approximate=True)
        for c, i in enumerate(items)
    ]


def _explain_gradient(model: Recommender, rule: _Gradient, hist: np.ndarray, items: np.ndarray, top: int,
                      steps: int) -> list[Explanation]:
    import torch

    prepare, f = rule.forward(model)
    modules = getattr(model, "modules_", {})
    for m in modules.values():
        m.eval()
    device = getattr(model, "device_", torch.device("cpu"))
    n = model.n_items
    x0 = torch.zeros((1, n), dtype=torch.float32, device=device)
    if len(hist):
        x0[0, torch.as_tensor(hist, device=device)] = 1.0
    with torch.no_grad():
        x = prepare(x0)  # (1, n) the model input of this history
        full = f(x)[0, torch.as_tensor(items, device=device)]  # (r,)
        base = f(torch.zeros_like(x))[0, torch.as_tensor(items, device=device)]  # (r,)
    alphas = (torch.arange(steps, dtype=torch.float32, device=device) + 0.5) / steps  # (steps,) midpoints
    path = alphas[:, None] * x  # (steps, n)
    hist_t = torch.as_tensor(hist, device=device)
    per_batch = max(1, _IG_BATCH_FLOATS // (steps * n))
    attributions = np.empty((len(items), len(hist)), dtype=np.float64)  # (r, h)
    for start in range(0, len(items), per_batch):
        chunk = torch.as_tensor(items[start : start + per_batch], device=device)  # (c,)
        inputs = path.repeat(len(chunk), 1).requires_grad_(True)  # (c * steps, n)
        with torch.enable_grad():
            out = f(inputs)  # (c * steps, n_items)
            picked = out[torch.arange(len(inputs), device=device), chunk.repeat_interleave(steps)]
            # Inputs only: parameter .grad stays untouched, so concurrent requests cannot interfere.
            (grad,) = torch.autograd.grad(picked.sum(), inputs)
        mean_grad = grad.view(len(chunk), steps, n).mean(dim=1)  # (c, n)
        attributions[start : start + len(chunk)] = _torch_numpy((mean_grad * x)[:, hist_t]).astype(np.float64)
    full_np, base_np = _torch_numpy(full).astype(np.float64), _torch_numpy(base).astype(np.float64)
    return [
        _finish(int(i), full_np[c], METHOD_INTEGRATED_GRADIENTS, attributions[c], hist, top,
                total=float(attributions[c].sum()), baseline=float(base_np[c]))
        for c, i in enumerate(items)
    ]


# ------------------------------------------------------------------------------------------------ similar
def similar_items(model: Recommender, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray, str]:
    """The ``k`` items most related to ``item`` according to ``model``, best first, without ``item`` itself.

    Returns ``(items, scores, method)`` where ``method`` says how relatedness was measured:

    - ``"fold_in"``: models that fold in a history score a user whose only item is ``item`` (for the
      linear models that is row ``item`` of ``W``: the items it votes for);
    - ``"embedding_cosine"``: cosine similarity of item embeddings (matrix factorisation);
    - ``"cooccurrence_cosine"``: cosine similarity of the items' training-user sets (other models).

    Non-finite scores are left out, so fewer than ``k`` items may come back.
    """
    from gan4rec.evaluation.evaluator import topk

    model._check_fitted()
    i = _check_index(item, model.n_items, "item")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be a positive integer, got {k!r}")
    rule = _rule(model)
    if fold_in_support(model) is None:
        one = history_matrix([np.array([i])], model.n_items)
        scores = np.asarray(fold_in_scores(model, one), dtype=np.float64)[0]
        method = "fold_in"
    elif isinstance(rule, _Embedding):
        emb = np.asarray(rule.embedding(model), dtype=np.float64)  # (n_items, f)
        norms = np.linalg.norm(emb, axis=1)
        norms[norms == 0.0] = 1.0
        scores = (emb @ emb[i]) / (norms * norms[i])  # (n_items,)
        method = "embedding_cosine"
    else:
        x = model.seen_.csr()  # (n_users, n_items)
        co = np.asarray((x.T @ x[:, [i]]).toarray(), dtype=np.float64).ravel()  # (n_items,) co-occurrences
        counts = model.seen_.item_counts().astype(np.float64)
        denom = np.sqrt(counts * counts[i])
        scores = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
        method = "cooccurrence_cosine"
    scores = scores.copy()
    scores[~np.isfinite(scores)] = -np.inf
    scores[i] = -np.inf
    values, idx = topk(scores, min(int(k), model.n_items))
    vals, ids = values.numpy(), idx.numpy().astype(np.int64)
    keep = np.isfinite(vals) & (ids >= 0)
    return ids[keep], vals[keep], method
