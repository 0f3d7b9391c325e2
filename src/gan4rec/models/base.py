"""The :class:`Recommender` contract every model in :data:`gan4rec.models.MODELS` follows.

Models speak contiguous indices: users ``0 .. n_users-1`` and items ``0 .. n_items-1`` of the training
:class:`~gan4rec.data.interactions.Interactions`. Raw ids are converted at the edges (CLI, server, reports)
with the fitted ``user_map_`` / ``item_map_``.

The estimator contract follows scikit-learn: ``__init__`` stores keyword-only hyperparameters unchanged and
does nothing else; ``fit`` validates, seeds, learns attributes ending in ``_`` and returns ``self``; using a
model before ``fit`` raises :class:`~gan4rec.errors.NotFittedError`; ``get_params()`` round-trips.

A subclass implements:

- ``_fit(train, valid)``: learn from ``train`` (``valid`` is only for early stopping / monitoring);
- ``_score(users) -> (len(users), n_items) float32``;
- ``_state() -> dict[str, np.ndarray]`` and ``_set_state(arrays, meta)`` for save/load;
- optionally ``refit_params()``: params that pin what validation chose (e.g. the best epoch count), used
  when refitting on the full training data.

Class attributes declare the registry entry: ``name``, ``adversarial`` (a GAN), ``cold_start`` (it can
score items without training interactions from their content), ``search_space``
(Optuna-ready ranges as plain data: ``{"param": {"type": "float", "low": 1.0, "high": 1e4, "log": True}}``)
and ``published_configs`` (the settings a model's paper or its authors' code published, as params over
the defaults; tuning runs them as its first trials, so a search never misses the published region).
"""

from __future__ import annotations

import inspect
import logging
import platform
import sys
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from gan4rec import __version__
from gan4rec.artifacts import load_artifact, save_artifact
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.errors import ArtifactError, DataError, NotFittedError

__all__ = ["Recommender", "SearchSpace", "versions"]

log = logging.getLogger(__name__)

SearchSpace = dict[str, dict[str, Any]]


def versions() -> dict[str, str]:
    """Versions of gan4rec and of the libraries that shape results, recorded with every artifact/result."""
    out = {"gan4rec": __version__, "python": platform.python_version(), "numpy": np.__version__}
    import scipy

    out["scipy"] = scipy.__version__
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.__version__
    return out


class Recommender:
    """Base class of all recommenders. See the module docstring for the contract."""

    name: ClassVar[str] = ""
    adversarial: ClassVar[bool] = False
    #: Whether it can score items it never saw in training (cold items), from their content.
    cold_start: ClassVar[bool] = False
    search_space: ClassVar[SearchSpace] = {}
    published_configs: ClassVar[tuple[dict[str, Any], ...]] = ()

    # Set by fit() / load().
    user_map_: IdMap
    item_map_: IdMap
    seen_: Interactions
    history_: list[dict[str, float]]

    # ------------------------------------------------------------------ params
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """The keyword-only ``__init__`` parameters and their defaults."""
        sig = inspect.signature(cls.__init__)
        return {
            p.name: p.default for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as passed to ``__init__`` (``type(self)(**m.get_params())`` is an unfitted copy)."""
        return {name: getattr(self, name) for name in self._param_names()}

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Raise :class:`DataError` on a parameter name this model does not take."""
        known = cls._param_names()
        for key in params:
            if key not in known:
                raise DataError(f"model {cls.name!r} has no parameter {key!r} (parameters: {', '.join(known)})")

    def refit_params(self) -> dict[str, Any]:
        """Params that pin what validation chose, for a refit on the full training data (default: none)."""
        return {}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ fit
    def fit(self, train: Interactions, valid: Interactions | None = None, *, metric: str = "NDCG@20") -> Self:
        """Learn from ``train``; ``valid`` (same id maps) may only drive early stopping and monitoring.

        ``metric`` names the validation metric that early stopping maximises; models without epochs
        ignore it.
        """
        if not isinstance(train, Interactions):
            raise DataError(f"train must be an Interactions, got {type(train).__name__}")
        if train.nnz == 0:
            raise DataError("train holds no interactions")
        if valid is not None:
            if not isinstance(valid, Interactions):
                raise DataError(f"valid must be an Interactions or None, got {type(valid).__name__}")
            if not train.same_space(valid):
                raise DataError("valid does not share train's user and item id maps")
        self.user_map_ = train.user_map
        self.item_map_ = train.item_map
        self.seen_ = train
        self.history_ = []
        self._fit(train, valid)
        return self

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "seen_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() or load() first")

    @property
    def n_users(self) -> int:
        self._check_fitted()
        return len(self.user_map_)

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.item_map_)

    def _check_users(self, users: Any) -> np.ndarray:
        arr = np.asarray(users)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise DataError(f"users must be a 1-d array of user indices, got dtype {arr.dtype} shape {arr.shape}")
        arr = arr.astype(np.int64, copy=False)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_users):
            bad = arr[(arr < 0) | (arr >= self.n_users)][0]
            raise DataError(f"user index {bad} is out of range 0..{self.n_users - 1}")
        return arr

    # ------------------------------------------------------------------ score / recommend
    def score(self, users: Any) -> np.ndarray:
        """Scores of every item for each user: ``(len(users), n_items)`` float32. Higher is better."""
        self._check_fitted()
        users = self._check_users(users)
        out = np.asarray(self._score(users), dtype=np.float32)  # (n, n_items)
        if out.shape != (len(users), self.n_items):
            raise RuntimeError(f"{self.name}._score returned shape {out.shape}, expected {(len(users), self.n_items)}")
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def recommend(
        self,
        users: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        exclude: Any = None,
        candidates: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores for each user, best first.

        Parameters
        ----------
        users
            User indices.
        k
            List length. Rows with fewer than ``k`` eligible items are padded with index ``-1``, score ``-inf``.
        exclude_seen
            Drop each user's training items.
        exclude
            Item indices to drop for every user, or an :class:`Interactions` (same maps) of per-user items.
        candidates
            Item indices to rank among (all items when ``None``).

        Ties break towards the lower item index, so results are deterministic.
        """
        import torch

        from gan4rec.evaluation.evaluator import topk

        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise DataError(f"k must be a positive integer, got {k!r}")
        scores = self.score(users)  # (n, n_items)
        users = self._check_users(users)
        mask = np.zeros(scores.shape, dtype=bool)  # True = not allowed
        if exclude_seen:
            _mark_rows(mask, self.seen_, users)
        if isinstance(exclude, Interactions):
            if not exclude.same_space(self.seen_):
                raise DataError("exclude does not share the model's user and item id maps")
            _mark_rows(mask, exclude, users)
        elif exclude is not None:
            mask[:, self._check_items(exclude, "exclude")] = True
        if candidates is not None:
            allowed = np.zeros(self.n_items, dtype=bool)
            allowed[self._check_items(candidates, "candidates")] = True
            mask |= ~allowed
        scores[mask] = -np.inf
        values, idx = topk(torch.from_numpy(scores), min(int(k), self.n_items))
        items, vals = idx.numpy().astype(np.int64), values.numpy()
        if k > self.n_items:
            pad = k - self.n_items
            items = np.pad(items, ((0, 0), (0, pad)), constant_values=-1)
            vals = np.pad(vals, ((0, 0), (0, pad)), constant_values=-np.inf)
        return items, vals

    def _check_items(self, items: Any, what: str) -> np.ndarray:
        arr = np.asarray(items).reshape(-1)
        if arr.size and arr.dtype.kind not in "iu":
            raise DataError(f"{what} must hold item indices, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_items):
            raise DataError(f"{what} holds an item index outside 0..{self.n_items - 1}")
        return arr

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        raise NotImplementedError

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Save to the artifact directory ``path`` (atomic; safetensors + JSON; never pickle).

        ``extra`` is stored verbatim in the metadata (e.g. the split fingerprint and protocol).
        """
        self._check_fitted()
        arrays = {f"model.{k}": np.asarray(v) for k, v in self._state().items()}
        arrays["seen.indptr"] = np.asarray(self.seen_.indptr, dtype=np.int64)
        arrays["seen.indices"] = np.asarray(self.seen_.indices, dtype=np.int32)
        meta = {
            "model": self.name,
            "params": self.get_params(),
            "adversarial": self.adversarial,
            "versions": versions(),
            "user_map": self.user_map_.to_json(),
            "item_map": self.item_map_.to_json(),
            "train_fingerprint": self.seen_.fingerprint(),
            "history": self.history_,
            **(extra or {}),
        }
        return save_artifact(path, arrays, meta)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save`; on the base class the model type comes from the metadata."""
        from gan4rec.models import MODELS

        arrays, meta = load_artifact(path)
        name = meta.get("model")
        model_cls = MODELS.get(str(name)) if cls is Recommender else cls
        if model_cls is None:
            raise ArtifactError(f"{path}: unknown model {name!r} (known: {', '.join(MODELS)})")
        if model_cls.name != name:
            raise ArtifactError(f"{path}: holds a {name!r} model, not {model_cls.name!r}")
        params = meta.get("params", {})
        try:
            model_cls.check_params(params)
        except DataError as e:
            raise ArtifactError(f"{path}: {e}") from None
        model = model_cls(**params)
        try:
            user_map = IdMap.from_json(meta["user_map"])
            item_map = IdMap.from_json(meta["item_map"])
            indptr, indices = arrays.pop("seen.indptr"), arrays.pop("seen.indices")
            model.seen_ = Interactions(indptr, indices, user_map, item_map)
        except (KeyError, DataError) as e:
            raise ArtifactError(f"{path}: inconsistent seen-items or id maps ({e})") from None
        model.user_map_, model.item_map_ = user_map, item_map
        model.history_ = list(meta.get("history", []))
        model._set_state({k.removeprefix("model."): v for k, v in arrays.items()}, meta)
        return model

    def _expect_shape(self, arrays: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Fetch array ``name`` from a loaded state, checking its shape (for ``_set_state``)."""
        if name not in arrays:
            raise ArtifactError(f"saved {self.name} model lacks array {name!r}")
        arr = arrays[name]
        if tuple(arr.shape) != shape:
            raise ArtifactError(f"saved {self.name} array {name!r} has shape {arr.shape}, expected {shape}")
        return arr


def _mark_rows(mask: np.ndarray, inter: Interactions, users: np.ndarray) -> None:
    """Set ``mask[r, item] = True`` for every item of ``users[r]`` in ``inter``."""
    starts, ends = inter.indptr[users], inter.indptr[users + 1]
    lengths = ends - starts
    if lengths.sum() == 0:
        return
    rows = np.repeat(np.arange(len(users)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    mask[rows, inter.indices[np.repeat(starts, lengths) + offsets]] = True
