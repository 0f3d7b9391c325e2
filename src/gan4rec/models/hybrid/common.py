"""What every cold-start hybrid shares: its content, the warm/cold calibration, scoring new items.

A hybrid scores items from two sources: the interactions of warm items (those with training interactions)
and the content of every item, so it can also rank cold items, which have features but no interaction.

Content
    The param ``item_features`` names the item features the model reads (a name, a list of names, or
    ``None`` for all numeric ones of ``train.item_features``). At fit they become one CSR matrix,
    :func:`item_content` (:func:`gan4rec.data.features.feature_matrix`), kept as ``features_``
    ``(n_items, n_features)`` and saved with the model, so the model can score any item from a feature row
    in the same columns. Without any item feature (``item_features=None`` on data that carries none, e.g.
    the contract's checkerboard) ``features_`` has zero columns and each model falls back to pure
    collaborative filtering, as its class docstring says; cold items then all score the same.

Calibration
    Warm and cold scores come from different parts of a model, so their scales rarely match, and the
    overall task (warm and cold items in one ranking) depends on how they compare. Every hybrid takes
    ``cold_scale`` and ``cold_offset``: a cold item's score is ``cold_scale * raw + cold_offset`` (warm
    items keep their raw score). :func:`calibrate` picks both on the VALIDATION overall task of a
    :class:`~gan4rec.data.split.ColdSplit`, after fit and without refitting. Any gain it gives is a
    calibration gain a single scalar pair also gives, which is what GAR-like models must be compared against.
    "Cold" here means no training interaction (``warm_`` is false), which the model can tell at serving
    time; it also covers the items of a split's warm part whose records all fell into validation or test
    (about 5% of CiteULike-t's warm items under :func:`~gan4rec.data.split.cold_items`), so a calibration
    that lifts cold items lifts those in the warm task too.

Feature names
    ``feature_names_`` holds one label per column of ``features_`` (``"genres=Action"``, ``"text=neural"``;
    ``"text=123"`` for a column the data gave no name, :func:`gan4rec.data.features.feature_column_names`),
    saved in the artifact's ``meta.json`` (``feature_names``); an artifact saved before they existed loads
    with index labels (``"item_features=j"``, or ``"NAME=j"`` when the params name one feature).

Serving new items
    :meth:`HybridRecommender.score_new_items` scores items that are not in the item map at all, from
    feature rows in the columns of ``features_`` (the serve layer builds them with the same feature names
    and vocabulary); they are treated as cold (calibrated as cold items).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from gan4rec.artifacts import TensorInfo
from gan4rec.data.features import column_labels, feature_column_names, feature_matrix
from gan4rec.data.interactions import Interactions
from gan4rec.data.split import ColdSplit
from gan4rec.errors import ArtifactError, DataError
from gan4rec.models.base import Recommender

__all__ = [
    "CALIBRATION_QUANTILES",
    "CALIBRATION_SCALES",
    "WEIGHTINGS",
    "HybridRecommender",
    "apply_cold",
    "calibrate",
    "cf_factors",
    "csr_from_state",
    "csr_state",
    "idf_weights",
    "item_content",
    "item_content_names",
    "weigh_rows",
]

log = logging.getLogger(__name__)

#: Scales tried by :func:`calibrate` (1.0 first: ties keep the uncalibrated model).
CALIBRATION_SCALES: tuple[float, ...] = (1.0, 0.25, 0.5, 2.0, 4.0)
#: Warm-score quantiles that :func:`calibrate` moves the median cold score to.
CALIBRATION_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999, 0.9999, 1.0)
#: Users whose scores :func:`calibrate` samples to place its offsets.
_SAMPLE_USERS = 512
#: Largest cache of validation scores :func:`calibrate` keeps (bytes); beyond it scores are recomputed.
_CACHE_BYTES = 1 << 30

#: The sets of non-numeric item features :func:`item_content` has said it leaves out (said once per process).
_SKIPPED_SAID: set[tuple[str, ...]] = set()


def item_content(train: Interactions, names: str | Sequence[str] | None) -> sp.csr_matrix:
    """The item content a hybrid reads: ``(n_items, n_features)`` float32 CSR, zero columns if none.

    ``names=None`` means all numeric ones of ``train.item_features``, sorted by name (text features such as
    MovieLens titles are left out; none at all is allowed: the model then falls back to collaborative
    filtering); a name that is not there, or a text feature named explicitly, is a :class:`DataError`.
    """
    if names is None:
        names = sorted(n for n, v in train.item_features.items() if sp.issparse(v) or np.asarray(v).dtype.kind in "biuf")
        skipped = sorted(set(train.item_features) - set(names))
        if skipped:
            # Every fit reads the content (many per compare or tune): say it at INFO once, then at DEBUG.
            level = logging.DEBUG if tuple(skipped) in _SKIPPED_SAID else logging.INFO
            _SKIPPED_SAID.add(tuple(skipped))
            log.log(level, "item features %s are not numeric; left out of the content", ", ".join(skipped))
        if not names:
            log.info("no numeric item features in the training data; the hybrid falls back to collaborative "
                     "filtering")
            return sp.csr_matrix((train.n_items, 0), dtype=np.float32)
    if names is not None and not isinstance(names, str):
        names = list(names)
        if not all(isinstance(n, str) for n in names):
            raise DataError(f"item_features={names!r}; expected a feature name, a list of names or None")
    return feature_matrix(train, "item", names)


def item_content_names(train: Interactions, names: str | Sequence[str] | None) -> list[str]:
    """One label per column of :func:`item_content` (same ``names``), e.g. ``"genres=Action"``."""
    if names is None:
        names = sorted(n for n, v in train.item_features.items() if sp.issparse(v) or np.asarray(v).dtype.kind in "biuf")
        if not names:
            return []
    return feature_column_names(train, "item", names if isinstance(names, str) else list(names))


#: Column weightings of content (:func:`idf_weights`).
WEIGHTINGS: tuple[str, ...] = ("tfidf", "none")


def idf_weights(docs: sp.csr_matrix, weighting: str) -> np.ndarray:
    """``(n_cols,)`` float32 column weights of content rows: ``log(n_rows / df)`` for ``"tfidf"``, else ones.

    Items are the documents and feature columns the terms, as ItemKNN weighs users; never negative.
    """
    if weighting not in WEIGHTINGS:
        raise DataError(f"weighting={weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
    if weighting == "none":
        return np.ones(docs.shape[1], dtype=np.float32)
    df = np.bincount(docs.indices, minlength=docs.shape[1]).astype(np.float64)  # (n_cols,)
    return np.log(max(docs.shape[0], 1) / np.maximum(df, 1.0)).astype(np.float32)


def weigh_rows(docs: sp.csr_matrix, idf: np.ndarray, weighting: str) -> sp.csr_matrix:
    """Content rows weighted (``sqrt(tf) * idf`` for ``"tfidf"``, as they are for ``"none"``), unit length.

    Rows of zeros stay zero. Returns a new float32 CSR matrix.
    """
    out = sp.csr_matrix(docs, dtype=np.float32, copy=True)
    if weighting == "tfidf":
        out.data = np.sqrt(np.abs(out.data)) * np.sign(out.data) * idf[out.indices]
    norms = np.sqrt(np.asarray(out.multiply(out).sum(axis=1), dtype=np.float64).ravel())  # (n,)
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
    return sp.csr_matrix(sp.diags(scale) @ out)


def cf_factors(model: Recommender) -> tuple[np.ndarray, np.ndarray]:
    """User and item factors of a fitted factor model whose scores are ``U @ V.T``: ``(n_users, f)``, ``(n_items, f)``.

    iALS: its factors. BPR: its embeddings with the item bias folded in as one more column (users get a
    column of ones). Both float32 numpy, on the CPU.
    """
    model._check_fitted()
    modules = getattr(model, "modules_", {})
    if model.name == "ials":
        fac = modules["factors"]
        return (fac.user.detach().cpu().numpy().astype(np.float32),
                fac.item.detach().cpu().numpy().astype(np.float32))
    if model.name == "bpr":
        mf = modules["mf"]
        u = mf.user.weight.detach().cpu().numpy().astype(np.float32)
        v = mf.item.weight.detach().cpu().numpy().astype(np.float32)
        b = mf.item_bias.weight.detach().cpu().numpy().astype(np.float32)  # (n_items, 1)
        return np.hstack([u, np.ones((len(u), 1), np.float32)]), np.hstack([v, b])
    raise DataError(f"backbone {model.name!r} has no factors to read; expected 'ials' or 'bpr'")


def apply_cold(scores: np.ndarray, warm: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """``scores`` with the columns where ``warm`` is false replaced by ``scale * score + offset`` (in place)."""
    if scale == 1.0 and offset == 0.0:
        return scores
    cold = ~warm
    scores[:, cold] = scale * scores[:, cold] + offset
    return scores


def csr_state(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as arrays for an artifact: ``prefix.indptr``, ``.indices``, ``.data``, ``.shape``."""
    return {
        f"{prefix}.indptr": np.asarray(m.indptr, dtype=np.int64),
        f"{prefix}.indices": np.asarray(m.indices, dtype=np.int32),
        f"{prefix}.data": np.asarray(m.data, dtype=np.float32),
        f"{prefix}.shape": np.asarray(m.shape, dtype=np.int64),
    }


def csr_from_state(arrays: dict[str, np.ndarray], prefix: str, n_rows: int) -> sp.csr_matrix:
    """The CSR matrix :func:`csr_state` stored, checked to have ``n_rows`` rows."""
    try:
        shape = tuple(int(v) for v in arrays[f"{prefix}.shape"])
        m = sp.csr_matrix(
            (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]), shape=shape
        )
    except (KeyError, ValueError, TypeError) as e:
        raise ArtifactError(f"saved sparse matrix {prefix!r} is missing or inconsistent ({e})") from None
    if shape[0] != n_rows:
        raise ArtifactError(f"saved sparse matrix {prefix!r} has {shape[0]} rows, expected {n_rows}")
    return m


class HybridRecommender(Recommender):
    """Base of the cold-start hybrids: content at fit, calibrated cold scores, new items, save/load.

    A subclass takes the params ``item_features``, ``cold_scale`` and ``cold_offset`` (plus its own) in its
    keyword-only ``__init__`` and implements:

    - ``_fit_hybrid(train, valid)``: learn; ``self.features_`` and ``self.warm_`` are set;
    - ``_score_raw(users) -> (n, n_items)``: uncalibrated scores of every item of the map;
    - ``_score_content(users, features) -> (n, m)``: uncalibrated scores of ``m`` items known only by
      their content rows ``(m, n_features)``, as a cold item of the map would be scored;
    - ``_hybrid_state()`` / ``_set_hybrid_state(arrays, meta)``: the model's own arrays.

    Fitted attributes: ``features_`` ``(n_items, n_features)`` float32 CSR (:func:`item_content`) and
    ``warm_`` ``(n_items,)`` bool, the items with a training interaction.
    """

    cold_start: ClassVar[bool] = True
    #: Saved arrays whose dtype is not float32, by name suffix (a subclass adds its own).
    state_dtypes: ClassVar[dict[str, str]] = {
        ".shape": "int64", "num_batches_tracked": "int64", "best_epoch": "int64", "warm": "uint8",
    }

    item_features: str | Sequence[str] | None
    cold_scale: float
    cold_offset: float
    features_: sp.csr_matrix
    feature_names_: list[str]
    warm_: np.ndarray

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        self._check_calibration()
        self.features_ = item_content(train, self.item_features)
        self.feature_names_ = item_content_names(train, self.item_features)
        self.warm_ = np.bincount(np.asarray(train.indices, dtype=np.int64), minlength=train.n_items) > 0
        self._fit_hybrid(train, valid)

    def _check_calibration(self) -> None:
        for name in ("cold_scale", "cold_offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(value):
                raise DataError(f"{name}={value!r}; expected a finite number")

    @property
    def n_features(self) -> int:
        """Columns of the content (0 when the model was fitted without item features)."""
        self._check_fitted()
        return int(self.features_.shape[1])

    def _score(self, users: np.ndarray) -> np.ndarray:
        self._check_calibration()
        raw = np.asarray(self._score_raw(users), dtype=np.float32)  # (n, n_items)
        return apply_cold(raw, self.warm_, float(self.cold_scale), float(self.cold_offset))

    def score_new_items(self, users: Any, features: Any) -> np.ndarray:
        """Calibrated scores of items outside the item map, from their content.

        Parameters
        ----------
        users
            User indices.
        features
            ``(m, n_features)`` content of the new items (sparse or dense), in the columns of ``features_``:
            the same feature names, order and vocabulary as at fit.

        Returns
        -------
        np.ndarray
            ``(len(users), m)`` float32, on the same scale as the cold items of :meth:`score`, so the two can
            be ranked together.
        """
        self._check_fitted()
        users = self._check_users(users)
        f = sp.csr_matrix(features, dtype=np.float32)  # (m, n_features)
        if f.ndim != 2 or f.shape[1] != self.n_features:
            raise DataError(f"features have shape {f.shape}; expected (n_new_items, {self.n_features}) "
                            "in the columns the model was fitted with")
        raw = np.asarray(self._score_content(users, f), dtype=np.float32)  # (n, m)
        return float(self.cold_scale) * raw + np.float32(self.cold_offset)

    # ------------------------------------------------------------------ hooks
    def _fit_hybrid(self, train: Interactions, valid: Interactions | None) -> None:
        raise NotImplementedError

    def _score_raw(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score_content(self, users: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _state_dtype(self, name: str) -> str:
        """The dtype an array is saved in, checked at load before any array is read: by name suffix from
        :attr:`state_dtypes`, else as :meth:`Recommender._state_dtype` says (CSR parts, float32)."""
        for suffix, dtype in self.state_dtypes.items():
            if name.endswith(suffix):
                return dtype
        return Recommender._state_dtype(self, name)

    def _check_state_header(
        self, header: dict[str, TensorInfo], n_users: int, n_items: int, file_bytes: int, where: str
    ) -> None:
        """Every saved array has the dtype :meth:`_state_dtype` gives (a torch hybrid's modules depend on its
        content, known only once read, so their shapes are checked when the state is set, by
        :meth:`_expect_shape` and torch's strict ``load_state_dict``)."""
        Recommender._check_state_header(self, header, n_users, n_items, file_bytes, where)

    def _hybrid_state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_hybrid_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def _state(self) -> dict[str, np.ndarray]:
        out = csr_state("features", self.features_)
        out["warm"] = self.warm_.astype(np.uint8)
        out.update({f"hybrid.{k}": v for k, v in self._hybrid_state().items()})
        return out

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """:meth:`Recommender.save`, with ``feature_names_`` in the metadata (``feature_names``)."""
        self._check_fitted()
        return super().save(path, extra={**(extra or {}), "feature_names": list(self.feature_names_)})

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.features_ = csr_from_state(arrays, "features", self.n_items)
        self.feature_names_ = _saved_feature_names(meta.get("feature_names"), self.features_.shape[1],
                                                   self.item_features)
        self.warm_ = self._expect_shape(arrays, "warm", (self.n_items,)).astype(bool)
        self._set_hybrid_state({k.removeprefix("hybrid."): v for k, v in arrays.items()
                                if k.startswith("hybrid.")}, meta)


def _saved_feature_names(saved: Any, n: int, item_features: str | Sequence[str] | None) -> list[str]:
    """The ``feature_names`` of a loaded artifact, checked; index labels when it has none (older artifacts)."""
    if saved is None:
        return column_labels(item_features if isinstance(item_features, str) else "item_features", n, None)
    if not isinstance(saved, list) or len(saved) != n or not all(isinstance(v, str) for v in saved):
        raise ArtifactError(f"metadata 'feature_names' must list {n} strings, one per content column")
    return list(saved)


def calibrate(
    model: HybridRecommender,
    split: ColdSplit,
    metric: str = "NDCG@20",
    *,
    scales: Sequence[float] = CALIBRATION_SCALES,
    quantiles: Sequence[float] = CALIBRATION_QUANTILES,
    random_state: int = 0,
) -> dict[str, Any]:
    """Pick ``cold_scale`` and ``cold_offset`` on the validation overall task, and set them on ``model``.

    The grid: for each scale ``s`` in ``scales``, the offsets that move the median raw score of the
    cold-validation items (times ``s``) onto the ``q``-quantile of the warm items' raw scores, for each
    ``q`` in ``quantiles``, plus offset 0. Quantiles are taken over up to 512 validation users (drawn with
    ``random_state``), so the grid follows each model's own score scale; the metric is computed on all
    validation users of the overall task (:func:`gan4rec.evaluation.cold.evaluate_cold`, ``part="valid"``).
    The first best is kept, and ``(1, 0)`` comes first, so a calibration that does not help changes
    nothing. Test data is never read.

    Parameters
    ----------
    model
        A hybrid fitted on ``split.train`` (or ``split.full_train()``).
    split
        The cold-start split it was fitted on.
    metric
        ``NAME@K`` on the validation overall task.
    scales, quantiles
        The grid (see above).
    random_state
        Seeds the user sample that places the offsets.

    Returns
    -------
    dict
        ``{"cold_scale", "cold_offset", "metric", "value", "uncalibrated", "grid": [[scale, offset, value], ...]}``.
    """
    from gan4rec.evaluation.cold import evaluate_cold

    if not isinstance(model, HybridRecommender):
        raise DataError(f"calibrate needs a cold-start hybrid, got {type(model).__name__}")
    model._check_fitted()
    if "@" not in metric:
        raise DataError(f"metric must look like 'NDCG@20', got {metric!r}")
    k = int(metric.split("@", 1)[1])
    old = (model.cold_scale, model.cold_offset)
    model.cold_scale, model.cold_offset = 1.0, 0.0
    try:
        raw_fn = _cached(model.score, split)
        offsets = _offset_grid(raw_fn, model.warm_, split, scales, quantiles, random_state)
        grid: list[list[float]] = []
        for scale, offset in offsets:
            def fn(users: np.ndarray, s: float = scale, o: float = offset) -> np.ndarray:
                return apply_cold(raw_fn(users).copy(), model.warm_, s, o)

            res = evaluate_cold(fn, split, part="valid", tasks=("overall",), ks=(k,))
            grid.append([scale, offset, float(res["overall"].metrics[metric])])
    except BaseException:
        model.cold_scale, model.cold_offset = old
        raise
    best = max(range(len(grid)), key=lambda j: (grid[j][2], -j))
    model.cold_scale, model.cold_offset = float(grid[best][0]), float(grid[best][1])
    log.info("calibrated %s: cold_scale=%g cold_offset=%g (%s %.4f, uncalibrated %.4f)", model.name,
             model.cold_scale, model.cold_offset, metric, grid[best][2], grid[0][2])
    return {"cold_scale": model.cold_scale, "cold_offset": model.cold_offset, "metric": metric,
            "value": grid[best][2], "uncalibrated": grid[0][2], "grid": grid}


def _cached(score_fn: Any, split: ColdSplit) -> Any:
    """``score_fn`` remembering its results per batch of users, while they fit in ``_CACHE_BYTES``."""
    cache: dict[bytes, np.ndarray] = {}
    used = [0]

    def fn(users: np.ndarray) -> np.ndarray:
        key = np.asarray(users, dtype=np.int64).tobytes()
        if key in cache:
            return cache[key]
        out = np.asarray(score_fn(users), dtype=np.float32)
        if used[0] + out.nbytes <= _CACHE_BYTES:
            cache[key] = out
            used[0] += out.nbytes
        return out

    return fn


def _offset_grid(
    raw_fn: Any,
    warm: np.ndarray,
    split: ColdSplit,
    scales: Sequence[float],
    quantiles: Sequence[float],
    random_state: int,
) -> list[tuple[float, float]]:
    """``(scale, offset)`` pairs, ``(1, 0)`` first (see :func:`calibrate`)."""
    if split.valid is None:
        raise DataError("the split has no validation part to calibrate on")
    users = np.flatnonzero(np.diff(np.asarray(split.valid.indptr)) > 0)
    if len(users) > _SAMPLE_USERS:
        users = np.sort(np.random.default_rng(random_state).choice(users, _SAMPLE_USERS, replace=False))
    raw = np.asarray(raw_fn(users), dtype=np.float64)  # (n, n_items)
    cold = split.cold_mask("valid")
    warm_scores, cold_scores = raw[:, warm].ravel(), raw[:, cold].ravel()
    if warm_scores.size == 0 or cold_scores.size == 0:
        return [(1.0, 0.0)]
    levels = np.quantile(warm_scores, list(quantiles))
    median = float(np.median(cold_scores))
    out = [(1.0, 0.0)]
    for scale in scales:
        for level in levels:
            pair = (float(scale), float(level - scale * median))
            if pair not in out:
                out.append(pair)
    return out
