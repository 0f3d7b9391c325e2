"""Base class of the PyTorch models: seeding, device, the shared training loop, batched scoring, state.

A subclass declares its hyperparameters in its own keyword-only ``__init__`` (including the common ones
below) and implements a few hooks; everything else (validation, early stopping, checkpoints, resume,
threads, save/load) is shared:

- ``_build_modules(n_users, n_items) -> dict[str, nn.Module]``: fresh modules. Called on the CPU under
  :func:`~gan4rec.train.seeding.seeded_init`, so default initialisers are seeded from ``random_state``
  without touching the global generator; they are then moved to the device.
- ``_build_optimizers(modules) -> dict[str, Optimizer]``: default one Adam(lr=``self.lr``) over every
  trainable parameter. A GAN returns one optimiser per player.
- ``_prepare(train)``: per-fit data on the device (pairs, CSR...), after the modules exist.
- ``_train_epoch(epoch) -> dict[str, float]``: one epoch (a GAN alternates its D and G steps inside),
  drawing randomness only from ``self.np_rng_`` and ``self.torch_gen_`` (shared by all ranks) and
  ``self.rank_np_rng_`` and ``self.rank_torch_gen_`` (this rank's; the same objects in a single process).
- ``_score_tensor(users) -> (n, n_items) tensor``: scores on the device, called under ``no_grad`` in eval
  mode, for validation and for :meth:`score`.
- optionally ``_check_params()`` (raise :class:`DataError` on a bad hyperparameter) and
  ``_extra_state()`` / ``_load_extra_state(state)`` (JSON-ready state outside the modules that a resumed
  run needs, e.g. a step counter).

Distributed training (a process group joined with :func:`gan4rec.train.distributed.init`; classes with
``supports_distributed = True``): the modules are wrapped in ``DistributedDataParallel`` and a step calls
them through :meth:`TorchRecommender._call`, which goes through the wrapper (so DDP averages the
gradients) when distributed and calls the module directly otherwise. An epoch takes its rows with
:func:`~gan4rec.train.distributed.shard` of a permutation drawn from ``np_rng_`` (the same on all ranks)
and draws everything else from the ``rank_*`` generators, re-derived each epoch from the seed, the rank and
the epoch (:func:`~gan4rec.train.distributed.rank_rngs`). A single process runs exactly the code it ran
before distributed training existed: ``_call`` is a plain method call, ``shard`` returns its input and the
``rank_*`` generators are ``np_rng_`` and ``torch_gen_``.

Common hyperparameters (read as attributes): ``epochs`` (the name is ``epochs_param``), ``eval_every``,
``patience``, ``device``, ``random_state``, ``n_threads``; ``lr`` for the default optimiser.
Checkpointing is not a hyperparameter: pass ``checkpoint_dir``, ``checkpoint_every`` and ``resume`` to
:meth:`TorchRecommender.fit`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from gan4rec.artifacts import MAX_WEIGHT_BYTES, TensorInfo, one_line
from gan4rec.data.interactions import Interactions
from gan4rec.errors import ArtifactError, DataError
from gan4rec.models.base import Recommender
from gan4rec.train import distributed
from gan4rec.train.loop import FitResult, fit_loop, resolve_device
from gan4rec.train.seeding import make_rngs, seeded_init

__all__ = ["DeviceCSR", "TorchRecommender", "check_float", "check_int"]

log = logging.getLogger(__name__)


def check_int(value: Any, name: str, *, low: int = 1, allow_none: bool = False) -> None:
    """Raise :class:`DataError` unless ``value`` is an int ``>= low`` (or ``None`` when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise DataError(f"{name}={value!r}; expected an int >= {low}" + (" or None" if allow_none else ""))


def check_float(
    value: Any,
    name: str,
    *,
    low: float = 0.0,
    high: float = float("inf"),
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise :class:`DataError` unless ``value`` is a real number in the given interval."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = np.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lo, hi = ("(" if low_open else "[") + f"{low:g}", f"{high:g}" + (")" if high_open else "]")
        raise DataError(f"{name}={value!r}; expected a number in {lo}, {hi}")


class DeviceCSR:
    """A CSR matrix kept on a device, expanding batches of rows to dense ``(batch, n_cols)`` tensors.

    Parameters
    ----------
    indptr, indices
        The CSR structure.
    n_cols
        Number of columns.
    device
        Where the structure lives and the dense rows are built.
    values
        Optional entry values aligned with ``indices`` (default: ones).
    """

    def __init__(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        n_cols: int,
        device: torch.device,
        values: np.ndarray | None = None,
    ) -> None:
        # torch.tensor copies: the CSR arrays of Interactions are read-only, which torch cannot wrap.
        self.indptr = torch.tensor(np.asarray(indptr, dtype=np.int64), device=device)
        self.indices = torch.tensor(np.asarray(indices, dtype=np.int64), device=device)
        self.values = (
            None if values is None else torch.tensor(np.asarray(values, dtype=np.float32), device=device)
        )
        self.n_rows = len(indptr) - 1
        self.n_cols = int(n_cols)
        self.device = device

    @classmethod
    def from_interactions(cls, inter: Interactions, device: torch.device) -> DeviceCSR:
        return cls(inter.indptr, inter.indices, inter.n_items, device)

    def cells(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(batch position, column, entry index)`` of every stored entry of ``rows``."""
        starts = self.indptr[rows]  # (b,)
        lengths = self.indptr[rows + 1] - starts  # (b,)
        pos = torch.repeat_interleave(torch.arange(len(rows), device=self.device), lengths)  # (total,)
        offsets = torch.cumsum(lengths, 0) - lengths  # (b,) start of each row in the output
        entry = torch.repeat_interleave(starts - offsets, lengths) + torch.arange(
            len(pos), device=self.device
        )
        return pos, self.indices[entry], entry

    def dense(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows ``rows`` as a dense float32 ``(len(rows), n_cols)`` tensor."""
        out = torch.zeros((len(rows), self.n_cols), dtype=torch.float32, device=self.device)
        pos, cols, entry = self.cells(rows)
        out[pos, cols] = 1.0 if self.values is None else self.values[entry]
        return out


class TorchRecommender(Recommender):
    """A :class:`Recommender` trained by :func:`gan4rec.train.loop.fit_loop`; see the module docstring.

    Fitted attributes: ``modules_`` (name -> module, on ``device_``), ``best_epoch_`` (the epoch validation
    chose, ``None`` without validation), ``fit_result_`` and ``history_``.
    """

    #: Name of the hyperparameter holding the number of epochs (``refit_params`` pins it).
    epochs_param: ClassVar[str] = "epochs"
    #: Users scored at once by :meth:`score` and during validation.
    score_batch_size: ClassVar[int] = 1024
    #: Whether :meth:`fit` can train data-parallel (every gradient comes from autograd, every step calls
    #: its modules through :meth:`_call`, rows come from ``distributed.shard``).
    supports_distributed: ClassVar[bool] = False
    #: Whether distributed training wraps the modules in DDP. A model that computes its gradients by hand
    #: (outside autograd) sets this False and averages them itself with ``distributed.all_reduce_mean_``.
    uses_ddp: ClassVar[bool] = True

    # Common hyperparameters: set by each subclass's __init__ (declared here for type checkers only).
    device: str | None
    random_state: int | np.random.Generator | None
    eval_every: int
    patience: int | None
    n_threads: int | None
    lr: float

    modules_: dict[str, nn.Module]
    optimizers_: dict[str, torch.optim.Optimizer]
    best_epoch_: int | None
    device_: torch.device
    np_rng_: np.random.Generator
    torch_gen_: torch.Generator
    rank_np_rng_: np.random.Generator
    rank_torch_gen_: torch.Generator
    _seen_rows: DeviceCSR | None
    _ddp: dict[str, nn.Module]

    # ------------------------------------------------------------------ hooks
    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        raise NotImplementedError

    def _build_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
        if not params:
            return {}
        decay = float(getattr(self, "weight_decay", 0.0))
        return {"adam": torch.optim.Adam(params, lr=float(self.lr), weight_decay=decay)}

    def _prepare(self, train: Interactions) -> None:
        """Per-fit data; default none."""

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        raise NotImplementedError

    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_params(self) -> None:
        """Validate the model's own hyperparameters (the common ones are checked by :meth:`_fit`)."""

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_extra_state` returned."""

    def _release(self) -> None:
        """Drop training-only data after fit (optimiser moments, device copies of the training set)."""
        self.optimizers_ = {}
        self._ddp = {}

    def _call(self, module: str, method: str, *args: Any) -> Any:
        """``self.modules_[module].method(*args)``, through DDP when training distributed.

        Call the trained module through this once per optimiser step, for the forward pass whose
        gradients must be averaged over the ranks; other uses of a module (a frozen player's scores,
        an extra regulariser on rows the step already touched) call the module itself.
        """
        ddp = getattr(self, "_ddp", {}).get(module)
        if ddp is None:
            return getattr(self.modules_[module], method)(*args)
        return ddp(method, *args)

    # ------------------------------------------------------------------ the Trainable protocol
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch in train mode (the loop's entry point; subclasses implement :meth:`_train_epoch`)."""
        for m in self.modules_.values():
            m.train()
        seed = getattr(self, "_dist_seed", None)
        if seed is not None:
            self.rank_np_rng_, self.rank_torch_gen_ = distributed.rank_rngs(
                seed, self.name, epoch, self.device_
            )
        return self._train_epoch(epoch)

    def valid_score(self, users: np.ndarray) -> torch.Tensor:
        """Scores of the current weights in eval mode, on the device, for validation."""
        for m in self.modules_.values():
            m.eval()
        with torch.no_grad():
            return self._score_tensor(torch.as_tensor(users, dtype=torch.int64, device=self.device_))

    def modules(self) -> dict[str, nn.Module]:
        return self.modules_

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.optimizers_

    def rngs(self) -> dict[str, np.random.Generator | torch.Generator]:
        return {"numpy": self.np_rng_, "torch": self.torch_gen_}

    def extra_state(self) -> dict[str, Any]:
        return self._extra_state()

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._load_extra_state(state)

    def config(self) -> dict[str, Any]:
        """JSON-ready identity checked on resume: model name and hyperparameters."""
        return {"model": self.name, "params": json.loads(json.dumps(self.get_params(), default=repr))}

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: Interactions,
        valid: Interactions | None = None,
        *,
        metric: str = "NDCG@20",
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 0,
        resume: str | Path | None = None,
    ) -> Self:
        """Train on ``train``, selecting the epoch on ``valid`` when given.

        Parameters
        ----------
        train, valid
            As in :meth:`Recommender.fit`. With ``valid``, the weights of the best validated epoch are
            kept (and :meth:`refit_params` pins that epoch count); without, those of the last epoch.
        metric
            Validation metric ``NAME@K`` to select on.
        checkpoint_dir, checkpoint_every
            Write a resumable checkpoint every ``checkpoint_every`` epochs into ``checkpoint_dir``.
        resume
            Continue the run checkpointed in this folder (normally ``checkpoint_dir``); the result is
            bit-identical to an uninterrupted run on the same device.
        """
        self._fit_options = {
            "metric": metric,
            "checkpoint_dir": checkpoint_dir,
            "checkpoint_every": checkpoint_every,
            "resume": resume,
        }
        try:
            return super().fit(train, valid)
        finally:
            del self._fit_options

    def _check_common_params(self) -> None:
        check_int(getattr(self, self.epochs_param), self.epochs_param)
        check_int(self.eval_every, "eval_every")
        check_int(self.patience, "patience", allow_none=True)
        check_int(self.n_threads, "n_threads", allow_none=True)
        if hasattr(self, "lr"):
            check_float(self.lr, "lr", low_open=True)
        if hasattr(self, "batch_size"):
            check_int(self.batch_size, "batch_size")

    def _setup_fit(self, train: Interactions, *, optimizers: bool = True) -> None:
        """Everything before the first epoch: checks, device, generators, modules (DDP), optimisers, data."""
        self._check_common_params()
        self._check_params()
        self.device_ = resolve_device(self.device)
        random_state = self.random_state
        ctx = distributed.current()
        self._dist_seed: int | None = None
        if ctx is not None:
            self._check_distributed(ctx, train)
            random_state = self._dist_seed = distributed.agree_seed(self.random_state)
        self.np_rng_, self.torch_gen_, init_seed = make_rngs(random_state, self.device_)
        self.rank_np_rng_, self.rank_torch_gen_ = self.np_rng_, self.torch_gen_
        with seeded_init(init_seed):
            modules = self._build_modules(train.n_users, train.n_items)
        self.modules_ = {name: m.to(self.device_) for name, m in modules.items()}
        # DDP broadcasts rank 0's initial weights; with an agreed seed they are equal on all ranks anyway.
        wrap = ctx is not None and self.uses_ddp
        self._ddp = {name: distributed.wrap(m) for name, m in self.modules_.items()} if wrap else {}
        self.optimizers_ = self._build_optimizers(self.modules_) if optimizers else {}
        self._seen_rows = None
        self._prepare(train)

    def _check_distributed(self, ctx: distributed.DistContext, train: Interactions) -> None:
        """Refuse a model or device that cannot train data-parallel, and data that differs between ranks."""
        if not self.supports_distributed:
            raise DataError(
                f"{self.name}: distributed training is not supported yet for this model "
                "(see docs/distributed.md); train it in a single process"
            )
        if self.device_.type != ctx.device.type:
            raise DataError(
                f"{self.name}: device={str(self.device_)!r} but the process group trains on "
                f"{ctx.device.type} ({ctx.backend}); pass device={ctx.device.type!r} or leave it None"
            )
        self.device_ = ctx.device
        distributed.check_same(int(train.fingerprint()[:15], 16), "the training data")

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        self._setup_fit(train)
        opts = getattr(self, "_fit_options", {})
        result: FitResult = fit_loop(
            self,
            train=train,
            valid=valid,
            epochs=int(getattr(self, self.epochs_param)),
            eval_every=int(self.eval_every),
            metric=opts.get("metric", "NDCG@20"),
            patience=self.patience,
            checkpoint_dir=opts.get("checkpoint_dir"),
            checkpoint_every=int(opts.get("checkpoint_every", 0)),
            resume=opts.get("resume"),
            device=self.device_,
            n_threads=self.n_threads,
            eval_batch_size=self.score_batch_size,
            desc=self.name,
        )
        self.fit_result_ = result
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self._release()
        for m in self.modules_.values():
            m.eval()

    def refit_params(self) -> dict[str, Any]:
        """``{epochs_param: best_epoch}`` when validation chose the epoch, else ``{}``."""
        self._check_fitted()
        best = getattr(self, "best_epoch_", None)
        return {} if best is None else {self.epochs_param: int(best)}

    # ------------------------------------------------------------------ score
    def _score(self, users: np.ndarray) -> np.ndarray:
        for m in self.modules_.values():
            m.eval()
        out = np.empty((len(users), self.n_items), dtype=np.float32)  # (n, n_items)
        with torch.no_grad():
            for start in range(0, len(users), self.score_batch_size):
                batch = torch.as_tensor(users[start : start + self.score_batch_size], device=self.device_)
                out[start : start + len(batch)] = self._score_tensor(batch).float().cpu().numpy()
        return out

    def _seen_dense(self, users: torch.Tensor) -> torch.Tensor:
        """The users' training rows (``seen_``) as dense ``(n, n_items)`` 0/1 on the device."""
        rows = getattr(self, "_seen_rows", None)
        if rows is None:
            rows = self._seen_rows = DeviceCSR.from_interactions(self.seen_, self.device_)
        return rows.dense(users)

    # ------------------------------------------------------------------ state
    @classmethod
    def _params_for_load(cls, params: dict[str, Any], *, device: str | None, where: str) -> dict[str, Any]:
        """The saved params, ``device`` set to where the loaded model runs (see :meth:`Recommender.load`).

        ``device`` given: that one. Otherwise the recorded device where this machine has it, else ``None``
        (this machine's default): a model trained with ``--device cuda`` loads on a CPU-only machine.
        """
        out = dict(params)
        if device is not None:
            resolve_device(device)  # a bad or unavailable device is the caller's DataError
            out["device"] = device
            return out
        saved = out.get("device")
        if saved is None or _available(saved, where):
            return out
        out["device"] = None
        log.info("%s: %s was saved with device=%r, which this machine lacks; it runs on %s", where, cls.name,
                 saved, resolve_device(None))
        return out

    def _expected_state(self, n_users: int, n_items: int, where: str) -> dict[str, TensorInfo]:
        """Names, dtypes and shapes of the state these params give, from modules built on the meta device.

        Nothing is allocated, so params that describe terabytes of weights cost nothing to check.
        """
        try:
            with seeded_init(0), torch.device("meta"):
                modules = self._build_modules(n_users, n_items)
        except Exception as e:  # noqa: BLE001 -- hostile params can fail a constructor anyhow; refuse them
            raise ArtifactError(
                f"{where}: its params do not build a {self.name} model ({type(e).__name__}: {one_line(e)})"
            ) from None
        out = {
            f"{name}/{key}": TensorInfo(str(t.dtype).removeprefix("torch."), tuple(t.shape))
            for name, m in modules.items()
            for key, t in m.state_dict().items()
        }
        out["best_epoch"] = TensorInfo("int64", (1,))
        return out

    def _check_state_header(
        self, header: dict[str, TensorInfo], n_users: int, n_items: int, file_bytes: int, where: str
    ) -> None:
        """The saved state's table equals the modules' state for these params (built on the meta device).

        Before that, the bytes the params describe are checked against :data:`~gan4rec.artifacts.
        MAX_WEIGHT_BYTES` and the tensors file's size, so no real module is ever built too large.
        """
        expected = self._expected_state(n_users, n_items, where)
        total = sum(info.nbytes for info in expected.values())
        if total > MAX_WEIGHT_BYTES:
            raise ArtifactError(
                f"{where}: its params describe {total / 2**30:.1f} GiB of weights, above the "
                f"{MAX_WEIGHT_BYTES / 2**30:.0f} GiB a gan4rec model may have"
            )
        if total > file_bytes:
            raise ArtifactError(
                f"{where}: its params describe {total} bytes of weights; the tensors file holds {file_bytes}"
            )
        missing, unexpected = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
        if missing or unexpected:
            raise ArtifactError(
                f"{where}: the saved {self.name} state lacks {one_line(missing, 120)} and holds unexpected "
                f"{one_line(unexpected, 120)}"
            )
        for key, want in expected.items():
            got = header[key]
            zero_d = want.shape == () and got.shape in ((), (1,))  # 0-d arrays may be saved as 1-element
            if got.dtype != want.dtype or (got.shape != want.shape and not zero_d):
                raise ArtifactError(f"{where}: array {key!r} is {got}, but these params give {want}")

    def _state(self) -> dict[str, np.ndarray]:
        out = {
            f"{name}/{key}": value.detach().cpu().numpy()
            for name, m in self.modules_.items()
            for key, value in m.state_dict().items()
        }
        best = getattr(self, "best_epoch_", None)
        out["best_epoch"] = np.array([-1 if best is None else best], dtype=np.int64)
        return out

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.device_ = resolve_device(self.device)
        self._ddp = {}
        # Weights are overwritten below; the fixed seed only keeps the global generator untouched.
        with seeded_init(0):
            modules = self._build_modules(self.n_users, self.n_items)
        expected = {"best_epoch"}
        for name, m in modules.items():
            loaded = {}
            for key, ref in m.state_dict().items():
                full = f"{name}/{key}"
                expected.add(full)
                # 0-d arrays are 0-d in artifacts (np.require) and 1-element 1-d in older ones.
                zero_d = ref.ndim == 0 and full in arrays and arrays[full].shape == ()
                shape = tuple(ref.shape) if ref.ndim else () if zero_d else (1,)
                arr = np.array(self._expect_shape(arrays, full, shape)).reshape(tuple(ref.shape))
                loaded[key] = torch.from_numpy(arr)
            m.load_state_dict(loaded)
        unexpected = sorted(set(arrays) - expected)
        if unexpected:
            raise ArtifactError(f"saved {self.name} model holds unexpected arrays {unexpected}")
        best = int(self._expect_shape(arrays, "best_epoch", (1,))[0])
        self.best_epoch_ = None if best < 0 else best
        self.modules_ = {name: m.to(self.device_).eval() for name, m in modules.items()}
        self.optimizers_ = {}
        self._seen_rows = None


def _available(device: Any, where: str) -> bool:
    """Whether this machine has the torch device named ``device`` (a malformed name is an ArtifactError)."""
    try:
        if not isinstance(device, str):
            raise TypeError(device)
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        shown = one_line(repr(device), 60)
        raise ArtifactError(f"{where}: params device={shown} is not a torch device") from None
    if dev.type == "cpu":
        return True
    if dev.type == "cuda":
        return torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
    if dev.type == "mps":
        return bool(torch.backends.mps.is_available())
    return False
