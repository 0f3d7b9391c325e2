"""Neighbourhood models (ItemKNN, UserKNN) and the item-to-item scoring base shared with SLIM and RP3beta.

Every item-to-item model here scores a user as ``history @ W``: ``history`` is the user's 0/1 row over
items and ``W`` an ``(n_items, n_items)`` sparse matrix whose column ``j`` holds the weights of the items
that vote for item ``j``. :class:`ItemSimilarityRecommender` implements scoring, fold-in of unseen users
(:meth:`~ItemSimilarityRecommender.score_history`) and persistence once for all of them.

Similarities are computed a block of rows at a time: a ``(block, n)`` float64 slice of the Gram matrix is
materialised, normalised, cut to its top ``k`` entries per row and kept as sparse triplets, so a catalog
of tens of thousands of items never holds more than one dense block (:data:`BLOCK_BYTES`) at once.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from gan4rec.data.interactions import Interactions
from gan4rec.errors import ArtifactError
from gan4rec.models.base import Recommender, SearchSpace
from gan4rec.models.baselines.common import (
    BLOCK_BYTES,
    check_choice,
    check_float,
    check_history,
    check_int,
    product_blocks,
    topk_rows,
    triplets_to_csr,
)

__all__ = [
    "BLOCK_BYTES",
    "FEATURE_WEIGHTINGS",
    "SIMILARITIES",
    "ItemKNN",
    "ItemSimilarityRecommender",
    "UserKNN",
]

log = logging.getLogger(__name__)

#: Similarity functions of :class:`ItemKNN` / :class:`UserKNN`.
SIMILARITIES = ("cosine", "jaccard", "asymmetric")
#: Feature weightings applied to the interaction matrix before the similarity.
FEATURE_WEIGHTINGS = ("none", "tfidf", "bm25")

# BM25's usual constants (Robertson & Zaragoza 2009); not tuned, as in most recommender studies.
_BM25_K1 = 1.2
_BM25_B = 0.75
# Keeps a zero-norm row's denominator away from 0 (its Gram entries are 0 anyway).
_EPS = 1e-6


# ------------------------------------------------------------------------------------------------ similarity
def _feature_weighting(docs: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """Re-weight a ``(n_docs, n_terms)`` matrix as documents described by terms (TF-IDF or Okapi BM25).

    For ItemKNN the documents are the items and the terms the users, so users with long histories, which
    say little about any one item pair, weigh less. ``idf_t = log(n_docs / df_t)`` is never negative.
    """
    if weighting == "none":
        return docs
    out = docs.tocoo(copy=True)
    n_docs = docs.shape[0]
    df = np.bincount(out.col, minlength=docs.shape[1]).astype(np.float64)  # (n_terms,)
    idf = np.log(n_docs / np.maximum(df, 1.0))
    if weighting == "tfidf":
        out.data = np.sqrt(out.data) * idf[out.col]
    else:
        length = np.asarray(docs.sum(axis=1)).ravel()  # (n_docs,)
        norm = (1.0 - _BM25_B) + _BM25_B * length / max(length.mean(), _EPS)
        out.data = out.data * (_BM25_K1 + 1.0) / (out.data + _BM25_K1 * norm[out.row]) * idf[out.col]
    return out.tocsr()


def _neighbours(docs: sp.csr_matrix, *, k: int, shrink: float, similarity: str, alpha: float,
                block_bytes: int = BLOCK_BYTES) -> sp.csr_matrix:
    """Row-pruned similarity of the rows of ``docs``: row ``t`` holds the top ``k`` neighbours of ``t``.

    ``docs`` is ``(n_docs, n_terms)``. With ``g = <d_t, d_n>`` and ``s_x = sum of squares of row x``:

    - cosine: ``g / (sqrt(s_t) sqrt(s_n) + shrink)``;
    - asymmetric: ``g / (s_t^alpha s_n^(1 - alpha) + shrink)`` (cosine at ``alpha = 0.5``);
    - jaccard: ``g / (s_t + s_n - g + shrink)`` (Tanimoto; the Jaccard index on 0/1 rows).

    Returns ``(n_docs, n_docs)`` float32 CSR without diagonal; ``W[t, n]`` is the weight of ``n`` for ``t``.
    """
    docs = sp.csr_matrix(docs, dtype=np.float64)
    n_docs = docs.shape[0]
    sq = np.asarray(docs.multiply(docs).sum(axis=1)).ravel()  # (n_docs,)
    # Cosine and asymmetric cosine divide by an outer product left[t] * right[n]; the target side
    # (row) takes alpha.
    a = 0.5 if similarity == "cosine" else alpha
    left, right = np.power(sq, a), np.power(sq, 1.0 - a)  # (n_docs,) each
    parts = []
    for start, gram in product_blocks(docs, docs.T.tocsr(), block_bytes):  # (b, n_docs)
        rows = slice(start, start + gram.shape[0])
        if similarity == "jaccard":
            denom = sq[rows, None] + sq[None, :] - gram
        else:
            denom = np.outer(left[rows], right)
        denom += shrink + _EPS
        gram /= denom
        parts.append(topk_rows(gram, k, start))
    return triplets_to_csr(parts, (n_docs, n_docs))


# ------------------------------------------------------------------------------------------------ base
class ItemSimilarityRecommender(Recommender):
    """Base of models that score ``history @ W`` with a sparse ``(n_items, n_items)`` matrix ``weights_``.

    Subclasses set ``self.weights_`` (float32 CSR) in ``_fit``; scoring, fold-in and save/load are here.
    """

    weights_: sp.csr_matrix

    def score_history(self, history: Any) -> np.ndarray:
        """Scores of every item for users given by their histories, seen in training or not.

        Parameters
        ----------
        history
            ``(n, n_items)`` scipy sparse matrix (or dense array) of interactions, 1 for an interaction.

        Returns
        -------
        np.ndarray
            ``(n, n_items)`` float32 scores; history items are not masked.
        """
        self._check_fitted()
        h = check_history(history, self.n_items)  # (n, n_items)
        return np.asarray((h @ self.weights_).toarray(), dtype=np.float32)  # (n, n_items)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.score_history(self.seen_.csr()[users])

    def _state(self) -> dict[str, np.ndarray]:
        return _csr_state("weights", self.weights_)

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.weights_ = _csr_from_state(self, arrays, "weights", (self.n_items, self.n_items))


def _csr_state(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}.indptr": np.asarray(m.indptr, dtype=np.int64),
        f"{prefix}.indices": np.asarray(m.indices, dtype=np.int32),
        f"{prefix}.data": np.asarray(m.data, dtype=np.float32),
    }


def _csr_from_state(model: Recommender, arrays: dict[str, np.ndarray], prefix: str,
                    shape: tuple[int, int]) -> sp.csr_matrix:
    """Rebuild a CSR saved by :func:`_csr_state`, checking every shape and index."""
    indptr = model._expect_shape(arrays, f"{prefix}.indptr", (shape[0] + 1,)).astype(np.int64)
    nnz = int(indptr[-1]) if len(indptr) else 0
    indices = model._expect_shape(arrays, f"{prefix}.indices", (nnz,)).astype(np.int32)
    data = model._expect_shape(arrays, f"{prefix}.data", (nnz,)).astype(np.float32)
    bad_index = nnz > 0 and (indices.min() < 0 or indices.max() >= shape[1])
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or bad_index:
        raise ArtifactError(f"saved {model.name} matrix {prefix!r} is not a valid CSR of shape {shape}")
    out = sp.csr_matrix((data, indices, indptr), shape=shape)
    out.sort_indices()
    return out


# ------------------------------------------------------------------------------------------------ models
_KNN_SPACE: SearchSpace = {
    "topk": {"type": "int", "low": 5, "high": 1000, "log": True},
    "shrink": {"type": "int", "low": 0, "high": 1000},
    "similarity": {"type": "categorical", "choices": list(SIMILARITIES)},
    "alpha": {"type": "float", "low": 0.0, "high": 1.0},
    "feature_weighting": {"type": "categorical", "choices": list(FEATURE_WEIGHTINGS)},
}


class _KNNParams:
    """Validation of the hyperparameters shared by the two neighbourhood models."""

    topk: int
    shrink: float
    similarity: str
    alpha: float
    feature_weighting: str

    def _checked(self) -> dict[str, Any]:
        return {
            "k": check_int("topk", self.topk, 1),
            "shrink": check_float("shrink", self.shrink, low=0.0),
            "similarity": check_choice("similarity", self.similarity, SIMILARITIES),
            "alpha": check_float("alpha", self.alpha, low=0.0, high=1.0),
        }


class ItemKNN(_KNNParams, ItemSimilarityRecommender):
    """Item-based k-nearest-neighbours collaborative filtering.

    The score of item ``j`` for user ``u`` is the sum of the similarities between ``j`` and the items
    ``u`` interacted with, over the ``topk`` items most similar to ``j`` (Sarwar et al. 2001; Deshpande &
    Karypis 2004). Similarities are shrunk towards zero for pairs with little support (Bell & Koren 2007).
    Tuned ranges follow the evaluation study of Ferrari Dacrema et al. (RecSys 2019; TOIS 2021).

    Parameters
    ----------
    topk
        Neighbours kept per item (the largest similarities of each column of ``weights_``).
    shrink
        Added to every similarity's denominator.
    similarity
        ``"cosine"``, ``"jaccard"`` or ``"asymmetric"`` (asymmetric cosine, Aiolli 2013).
    alpha
        Exponent of the asymmetric cosine, in ``[0, 1]``; ignored by the other similarities.
    feature_weighting
        ``"none"``, ``"tfidf"`` or ``"bm25"``: weighting of the interaction matrix (items as documents,
        users as terms) before the similarity is computed. Scoring always uses the 0/1 history.
    random_state
        Accepted for a uniform interface; ItemKNN is deterministic.

    References
    ----------
    B. Sarwar, G. Karypis, J. Konstan, J. Riedl. Item-based collaborative filtering recommendation
    algorithms. WWW 2001.
    M. Ferrari Dacrema, P. Cremonesi, D. Jannach. Are we really making much progress? A worrying analysis
    of recent neural recommendation approaches. RecSys 2019.
    """

    name = "itemknn"
    search_space: ClassVar[SearchSpace] = _KNN_SPACE

    def __init__(
        self, *, topk: int = 100, shrink: float = 10.0, similarity: str = "cosine", alpha: float = 0.5,
        feature_weighting: str = "none", random_state: int | None = None,
    ) -> None:
        self.topk = topk
        self.shrink = shrink
        self.similarity = similarity
        self.alpha = alpha
        self.feature_weighting = feature_weighting
        self.random_state = random_state

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        opts = self._checked()
        weighting = check_choice("feature_weighting", self.feature_weighting, FEATURE_WEIGHTINGS)
        docs = _feature_weighting(train.csr().T.tocsr(), weighting)  # (n_items, n_users)
        # Row t of the result holds the neighbours of target item t: transposed, column j votes for j.
        self.weights_ = _neighbours(docs, **opts).T.tocsr()  # (n_items, n_items)
        self.weights_.sort_indices()
        log.debug("itemknn: %d similarities kept", self.weights_.nnz)


class UserKNN(_KNNParams, Recommender):
    """User-based k-nearest-neighbours collaborative filtering.

    The score of item ``j`` for user ``u`` is the sum of the similarities between ``u`` and the ``topk``
    users most similar to ``u`` who interacted with ``j`` (Resnick et al. 1994; Herlocker et al. 1999),
    with shrunk similarities. Ranges follow Ferrari Dacrema et al. (RecSys 2019).

    Parameters
    ----------
    topk
        Neighbours kept per user.
    shrink
        Added to every similarity's denominator.
    similarity
        ``"cosine"``, ``"jaccard"`` or ``"asymmetric"`` (asymmetric cosine).
    alpha
        Exponent of the asymmetric cosine, in ``[0, 1]``; ignored by the other similarities.
    feature_weighting
        ``"none"``, ``"tfidf"`` or ``"bm25"`` weighting (users as documents, items as terms).
    random_state
        Accepted for a uniform interface; UserKNN is deterministic.

    Notes
    -----
    A user's neighbourhood is defined over training users only, so there is no ``score_history`` fold-in.

    References
    ----------
    J. Herlocker, J. Konstan, A. Borchers, J. Riedl. An algorithmic framework for performing collaborative
    filtering. SIGIR 1999.
    """

    name = "userknn"
    search_space: ClassVar[SearchSpace] = _KNN_SPACE

    neighbours_: sp.csr_matrix

    def __init__(
        self, *, topk: int = 100, shrink: float = 10.0, similarity: str = "cosine", alpha: float = 0.5,
        feature_weighting: str = "none", random_state: int | None = None,
    ) -> None:
        self.topk = topk
        self.shrink = shrink
        self.similarity = similarity
        self.alpha = alpha
        self.feature_weighting = feature_weighting
        self.random_state = random_state

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        opts = self._checked()
        weighting = check_choice("feature_weighting", self.feature_weighting, FEATURE_WEIGHTINGS)
        docs = _feature_weighting(train.csr(), weighting)  # (n_users, n_items)
        self.neighbours_ = _neighbours(docs, **opts)  # (n_users, n_users)
        log.debug("userknn: %d similarities kept", self.neighbours_.nnz)

    def _score(self, users: np.ndarray) -> np.ndarray:
        out = self.neighbours_[users] @ self.seen_.csr()  # (n, n_items)
        return np.asarray(out.toarray(), dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return _csr_state("neighbours", self.neighbours_)

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.neighbours_ = _csr_from_state(self, arrays, "neighbours", (self.n_users, self.n_users))
