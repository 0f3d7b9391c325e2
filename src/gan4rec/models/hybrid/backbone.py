"""The collaborative backbone of the hybrids, fitted once and shared (a small in-process memo).

``ridge-map``, ``dropoutnet``, ``gar`` and ``gar-reg`` each start from a factor model (``ials`` or ``bpr``)
fitted on the same training data. Tuning one of them refits it in every trial, and a benchmark that runs
them all fits the same backbone many times. :func:`backbone_factors` fits it once per key::

    (backbone name, its params, train fingerprint, validation fingerprint or None, seed, device)

and hands out copies of the factors afterwards. A fit is deterministic for a given key (an int seed; see
the reproducibility rule of the project), so a memo hit returns the very factors a fresh fit would. Keys
whose seed is not an int (``None`` or a generator, which a fit advances) are never memoised.
:func:`remember_backbone` stores factors fitted elsewhere (e.g. in another process, read from a file) under
the key of the fit that made them; it is the caller's word that they are that fit's.

The memo keeps the last :data:`MEMO_SIZE` backbones; :func:`clear_backbones` empties it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gan4rec.data.interactions import Interactions

__all__ = ["MEMO_SIZE", "BackboneFit", "backbone_factors", "backbone_key", "clear_backbones", "remember_backbone"]

log = logging.getLogger(__name__)

#: Backbones kept in the memo (least recently used dropped first).
MEMO_SIZE = 4

_MEMO: OrderedDict[tuple[str, ...], BackboneFit] = OrderedDict()


@dataclass(frozen=True)
class BackboneFit:
    """A fitted backbone's factors: ``user (n_users, f)``, ``item (n_items, f)`` (float32).

    Attributes
    ----------
    refit
        The backbone's :meth:`~gan4rec.models.base.Recommender.refit_params`.
    fit_s
        Seconds of the fit that made these factors (0 when given by :func:`remember_backbone` without one).
    memo_hit
        Whether this came from the memo rather than a fit in this call.
    """

    user: np.ndarray
    item: np.ndarray
    refit: dict[str, Any] = field(default_factory=dict)
    fit_s: float = 0.0
    memo_hit: bool = False


def backbone_key(
    name: str,
    params: dict[str, Any] | None,
    train: Interactions,
    valid: Interactions | None,
    *,
    random_state: Any,
    device: str | None,
) -> tuple[str, ...] | None:
    """The memo key of a backbone fit, or ``None`` when it must not be memoised (a seed that is not an int).

    ``random_state`` and ``device`` are resolved as :func:`gan4rec.models.create` does: ``params`` wins.
    """
    p = dict(params or {})
    seed = p.get("random_state", random_state)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        return None
    dev = p.get("device", device)
    p.pop("random_state", None)
    p.pop("device", None)
    return (str(name), json.dumps(p, sort_keys=True, default=repr), train.fingerprint(features=False),
            valid.fingerprint(features=False) if valid is not None else "-", str(int(seed)), str(dev))


def backbone_factors(
    name: str,
    params: dict[str, Any] | None,
    train: Interactions,
    valid: Interactions | None,
    *,
    random_state: Any,
    device: str | None,
) -> BackboneFit:
    """``create(name, params, random_state=..., device=...).fit(train, valid)``'s factors, fitted once per key.

    Parameters
    ----------
    name, params
        Registry name of the factor model (``"ials"`` or ``"bpr"``) and its params over the defaults.
    train, valid
        What the backbone is fitted on (``valid`` may drive its early stopping).
    random_state, device
        Passed to :func:`gan4rec.models.create`.

    Returns
    -------
    BackboneFit
        Copies of the factors (callers may change them), from :func:`~gan4rec.models.hybrid.common.cf_factors`.
    """
    from gan4rec.models import create
    from gan4rec.models.hybrid.common import cf_factors

    key = backbone_key(name, params, train, valid, random_state=random_state, device=device)
    if key is not None and key in _MEMO:
        _MEMO.move_to_end(key)
        hit = _MEMO[key]
        log.info("backbone %s: reusing the factors of an earlier fit (%.1f s saved)", name, hit.fit_s)
        return BackboneFit(hit.user.copy(), hit.item.copy(), dict(hit.refit), hit.fit_s, memo_hit=True)
    t = time.perf_counter()
    model = create(name, dict(params or {}), random_state=random_state, device=device).fit(train, valid)
    user, item = cf_factors(model)
    fit = BackboneFit(user, item, dict(model.refit_params()), time.perf_counter() - t)
    if key is not None:
        _store(key, fit)
    return BackboneFit(user.copy(), item.copy(), dict(fit.refit), fit.fit_s)


def remember_backbone(
    name: str,
    params: dict[str, Any] | None,
    train: Interactions,
    valid: Interactions | None,
    *,
    random_state: Any,
    device: str | None,
    user: np.ndarray,
    item: np.ndarray,
    refit: dict[str, Any] | None = None,
    fit_s: float = 0.0,
) -> bool:
    """Store factors fitted elsewhere under the key of the fit that made them; ``False`` if not memoisable."""
    key = backbone_key(name, params, train, valid, random_state=random_state, device=device)
    if key is None:
        return False
    _store(key, BackboneFit(np.asarray(user, dtype=np.float32).copy(), np.asarray(item, dtype=np.float32).copy(),
                            dict(refit or {}), float(fit_s)))
    return True


def clear_backbones() -> None:
    """Empty the memo."""
    _MEMO.clear()


def _store(key: tuple[str, ...], fit: BackboneFit) -> None:
    _MEMO[key] = fit
    _MEMO.move_to_end(key)
    while len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)
