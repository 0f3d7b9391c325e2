"""The one training loop every iterative model runs: epochs, validation, early stopping, checkpoints.

The loop never looks inside an epoch. A model hands it a :class:`Trainable`; the loop calls
``train_epoch(epoch)`` for epochs ``1..epochs``, validates every ``eval_every`` epochs (and after the last)
with :func:`gan4rec.evaluation.evaluator.evaluate` on ``valid`` (the user's train items excluded from the
ranking), keeps a copy of the best weights, stops after ``patience`` validations without improvement,
and restores the best weights at the end. Every ``checkpoint_every`` epochs it writes a resumable
checkpoint (:mod:`gan4rec.train.checkpoint`); ``resume=`` continues from the newest readable one so that
the final weights are bit-identical to an uninterrupted run on the same device.

Selection rule: the best epoch is the first evaluated epoch with the highest validation metric (a later
epoch must be strictly better to replace it), so a refit with ``epochs=best_epoch`` reproduces it.

Progress: after the first epoch, a fit estimated to take over :data:`ESTIMATE_MIN_SECONDS` logs
``"<desc>: about N epochs x S s/epoch = T (estimate...)"``; an epoch running past
:data:`gan4rec._progress.LONG_STEP_SECONDS` announces itself while it runs; on a terminal a bar counts
the epochs (see :mod:`gan4rec._progress`; all silent below INFO).

On the CPU the loop runs with ``torch.set_num_threads(n_threads)``, put back afterwards: small-batch
updates gain nothing from more threads and on a shared 2-core machine two threads are much slower.

Distributed (a process group joined with :func:`gan4rec.train.distributed.init`): every rank trains its
epoch; the epoch's diagnostics are averaged over the ranks; rank 0 alone validates, decides (improved?
stop?) and broadcasts its decision with the metric values as one float64 tensor, so all ranks keep the
same best weights and leave the loop at the same epoch. Only rank 0 logs epochs and writes checkpoints;
on resume every rank loads the same checkpoint. At the end the ranks check that they hold equal weights.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from gan4rec._progress import format_duration, progress, step
from gan4rec.data.interactions import Interactions
from gan4rec.errors import ArtifactError, DataError
from gan4rec.evaluation.evaluator import evaluate
from gan4rec.evaluation.metrics import RANKING_METRICS
from gan4rec.train import distributed
from gan4rec.train.checkpoint import (
    CheckpointStore,
    StateDicts,
    pack_training_state,
    snapshot_modules,
    unpack_training_state,
)
from gan4rec.train.devices import resolve_device, torch_threads

__all__ = [
    "ESTIMATE_MIN_SECONDS",
    "FitResult",
    "Trainable",
    "fit_loop",
    "observe_validation",
    "parse_metric",
    "resolve_device",
    "torch_threads",
]

logger = logging.getLogger(__name__)

#: After the first epoch the loop logs its estimate of the whole fit when that is at least this long.
ESTIMATE_MIN_SECONDS = 30.0

#: (the trainable whose validations are observed, callback(epoch, value)); see :func:`observe_validation`.
_OBSERVER: contextvars.ContextVar[tuple[object, Callable[[int, float], None]] | None] = contextvars.ContextVar(
    "gan4rec_validation_observer", default=None
)


@contextlib.contextmanager
def observe_validation(trainable: object, callback: Callable[[int, float], None]) -> Iterator[None]:
    """Call ``callback(epoch, value)`` after each validation of ``trainable``'s :func:`fit_loop` in this block.

    This is how tuning prunes bad trials early (:func:`gan4rec.tuning.tune`): the callback reports the
    value to Optuna and raises ``optuna.TrialPruned`` to abandon the fit, which propagates out of ``fit``.
    Only the loop whose ``trainable`` is the given object is observed, not loops nested inside it (e.g.
    IRGAN's BPR-MF pre-training). Every rank calls the callback with the same, broadcast, value.
    """
    token = _OBSERVER.set((trainable, callback))
    try:
        yield
    finally:
        _OBSERVER.reset(token)


@runtime_checkable
class Trainable(Protocol):
    """What :func:`fit_loop` needs from a model.

    Optionally also ``extra_state() -> dict`` / ``load_extra_state(dict)`` (JSON-ready state outside the
    modules, e.g. a KL-annealing step counter, saved in checkpoints) and ``config() -> dict`` (JSON-ready
    identity, e.g. the model name and params; a resume checks that it matches the checkpoint).
    """

    def train_epoch(self, epoch: int) -> Mapping[str, float]:
        """Run one epoch (``epoch`` counts from 1) and return its scalar diagnostics (losses...)."""
        ...

    def valid_score(self, users: np.ndarray) -> torch.Tensor | np.ndarray:
        """Scores ``(len(users), n_items)`` of the current weights, for validation."""
        ...

    def modules(self) -> Mapping[str, nn.Module]:
        """Every module whose weights are trained (checkpointed, snapshotted for early stopping)."""
        ...

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        """Every optimiser (checkpointed); may be empty."""
        ...

    def rngs(self) -> Mapping[str, np.random.Generator | torch.Generator]:
        """Every generator the epochs draw from (checkpointed)."""
        ...


@dataclass
class FitResult:
    """What :func:`fit_loop` returns.

    Attributes
    ----------
    history
        One row per epoch run: ``epoch``, the epoch's diagnostics, ``valid_<metric>`` (and extra metrics)
        when validated, ``valid_seconds`` and ``seconds`` (wall time of the epoch including validation).
    best_epoch
        The epoch whose weights the trainable holds at the end; ``None`` without validation (the last
        epoch's weights are kept).
    best_value
        Its validation metric (``nan`` without validation).
    stopped_early
        Whether training stopped before ``epochs``: patience ran out, or a diagnostic became non-finite
        (logged as a warning; the best weights validated before are kept).
    resumed_from
        The epoch of the checkpoint the run resumed from, else ``None``.
    """

    history: list[dict[str, float]]
    best_epoch: int | None
    best_value: float
    stopped_early: bool
    resumed_from: int | None = None
    checkpoints: list[str] = field(default_factory=list)


def parse_metric(metric: str) -> tuple[str, int]:
    """``"NDCG@20" -> ("NDCG", 20)``; a :class:`DataError` names the accepted forms otherwise."""
    name, sep, k = str(metric).partition("@")
    if not sep or name not in RANKING_METRICS or not k.isdigit() or int(k) < 1:
        raise DataError(
            f"metric={metric!r}; expected NAME@K with NAME among {', '.join(RANKING_METRICS)} and K >= 1"
        )
    return name, int(k)


def _check_positive(value: Any, name: str, *, allow_zero: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < (0 if allow_zero else 1):
        lowest = "a non-negative" if allow_zero else "a positive"
        raise DataError(f"{name}={value!r}; expected {lowest} int" + (" or None" if allow_none else ""))


@dataclass
class _LoopState:
    epoch: int = 0
    best_epoch: int | None = None
    best_value: float = -math.inf
    bad_evals: int = 0
    stopped: bool = False
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_value": None if not math.isfinite(self.best_value) else self.best_value,
            "bad_evals": self.bad_evals,
            "stopped": self.stopped,
            "history": self.history,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> _LoopState:
        best = d.get("best_value")
        return cls(
            epoch=int(d["epoch"]),
            best_epoch=d.get("best_epoch"),
            best_value=-math.inf if best is None else float(best),
            bad_evals=int(d["bad_evals"]),
            stopped=bool(d["stopped"]),
            history=[dict(r) for r in d["history"]],
        )


def fit_loop(
    trainable: Trainable,
    *,
    train: Interactions,
    valid: Interactions | None = None,
    epochs: int,
    eval_every: int = 1,
    metric: str = "NDCG@20",
    extra_metrics: Sequence[str] = (),
    patience: int | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    keep_checkpoints: int = 2,
    resume: str | Path | None = None,
    device: str | torch.device | None = None,
    n_threads: int | None = 1,
    eval_batch_size: int = 1024,
    desc: str = "train",
) -> FitResult:
    """Train ``trainable`` for up to ``epochs`` epochs with validation, early stopping and checkpoints.

    Parameters
    ----------
    trainable
        The model (see :class:`Trainable`), already built, its modules on ``device``.
    train
        The training interactions: excluded from validation rankings, fingerprinted into checkpoints.
    valid
        Validation interactions (same maps); ``None`` trains all ``epochs`` without validation.
    epochs
        Maximum number of epochs.
    eval_every
        Validate every this many epochs, and after the last one.
    metric
        ``NAME@K`` to select on, e.g. ``"NDCG@20"``; higher is better.
    extra_metrics
        Further ``NAME@K`` recorded in the history (not used for selection).
    patience
        Stop after this many consecutive validations without a strictly better ``metric``; ``None`` runs
        all epochs (the best epoch's weights are still restored).
    checkpoint_dir
        Folder for resumable checkpoints; one is written every ``checkpoint_every`` epochs and when the
        loop ends. It must not hold checkpoints of another run unless ``resume`` points at it.
    checkpoint_every
        ``0`` (default) writes no checkpoints.
    keep_checkpoints
        Newest checkpoints kept (>= 2).
    resume
        Folder to resume from (normally ``checkpoint_dir``): the newest readable checkpoint is loaded
        (an unreadable newest one falls back to the previous one, with a warning). No checkpoint there
        means a fresh start. The checkpoint must come from the same trainable config and data.
    device
        Where validation ranks (``None``: CUDA when available). On a CPU device ``n_threads`` applies.
    n_threads
        ``torch.set_num_threads`` while the loop runs on the CPU (restored afterwards); ``None`` leaves it.
    eval_batch_size
        Users scored at once during validation.
    desc
        Label of the progress bar and log lines.

    Returns
    -------
    FitResult
    """
    _check_positive(epochs, "epochs")
    _check_positive(eval_every, "eval_every")
    _check_positive(patience, "patience", allow_none=True)
    _check_positive(checkpoint_every, "checkpoint_every", allow_zero=True)
    sel = _selection(metric, extra_metrics)
    if valid is not None and not train.same_space(valid):
        raise DataError("valid does not share train's user and item id maps")
    if checkpoint_every and checkpoint_dir is None:
        raise DataError("checkpoint_every > 0 needs a checkpoint_dir")
    dev = resolve_device(device)
    loop_config = {"epochs": epochs, "eval_every": eval_every, "metric": metric, "patience": patience}
    run = _start(trainable, train, valid, loop_config, checkpoint_dir, keep_checkpoints, resume, desc)
    state = run.state

    with torch_threads(n_threads if dev.type == "cpu" else None):
        remaining = range(state.epoch + 1, epochs + 1) if not state.stopped else range(0)
        epoch_iter = (
            progress(remaining, desc=desc, total=len(remaining), unit="epoch", logger=logger)
            if run.main
            else remaining
        )
        for epoch in epoch_iter:
            t0 = time.perf_counter()
            # A long epoch announces itself while it runs; its end is the epoch line below.
            label = f"{desc}: epoch {epoch}/{epochs}"
            with step(label, logger, log_end=False) if run.main else contextlib.nullcontext():
                row, diverged = _train_one_epoch(run, epoch)
                if not diverged and valid is not None and (epoch % eval_every == 0 or epoch == epochs):
                    _validate(run, epoch, row, train, valid, sel, patience, eval_batch_size, dev)
            row["seconds"] = time.perf_counter() - t0
            state.history.append(row)
            if run.main:
                _log_epoch(desc, epoch, epochs, row, metric, state)
                if epoch == remaining[0] and not state.stopped:
                    _log_estimate(desc, row, len(remaining), eval_every, early_stop=patience is not None and valid is not None)
            last = state.stopped or epoch == epochs
            # A diverged state is not worth resuming (and non-finite weights would not load anyway).
            if checkpoint_every and (epoch % checkpoint_every == 0 or last) and not diverged:
                _save_checkpoint(run)
            if state.stopped:
                if not diverged and run.main:
                    _log_early_stop(desc, epoch, metric, state)
                break

    _restore_best(run, metric)
    distributed.check_in_sync(run.modules)
    return FitResult(
        history=state.history,
        best_epoch=state.best_epoch,
        best_value=state.best_value if state.best_epoch is not None else math.nan,
        stopped_early=state.stopped,
        resumed_from=run.resumed_from,
        checkpoints=run.written,
    )


# ------------------------------------------------------------------------------------------- stages
@dataclass(frozen=True)
class _Selection:
    """The validation metrics: ``metric`` selects, ``extra`` are recorded; ``ks``/``families`` to compute."""

    metric: str
    extra: list[str]
    ks: list[int]
    families: list[str]


def _selection(metric: str, extra_metrics: Sequence[str]) -> _Selection:
    family, k = parse_metric(metric)
    extra = [m for m in extra_metrics if m != metric]
    families, ks = {family}, {k}
    for m in extra:
        fam, k = parse_metric(m)
        families.add(fam)
        ks.add(k)
    return _Selection(metric, extra, sorted(ks), sorted(families))


@dataclass
class _Run:
    """What the stages of one :func:`fit_loop` call share: the trainable's parts and the loop's state."""

    trainable: Trainable
    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    rngs: dict[str, np.random.Generator | torch.Generator]
    config: Any
    store: CheckpointStore | None
    main: bool  # rank 0 (or the only process): validates, logs, writes checkpoints
    desc: str
    state: _LoopState = field(default_factory=_LoopState)
    best_weights: StateDicts | None = None
    resumed_from: int | None = None
    written: list[str] = field(default_factory=list)


def _start(
    trainable: Trainable,
    train: Interactions,
    valid: Interactions | None,
    loop_config: dict[str, Any],
    checkpoint_dir: str | Path | None,
    keep_checkpoints: int,
    resume: str | Path | None,
    desc: str,
) -> _Run:
    """Set up a run: the trainable's parts, its identity (for checkpoints), and the resumed state if any."""
    config = _json_roundtrip(
        {
            "trainable": trainable.config() if hasattr(trainable, "config") else None,
            "train": train.fingerprint(),
            "valid": None if valid is None else valid.fingerprint(),
            "loop": loop_config,
        }
    )
    store = None if checkpoint_dir is None else CheckpointStore(checkpoint_dir, keep=keep_checkpoints)
    run = _Run(
        trainable=trainable,
        modules=dict(trainable.modules()),
        optimizers=dict(trainable.optimizers()),
        rngs=dict(trainable.rngs()),
        config=config,
        store=store,
        main=distributed.is_main(),
        desc=desc,
    )
    same_folder = (
        store is not None and resume is not None and Path(resume).resolve() == store.folder.resolve()
    )
    if store is not None and not same_folder and store.epochs():
        raise DataError(
            f"checkpoint_dir={str(checkpoint_dir)!r} already holds checkpoints of a run; "
            "pass resume= that folder "
            "to continue it, or choose an empty folder"
        )
    if resume is not None:
        _resume(run, resume, keep_checkpoints, same_folder)
    return run


def _resume(run: _Run, resume: str | Path, keep_checkpoints: int, same_folder: bool) -> None:
    """Load the newest readable checkpoint in ``resume`` into ``run`` (a fresh start without one)."""
    ckpt = CheckpointStore(resume, keep=keep_checkpoints).load_latest()
    # Every rank must continue from the same checkpoint; this collective also keeps rank 0 from
    # discarding newer (unreadable) checkpoints while another rank still reads the folder.
    distributed.check_same(-1 if ckpt is None else _LoopState.from_json(ckpt.meta["loop"]).epoch,
                           f"the checkpoint to resume from in {resume}")
    discard = same_folder and run.main and run.store is not None
    if ckpt is None:
        if run.main:
            logger.warning("%s: no readable checkpoint in %s; starting from epoch 1", run.desc, resume)
        if discard:
            run.store.discard_after(0)  # type: ignore[union-attr]
        return
    _check_config(ckpt.meta.get("config"), run.config, ckpt.path)
    run.best_weights = unpack_training_state(
        ckpt.tensors, ckpt.meta, run.modules, run.optimizers, run.rngs, where=str(ckpt.path)
    )
    if hasattr(run.trainable, "load_extra_state"):
        run.trainable.load_extra_state(ckpt.meta.get("extra", {}))
    run.state = _LoopState.from_json(ckpt.meta["loop"])
    run.resumed_from = run.state.epoch
    if run.main:
        logger.info("%s: resumed from %s (epoch %d)", run.desc, ckpt.path, run.state.epoch)
    if discard:
        run.store.discard_after(run.state.epoch)  # type: ignore[union-attr]


def _train_one_epoch(run: _Run, epoch: int) -> tuple[dict[str, float], bool]:
    """Train ``epoch``; its history row (so far: the diagnostics) and whether a diagnostic diverged."""
    losses = distributed.average_scalars(run.trainable.train_epoch(epoch))
    row: dict[str, float] = {"epoch": epoch}
    for key, value in losses.items():
        row[str(key)] = float(value)
    run.state.epoch = epoch
    bad = [k for k, v in row.items() if not math.isfinite(v)]
    if bad:
        # Diverged: validating NaN weights would fail; keep the best weights seen so far instead.
        # (Distributed: the diagnostics are averaged over the ranks, so all ranks see this alike.)
        if run.main:
            logger.warning("%s: %s became non-finite at epoch %d; stopping", run.desc, ", ".join(bad), epoch)
        run.state.stopped = True
    return row, bool(bad)


def _validate(
    run: _Run,
    epoch: int,
    row: dict[str, float],
    train: Interactions,
    valid: Interactions,
    sel: _Selection,
    patience: int | None,
    eval_batch_size: int,
    dev: torch.device,
) -> None:
    """Validate on rank 0, broadcast the decision, record it in ``row`` and apply early stopping."""
    state = run.state
    # values: the metric, the extra metrics, the validation seconds, then the decision
    # (improved, stop); computed on rank 0 and broadcast as one tensor when distributed.
    values = [math.nan] * (len(sel.extra) + 4)
    if run.main:
        t_eval = time.perf_counter()
        res = evaluate(
            run.trainable.valid_score,
            train,
            valid,
            ks=sel.ks,
            metrics=sel.families,
            batch_size=eval_batch_size,
            device=dev,
        )
        value = float(res.metrics[sel.metric])
        improved = value > state.best_value
        stop = not improved and patience is not None and state.bad_evals + 1 >= patience
        values = [value, *(float(res.metrics[m]) for m in sel.extra)]
        values += [time.perf_counter() - t_eval, float(improved), float(stop)]
    values = distributed.broadcast_floats(values)
    value, improved, stop = values[0], values[-2] == 1.0, values[-1] == 1.0
    row[f"valid_{sel.metric}"] = value
    for m, v in zip(sel.extra, values[1:-3], strict=True):
        row[f"valid_{m}"] = v
    row["valid_seconds"] = values[-3]
    if improved:
        state.best_value, state.best_epoch, state.bad_evals = value, epoch, 0
        run.best_weights = snapshot_modules(run.modules)
    else:
        state.bad_evals += 1
        if stop:
            state.stopped = True
    observer = _OBSERVER.get()
    if observer is not None and observer[0] is run.trainable:
        observer[1](epoch, value)


def _save_checkpoint(run: _Run) -> None:
    """Rank 0 writes a resumable checkpoint of the state after ``run.state.epoch`` (no-op without a store)."""
    if not run.main or run.store is None:
        return
    tensors, meta = pack_training_state(run.modules, run.optimizers, run.rngs, best=run.best_weights)
    meta["config"] = run.config
    meta["loop"] = run.state.to_json()
    meta["extra"] = run.trainable.extra_state() if hasattr(run.trainable, "extra_state") else {}
    run.written.append(str(run.store.save(run.state.epoch, tensors, meta)))


def _restore_best(run: _Run, metric: str) -> None:
    """Put back the best validated weights when the last epoch was not the best."""
    state = run.state
    if run.best_weights is None or state.best_epoch == state.epoch:
        return
    for module_name, module in run.modules.items():
        module.load_state_dict(run.best_weights[module_name])
    if run.main:
        logger.info(
            "%s: restored the weights of epoch %d (%s = %.4f)", run.desc, state.best_epoch, metric, state.best_value
        )


def _log_estimate(desc: str, first: Mapping[str, float], n_epochs: int, eval_every: int, *, early_stop: bool) -> None:
    """After the first epoch, log how long ``n_epochs`` epochs like it would take, when that is long.

    The per-epoch time is the first epoch's training time plus its validation time spread over
    ``eval_every`` epochs (when it validated; a later validation's cost is not known yet).
    """
    if n_epochs < 2:
        return
    valid_s = first.get("valid_seconds", 0.0)
    per_epoch = first["seconds"] - valid_s + valid_s / eval_every
    total = n_epochs * per_epoch
    if total < ESTIMATE_MIN_SECONDS:
        return
    logger.info(
        "%s: about %d epochs x %.1f s/epoch = %s (estimate%s)",
        desc, n_epochs, per_epoch, format_duration(total), "; early stopping may end sooner" if early_stop else "",
    )


def _log_early_stop(desc: str, epoch: int, metric: str, state: _LoopState) -> None:
    logger.info(
        "%s: early stop after epoch %d (%d validations without improvement); best %s = %.4f at epoch %s",
        desc, epoch, state.bad_evals, metric, state.best_value, state.best_epoch,
    )


def _log_epoch(
    desc: str, epoch: int, epochs: int, row: Mapping[str, float], metric: str, state: _LoopState
) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    skip = {"epoch", "seconds", "valid_seconds"}
    parts = [f"{k}={v:.4g}" for k, v in row.items() if k not in skip]
    best = f" (best {state.best_value:.4f} @ {state.best_epoch})" if state.best_epoch is not None else ""
    logger.info("%s: epoch %d/%d %s%s %.2f s", desc, epoch, epochs, " ".join(parts), best, row["seconds"])


def _json_roundtrip(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=repr))


def _check_config(saved: Any, current: Any, where: Path) -> None:
    """Refuse to resume a checkpoint of another model, another config or other data."""
    if saved == current:
        return
    if not isinstance(saved, dict):
        raise ArtifactError(f"{where}: checkpoint holds no run config; it cannot be resumed")
    for section in ("trainable", "train", "valid", "loop"):
        if saved.get(section) != current.get(section):
            raise DataError(
                f"resume: checkpoint {where} is of another run ({section} differs: "
                f"{_short(saved.get(section))} in the checkpoint, {_short(current.get(section))} now)"
            )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
