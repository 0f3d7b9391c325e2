"""The model registry: :data:`MODELS`, a plain dict from registry name to :class:`Recommender` subclass.

Each entry declares, on its class, its default params (the keyword-only ``__init__`` arguments), its
search space (``search_space``) and whether it is adversarial (``adversarial``).
"""

from __future__ import annotations

from typing import Any

from gan4rec.errors import DataError
from gan4rec.models.base import Recommender
from gan4rec.models.baselines.bpr import BPR
from gan4rec.models.baselines.ease import EASE
from gan4rec.models.baselines.ials import IALS
from gan4rec.models.baselines.knn import ItemKNN, UserKNN
from gan4rec.models.baselines.multvae import MultVAE
from gan4rec.models.baselines.popularity import TopPop
from gan4rec.models.baselines.rp3beta import RP3beta
from gan4rec.models.baselines.slim import SLIM
from gan4rec.models.baselines.svd import PureSVD
from gan4rec.models.gan.cfgan import CFGAN
from gan4rec.models.gan.easegan import EASEGAN
from gan4rec.models.gan.irgan import IRGAN
from gan4rec.models.hybrid.content_knn import ContentKNN
from gan4rec.models.hybrid.dropoutnet import DropoutNet
from gan4rec.models.hybrid.ease_side import EASESide
from gan4rec.models.hybrid.ridge_map import RidgeMap

__all__ = ["MODELS", "Recommender", "create", "describe"]

MODELS: dict[str, type[Recommender]] = {
    "toppop": TopPop,
    "itemknn": ItemKNN,
    "userknn": UserKNN,
    "ease": EASE,
    "slim": SLIM,
    "rp3beta": RP3beta,
    "puresvd": PureSVD,
    "bpr": BPR,
    "multvae": MultVAE,
    "ials": IALS,
    "cfgan": CFGAN,
    "irgan": IRGAN,
    "easegan": EASEGAN,
    "content-knn": ContentKNN,
    "ridge-map": RidgeMap,
    "ease-side": EASESide,
    "dropoutnet": DropoutNet,
}


def _get(name: str) -> type[Recommender]:
    try:
        return MODELS[name]
    except KeyError:
        raise DataError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


def create(
    name: str,
    params: dict[str, Any] | None = None,
    *,
    random_state: int | None = None,
    device: str | None = None,
) -> Recommender:
    """A new, unfitted model from the registry with ``params`` over its defaults.

    ``random_state`` and ``device`` are passed to models that take them, unless ``params`` sets them.
    """
    cls = _get(name)
    params = dict(params or {})
    cls.check_params(params)
    takes = cls.default_params()
    if "random_state" in takes and "random_state" not in params:
        params["random_state"] = random_state
    if device is not None and "device" in takes and "device" not in params:
        params["device"] = device
    return cls(**params)


def describe(name: str | None = None) -> dict[str, Any]:
    """JSON-ready registry: for each model its defaults, search space and adversarial flag."""
    names = [name] if name is not None else list(MODELS)
    out = {}
    for n in names:
        cls = _get(n)
        out[n] = {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "adversarial": cls.adversarial,
            "cold_start": cls.cold_start,
            "defaults": cls.default_params(),
            "search_space": cls.search_space,
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
        }
    return out
