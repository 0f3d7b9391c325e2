"""How faithful synthetic users are to the real ones: marginals, co-occurrence, and train-on-synthetic utility.

Marginals
    Item popularity (each item's share of users) and user activity (each user's number of items), real vs
    synthetic: the two-sample Kolmogorov-Smirnov statistic, the 1-Wasserstein distance, and the Gini index
    of each side (:func:`gan4rec.evaluation.metrics.gini_index`).

Co-occurrence
    For the ``top_n`` items most popular in the real data, the share of users holding each pair, real vs
    synthetic; their Pearson correlation over the pairs.

Utility: train on synthetic, test on real (TSTR)
    Each model in :data:`TSTR_MODELS` is fitted on the synthetic users and, separately, on the real
    training users. Both are evaluated with the usual full-ranking protocol
    (:func:`gan4rec.evaluation.evaluator.evaluate`) on *held-out real users* whom neither saw: each
    held-out user's train items are folded in (item-item models multiply them by their item weights; iALS
    solves the user's least-squares problem against the fixed item factors; PureSVD projects them) and
    their held-out test items are the relevant ones. The TSTR ratio of a model is NDCG@20 trained on
    synthetic over NDCG@20 trained on real. Kendall's tau compares the models' ranking on the two.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from gan4rec.data.interactions import Interactions
from gan4rec.evaluation.metrics import gini_index

__all__ = [
    "TSTR_METRIC",
    "TSTR_MODELS",
    "cooccurrence",
    "fit_tstr_models",
    "fold_in",
    "marginals",
    "tstr_scores",
    "tstr_summary",
]

logger = logging.getLogger(__name__)

#: Models trained on synthetic users for TSTR and for the ranking-preservation tau.
TSTR_MODELS: tuple[str, ...] = ("ease", "itemknn", "ials", "puresvd", "toppop")
TSTR_METRIC = "NDCG@20"


def _compare(real: np.ndarray, synth: np.ndarray, scale_real: float, scale_synth: float) -> dict[str, float]:
    """KS and Wasserstein of ``counts / scale`` on each side; Gini of the counts (scale-free)."""
    from scipy.stats import ks_2samp, wasserstein_distance

    r, s = real / max(scale_real, 1.0), synth / max(scale_synth, 1.0)
    return {
        "ks": float(ks_2samp(r, s).statistic),
        "wasserstein": float(wasserstein_distance(r, s)),
        "gini_real": gini_index(real),
        "gini_synth": gini_index(synth),
    }


def marginals(real: Interactions, synth: Interactions) -> dict[str, dict[str, float]]:
    """KS, Wasserstein and Gini of item popularity (share of users) and user activity (items per user)."""
    return {
        "item_popularity": _compare(real.item_counts(), synth.item_counts(), real.n_users, synth.n_users),
        "user_activity": _compare(real.user_counts(), synth.user_counts(), 1.0, 1.0),
    }


def cooccurrence(real: Interactions, synth: Interactions, top_n: int = 100) -> dict[str, Any]:
    """Correlation of real and synthetic pair shares over the ``top_n`` most popular real items.

    Returns ``{"correlation", "top_n", "real", "synth"}``, the last two being the pair shares (upper
    triangle, row-major) for a scatter plot.
    """
    top = np.argsort(-real.item_counts(), kind="stable")[: min(top_n, real.n_items)]
    iu = np.triu_indices(len(top), k=1)

    def shares(inter: Interactions) -> np.ndarray:
        x = inter.csr()[:, top].astype(np.float64)  # (n_users, top_n)
        return np.asarray((x.T @ x).todense())[iu] / max(inter.n_users, 1)

    r, s = shares(real), shares(synth)
    corr = float(np.corrcoef(r, s)[0, 1]) if r.std() > 0 and s.std() > 0 else float("nan")
    return {"correlation": corr, "top_n": len(top), "real": r, "synth": s}


# ------------------------------------------------------------------------------------------ TSTR
def fit_tstr_models(train: Interactions, models: Sequence[str] = TSTR_MODELS, *, random_state: int = 0) -> dict[str, Any]:
    """Each model of ``models`` with its registry defaults (one torch thread, CPU), fitted on ``train``."""
    from gan4rec.models import create

    out = {}
    for name in models:
        params: dict[str, Any] = {}
        takes = create(name).get_params()
        if "n_threads" in takes:
            params["n_threads"] = 1
        if "device" in takes:
            params["device"] = "cpu"
        out[name] = create(name, params, random_state=random_state).fit(train)
    return out


def _ials_fold_in(model: Any, history: sp.csr_matrix) -> np.ndarray:
    """iALS user factors of new histories against the fixed item factors (the model's user solve)."""
    y = model.modules_["factors"].item.detach().cpu().double().numpy()  # (n_items, f)
    alpha, reg = float(model.alpha), float(model.reg)
    gram = y.T @ y + reg * np.eye(y.shape[1])  # (f, f)
    x = np.zeros((history.shape[0], y.shape[1]))
    for r in range(history.shape[0]):
        items = history.indices[history.indptr[r] : history.indptr[r + 1]]
        if len(items):
            yi = y[items]  # (n_r, f)
            x[r] = np.linalg.solve(gram + alpha * yi.T @ yi, (1.0 + alpha) * yi.sum(axis=0))
    return (x @ y.T).astype(np.float32)  # (n, n_items)


def fold_in(model: Any, history: sp.csr_matrix) -> np.ndarray:
    """Scores ``(n, n_items)`` of histories the model was not trained on (see the module docstring)."""
    if model.name == "ials":
        return _ials_fold_in(model, history)
    if model.name == "toppop":
        pop = model.seen_.item_counts().astype(np.float32)
        return np.broadcast_to(pop, (history.shape[0], len(pop))).copy()
    return np.asarray(model.score_history(history), dtype=np.float32)


def tstr_scores(models: dict[str, Any], eval_train: Interactions, eval_test: Interactions) -> dict[str, float]:
    """NDCG@20 of each fitted model on held-out real users (their train items folded in)."""
    from gan4rec.evaluation.evaluator import evaluate

    hist = eval_train.csr()
    out = {}
    for name, model in models.items():
        def score(users: np.ndarray, m: Any = model) -> np.ndarray:
            return fold_in(m, hist[users])

        res = evaluate(score, eval_train, eval_test, ks=(20,), metrics=["NDCG"], device="cpu")
        out[name] = float(res.metrics[TSTR_METRIC])
    return out


def tstr_summary(synth: dict[str, float], real: dict[str, float]) -> dict[str, Any]:
    """TSTR ratio per model (synthetic / real NDCG@20) and Kendall's tau of the two rankings."""
    from scipy.stats import kendalltau

    names = [n for n in real if n in synth]
    ratio = {n: (synth[n] / real[n] if real[n] > 0 else float("nan")) for n in names}
    tau = kendalltau([real[n] for n in names], [synth[n] for n in names]).statistic if len(names) > 1 else float("nan")
    return {"tstr_ndcg": synth, "real_ndcg": real, "tstr_ratio_by_model": ratio, "kendall_tau": float(tau)}
