"""How much synthetic users reveal about the real users a generator was trained on.

Everything compares *members* (the users the generator was fitted on) with *non-members* (real users it
never saw, drawn from the same data). An attacker who cannot tell them apart scores AUC 0.5.

Distance to closest record (DCR)
    The Jaccard distance ``1 - |a & b| / |a | b|`` from a real user's item set to the nearest synthetic
    user. A generator that memorises puts members closer than non-members. The *exact-copy rate* is the
    share of synthetic users whose item set equals some member's.

Membership inference, two attackers (user level)
    ``dcr``: the score is minus the DCR (closer = more likely a member); AUC over members vs non-members.
    ``shadow``: the attacker holds real users of their own (disjoint from both groups), trains the same
    generator on half of them (shadow members), samples a release of the same relative size, and fits a
    logistic regression from distance features (DCR, second-closest distance, mean of the five closest,
    log degree) to shadow membership; it is then applied to the real members and non-members against the
    real release. AUC as above.

Attribute inference (when synthetic users carry a ``gender`` feature, i.e. a conditioned generator)
    A classifier of gender from item sets is trained on the synthetic users and tested on real members'
    items; compared with one that sees only popularity (degree and mean log popularity of the items).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from gan4rec.data.interactions import Interactions
from gan4rec.synth.generators import rows_of

__all__ = ["attribute_inference", "distance_features", "exact_copy_rate", "membership_auc", "shadow_attack"]

logger = logging.getLogger(__name__)

_QUERY_CHUNK_CELLS = 1 << 24  # bound on one dense (queries x synthetic users) block of intersections


def distance_features(queries: sp.csr_matrix, synth: sp.csr_matrix) -> np.ndarray:
    """``(n_queries, 4)``: DCR, second-closest distance, mean of the 5 closest (Jaccard), log1p degree."""
    q = sp.csr_matrix(queries).astype(np.float32, copy=True)
    q.data[:] = 1.0
    s = sp.csr_matrix(synth).astype(np.float32, copy=True)
    s.data[:] = 1.0
    qn = np.asarray(q.sum(axis=1)).ravel()  # (n_q,)
    sn = np.asarray(s.sum(axis=1)).ravel()  # (n_s,)
    st = s.T.tocsc()
    k = min(5, s.shape[0])
    out = np.zeros((q.shape[0], 4))
    step = max(1, _QUERY_CHUNK_CELLS // max(s.shape[0], 1))
    for start in range(0, q.shape[0], step):
        inter = np.asarray((q[start : start + step] @ st).todense())  # (b, n_s)
        union = qn[start : start + step, None] + sn[None, :] - inter
        dist = 1.0 - np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)  # (b, n_s)
        near = np.sort(np.partition(dist, k - 1, axis=1)[:, :k], axis=1)  # (b, k) closest first
        out[start : start + len(dist), 0] = near[:, 0]
        out[start : start + len(dist), 1] = near[:, min(1, k - 1)]
        out[start : start + len(dist), 2] = near.mean(axis=1)
    out[:, 3] = np.log1p(qn)
    return out


def exact_copy_rate(members: sp.csr_matrix, synth: sp.csr_matrix) -> float:
    """Share of synthetic users whose item set equals some member's."""
    def keys(m: sp.csr_matrix) -> list[bytes]:
        m = sp.csr_matrix(m)
        m.sort_indices()
        return [np.asarray(m.indices[m.indptr[r] : m.indptr[r + 1]], dtype=np.int64).tobytes()
                for r in range(m.shape[0])]

    known = set(keys(members))
    rows = keys(synth)
    return float(np.mean([r in known for r in rows])) if rows else float("nan")


def membership_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> dict[str, Any]:
    """AUC (members positive; higher score = more member-like) and the ROC curve's points."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    s = np.r_[member_scores, nonmember_scores]
    fpr, tpr, _ = roc_curve(y, s)
    return {"auc": float(roc_auc_score(y, s)), "fpr": fpr, "tpr": tpr}


def _attacker() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def shadow_attack(
    make_generator: Callable[[], Any],
    aux: Interactions,
    n_synth_per_member: float,
    members: sp.csr_matrix,
    nonmembers: sp.csr_matrix,
    synth: sp.csr_matrix,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The shadow-model attacker (module docstring); returns its AUC and ROC on the real groups.

    Parameters
    ----------
    make_generator
        A new unfitted generator of the attacked kind (the attacker knows the algorithm).
    aux
        The attacker's own real users, disjoint from members and non-members.
    n_synth_per_member
        Release size over training size of the attacked release; the shadow release keeps the ratio.
    """
    order = rng.permutation(aux.n_users)
    inside, outside = order[: aux.n_users // 2], order[aux.n_users // 2 :]
    shadow_train = rows_of(aux, inside)
    gen = make_generator().fit(shadow_train)
    n_shadow = max(1, round(n_synth_per_member * len(inside)))
    shadow_synth = gen.sample(n_shadow, random_state=int(rng.integers(0, 2**31 - 1))).csr()
    x = distance_features(aux.csr()[np.r_[inside, outside]], shadow_synth)
    y = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    clf = _attacker().fit(x, y)
    score = clf.predict_proba(distance_features(sp.vstack([members, nonmembers]).tocsr(), synth))[:, 1]
    return membership_auc(score[: members.shape[0]], score[members.shape[0] :])


def attribute_inference(synth: Interactions, targets: Interactions, attribute: str = "gender") -> dict[str, Any] | None:
    """AUC of predicting ``attribute`` of ``targets`` from items, trained on synthetic users; ``None`` if N/A.

    Returns ``{"auc_items", "auc_popularity"}``: a logistic regression on the item sets, and one on
    popularity alone (degree and mean log item popularity in the synthetic data).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    if attribute not in synth.user_features or attribute not in targets.user_features:
        return None
    ys, yt = np.asarray(synth.user_features[attribute]), np.asarray(targets.user_features[attribute])
    levels = sorted(set(ys.tolist()) & set(yt.tolist()))
    if len(levels) != 2:
        return None
    pos = levels[1]
    keep_s, keep_t = np.isin(ys, levels), np.isin(yt, levels)
    xs, xt = synth.csr()[keep_s], targets.csr()[keep_t]
    ys_b, yt_b = (ys[keep_s] == pos).astype(int), (yt[keep_t] == pos).astype(int)
    if len(set(ys_b.tolist())) < 2 or len(set(yt_b.tolist())) < 2:
        return None
    items = LogisticRegression(C=0.1, max_iter=2000).fit(xs, ys_b)
    logpop = np.log1p(synth.item_counts().astype(np.float64))

    def pop_feats(x: sp.csr_matrix) -> np.ndarray:
        deg = np.asarray(x.sum(axis=1)).ravel()
        mean = np.asarray(x @ logpop).ravel() / np.maximum(deg, 1)
        return np.c_[np.log1p(deg), mean]

    pop = LogisticRegression(max_iter=1000).fit(pop_feats(xs), ys_b)
    return {
        "attribute": attribute, "positive": str(pos),
        "auc_items": float(roc_auc_score(yt_b, items.predict_proba(xt)[:, 1])),
        "auc_popularity": float(roc_auc_score(yt_b, pop.predict_proba(pop_feats(xt))[:, 1])),
    }
