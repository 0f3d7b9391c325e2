"""Training infrastructure shared by every iterative model: seeding, the training loop, checkpoints.

Import flow: data -> evaluation -> train -> models. Nothing here imports a model; models implement the
:class:`~gan4rec.train.loop.Trainable` protocol and hand themselves to :func:`~gan4rec.train.loop.fit_loop`.
"""

from gan4rec.train.checkpoint import Checkpoint, CheckpointStore
from gan4rec.train.devices import resolve_device, torch_threads
from gan4rec.train.loop import FitResult, Trainable, fit_loop, parse_metric
from gan4rec.train.seeding import dropout, make_rngs, seeded_init, to_numpy_rng, torch_generator

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "FitResult",
    "Trainable",
    "dropout",
    "fit_loop",
    "make_rngs",
    "parse_metric",
    "resolve_device",
    "seeded_init",
    "to_numpy_rng",
    "torch_generator",
    "torch_threads",
]
