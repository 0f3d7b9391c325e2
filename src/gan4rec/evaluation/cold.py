"""Cold-start evaluation: the warm, cold and overall tasks of a :class:`~gan4rec.data.split.ColdSplit`.

Each task is one full-ranking evaluation by :func:`gan4rec.evaluation.evaluator.evaluate` (every user with
a relevant item in the task, each user's training items never recommended), over a restricted set of
candidate items. On the test part (GAR, Chen et al. SIGIR 2022; ALDI, Huang et al. SIGIR 2023)::

    task      relevant                      candidates ranked                     masked (never recommended)
    warm      warm-test interactions        warm items                            every cold item
    cold      cold-test interactions        cold-test items                       warm and cold-valid items
    overall   warm-test + cold-test         warm items + cold-test items          cold-valid items

On the validation part (for tuning, early stopping and calibrating warm against cold scores) the same with
validation in place of test: relevant warm-valid / cold-valid interactions, and the cold-TEST items masked
everywhere. On the test part each user's warm-validation items are also excluded from their ranking (they
are known positives that are not test targets), as :mod:`gan4rec.experiment` does for the other splits.

The model is seen only through ``score_fn(users) -> (len(users), n_items)`` scores, cold items included.
A model that cannot score cold items (pure collaborative filtering) gives them a constant; the
evaluator's tie rule then ranks them by item index, which is chance on data whose item indices carry no
order (CiteULike-t) but not on data where they do (on the synthetic data lower indices are more popular),
so report such models' cold task as "cannot score cold items" rather than as a result.

::

    split = make_split(load_dataset("citeulike-t"), "cold-items", random_state=0)
    model.fit(split.train, split.valid)        # the features of every item are in split.train
    res = evaluate_cold(model.score, split)    # {"warm": EvalResult, "cold": ..., "overall": ...}
    res["cold"].metrics["Recall@20"], res["cold"].per_user["Recall@20"]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from gan4rec.data.interactions import Interactions
from gan4rec.data.split import ColdSplit
from gan4rec.errors import DataError
from gan4rec.evaluation.evaluator import EvalResult, ScoreFn, evaluate

__all__ = ["COLD_TASKS", "cold_tasks", "evaluate_cold", "masked_scores"]

logger = logging.getLogger(__name__)

#: The tasks, in report order.
COLD_TASKS: tuple[str, ...] = ("warm", "cold", "overall")


def masked_scores(score_fn: ScoreFn, masked: np.ndarray) -> ScoreFn:
    """``score_fn`` with the items where ``masked`` is true scored ``-inf`` (never ranked).

    Parameters
    ----------
    score_fn
        ``users -> (len(users), n_items)`` scores, numpy or torch; its output is copied, never modified.
    masked
        ``(n_items,)`` bool.
    """
    cols = np.flatnonzero(np.asarray(masked, dtype=bool))  # (n_masked,)
    cols_t = torch.from_numpy(cols)

    def fn(users: np.ndarray) -> Any:
        scores = score_fn(users)
        if isinstance(scores, torch.Tensor):
            out_t = scores.detach().clone() if scores.is_floating_point() else scores.float()
            out_t[:, cols_t.to(out_t.device)] = -torch.inf
            return out_t
        out = np.array(scores, dtype=None, copy=True)
        if out.dtype.kind != "f":
            out = out.astype(np.float32)
        out[:, cols] = -np.inf
        return out

    return fn


def cold_tasks(split: ColdSplit, part: Literal["test", "valid"] = "test") -> dict[str, tuple[Interactions, np.ndarray]]:
    """Relevant interactions and masked items of each task: ``{"warm": (relevant, masked), ...}``.

    ``masked`` is an ``(n_items,)`` bool array of the items never ranked in that task (see the module table).
    """
    if not isinstance(split, ColdSplit):
        raise DataError(f"split must be a ColdSplit (from split kind 'cold-items'), got {type(split).__name__}")
    if part == "test":
        warm, cold, both = split.warm_test, split.cold_test, split.test
        own, other = split.cold_mask("test"), split.cold_mask("valid")
    elif part == "valid":
        warm, cold, both = split.warm_valid, split.cold_valid, split.valid
        own, other = split.cold_mask("valid"), split.cold_mask("test")
    else:
        raise DataError(f"part={part!r}; expected 'test' or 'valid'")
    if both is None:
        raise DataError(f"the split has no {part} part to evaluate")
    return {"warm": (warm, own | other), "cold": (cold, ~own), "overall": (both, other)}


def evaluate_cold(
    score_fn: ScoreFn,
    split: ColdSplit,
    *,
    part: Literal["test", "valid"] = "test",
    train: Interactions | None = None,
    ks: Iterable[int] | int = (20,),
    metrics: Sequence[str] | None = None,
    tasks: Sequence[str] = COLD_TASKS,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> dict[str, EvalResult]:
    """Evaluate a scoring function on the warm, cold and overall tasks of a cold-start split.

    Parameters
    ----------
    score_fn
        ``score_fn(users: int64 array) -> (len(users), n_items)``, e.g. ``model.score``; scores for every
        item of the map, cold ones included.
    split
        A :class:`~gan4rec.data.split.ColdSplit` (``make_split(data, "cold-items")``).
    part
        ``"test"`` (report once) or ``"valid"`` (tuning).
    train
        What the model was fitted on, whose items are never recommended to their user: ``split.train``
        (the default) or ``split.full_train()`` after a refit. It must hold no interaction on a cold item.
    ks, metrics, batch_size, device
        As in :func:`~gan4rec.evaluation.evaluator.evaluate`.
    tasks
        Which of ``"warm"``, ``"cold"``, ``"overall"`` to run.

    Returns
    -------
    dict
        Task name -> :class:`~gan4rec.evaluation.evaluator.EvalResult`: ``.metrics`` (``"NDCG@20"``,
        ``"Precision@20"``, ``"Recall@20"``, ...), ``.per_user`` and ``.users`` for significance tests.

    Raises
    ------
    DataError
        A split that is not a ColdSplit, a ``train`` that holds cold interactions, an unknown task, or a
        task without any relevant interaction (the message names the task).
    """
    parts = cold_tasks(split, part)
    unknown = [t for t in tasks if t not in COLD_TASKS]
    if unknown:
        raise DataError(f"task {unknown[0]!r} is unknown; expected some of {', '.join(COLD_TASKS)}")
    fit_on = split.train if train is None else train
    if not isinstance(fit_on, Interactions) or not split.train.same_space(fit_on):
        raise DataError("train must be Interactions over the split's user and item maps")
    if fit_on.nnz and split.cold_mask()[fit_on.indices].any():
        raise DataError("train holds interactions on cold items; pass split.train or split.full_train()")
    target = split.test if part == "test" else split.valid
    if target is not None and fit_on.nnz and _overlap(fit_on, target):
        raise DataError(f"train holds {part} interactions; evaluate {part} with the data the model was fitted on")
    exclude = (split.warm_valid,) if part == "test" else ()
    out: dict[str, EvalResult] = {}
    for task in tasks:
        relevant, masked = parts[task]
        if relevant.nnz == 0:
            raise DataError(f"the {task} task has no {part} interaction to evaluate")
        try:
            out[task] = evaluate(
                masked_scores(score_fn, masked), fit_on, relevant, ks=ks, metrics=metrics, exclude=exclude,
                batch_size=batch_size, device=device,
            )
        except DataError as exc:
            raise DataError(f"{task} task: {exc}") from None
        logger.info("%s %s task: %d users, %s", part, task, out[task].n_users,
                    ", ".join(f"{k}={v:.4f}" for k, v in list(out[task].metrics.items())[:3]))
    return out


def _overlap(a: Interactions, b: Interactions) -> bool:
    """Whether two sets of interactions over one index space share a (user, item) pair."""
    n = max(a.n_items, 1)
    return bool(np.isin(b.user_index() * n + b.indices, a.user_index() * n + a.indices).any())
