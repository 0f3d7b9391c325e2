"""CFGAN: a conditional GAN that generates whole purchase vectors (Chae et al., CIKM 2018).

Notation. A *row* is what the generator is conditioned on and a *column* what it generates: in user-based
mode (``mode="user"``) rows are users and columns items; in item-based mode (``mode="item"``, the paper's
ML-100K setting) the training matrix is transposed, rows are items and columns users. ``R`` rows, ``C``
columns; ``c_r`` is row ``r``'s 0/1 training vector (the condition) and ``e_r = c_r`` its real vector.

Model. The generator ``G`` is an MLP ``[c_r, onehot(r)?, z?] -> hidden... -> C`` (linear output); the
discriminator ``D`` an MLP ``[c_r, x, onehot(r)?] -> hidden... -> 1`` (a logit). Each epoch draws, for
every row, two independent uniform subsets of its unobserved columns, each exactly
``floor(ratio * n_unobserved)`` large: ``N^PM_r`` (``pm_ratio``) and ``N^ZR_r`` (``zr_ratio``). With
``k_r = e_r + 1[N^PM_r]`` (the real row with the PM samples set to 1) the fake vector D sees is
``G(c_r) * k_r`` and, per mini-batch of ``B`` rows,

    D minimises  mean_r softplus(-D(c_r, e_r)) + mean_r softplus(D(c_r, G(c_r) * k_r))
                 + d_l2 * |theta_D|^2 / 2
    G minimises  mean_r softplus(-D(c_r, G(c_r) * k_r))                        (non-saturating, default)
                 + alpha * mean_r sum_{j in N^ZR_r} G(c_r)_j^2                  (zero reconstruction, ZR)
                 + g_l2 * |theta_G|^2 / 2

``g_loss="minimax"`` replaces the first G term by ``mean_r log(1 - sigmoid(D(...)))``. The schemes:
``"zp"`` uses both PM and ZR (the paper's best), ``"zr"`` only ZR (``k_r = e_r``), ``"pm"`` only PM
(``alpha`` unused), ``"none"`` neither. The L2 terms weigh all weights and biases as TensorFlow's
``l2_loss`` does (half the sum of squares), so they are Adam's (coupled) ``weight_decay``.

Epoch. One epoch here is one *outer iteration* of the original code: draw the PM/ZR samples, then
``d_steps`` passes of D over all rows in random order (mini-batches of ``d_batch_size``), then ``g_steps``
passes of G (mini-batches of ``g_batch_size``). The original counts its ``epochs`` in G passes and runs
``epochs / step_G`` outer iterations, so its ML-100K run of 1000 epochs is ``epochs=250`` here:
250 x (2 x 26 D steps + 4 x 52 G steps) = 65,000 optimiser steps over the 1653 item rows. Validation
(early stopping, checkpoints) happens between epochs in the shared loop (:mod:`gan4rec.train.loop`).

Faithfulness to the original TensorFlow code (ANCHORS.md): Glorot-uniform weights and ``U(-0.01, 0.01)``
biases, Adam (beta 0.9/0.999, eps 1e-8) per player, sigmoid hidden layers, linear G output, one logit, the
samples drawn once per outer iteration and shared by its D and G passes, the last mini-batch of a pass
smaller, scoring ``G(c_r)`` of the training rows (transposed in item mode). Rows without any training
entry carry no signal and are skipped in training (the original requires that there are none).

Implementation. The steps run as hand-written passes (no autograd) in
:mod:`~gan4rec.models.gan.cfgan_kernels`, and the PM/ZR samples are drawn in
:mod:`~gan4rec.models.gan.cfgan_sampling`; those modules say how they are made fast, scale to ML-20M,
train data-parallel under torchrun and use bfloat16 products. The plain versions of the two losses are
:func:`discriminator_loss` and :func:`generator_loss` below, written with autograd-ready tensor ops next
to the equations; the tests check the hand-written gradients against autograd of these.

Variants studied after the paper (Pérez Maurera et al., ECIR 2022): ``noise_dim`` random inputs
(``noise="normal"``: N(0, 1), ``"uniform"``: U(0, 1); fresh for every forward pass in training, their mean
at scoring time) appended to G's input, and ``class_condition`` (a one-hot of the row id appended to both
G's and D's input). Input widths: G ``C + (R if class_condition) + noise_dim``, D
``2 C + (R if class_condition)``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.gan.cfgan_kernels import FusedAdam, HandWrittenSteps, Pass
from gan4rec.models.gan.cfgan_sampling import MaskSampling
from gan4rec.models.torch_base import TorchRecommender, check_float, check_int
from gan4rec.train import distributed
from gan4rec.train.loop import resolve_device

__all__ = ["CFGAN", "MLP", "discriminator_loss", "generator_loss", "mlp"]

logger = logging.getLogger(__name__)

MODES = ("user", "item")
SCHEMES = ("zp", "zr", "pm", "none")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
G_LOSSES = ("nonsaturating", "minimax")
NOISES = ("normal", "uniform")
RESAMPLES = ("epoch", "batch")
PRECISIONS = ("fp32", "bf16")

# ------------------------------------------------------------------------------------------- networks
class MLP(nn.Module):
    """Fully connected layers with weights stored ``(in, out)``; the first layer's weight in input blocks.

    ``inputs[j]`` holds the first-layer weight rows of input block ``j`` (e.g. the condition, the one-hot,
    the noise), so that sparse blocks gather rows and each block's gradient is a tensor of its own.
    ``weights[l]`` are the layers above the first, ``biases[l]`` every layer's bias. Weights are
    Glorot-uniform over the whole fan-in, biases ``U(-0.01, 0.01)`` (the original's initialisers). The
    forward and backward passes live in :class:`CFGAN`, written out by hand.
    """

    def __init__(self, blocks: Sequence[int], sizes: Sequence[int]) -> None:
        super().__init__()
        fan_ins = [sum(blocks), *sizes[:-1]]
        self.inputs = nn.ParameterList()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        bound = math.sqrt(6.0 / (fan_ins[0] + sizes[0]))
        for width in blocks:
            self.inputs.append(nn.Parameter(torch.empty(width, sizes[0]).uniform_(-bound, bound)))
        for fan_in, fan_out in zip(fan_ins[1:], sizes[1:], strict=True):
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            self.weights.append(nn.Parameter(torch.empty(fan_in, fan_out).uniform_(-bound, bound)))
        for fan_out in sizes:
            self.biases.append(nn.Parameter(torch.empty(fan_out).uniform_(-0.01, 0.01)))


# ------------------------------------------------------------------------------------------- the game
_ACTIVATION_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda t: t,
}


def mlp(net: MLP, x: torch.Tensor, activation: str) -> torch.Tensor:
    """A player's network on dense input ``x`` ``(B, sum(blocks))``, with plain (autograd) tensor ops."""
    act = _ACTIVATION_FNS[activation]
    weights = [torch.cat(list(net.inputs)), *net.weights]
    for i, (w, b) in enumerate(zip(weights, net.biases, strict=True)):
        x = x @ w + b
        if i < len(weights) - 1:
            x = act(x)
    return x


def discriminator_loss(
    dis: MLP, c: torch.Tensor, fake: torch.Tensor, onehot: torch.Tensor | None, activation: str
) -> torch.Tensor:
    """D's loss on a mini-batch: ``mean_r softplus(-D(c_r, e_r)) + mean_r softplus(D(c_r, G(c_r) * k_r))``.

    The paper's ``-log D(e_r | c_r) - log(1 - D(G(c_r) * k_r | c_r))`` (its partial-masking D objective),
    averaged over the batch; ``e_r = c_r`` (the real vector is the condition). The L2 term is Adam's weight
    decay, not part of this value.

    Parameters
    ----------
    dis
        The discriminator.
    c
        ``(B, C)`` 0/1 conditions (and real vectors).
    fake
        ``(B, C)`` ``G(c) * k``, a constant for D.
    onehot
        ``(B, R)`` one-hots of the rows with ``class_condition``, else ``None``.
    activation
        D's hidden activation.
    """
    extra = [] if onehot is None else [onehot]
    real_logit = mlp(dis, torch.cat([c, c, *extra], 1), activation)  # (B, 1)
    fake_logit = mlp(dis, torch.cat([c, fake, *extra], 1), activation)  # (B, 1)
    return F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()


def generator_loss(
    gen: MLP,
    dis: MLP,
    c: torch.Tensor,
    keep: torch.Tensor,
    zr: torch.Tensor | None,
    z: torch.Tensor | None,
    onehot: torch.Tensor | None,
    *,
    alpha: float,
    g_loss: str,
    g_activation: str,
    d_activation: str,
) -> torch.Tensor:
    """G's loss on a mini-batch: the adversarial term on ``G(c) * k`` plus ZR's ``alpha`` term.

    Non-saturating: ``mean_r softplus(-D(c_r, G(c_r) * k_r))`` (``-log D``); minimax:
    ``mean_r log(1 - sigmoid(D(...))) = -mean_r softplus(D(...))``. ZR adds
    ``alpha * mean_r sum_{j in N^ZR_r} G(c_r)_j^2`` (the generated values of the sampled unobserved
    entries pulled to 0). ``keep`` is ``k_r = e_r + 1[N^PM_r]`` (PM) or ``e_r``, ``zr`` the 0/1 ZR samples
    (``None``: no ZR), ``z`` the noise (``None``: none). L2 is Adam's weight decay.
    """
    extra = [] if onehot is None else [onehot]
    out = mlp(gen, torch.cat([c, *extra, *([] if z is None else [z])], 1), g_activation)  # (B, C)
    logit = mlp(dis, torch.cat([c, out * keep, *extra], 1), d_activation)  # (B, 1)
    adv = F.softplus(-logit).mean() if g_loss == "nonsaturating" else -F.softplus(logit).mean()
    if zr is None:
        return adv
    return adv + alpha * (out.square() * zr).sum(1).mean()


# ------------------------------------------------------------------------------------------- the model
class CFGAN(HandWrittenSteps, MaskSampling, TorchRecommender):
    """CFGAN (Chae et al. 2018): a conditional GAN generating each user's (or item's) purchase vector.

    See the module docstring for the losses, the epoch definition and the implementation.

    Defaults. The defaults are the user-based ZP setting that ``gan4rec tune`` chose on ML-100K's
    validation data (``configs/cfgan-ml100k.toml``, 25 trials; BENCHMARKS.md: test NDCG@20 0.4125 +-
    0.0021), rounded to three digits, with early stopping (validation every 5 epochs, patience 4). The
    paper's item-based setting is :attr:`published_configs`; tuning runs it first.

    Epoch cap. ``epochs=None`` (the default) derives the cap from the data: one epoch costs about the
    same per ``R x C`` cell in both modes (``n_users * n_items``), so the cap is
    ``clip(round(2e8 / (n_users * n_items)), 1, 200)`` (:meth:`default_epochs`): 126 epochs on ML-100K
    (the cap of the search that chose the defaults was 120), 33 on ml-latest-small (671 x 9066; about 3 s
    per epoch on one thread at the default widths, so under 2 minutes, and as much again for the refit
    on the whole train), 9 on ML-1M and 1 at ML-20M size. Early stopping may end a fit before the cap.

    Search space. :attr:`search_space` is narrowed around the two settings that work on ML-100K (the
    tuned user-based ZP and the paper's item-based ZP): schemes ZP and ZR only, ratios, ``alpha``,
    widths, learning rates and L2 within a few times of those two. The wide space the first search used
    (it tried 3 item-based trials of 25 and none near the paper's setting) is :attr:`search_space_wide`.

    Parameters
    ----------
    mode
        ``"item"`` (rows are items, the paper's ML-100K setting) or ``"user"`` (rows are users).
    scheme
        ``"zp"`` (ZR and PM), ``"zr"``, ``"pm"`` or ``"none"``.
    zr_ratio, pm_ratio
        Fractions of each row's unobserved columns drawn per epoch for ZR and PM (separately).
    alpha
        ZR coefficient.
    g_hidden, d_hidden
        Hidden layer sizes of G and D: an int (one layer) or a list of ints.
    g_activation, d_activation
        Activation of the hidden layers: ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"identity"``.
    g_lr, d_lr
        Adam learning rates.
    g_l2, d_l2
        L2 coefficients on all of G's / D's weights and biases (``coef * sum(p^2) / 2``).
    g_batch_size, d_batch_size
        Rows per G / D mini-batch.
    g_steps, d_steps
        Passes of G / D over all rows per epoch (the original's ``step_G`` / ``step_D``).
    g_loss
        ``"nonsaturating"`` (``-log D(G)``, as the original) or ``"minimax"`` (``log(1 - D(G))``).
    noise_dim, noise
        Width and distribution (``"normal"`` or ``"uniform"``) of random noise appended to G's input;
        ``0`` for none (the original).
    class_condition
        Append a one-hot of the row id to G's and D's input.
    resample
        ``"epoch"``: exactly ``floor(ratio * n_unobserved)`` PM and ZR samples per row, drawn once per epoch
        and shared by its D and G passes (the original; keeps two dense ``R x C`` masks); ``"batch"``: drawn
        afresh for every mini-batch, each unobserved entry with probability ``ratio`` (on the CPU rounded
        to a multiple of ``2^-16``; for data where those masks do not fit in :attr:`dense_limit_bytes`).
    epochs
        Maximum number of epochs (outer iterations; the original's ``epochs / step_G``); ``None``: derived
        from the data (see "Epoch cap" above).
    eval_every, patience
        Validate every ``eval_every`` epochs; stop after ``patience`` validations without improvement
        (``None``: run all epochs). The best validated epoch's weights are kept.
    device, random_state, n_threads
        As in :class:`~gan4rec.models.baselines.bpr.BPR`.
    precision
        ``"fp32"`` or ``"bf16"`` (CUDA only): the training steps' matrix products take bfloat16 copies
        of their operands (the products accumulate in fp32 inside the GEMM and are rounded to bf16),
        while the weights, the gradients, Adam's moments and every sum and nonlinearity stay in fp32.
        Scoring and validation always run in fp32.
    """

    name = "cfgan"
    adversarial = True
    #: Data-parallel under torchrun without DDP: the hand-written gradients are averaged over the ranks
    #: with ``distributed.all_reduce_mean_`` before each Adam step (see :meth:`_update`).
    supports_distributed = True
    uses_ddp = False
    #: Devices where ``precision="bf16"`` is allowed. On the CPU bf16 products are slower than fp32 ones
    #: on most processors, so it is refused there; the tests widen this to run the bf16 path on the CPU.
    bf16_devices: ClassVar[tuple[str, ...]] = ("cuda",)
    #: Largest dense ``R x C`` float32 array kept in memory (per-epoch masks, cached fake vectors).
    dense_limit_bytes: ClassVar[int] = 512 << 20
    #: Rows pushed through G at once when caching all rows' outputs or hidden layers.
    chunk_rows: ClassVar[int] = 2048
    _d_x_t: torch.Tensor | None = None
    #: Whether the running epoch computes its matrix products in bfloat16 (``precision="bf16"``).
    _low: bool = False
    _pool: ThreadPoolExecutor | None = None
    #: Whether the running fit averages its gradients over ranks (a process group of 2+ ranks).
    _sync: bool = False
    derives_epochs = True
    #: ``R x C`` cells of training one fit with ``epochs=None`` may spend (see :meth:`default_epochs`).
    epoch_budget_cells: ClassVar[float] = 2e8
    #: Largest derived epoch cap.
    max_default_epochs: ClassVar[int] = 200
    search_space: ClassVar[SearchSpace] = {
        "mode": {"type": "categorical", "choices": ["user", "item"]},
        "scheme": {"type": "categorical", "choices": ["zp", "zr"]},
        "zr_ratio": {"type": "float", "low": 0.5, "high": 0.95},
        "pm_ratio": {"type": "float", "low": 0.1, "high": 0.9},
        "alpha": {"type": "float", "low": 3e-3, "high": 0.1, "log": True},
        "g_hidden": {"type": "int", "low": 100, "high": 500, "log": True},
        "d_hidden": {"type": "int", "low": 100, "high": 500, "log": True},
        "g_lr": {"type": "float", "low": 5e-5, "high": 5e-4, "log": True},
        "d_lr": {"type": "float", "low": 5e-5, "high": 3e-4, "log": True},
        "g_l2": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "d_l2": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
    }
    search_space_wide: ClassVar[SearchSpace] = {
        "mode": {"type": "categorical", "choices": ["user", "item"]},
        "scheme": {"type": "categorical", "choices": ["zr", "pm", "zp"]},
        "zr_ratio": {"type": "float", "low": 0.05, "high": 0.95},
        "pm_ratio": {"type": "float", "low": 0.05, "high": 0.95},
        "alpha": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        "g_hidden": {"type": "int", "low": 50, "high": 800, "log": True},
        "d_hidden": {"type": "int", "low": 25, "high": 500, "log": True},
        "g_lr": {"type": "float", "low": 5e-5, "high": 5e-3, "log": True},
        "d_lr": {"type": "float", "low": 5e-5, "high": 5e-3, "log": True},
        "g_l2": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
        "d_l2": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    }
    published_configs: ClassVar[tuple[dict[str, Any], ...]] = (
        # The paper's ML-100K run as the authors' TensorFlow code sets it (Chae et al., CIKM 2018;
        # ../shared/ANCHORS.md "CFGAN original settings for ML-100K"; configs/cfgan-ml100k-paper.toml):
        # item-based ZP, 1000 G-epochs = 250 outer iterations, no early stopping (validation still keeps
        # the best epoch). The paper's other datasets' settings are not in the authors' code.
        {"mode": "item", "scheme": "zp", "zr_ratio": 0.7, "pm_ratio": 0.7, "alpha": 0.03,
         "g_hidden": 400, "d_hidden": 125, "g_activation": "sigmoid", "d_activation": "sigmoid",
         "g_lr": 1e-4, "d_lr": 1e-4, "g_l2": 1e-3, "d_l2": 0.0, "g_batch_size": 32, "d_batch_size": 64,
         "g_steps": 4, "d_steps": 2, "g_loss": "nonsaturating", "noise_dim": 0, "class_condition": False,
         "resample": "epoch", "epochs": 250, "patience": None},
    )

    def __init__(
        self,
        *,
        mode: str = "user",
        scheme: str = "zp",
        zr_ratio: float = 0.906,
        pm_ratio: float = 0.147,
        alpha: float = 0.00667,
        g_hidden: int | Sequence[int] = 109,
        d_hidden: int | Sequence[int] = 408,
        g_activation: str = "sigmoid",
        d_activation: str = "sigmoid",
        g_lr: float = 1.67e-4,
        d_lr: float = 5.69e-5,
        g_l2: float = 2.28e-4,
        d_l2: float = 8.71e-5,
        g_batch_size: int = 32,
        d_batch_size: int = 64,
        g_steps: int = 4,
        d_steps: int = 2,
        g_loss: str = "nonsaturating",
        noise_dim: int = 0,
        noise: str = "normal",
        class_condition: bool = False,
        resample: str = "epoch",
        epochs: int | None = None,
        eval_every: int = 5,
        patience: int | None = 4,
        device: str | None = None,
        random_state: int | np.random.Generator | None = None,
        n_threads: int | None = 1,
        precision: str = "fp32",
    ) -> None:
        self.mode = mode
        self.scheme = scheme
        self.zr_ratio = zr_ratio
        self.pm_ratio = pm_ratio
        self.alpha = alpha
        self.g_hidden = g_hidden
        self.d_hidden = d_hidden
        self.g_activation = g_activation
        self.d_activation = d_activation
        self.g_lr = g_lr
        self.d_lr = d_lr
        self.g_l2 = g_l2
        self.d_l2 = d_l2
        self.g_batch_size = g_batch_size
        self.d_batch_size = d_batch_size
        self.g_steps = g_steps
        self.d_steps = d_steps
        self.g_loss = g_loss
        self.noise_dim = noise_dim
        self.noise = noise
        self.class_condition = class_condition
        self.resample = resample
        self.epochs = epochs
        self.eval_every = eval_every
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads
        self.precision = precision


    # ------------------------------------------------------------------ params
    @staticmethod
    def _layers(value: Any, name: str) -> list[int]:
        items = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
        ok = isinstance(items, (list, tuple)) and len(items) > 0
        ok = ok and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in items
        )
        if not ok:
            raise DataError(f"{name}={value!r}; expected a positive int or a non-empty list of positive ints")
        return [int(v) for v in items]

    @staticmethod
    def _choice(value: Any, name: str, choices: Sequence[str]) -> None:
        if value not in choices:
            raise DataError(f"{name}={value!r}; expected one of {', '.join(repr(c) for c in choices)}")

    def _check_params(self) -> None:
        self._choice(self.mode, "mode", MODES)
        self._choice(self.scheme, "scheme", SCHEMES)
        self._choice(self.g_activation, "g_activation", ACTIVATIONS)
        self._choice(self.d_activation, "d_activation", ACTIVATIONS)
        self._choice(self.g_loss, "g_loss", G_LOSSES)
        self._choice(self.noise, "noise", NOISES)
        self._choice(self.resample, "resample", RESAMPLES)
        self._choice(self.precision, "precision", PRECISIONS)
        if self.precision == "bf16":
            dev = resolve_device(self.device).type
            if dev not in self.bf16_devices:
                raise DataError(
                    f"precision='bf16' runs on {' or '.join(self.bf16_devices)} only (device is {dev}); "
                    "use precision='fp32' here"
                )
        check_float(self.zr_ratio, "zr_ratio", high=1.0)
        check_float(self.pm_ratio, "pm_ratio", high=1.0)
        check_float(self.alpha, "alpha")
        check_float(self.g_lr, "g_lr", low_open=True)
        check_float(self.d_lr, "d_lr", low_open=True)
        check_float(self.g_l2, "g_l2")
        check_float(self.d_l2, "d_l2")
        self._layers(self.g_hidden, "g_hidden")
        self._layers(self.d_hidden, "d_hidden")
        check_int(self.g_batch_size, "g_batch_size")
        check_int(self.d_batch_size, "d_batch_size")
        check_int(self.g_steps, "g_steps", low=0)
        check_int(self.d_steps, "d_steps", low=0)
        check_int(self.noise_dim, "noise_dim", low=0)
        if not isinstance(self.class_condition, (bool, np.bool_)):
            raise DataError(f"class_condition={self.class_condition!r}; expected True or False")
        if self.g_steps + self.d_steps == 0:
            raise DataError("g_steps=0 and d_steps=0; expected at least one pass per epoch")


    # ------------------------------------------------------------------ epochs
    @classmethod
    def default_epochs(cls, n_users: int, n_items: int) -> int:
        """The epoch cap that ``epochs=None`` gives on data of this size (see "Epoch cap" above)."""
        cells = max(1, int(n_users) * int(n_items))
        return int(min(cls.max_default_epochs, max(1, round(cls.epoch_budget_cells / cells))))

    def _max_epochs(self, train: Interactions) -> int:
        if self.epochs is not None:
            return int(self.epochs)
        cap = self.default_epochs(train.n_users, train.n_items)
        logger.info(
            "cfgan: epochs=None gives at most %d epochs on %d users x %d items (pass epochs= to change it)",
            cap,
            train.n_users,
            train.n_items,
        )
        return cap

    # ------------------------------------------------------------------ shapes
    def _dims(self, n_users: int, n_items: int) -> tuple[int, int]:
        """``(R, C)``: rows (conditions) and columns (generated entries) in this mode."""
        return (n_items, n_users) if self.mode == "item" else (n_users, n_items)

    def input_widths(self, n_users: int, n_items: int) -> tuple[int, int]:
        """Input widths ``(G, D)`` of the networks for a dataset of this size (see the module docstring)."""
        return sum(self._g_blocks(n_users, n_items)), sum(self._d_blocks(n_users, n_items))

    def _g_blocks(self, n_users: int, n_items: int) -> list[int]:
        n_rows, n_cols = self._dims(n_users, n_items)
        return (
            [n_cols]
            + ([n_rows] if self.class_condition else [])
            + ([int(self.noise_dim)] if self.noise_dim else [])
        )

    def _d_blocks(self, n_users: int, n_items: int) -> list[int]:
        n_rows, n_cols = self._dims(n_users, n_items)
        return [n_cols, n_cols] + ([n_rows] if self.class_condition else [])

    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        _, n_cols = self._dims(n_users, n_items)
        gen = MLP(self._g_blocks(n_users, n_items), [*self._layers(self.g_hidden, "g_hidden"), n_cols])
        dis = MLP(self._d_blocks(n_users, n_items), [*self._layers(self.d_hidden, "d_hidden"), 1])
        return {"generator": gen, "discriminator": dis}

    def _build_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, Any]:
        """One Adam per player (see :class:`FusedAdam`); the L2 terms are their (coupled) weight decay."""
        with torch.no_grad():
            g = [p.detach() for p in modules["generator"].parameters()]
            d = [p.detach() for p in modules["discriminator"].parameters()]
        return {
            "generator": FusedAdam(g, lr=float(self.g_lr), weight_decay=float(self.g_l2)),
            "discriminator": FusedAdam(d, lr=float(self.d_lr), weight_decay=float(self.d_l2)),
        }

    # ------------------------------------------------------------------ data
    def _row_csr(self, inter: Interactions) -> tuple[np.ndarray, np.ndarray]:
        """``(indptr, indices)`` of the rows in this mode (the transposed matrix in item mode)."""
        if self.mode == "user":
            return np.asarray(inter.indptr, dtype=np.int64), np.asarray(inter.indices, dtype=np.int64)
        t = sp.csr_matrix(inter.csr().T)  # (n_items, n_users)
        t.sort_indices()
        return t.indptr.astype(np.int64), t.indices.astype(np.int64)


    def _prepare(self, train: Interactions) -> None:
        self._n_rows, self._n_cols = self._dims(train.n_users, train.n_items)
        n_rows, n_cols = self._n_rows, self._n_cols
        self._indptr, self._indices = self._row_csr(train)
        degree = np.diff(self._indptr)
        entry_rows = np.repeat(np.arange(n_rows, dtype=np.int64), degree)
        by_col = np.argsort(self._indices, kind="stable")  # CSR entries are row-sorted: (column, row) order
        self._csc_cols, self._csc_rows = self._indices[by_col], entry_rows[by_col]
        self._train_rows = np.flatnonzero(degree > 0).astype(np.int64)
        if self._train_rows.size == 0:
            raise DataError("train holds no row with an interaction to condition on")
        self._dense = n_rows * n_cols * 4 <= self.dense_limit_bytes
        if self.resample == "epoch" and not self._dense and (self._uses_pm or self._uses_zr):
            need = n_rows * n_cols * 4 / 2**30
            raise DataError(
                f"resample='epoch' keeps dense {n_rows} x {n_cols} masks ({need:.1f} GiB each, over "
                f"dense_limit_bytes); pass resample='batch' to draw the PM/ZR samples per mini-batch"
            )
        self._observed: np.ndarray | torch.Tensor | None = None
        if self._dense:
            obs = np.zeros((n_rows, n_cols), dtype=bool)  # (R, C)
            obs[entry_rows, self._indices] = True
            self._observed = obs if self.device_.type == "cpu" else torch.from_numpy(obs).to(self.device_)
            self._observed_f = torch.from_numpy(obs.astype(np.float32)).to(self.device_)  # (R, C)
        self._all_pass = self._make_pass(
            np.arange(n_rows, dtype=np.int64), self._indptr, self._indices, self.chunk_rows, grads=False
        )
        self._score_rows: Pass | None = None
        self._hidden_cache: tuple[int, torch.Tensor] | None = None
        self._bind()
        self._sync = distributed.current() is not None
        # Persistent buffers for the dense gradients (matmuls write into them).
        self._g_gw = [torch.empty_like(w) for w in self._gw]
        self._g_gb = [torch.empty_like(b) for b in self._gb]
        self._d_gw = [torch.empty_like(w) for w in self._dw]
        self._d_gb = [torch.empty_like(b) for b in self._db]

    def _release(self) -> None:
        super()._release()
        for attr in ("_g_gw", "_g_gb", "_d_gw", "_d_gb", "_observed", "_observed_f", "_all_pass", "_indptr",
                     "_indices", "_train_rows", "_csc_cols", "_csc_rows", "_scratch_bufs"):
            self.__dict__.pop(attr, None)

    # ------------------------------------------------------------------ forward passes
    def _noise(self, n: int) -> torch.Tensor | None:
        if not self.noise_dim:
            return None
        shape, gen = (n, int(self.noise_dim)), self.rank_torch_gen_
        if self.noise == "normal":
            return torch.randn(shape, generator=gen, device=self.device_)
        return torch.rand(shape, generator=gen, device=self.device_)

    def _mean_noise(self, n: int) -> torch.Tensor | None:
        if not self.noise_dim:
            return None
        return torch.full(
            (n, int(self.noise_dim)), 0.0 if self.noise == "normal" else 0.5, device=self.device_
        )


    # ------------------------------------------------------------------ epoch
    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self._low = self.precision == "bf16"
        # A worker thread for half of each mini-batch's mask draws (resample="batch" on the CPU) when
        # torch may use two or more threads; one per epoch, so none outlives a fit that raises.
        threaded = self.resample == "batch" and self.device_.type == "cpu" and torch.get_num_threads() > 1
        with ThreadPoolExecutor(max_workers=1) if threaded else contextlib.nullcontext() as pool:
            self._pool = pool
            try:
                with torch.no_grad():
                    return self._run_epoch()
            finally:
                self._low = False
                self._pool = None

    def _run_epoch(self) -> dict[str, float]:
        """One outer iteration: draw PM/ZR, ``d_steps`` passes of D steps, ``g_steps`` passes of G steps.

        A D step is Adam on the gradient of :func:`discriminator_loss` (``_d_grads``), a G step Adam on
        that of :func:`generator_loss` (``_g_grads``); both gradients are written out by hand.
        """
        dev = self.device_
        adam_g: FusedAdam = self.optimizers_["generator"]  # type: ignore[assignment]
        adam_d: FusedAdam = self.optimizers_["discriminator"]  # type: ignore[assignment]
        rows = self._train_rows
        d_bs, g_bs = int(self.d_batch_size), int(self.g_batch_size)
        per_epoch = self.resample == "epoch" and self._dense
        keep_all = zr_all = None
        if per_epoch:
            # Drawn for every row (indexed by row id); rows without entries are never visited.
            assert self._observed is not None
            keep_all, zr_all = self._masks(self._observed, self._observed_f)
        # Every pass's order, drawn after the samples as each pass would draw its own; under torchrun the
        # same on all ranks, each of which visits its shard (all rows in one process).
        orders = [
            distributed.shard(self.np_rng_.permutation(rows))
            for _ in range(int(self.d_steps) + int(self.g_steps))
        ]
        n = len(orders[0])  # rows this rank visits per pass, the same on every rank
        d_spans, g_spans = self._spans(n, d_bs), self._spans(n, g_bs)
        # Per-step logits and ZR sums; the losses are computed from them once, after the epoch.
        d_logits = torch.zeros((int(self.d_steps) * len(d_spans), 2 * d_bs), device=dev)
        g_logits = torch.zeros((int(self.g_steps) * len(g_spans), g_bs), device=dev)
        zr_sums = torch.zeros(len(g_logits), device=dev)

        # D passes. G is fixed meanwhile, so G(c) * k of all rows is computed once when it fits.
        fake_all = None
        if self.d_steps and per_epoch and not self.noise_dim:
            assert keep_all is not None
            fake_all = self._g_output_all().mul_(keep_all)
        step = 0
        for order in orders[: int(self.d_steps)]:
            p = self._make_pass(order, self._indptr, self._indices, d_bs, grads=True)
            for s, e in d_spans:
                batch = p.batch(s, e)
                if fake_all is not None:
                    fake = fake_all.index_select(0, batch.rows)
                else:
                    if keep_all is not None:
                        keep = keep_all.index_select(0, batch.rows)
                    else:
                        keep, _ = self._batch_masks(batch, with_zr=False)
                    out = self._scratch("d_fake", len(batch))
                    fake = self._g_forward(batch, self._noise(len(batch)), out=out)[-1].mul_(keep)
                self._update(adam_d, self._d_grads(batch, fake, d_logits[step]))
                step += 1
        del fake_all

        # G passes. D is fixed meanwhile, so its condition term of every row is computed once (each row's
        # sum runs over the same entries in the same order as in a batch: the same bits), and so is the
        # transpose of its fake-input weight.
        d_cond_all = self._d_condition_all() if self.g_steps else None
        self._d_x_t = self._d_x.T.contiguous()
        step = 0
        try:
            for order in orders[int(self.d_steps) :]:
                p = self._make_pass(order, self._indptr, self._indices, g_bs, grads=True)
                for s, e in g_spans:
                    batch = p.batch(s, e)
                    if keep_all is not None:
                        keep = keep_all.index_select(0, batch.rows)
                        zr = None if zr_all is None else zr_all.index_select(0, batch.rows)
                    else:
                        keep, zr = self._batch_masks(batch)
                    z = self._noise(len(batch))
                    d_cond = None if d_cond_all is None else d_cond_all.index_select(0, batch.rows)
                    grads = self._g_grads(batch, keep, zr, z, g_logits[step], zr_sums[step], d_cond)
                    self._update(adam_g, grads)
                    step += 1
        finally:
            self._d_x_t = None
        self._version += 1
        return self._epoch_losses(d_logits, g_logits, zr_sums, n)

    def _update(self, adam: FusedAdam, grads: list[torch.Tensor]) -> None:
        """One player's update from its gradients; under torchrun first averaged over the ranks (one
        all-reduce)."""
        if self._sync:
            distributed.all_reduce_mean_(grads)
        adam.step(grads)

    # ------------------------------------------------------------------ scoring
    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        super()._fit(train, valid)
        # The loop may have put back the best epoch's weights after the last validation.
        self._version = getattr(self, "_version", 0) + 1

    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        if self.mode == "item":
            hidden = self._item_hidden()  # (n_items, H)
            w = self._gw[-1].index_select(1, users)  # (H, n)
            return torch.addmm(self._gb[-1].index_select(0, users)[:, None], w.T, hidden.T)  # (n, n_items)
        host = users.cpu().numpy()
        return self._g_forward(
            self._rows_batch(self._score_pass(), host, users), self._mean_noise(len(host))
        )[-1]

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self._n_rows, self._n_cols = self._dims(self.n_users, self.n_items)
        self._score_rows = None
        self._hidden_cache = None
        self._bind()
