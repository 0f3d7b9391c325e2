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
from gan4rec.artifacts import (
    MAX_ABS_VALUE,
    TensorInfo,
    check_finite,
    check_model_meta,
    one_line,
    open_artifact,
    save_artifact,
)
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.errors import ArtifactError, DataError, NotFittedError

__all__ = ["Recommender", "SearchSpace", "check_csr", "versions"]

log = logging.getLogger(__name__)

SearchSpace = dict[str, dict[str, Any]]
# Users scored after a load to check that the model produces finite, bounded scores.
_PROBE_USERS = 8


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
    def load(cls, path: str | Path, *, device: str | None = None) -> Recommender:
        """Load a model saved by :meth:`save`; on the base class the model type comes from the metadata.

        The artifact is hostile input until checked (its manifest is a checksum, not a signature), and
        every defect is a one-line :class:`ArtifactError`. Checked before any array is read: the files
        against the manifest, the metadata's structure and bounds (:func:`gan4rec.artifacts.open_artifact`,
        :func:`~gan4rec.artifacts.check_model_meta`), and the tensor table against what the model class
        expects from its params (:meth:`_check_state_header`: names, dtypes, shapes, and for torch models
        the bytes the params describe). Then: the seen items are a valid CSR (:func:`check_csr`), every
        weight is finite and bounded, and a probe batch of users gets finite, bounded scores.

        Parameters
        ----------
        path
            The artifact directory (or one of its version folders).
        device
            Torch models only: where to run. ``None`` keeps the recorded device where this machine has
            it, and otherwise uses this machine's default (CUDA when available, else the CPU); the
            recorded one stays in the artifact's metadata.
        """
        from gan4rec.models import MODELS

        where = str(path)
        art = open_artifact(path)
        meta = art.meta
        check_model_meta(meta, where)
        name = meta["model"]
        model_cls = MODELS.get(name) if cls is Recommender else cls
        if model_cls is None:
            known = ", ".join(MODELS)
            raise ArtifactError(f"{where}: unknown model {one_line(repr(name), 60)} (known: {known})")
        if model_cls.name != name:
            raise ArtifactError(f"{where}: holds a {one_line(repr(name), 60)} model, not {model_cls.name!r}")
        try:
            model_cls.check_params(meta["params"])
        except DataError as e:
            raise ArtifactError(f"{where}: {e}") from None
        model = model_cls(**model_cls._params_for_load(dict(meta["params"]), device=device, where=where))
        user_map, item_map = _id_map(meta, "user_map", where), _id_map(meta, "item_map", where)
        n_users, n_items = len(user_map), len(item_map)
        _check_header(art.header, n_users, where)
        state_header = {k.removeprefix("model."): v for k, v in art.header.items() if k.startswith("model.")}
        model._check_state_header(state_header, n_users, n_items, art.tensors_bytes, where)

        arrays = art.read()
        indptr, indices = arrays.pop("seen.indptr"), arrays.pop("seen.indices")
        check_csr(indptr, indices, n_users, n_items, f"{where}: seen items", sorted_rows=True)
        if len(indices) == 0:
            raise ArtifactError(f"{where}: the seen items are empty; a fitted model has training data")
        state = {k.removeprefix("model."): v for k, v in arrays.items()}
        for key, arr in state.items():
            check_finite(arr, f"{where}: array {key!r}", bound=MAX_ABS_VALUE)
            if key.endswith(".indptr") and key.removesuffix(".indptr") + ".indices" in state:
                check_csr(arr, state[key.removesuffix(".indptr") + ".indices"], len(arr) - 1, None,
                          f"{where}: array {key.removesuffix('.indptr')!r}")
        model.seen_ = Interactions(indptr, indices, user_map, item_map)
        model.user_map_, model.item_map_ = user_map, item_map
        model.history_ = list(meta.get("history", []))
        try:
            model._set_state(state, meta)
        except (ArtifactError, DataError) as e:
            raise ArtifactError(f"{where}: {one_line(e)}") from None
        model._probe(where)
        return model

    @classmethod
    def _params_for_load(cls, params: dict[str, Any], *, device: str | None, where: str) -> dict[str, Any]:
        """The params a loaded model is built with: the saved ones (torch models adapt ``device``)."""
        return params

    def _state_dtype(self, name: str) -> str:
        """The dtype this model saves array ``name`` in: a CSR's indptr int64 and indices int32, else float32.

        A model that saves other dtypes overrides this (torch models check their modules' state instead).
        """
        if name.endswith(".indptr"):
            return "int64"
        return "int32" if name.endswith(".indices") else "float32"

    def _check_state_header(
        self, header: dict[str, TensorInfo], n_users: int, n_items: int, file_bytes: int, where: str
    ) -> None:
        """Check the saved state's table (names without ``model.``) before any array is read.

        Default: every array has the dtype :meth:`_state_dtype` gives; shapes are checked by
        :meth:`_set_state` (:meth:`_expect_shape`) once read, reading being bounded by the file's size.
        """
        for key, info in header.items():
            want = self._state_dtype(key)
            if info.dtype != want:
                raise ArtifactError(f"{where}: array {key!r} is {info}, but {self.name} stores {want}")

    def _probe(self, where: str) -> None:
        """Score a few users spread over the id map: the scores must be finite and bounded."""
        n = self.n_users
        users = np.unique(np.linspace(0, n - 1, num=min(n, _PROBE_USERS)).astype(np.int64))
        what = f"{where}: the loaded model's scores of users {users.tolist()}"
        try:
            scores = self.score(users)  # (p, n_items)
        except Exception as e:  # noqa: BLE001 -- a hostile artifact can break a model anyhow; refuse it
            raise ArtifactError(f"{what} fail ({type(e).__name__}: {one_line(e)})") from None
        check_finite(scores, what, bound=MAX_ABS_VALUE)

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


def _id_map(meta: dict[str, Any], key: str, where: str) -> IdMap:
    """The id map ``meta[key]`` (structure checked by check_model_meta); bad ids are an ArtifactError."""
    try:
        m = IdMap.from_json(meta[key])
    except (ValueError, TypeError, OverflowError) as e:
        raise ArtifactError(f"{where}: metadata {key!r}: {one_line(e)}") from None
    if len(m) == 0:
        raise ArtifactError(f"{where}: metadata {key!r} holds no ids")
    return m


def _check_header(header: dict[str, TensorInfo], n_users: int, where: str) -> None:
    """The seen-items arrays are there with their dtypes and ``indptr``'s length; nothing unknown beside."""
    indptr, indices = header.get("seen.indptr"), header.get("seen.indices")
    if indptr is None or indices is None:
        raise ArtifactError(f"{where}: lacks the seen-items arrays 'seen.indptr' and 'seen.indices'")
    if indptr != TensorInfo("int64", (n_users + 1,)):
        raise ArtifactError(f"{where}: 'seen.indptr' is {indptr}, expected int64[{n_users + 1}] (users + 1)")
    if indices.dtype != "int32" or len(indices.shape) != 1:
        raise ArtifactError(f"{where}: 'seen.indices' is {indices}, expected a 1-d int32 array")
    known = ("seen.indptr", "seen.indices")
    unknown = sorted(k for k in header if k not in known and not k.startswith("model."))
    if unknown:
        raise ArtifactError(f"{where}: holds unexpected arrays {one_line(unknown, 200)}")


def check_csr(
    indptr: np.ndarray,
    indices: np.ndarray,
    n_rows: int,
    n_cols: int | None,
    what: str,
    *,
    sorted_rows: bool = False,
) -> None:
    """Raise :class:`ArtifactError` unless ``(indptr, indices)`` is a valid CSR structure of ``n_rows`` rows.

    Integer dtypes, 1-d; ``indptr`` has ``n_rows + 1`` entries, starts at 0, never decreases and ends at
    ``len(indices)``; every index is in ``0 .. n_cols - 1`` (when ``n_cols`` is given); with
    ``sorted_rows``, indices strictly increase within each row (sorted, no duplicates). scipy and torch
    trust these invariants: a violation can crash them natively or silently drop entries.
    """
    if any(a.dtype.kind not in "iu" or a.ndim != 1 for a in (indptr, indices)):
        raise ArtifactError(
            f"{what}: indptr {indptr.dtype}{list(indptr.shape)} and indices {indices.dtype}"
            f"{list(indices.shape)} must be 1-d integer arrays"
        )
    if len(indptr) != n_rows + 1:
        raise ArtifactError(f"{what}: indptr has {len(indptr)} entries, expected {n_rows + 1} (rows + 1)")
    ptr = indptr.astype(np.int64, copy=False)
    nnz = len(indices)
    if ptr[0] != 0 or ptr[-1] != nnz:
        raise ArtifactError(f"{what}: indptr runs {ptr[0]}..{ptr[-1]}, expected 0..{nnz} (entries)")
    steps = np.diff(ptr)
    if (steps < 0).any():
        raise ArtifactError(f"{what}: indptr decreases at row {int(np.argmax(steps < 0))}")
    if nnz and n_cols is not None:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= n_cols:
            raise ArtifactError(f"{what}: holds column index {lo if lo < 0 else hi}, outside 0..{n_cols - 1}")
    if sorted_rows and nnz > 1:
        rising = np.diff(indices.astype(np.int64)) > 0  # (nnz - 1,)
        starts = ptr[1:-1]
        rising[starts[(starts > 0) & (starts < nnz)] - 1] = True  # a new row may start lower
        if not rising.all():
            entry = int(np.argmin(rising)) + 1
            row = int(np.searchsorted(ptr, entry, side="right")) - 1
            raise ArtifactError(f"{what}: the indices of row {row} are unsorted or repeated")
