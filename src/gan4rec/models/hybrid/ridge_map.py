"""Ridge map from content to collaborative item factors (the DeepMusic / CB2CF family, in closed form)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.hybrid.common import WEIGHTINGS, HybridRecommender, idf_weights, weigh_rows
from gan4rec.models.hybrid.gan_parts import BACKBONES, fit_backbone

__all__ = ["RidgeMap"]

log = logging.getLogger(__name__)

class RidgeMap(HybridRecommender):
    """Collaborative factors for warm items, content mapped to factors for cold ones.

    A collaborative factor model (the backbone, iALS or BPR from :func:`gan4rec.models.create`) is fitted
    on the training interactions: scores ``U V^T``. A linear map from content to item factors is fitted by
    ridge regression on the warm items,

        W, b = argmin ||F_w W + b - V_w||^2 + l2 ||W||^2,

    with ``F`` the content rows (TF-IDF weighted, unit length). Warm items keep their collaborative factors,
    cold items get ``F_c W + b``; a user's score is ``u . v`` either way. Van den Oord et al. (NeurIPS
    2013, "Deep content-based music recommendation") map audio to factors with a network; Barkan et al.
    (RecSys 2019, "CB2CF") with a deep model; this is the closed-form linear member of that family,
    solved by scikit-learn's ``Ridge`` (``sparse_cg``; the intercept ``b`` is not penalised).

    Without item features the map has nothing to read: cold items all get ``b`` (the mean warm factor).

    Parameters
    ----------
    item_features
        Feature name(s) to read, ``None`` for all (see :mod:`gan4rec.models.hybrid.common`).
    backbone
        ``"bpr"`` (the default: its defaults also suit tiny data, where iALS's default ``reg=30`` is too strong)
        or ``"ials"``.
    backbone_params
        Params of the backbone over its defaults (tune the backbone first, then pass its best params). With
        validation data a BPR backbone early-stops on its warm items only, as DropoutNet's and GAR's do
        (:func:`~gan4rec.models.hybrid.gan_parts.fit_backbone`), so the three share one backbone fit.
    l2
        Ridge penalty on the map.
    weighting
        ``"tfidf"`` or ``"none"`` column weighting of the content before the map.
    cold_scale, cold_offset
        Calibration of cold-item scores (:func:`~gan4rec.models.hybrid.common.calibrate`).
    device, random_state
        Passed to the backbone.
    """

    name = "ridge-map"
    search_space: ClassVar[SearchSpace] = {
        "l2": {"type": "float", "low": 1e-3, "high": 1e3, "log": True},
        "weighting": {"type": "categorical", "choices": list(WEIGHTINGS)},
    }

    user_factors_: np.ndarray  # (n_users, f)
    item_factors_: np.ndarray  # (n_items, f): CF factors for warm items, mapped ones for cold items
    map_: np.ndarray  # (n_features, f)
    bias_: np.ndarray  # (f,)
    idf_: np.ndarray  # (n_features,)

    def __init__(
        self,
        *,
        item_features: str | Sequence[str] | None = None,
        backbone: str = "bpr",
        backbone_params: dict[str, Any] | None = None,
        l2: float = 1.0,
        weighting: str = "tfidf",
        cold_scale: float = 1.0,
        cold_offset: float = 0.0,
        device: str | None = None,
        random_state: int | None = None,
    ) -> None:
        self.item_features = item_features
        self.backbone = backbone
        self.backbone_params = backbone_params
        self.l2 = l2
        self.weighting = weighting
        self.cold_scale = cold_scale
        self.cold_offset = cold_offset
        self.device = device
        self.random_state = random_state

    def _fit_hybrid(self, train: Interactions, valid: Interactions | None) -> None:
        from sklearn.linear_model import Ridge

        if self.backbone not in BACKBONES:
            raise DataError(f"backbone={self.backbone!r}; expected one of {', '.join(BACKBONES)}")
        if isinstance(self.l2, bool) or not isinstance(self.l2, (int, float)) or not self.l2 > 0:
            raise DataError(f"l2={self.l2!r}; expected a number > 0")
        self.idf_ = idf_weights(self.features_, self.weighting)
        # Early stopping (BPR) on the warm part of the validation data, as DropoutNet's and GAR's; fitted once
        # per (data, params, seed) in a process: a memo.
        _, users, items = fit_backbone(self.backbone, self.backbone_params, train, valid, self.warm_,
                                       random_state=self.random_state, device=self.device)  # (n_users, f), (n_items, f)
        warm = np.flatnonzero(self.warm_)
        f = items.shape[1]
        if self.n_features == 0:
            self.map_ = np.zeros((0, f), dtype=np.float32)
            self.bias_ = items[warm].mean(axis=0).astype(np.float32)
        else:
            content = weigh_rows(self.features_[warm], self.idf_, self.weighting)  # (n_warm, n_features)
            ridge = Ridge(alpha=float(self.l2), fit_intercept=True, solver="sparse_cg", tol=1e-6)
            ridge.fit(content, items[warm])
            self.map_ = np.ascontiguousarray(ridge.coef_.T, dtype=np.float32)  # (n_features, f)
            self.bias_ = np.asarray(ridge.intercept_, dtype=np.float32).reshape(f)
        self.user_factors_ = users
        self.item_factors_ = items.copy()
        cold = np.flatnonzero(~self.warm_)
        if len(cold):
            self.item_factors_[cold] = self._mapped(self.features_[cold])

    def _mapped(self, features: sp.csr_matrix) -> np.ndarray:
        """``(m, f)`` factors of items known by their content rows."""
        if self.n_features == 0:
            return np.broadcast_to(self.bias_, (features.shape[0], len(self.bias_))).astype(np.float32)
        content = weigh_rows(features, self.idf_, self.weighting)
        return np.asarray(content @ self.map_ + self.bias_, dtype=np.float32)

    def _score_raw(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T  # (n, n_items)

    def _score_content(self, users: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
        return self.user_factors_[users] @ self._mapped(features).T  # (n, m)

    def _hybrid_state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_, "map": self.map_,
                "bias": self.bias_, "idf": self.idf_}

    def _set_hybrid_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        f = int(arrays["bias"].shape[0]) if "bias" in arrays else 0
        self.user_factors_ = self._expect_shape(arrays, "user_factors", (self.n_users, f)).astype(np.float32)
        self.item_factors_ = self._expect_shape(arrays, "item_factors", (self.n_items, f)).astype(np.float32)
        self.map_ = self._expect_shape(arrays, "map", (self.n_features, f)).astype(np.float32)
        self.bias_ = self._expect_shape(arrays, "bias", (f,)).astype(np.float32)
        self.idf_ = self._expect_shape(arrays, "idf", (self.n_features,)).astype(np.float32)
