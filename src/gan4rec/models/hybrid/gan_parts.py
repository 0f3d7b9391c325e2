"""Pieces the GAN hybrids (:mod:`~gan4rec.models.hybrid.gar`, :mod:`~gan4rec.models.hybrid.content_cfgan`) share.

- :class:`ContentCodes`: dense content codes ``z_i`` (``(n_items, k)``) from the sparse item features, a
  truncated SVD of the TF-IDF weighted rows of the WARM items (cold items and new items are only
  projected, so nothing about them is fitted). Without item features every item gets the code ``[1]``,
  so all cold items look alike and the model falls back to collaborative filtering.
- :func:`fit_backbone`: a pretrained factor model (``bpr`` or ``ials`` from the registry) fitted on the
  training data with the warm part of the validation data; its factors come from
  :func:`~gan4rec.models.hybrid.common.cf_factors` (:mod:`~gan4rec.models.hybrid.dropoutnet` uses it too).
- :func:`fit_seed`: the one int seed a fit draws from its ``random_state`` (for the content codes and the
  backbone).
- :func:`loop_validation`: what the shared training loop validates on: the COLD validation task when the
  validation data holds interactions on items without training interactions (relevant: those
  interactions; candidates: those cold items; every other item masked), otherwise the warm task;
  :func:`mask_scores` puts the masked items of validation scores at ``-inf``.
- :class:`Tower`: the MLP of GAR's players (optional input batch norm, ``tanh`` hidden layers with batch
  norm and dropout drawn from an explicit generator, linear output).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.errors import ArtifactError, DataError
from gan4rec.models.hybrid.common import idf_weights, weigh_rows
from gan4rec.train.seeding import dropout, to_numpy_rng

__all__ = [
    "BACKBONES", "ContentCodes", "Tower", "check_layers", "fit_backbone", "fit_seed", "loop_validation",
    "mask_scores",
]

log = logging.getLogger(__name__)

#: Registry names of the factor models a GAN hybrid can start from.
BACKBONES: tuple[str, ...] = ("bpr", "ials")


def check_layers(value: Any, name: str) -> list[int]:
    """``value`` as a non-empty list of positive ints (an int is one layer); :class:`DataError` otherwise."""
    items = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    ok = isinstance(items, (list, tuple)) and len(items) > 0 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in items)
    if not ok:
        raise DataError(f"{name}={value!r}; expected a positive int or a non-empty list of positive ints")
    return [int(v) for v in items]


def fit_seed(random_state: int | np.random.Generator | None) -> int:
    """The int seed of a fit: ``random_state`` itself when an int, else a draw of ``[0, 2**31)`` from it.

    A generator is advanced by the draw; ``None`` draws from fresh entropy (not reproducible).
    """
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return int(to_numpy_rng(random_state).integers(2**31))


@dataclass
class ContentCodes:
    """A linear map from sparse content rows to dense codes: ``z = weigh_rows(x) @ components``.

    Attributes
    ----------
    weighting
        ``"tfidf"`` or ``"none"`` (:func:`~gan4rec.models.hybrid.common.weigh_rows`).
    idf
        ``(n_features,)`` column weights.
    components
        ``(n_features, k)`` float32: the top right singular vectors of the weighted warm rows, times
        ``sqrt(k)`` (rows are unit length, so code entries are of order 1). ``k = 0`` (no features):
        every code is ``[1]``.
    """

    weighting: str
    idf: np.ndarray
    components: np.ndarray

    @property
    def dim(self) -> int:
        """Width of a code (1 without features)."""
        return max(int(self.components.shape[1]), 1) if self.components.shape[0] else 1

    @classmethod
    def fit(cls, features: sp.csr_matrix, warm: np.ndarray, dim: int, weighting: str, seed: int) -> ContentCodes:
        """Fit on the rows of the warm items; ``dim`` is capped by the number of features and warm items."""
        n_features = features.shape[1]
        if n_features == 0:
            return cls(weighting, np.zeros(0, np.float32), np.zeros((0, 0), np.float32))
        from sklearn.utils.extmath import randomized_svd

        docs = features[np.flatnonzero(warm)]
        idf = idf_weights(docs, weighting)
        rows = weigh_rows(docs, idf, weighting)  # (n_warm, n_features)
        k = int(min(dim, n_features, max(rows.shape[0] - 1, 1)))
        _, _, vt = randomized_svd(rows.astype(np.float64), k, random_state=seed)  # vt: (k, n_features)
        comp = (vt.T * np.sqrt(k)).astype(np.float32)  # (n_features, k)
        return cls(weighting, idf, comp)

    def encode(self, features: sp.csr_matrix) -> np.ndarray:
        """``(m, dim)`` float32 codes of content rows ``(m, n_features)``."""
        if self.components.shape[0] == 0:
            return np.ones((features.shape[0], 1), dtype=np.float32)
        rows = weigh_rows(sp.csr_matrix(features, dtype=np.float32), self.idf, self.weighting)
        return np.asarray(rows @ self.components, dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {"codes.idf": self.idf, "codes.components": self.components}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], weighting: str, n_features: int) -> ContentCodes:
        try:
            idf = np.asarray(arrays["codes.idf"], dtype=np.float32)
            comp = np.asarray(arrays["codes.components"], dtype=np.float32)
        except KeyError as e:
            raise ArtifactError(f"saved model lacks the content codes ({e})") from None
        if comp.ndim != 2 or comp.shape[0] != (n_features if comp.shape[0] else 0) or idf.shape != (comp.shape[0],):
            raise ArtifactError(f"saved content codes have shapes {idf.shape}, {comp.shape}; "
                                f"expected ({n_features},) and ({n_features}, k)")
        return cls(weighting, idf, comp)


def fit_backbone(
    name: str,
    params: dict[str, Any] | None,
    train: Interactions,
    valid: Interactions | None,
    warm: np.ndarray,
    *,
    random_state: int | None,
    device: str | None,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Fit the pretrained factor model: ``(its refit params, user factors (n_users, f), item factors (n_items, f))``.

    It validates (early stopping) on the interactions of ``valid`` on ``warm`` items only. Fitted once per
    (data, params, seed) in a process (:func:`~gan4rec.models.hybrid.backbone.backbone_factors`).
    """
    from gan4rec.models.hybrid.backbone import backbone_factors

    if name not in BACKBONES:
        raise DataError(f"backbone={name!r}; expected one of {', '.join(BACKBONES)}")
    if params is not None and not isinstance(params, dict):
        raise DataError(f"backbone_params={params!r}; expected a dict of {name} params or None")
    warm_valid = None
    if valid is not None:
        warm_valid = valid.subset(warm[valid.indices])
        if warm_valid.nnz == 0:
            warm_valid = None
    fit = backbone_factors(name, params, train, warm_valid, random_state=random_state, device=device)
    return fit.refit, fit.user, fit.item


def loop_validation(valid: Interactions | None, warm: np.ndarray) -> tuple[Interactions | None, np.ndarray]:
    """``(validation interactions, (n_items,) bool items never ranked)`` for the shared training loop.

    The cold task when ``valid`` holds interactions on non-warm items (candidates: exactly those items,
    as in the cold task of :func:`gan4rec.evaluation.cold.evaluate_cold` on the validation part), else the
    warm task (cold items masked).
    """
    if valid is None or valid.nnz == 0:
        return valid, ~warm
    on_cold = ~warm[np.asarray(valid.indices)]
    if not on_cold.any():
        return valid, ~warm
    masked = np.ones(len(warm), dtype=bool)
    masked[np.unique(np.asarray(valid.indices)[on_cold])] = False
    log.info("validating on the cold task: %d interactions on %d cold items", int(on_cold.sum()),
             int((~masked).sum()))
    return valid.subset(on_cold), masked


def mask_scores(scores: torch.Tensor, masked: np.ndarray | None) -> torch.Tensor:
    """``scores`` ``(n, n_items)`` with the columns of ``masked`` items at ``-inf`` (in place); as is for ``None``.

    ``masked`` is the second value of :func:`loop_validation` during a fit, ``None`` outside one.
    """
    if masked is not None:
        scores[:, torch.as_tensor(masked, device=scores.device)] = -torch.inf
    return scores


class Tower(nn.Module):
    """``x -> [BN] -> Linear -> (BN -> tanh -> dropout -> Linear) * (len(sizes) - 1)``; shapes ``(b, in) -> (b, sizes[-1])``.

    GAR's MLP (its ``build_mlp``): batch norm on the input when ``bn_input`` (for pretrained embeddings
    of arbitrary scale), ``tanh`` hidden layers, linear output. Dropout masks come from the generator
    passed to :meth:`forward`, never from torch's global one.
    """

    def __init__(self, n_in: int, sizes: Sequence[int], *, p_drop: float, bn_input: bool) -> None:
        super().__init__()
        self.p_drop = float(p_drop)
        self.bn_in: nn.BatchNorm1d | None = nn.BatchNorm1d(n_in, affine=False) if bn_input else None
        widths = [n_in, *sizes]
        linears = [nn.Linear(a, b) for a, b in itertools.pairwise(widths)]
        for lin in linears:
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.linears = nn.ModuleList(linears)
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in sizes[:-1])
        self._lin: list[nn.Linear] = linears  # typed views of the same modules
        self._norm: list[nn.BatchNorm1d] = list(self.norms)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        h = self.bn_in(x) if self.bn_in is not None else x
        h = self._lin[0](h)
        for norm, lin in zip(self._norm, self._lin[1:], strict=True):
            h = torch.tanh(norm(h))
            if self.training and gen is not None:
                h = dropout(h, self.p_drop, gen)
            h = lin(h)
        return h

    def weight_sq(self) -> torch.Tensor:
        """``sum |W|^2 / 2`` over the linear weights (TensorFlow's ``l2_regularizer`` without the coefficient)."""
        total = self._lin[0].weight.new_zeros(())
        for lin in self._lin:
            total = total + lin.weight.square().sum()
        return total / 2
