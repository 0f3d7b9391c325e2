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

Speed. About 65,000 small steps make per-step overhead as important as FLOPs, so the steps are written
out by hand (no autograd; the tests check them against autograd on the losses above):

- conditions are sparse (about 5% dense on ML-100K), so every first layer gathers and sums weight rows
  (``embedding_bag``) instead of multiplying dense 0/1 rows, and its weight gradient ``S^T delta`` is
  again a gather-sum, of the batch's delta rows with one bag per column (each pass lays out its entries
  by row and by column once); the real vector equals the condition, so D's real branch is sparse too;
- gradients nobody needs are skipped: D's weight gradients in a G step, G's in a D step, D's input
  gradient on the real branch;
- G is fixed during the D passes of an epoch, so ``G(c) * k`` of all rows is computed once per epoch
  (when it fits in memory and there is no noise) and the D steps gather their rows;
- the per-epoch PM/ZR masks are drawn for all rows at once with numpy's SIMD sort on the CPU;
- dense gradients go into persistent buffers and one fused Adam kernel per player applies them
  (:class:`_Adam`); the logits and ZR sums of every step are stored on the device and the epoch's
  losses computed from them once (no per-step synchronisation or loss arithmetic).

Scale. Conditions enter the networks as sparse gathers; dense ``R x C`` arrays (the per-epoch masks, the
cached ``G(c) * k``, the 0/1 rows) are kept only up to :attr:`CFGAN.dense_limit_bytes` each. Beyond that
the samples must be drawn per mini-batch (``resample="batch"``): each batch's rows are densified on the fly
from CSR and every unobserved entry is drawn independently with probability ``pm_ratio`` / ``zr_ratio``
(the expected sizes of the exact draws; an exact draw would sort every row of every batch, which costs
more than the batch's matmuls at ML-20M widths), and G is re-run for each D batch. Item-based scoring
caches the last hidden layer of all item rows (``R x hidden``) and multiplies it with the output weights
of the users asked for, so no users x items matrix is ever built. The same code runs on CUDA (the
per-epoch draw then sorts on the device); runs are bit-reproducible on the CPU for a given number of
torch threads (with two or more, torch's kernels split the larger products between the threads, whose
sums may round otherwise than one thread's).

Distributed (``torchrun ... --distributed``, docs/distributed.md). There is no DDP (no autograd): every
pass's row order is drawn from the generator all ranks share and each rank visits its shard
(:func:`~gan4rec.train.distributed.shard`), so step ``b`` of all ranks together is step ``b`` of one
process with ``world`` times the batch sizes. The per-epoch PM/ZR samples are drawn for all rows from the
shared generators too (every rank holds the same ones), while noise and per-batch samples
(``resample="batch"``) come from the rank's own. After each hand-written backward pass the player's
gradients are averaged over the ranks in one all-reduce, then Adam steps; the weights and Adam's moments
stay equal on all ranks, and nothing else is carried across steps. ``G(c) * k`` and D's condition term of
all rows are still computed once per epoch on every rank (G and D are the same everywhere; a rank reads
only its rows). Precision (``precision="bf16"``, CUDA only): the training steps' matrix products take
bfloat16 operands; weights, gradients, Adam state, sums and nonlinearities stay fp32 (:func:`_mm`).

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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.torch_base import TorchRecommender, check_float, check_int
from gan4rec.train import distributed
from gan4rec.train.loop import resolve_device

__all__ = ["CFGAN"]

logger = logging.getLogger(__name__)

MODES = ("user", "item")
SCHEMES = ("zp", "zr", "pm", "none")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
G_LOSSES = ("nonsaturating", "minimax")
NOISES = ("normal", "uniform")
RESAMPLES = ("epoch", "batch")
PRECISIONS = ("fp32", "bf16")

# k = floor(ratio * n) must agree with the original's int(n * percent / 100) when ratio * n lands a hair
# below an integer (0.7 * 900 = 629.99...).
_FLOOR_EPS = 1e-9


# ------------------------------------------------------------------------------------------- networks
class _MLP(nn.Module):
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


def _activate_(x: torch.Tensor, name: str) -> torch.Tensor:
    """Apply the activation in place and return ``x``."""
    if name == "sigmoid":
        return x.sigmoid_()
    if name == "tanh":
        return x.tanh_()
    if name == "relu":
        return x.relu_()
    return x


def _activate_backward(grad: torch.Tensor, out: torch.Tensor, name: str) -> torch.Tensor:
    """``grad * f'(pre)``, with ``f'`` taken from the activation's output ``out`` (one fused kernel)."""
    if name == "sigmoid":
        return torch.ops.aten.sigmoid_backward(grad, out)
    if name == "tanh":
        return torch.ops.aten.tanh_backward(grad, out)
    if name == "relu":
        return torch.ops.aten.threshold_backward(grad, out, 0.0)
    return grad


def _mm(a: torch.Tensor, b: torch.Tensor, low: bool, out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b`` (into ``out``); with ``low``, the product of bfloat16 copies of ``a`` and ``b``, in fp32.

    Without ``low`` exactly the call the fp32 code makes, so fp32 results keep their bits.
    """
    if low:
        prod = torch.mm(a.to(torch.bfloat16), b.to(torch.bfloat16))
        return prod.float() if out is None else out.copy_(prod)
    return torch.mm(a, b) if out is None else torch.mm(a, b, out=out)


def _addmm(
    bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, low: bool, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``bias + a @ b`` (into ``out``), the product in bfloat16 with ``low`` (see :func:`_mm`)."""
    if low:
        prod = torch.mm(a.to(torch.bfloat16), b.to(torch.bfloat16))
        return torch.add(bias, prod) if out is None else torch.add(bias, prod, out=out)
    return torch.addmm(bias, a, b) if out is None else torch.addmm(bias, a, b, out=out)


def _addmm_(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor, low: bool) -> torch.Tensor:
    """``t += a @ b`` in place, the product in bfloat16 with ``low`` (see :func:`_mm`)."""
    if low:
        return t.add_(torch.mm(a.to(torch.bfloat16), b.to(torch.bfloat16)))
    return t.addmm_(a, b)


class _Adam:
    """Adam with coupled L2 (``weight_decay`` added to the gradient, as TensorFlow's ``l2_loss`` term does).

    Each :meth:`step` makes exactly the calls of ``torch.optim.Adam(fused=True).step()`` (step counters
    plus one ``torch._fused_adam_`` kernel for all tensors), so the arithmetic is the same, but takes the
    gradients as a list instead of ``.grad`` and skips ``Optimizer``'s per-call bookkeeping, a large share
    of a step this small. It also avoids ``torch.optim.Optimizer.__init__``, whose first call in a process
    imports ``torch._dynamo`` (seconds). :meth:`state_dict` / :meth:`load_state_dict` use
    ``torch.optim.Adam``'s layout, so checkpoints (:mod:`gan4rec.train.checkpoint`) handle it alike. On a
    device without the fused kernel the same update is written out with tensor ops.
    """

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        *,
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.param_groups: list[dict[str, Any]] = [
            {
                "lr": float(lr),
                "betas": (float(betas[0]), float(betas[1])),
                "eps": float(eps),
                "weight_decay": float(weight_decay),
                "amsgrad": False,
                "maximize": False,
                "foreach": None,
                "capturable": False,
                "differentiable": False,
                "fused": True,
                "decoupled_weight_decay": False,
            }
        ]
        with torch.no_grad():
            self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
            self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
            # One counter shared by all tensors (they always agree): one increment per step instead of
            # a foreach over the tensors, which on the CPU costs a scalar copy for each of them.
            self._step = torch.zeros(
                (), dtype=torch.float32, device=self.params[0].device if self.params else "cpu"
            )
            self.steps = [self._step] * len(self.params)
        dev = self.params[0].device.type if self.params else "cpu"
        self.fused = hasattr(torch, "_fused_adam_") and dev in ("cpu", "cuda")

    def step(self, grads: Sequence[torch.Tensor]) -> None:
        """One update of every parameter from ``grads`` (same order as the parameters)."""
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        self._step.add_(1.0)
        if self.fused:
            torch._fused_adam_(
                self.params,
                list(grads),
                self.exp_avgs,
                self.exp_avg_sqs,
                [],
                self.steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )
            return
        n = float(self._step)
        for p, g, m, v in zip(self.params, grads, self.exp_avgs, self.exp_avg_sqs, strict=True):
            g = g.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else g
            m.lerp_(g, 1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            denom = (v.sqrt() / math.sqrt(1.0 - beta2**n)).add_(group["eps"])
            p.addcdiv_(m, denom, value=-group["lr"] / (1.0 - beta1**n))

    def state_dict(self) -> dict[str, Any]:
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        state = {
            i: {"step": self._step.clone(), "exp_avg": m, "exp_avg_sq": v}
            for i, (m, v) in enumerate(zip(self.exp_avgs, self.exp_avg_sqs, strict=True))
        }
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict.get("param_groups", [])
        state = state_dict.get("state", {})
        if len(groups) != 1 or len(groups[0].get("params", [])) != len(self.params):
            raise ValueError(f"expected one parameter group of {len(self.params)} parameters")
        with torch.no_grad():
            for i, p in enumerate(self.params):
                entry = state.get(i, state.get(str(i)))
                if entry is None:
                    raise ValueError(f"no state for parameter {i}")
                for key, target in (("exp_avg", self.exp_avgs[i]), ("exp_avg_sq", self.exp_avg_sqs[i])):
                    value = torch.as_tensor(entry[key])
                    if value.shape != target.shape:
                        raise ValueError(
                            f"state {key} of parameter {i} has shape {tuple(value.shape)}, "
                            f"expected {tuple(p.shape)}"
                        )
                    target.copy_(value)
                self._step.fill_(float(torch.as_tensor(entry["step"]).reshape(())))
        keep = {k: groups[0][k] for k in ("lr", "eps", "weight_decay") if k in groups[0]}
        if "betas" in groups[0]:
            keep["betas"] = (float(groups[0]["betas"][0]), float(groups[0]["betas"][1]))
        self.param_groups[0].update(keep)


# ------------------------------------------------------------------------------------------- batches
@dataclass
class _Batch:
    rows: torch.Tensor  # (B,) row ids
    rows_host: np.ndarray
    cols: torch.Tensor  # (nnz_B,) columns of the rows' entries, row after row
    offsets: torch.Tensor  # (B,) where each row starts in ``cols`` (embedding_bag offsets)
    t_pos: torch.Tensor | None = None  # (nnz_B,) batch position of each entry, entries sorted by column
    t_offsets: torch.Tensor | None = None  # (C,) where each column starts in ``t_pos``

    def __len__(self) -> int:
        return len(self.rows_host)


@dataclass
class _Pass:
    """The rows of one pass in visiting order, their CSR entries laid out batch by batch twice: grouped by
    row (forward: gather-sum of weight rows) and, within each batch, by column (the weight gradient of a
    sparse input is again a gather-sum: of the batch's gradient rows, one bag per column)."""

    order: torch.Tensor  # (n,) row ids in visiting order
    order_host: np.ndarray
    cols: torch.Tensor  # (nnz,) columns, rows in visiting order
    starts: torch.Tensor  # (n + 1,) where each visited row's entries start in ``cols``
    starts_host: list[int]
    batch_size: int
    t_pos: torch.Tensor | None = None  # (nnz,) per batch: entries sorted by column, batch positions
    t_cols: torch.Tensor | None = None  # (nnz,) their columns
    t_offsets: torch.Tensor | None = None  # (n_batches, C) column starts within each batch, if small
    col_range: torch.Tensor | None = None  # (C,) 0..C-1, to search column starts when not precomputed

    def batch(self, s: int, e: int) -> _Batch:
        a, b = self.starts_host[s], self.starts_host[e]
        out = _Batch(self.order[s:e], self.order_host[s:e], self.cols[a:b], self.starts[s:e] - a)
        if self.t_pos is not None:
            out.t_pos = self.t_pos[a:b]
            if self.t_offsets is not None:
                out.t_offsets = self.t_offsets[s // self.batch_size]
            else:
                assert self.t_cols is not None and self.col_range is not None
                out.t_offsets = torch.searchsorted(self.t_cols[a:b], self.col_range)
        return out


# ------------------------------------------------------------------------------------------- sampling
def _subset_counts(n_unobserved: np.ndarray, ratio: float) -> np.ndarray:
    return np.floor(ratio * n_unobserved + _FLOOR_EPS).astype(np.int64)


def _sample_subsets_np(observed: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """For each row, a uniform subset of exactly ``floor(ratio * n_unobserved)`` unobserved columns.

    Random float32 keys, observed columns set above every key, one SIMD sort of the keys per row: a
    column is drawn when its key is at most the row's ``k``-th smallest. Where the ``k``-th and
    ``(k+1)``-th smallest keys tie (probability about 1e-4 per row) the rule would draw one column too
    many, so such rows are drawn again with float64 keys and an argsort; whether a row is redrawn does not
    depend on which columns tied, so every ``k``-subset stays equally likely.

    Parameters
    ----------
    observed
        ``(n, C)`` boolean.
    ratio
        Fraction in ``[0, 1]``.
    rng
        The generator.

    Returns
    -------
    np.ndarray
        ``(n, C)`` boolean mask of the drawn columns.
    """
    n, c = observed.shape
    k = _subset_counts(c - observed.sum(axis=1), ratio)  # (n,)
    keys = rng.random((n, c), dtype=np.float32)  # (n, C) in [0, 1)
    np.copyto(keys, np.float32(2.0), where=observed)
    ordered = np.sort(keys, axis=1)  # (n, C)
    rows = np.arange(n)
    kth = ordered[rows, np.maximum(k - 1, 0)]  # (n,) k-th smallest key
    tied = (k > 0) & (k < c) & (ordered[rows, np.minimum(k, c - 1)] == kth)
    kth[k == 0] = -1.0
    mask = keys <= kth[:, None]
    bad = np.flatnonzero(tied)
    if bad.size:
        keys64 = rng.random((bad.size, c))
        keys64[observed[bad]] = 2.0
        order = np.argsort(keys64, axis=1, kind="stable")
        redo = np.zeros((bad.size, c), dtype=bool)
        np.put_along_axis(redo, order, np.arange(c)[None, :] < k[bad, None], axis=1)
        mask[bad] = redo
    return mask


def _sample_subsets_torch(observed: torch.Tensor, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """:func:`_sample_subsets_np` on a device: random keys and an argsort per row (exact)."""
    n, c = observed.shape
    k = torch.floor(ratio * (c - observed.sum(dim=1)).double() + _FLOOR_EPS).long()  # (n,)
    keys = torch.rand((n, c), generator=gen, device=observed.device).masked_fill_(observed, 2.0)
    order = keys.argsort(dim=1, stable=True)  # (n, C)
    take = torch.arange(c, device=observed.device)[None, :] < k[:, None]
    return torch.zeros_like(observed).scatter_(1, order, take)


# ------------------------------------------------------------------------------------------- the model
class CFGAN(TorchRecommender):
    """CFGAN (Chae et al. 2018): a conditional GAN generating each user's (or item's) purchase vector.

    See the module docstring for the losses, the epoch definition and the implementation.

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
        Maximum number of epochs (outer iterations; the original's ``epochs / step_G``).
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
    search_space: ClassVar[SearchSpace] = {
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
    #: Entries per 16-bit draw of the CPU batch masks (:meth:`_cpu_masks`): 256 KB of draws, in cache.
    _mask_chunk: ClassVar[int] = 2**17

    def __init__(
        self,
        *,
        mode: str = "item",
        scheme: str = "zp",
        zr_ratio: float = 0.7,
        pm_ratio: float = 0.7,
        alpha: float = 0.03,
        g_hidden: int | Sequence[int] = 400,
        d_hidden: int | Sequence[int] = 125,
        g_activation: str = "sigmoid",
        d_activation: str = "sigmoid",
        g_lr: float = 1e-4,
        d_lr: float = 1e-4,
        g_l2: float = 1e-3,
        d_l2: float = 0.0,
        g_batch_size: int = 32,
        d_batch_size: int = 64,
        g_steps: int = 4,
        d_steps: int = 2,
        g_loss: str = "nonsaturating",
        noise_dim: int = 0,
        noise: str = "normal",
        class_condition: bool = False,
        resample: str = "epoch",
        epochs: int = 250,
        eval_every: int = 5,
        patience: int | None = 10,
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

    @property
    def _uses_pm(self) -> bool:
        return self.scheme in ("zp", "pm")

    @property
    def _uses_zr(self) -> bool:
        return self.scheme in ("zp", "zr")

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
        gen = _MLP(self._g_blocks(n_users, n_items), [*self._layers(self.g_hidden, "g_hidden"), n_cols])
        dis = _MLP(self._d_blocks(n_users, n_items), [*self._layers(self.d_hidden, "d_hidden"), 1])
        return {"generator": gen, "discriminator": dis}

    def _build_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, Any]:
        """One Adam per player (see :class:`_Adam`); the L2 terms are their (coupled) weight decay."""
        with torch.no_grad():
            g = [p.detach() for p in modules["generator"].parameters()]
            d = [p.detach() for p in modules["discriminator"].parameters()]
        return {
            "generator": _Adam(g, lr=float(self.g_lr), weight_decay=float(self.g_l2)),
            "discriminator": _Adam(d, lr=float(self.d_lr), weight_decay=float(self.d_l2)),
        }

    def _bind(self) -> None:
        """Detached handles on the weights for the hand-written passes (in-place weight loads keep them)."""
        gen: _MLP = self.modules_["generator"]  # type: ignore[assignment]
        dis: _MLP = self.modules_["discriminator"]  # type: ignore[assignment]
        g_in = [w.detach() for w in gen.inputs]
        d_in = [w.detach() for w in dis.inputs]
        self._g_c = g_in[0]  # (C, H1)
        self._g_cls = g_in[1] if self.class_condition else None  # (R, H1)
        self._g_z = g_in[-1] if self.noise_dim else None  # (noise_dim, H1)
        self._gw = [w.detach() for w in gen.weights]  # layers above the first
        self._gb = [b.detach() for b in gen.biases]
        self._d_c, self._d_x = d_in[0], d_in[1]  # (C, Hd1) each
        self._d_cls = d_in[2] if self.class_condition else None
        self._dw = [w.detach() for w in dis.weights]
        self._db = [b.detach() for b in dis.biases]
        self._version = getattr(self, "_version", 0) + 1

    # ------------------------------------------------------------------ data
    def _row_csr(self, inter: Interactions) -> tuple[np.ndarray, np.ndarray]:
        """``(indptr, indices)`` of the rows in this mode (the transposed matrix in item mode)."""
        if self.mode == "user":
            return np.asarray(inter.indptr, dtype=np.int64), np.asarray(inter.indices, dtype=np.int64)
        t = sp.csr_matrix(inter.csr().T)  # (n_items, n_users)
        t.sort_indices()
        return t.indptr.astype(np.int64), t.indices.astype(np.int64)

    def _make_pass(
        self, order: np.ndarray, indptr: np.ndarray, indices: np.ndarray, batch_size: int, *, grads: bool
    ) -> _Pass:
        """The layout of one pass over ``order`` in mini-batches (``grads``: also the by-column layout)."""
        lengths = indptr[order + 1] - indptr[order]  # (n,)
        starts = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        entry = np.repeat(indptr[order] - starts[:-1], lengths) + np.arange(int(starts[-1]), dtype=np.int64)
        dev = self.device_
        p = _Pass(
            order=torch.from_numpy(order).to(dev),
            order_host=order,
            cols=torch.from_numpy(indices[entry]).to(dev),
            starts=torch.from_numpy(starts).to(dev),
            starts_host=starts.tolist(),
            batch_size=int(batch_size),
        )
        if not grads:
            return p
        # By column: the matrix's entries in (column, row) order, stably regrouped by batch.
        rank = np.full(self._n_rows, -1, dtype=np.int64)
        rank[order] = np.arange(len(order), dtype=np.int64)
        r = rank[self._csc_rows]  # (nnz,) visiting position of each entry's row
        csc_cols = self._csc_cols
        if int(starts[-1]) < len(r):  # a rank's shard: keep the entries of the rows it visits
            visited = r >= 0
            r, csc_cols = r[visited], csc_cols[visited]
        n_batches = -(-len(order) // batch_size)
        bid = r // batch_size
        perm = np.argsort(
            bid.astype(np.uint16 if n_batches <= np.iinfo(np.uint16).max else np.int64), kind="stable"
        )
        t_cols = csc_cols[perm]
        p.t_pos = torch.from_numpy((r - bid * batch_size)[perm]).to(dev)
        n_cols = self._n_cols
        if n_batches * n_cols <= 1 << 22:
            counts = np.bincount(bid[perm] * n_cols + t_cols, minlength=n_batches * n_cols).reshape(
                n_batches, n_cols
            )
            offsets = np.cumsum(counts, axis=1) - counts  # (n_batches, C) exclusive, within each batch
            p.t_offsets = torch.from_numpy(offsets).to(dev)
        else:
            p.t_cols = torch.from_numpy(t_cols).to(dev)
            p.col_range = torch.arange(n_cols, device=dev)
        return p

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
        self._score_rows: _Pass | None = None
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
        for attr in (
            "_g_gw",
            "_g_gb",
            "_d_gw",
            "_d_gb",
            "_observed",
            "_observed_f",
            "_all_pass",
            "_indptr",
            "_indices",
            "_train_rows",
            "_csc_cols",
            "_csc_rows",
            "_scratch_bufs",
        ):
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

    def _scratch(self, name: str, n: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """An uninitialised ``(n, C)`` buffer for a step-local temporary, reused from step to step.

        A fresh tensor of that size is a new memory mapping whose pages fault in on first touch: about
        20 ms per 55 MB tensor at ML-20M width on the CPU, several per step. Each ``name`` holds one buffer
        (sized for the largest batch, the view is its first ``n`` rows), so two live temporaries never
        share a name. Dropped after fit with the other training state.
        """
        dtype = self._gb[0].dtype if dtype is None else dtype  # the weights' (float64 in gradient checks)
        bufs: dict[str, torch.Tensor] = self.__dict__.setdefault("_scratch_bufs", {})
        buf = bufs.get(name)
        if buf is None or buf.shape[0] < n or buf.dtype != dtype or buf.device != self.device_:
            rows = max(n, int(self.g_batch_size), int(self.d_batch_size))
            buf = bufs[name] = torch.empty((rows, self._n_cols), dtype=dtype, device=self.device_)
        return buf[:n]

    def _g_forward(
        self,
        batch: _Batch,
        z: torch.Tensor | None,
        *,
        hidden_only: bool = False,
        out: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Activations ``[a_1, ..., a_L]`` of G on the batch's rows; ``a_L`` is the output ``(B, C)``
        (written into ``out`` when given)."""
        return self._g_upper(self._g_first(batch, z), hidden_only=hidden_only, out=out)

    def _g_first(self, batch: _Batch, z: torch.Tensor | None) -> torch.Tensor:
        """G's first hidden layer ``a_1`` on the batch's rows (reads only the first layer's weights)."""
        h = F.embedding_bag(batch.cols, self._g_c, batch.offsets, mode="sum")  # (B, H1)
        if self._g_cls is not None:
            h.add_(self._g_cls.index_select(0, batch.rows))
        if z is not None and self._g_z is not None:
            _addmm_(h, z, self._g_z, self._low)
        h.add_(self._gb[0])
        return _activate_(h, self.g_activation)

    def _g_upper(
        self, first: torch.Tensor, *, hidden_only: bool = False, out: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """All of G's activations from the first one (``hidden_only``: without the output; ``out``: the
        output's buffer)."""
        acts = [first]
        top = len(self._gw) - int(hidden_only)
        for layer in range(top):
            last = layer == len(self._gw) - 1
            a = _addmm(self._gb[layer + 1], acts[-1], self._gw[layer], self._low, out=out if last else None)
            acts.append(a if last else _activate_(a, self.g_activation))
        return acts

    def _d_condition(self, batch: _Batch) -> torch.Tensor:
        """D's first-layer pre-activation from the condition block(s) and the bias: ``(B, Hd1)``."""
        cond = F.embedding_bag(batch.cols, self._d_c, batch.offsets, mode="sum")
        if self._d_cls is not None:
            cond.add_(self._d_cls.index_select(0, batch.rows))
        return cond.add_(self._db[0])

    def _d_forward(self, pre: torch.Tensor) -> list[torch.Tensor]:
        """Activations of D from its first layer's pre-activation; the last one is the logit ``(N, 1)``."""
        acts = [_activate_(pre, self.d_activation)]
        for layer in range(len(self._dw)):
            a = _addmm(self._db[layer + 1], acts[-1], self._dw[layer], self._low)
            acts.append(a if layer == len(self._dw) - 1 else _activate_(a, self.d_activation))
        return acts

    def _d_backward(
        self, acts: list[torch.Tensor], delta: torch.Tensor, *, weight_grads: bool
    ) -> torch.Tensor:
        """Back-propagate ``d loss / d logit`` through D's upper layers; returns the first layer's delta."""
        for layer in range(len(self._dw) - 1, -1, -1):
            if weight_grads:
                _mm(acts[layer].T, delta, self._low, out=self._d_gw[layer])
                torch.sum(delta, 0, out=self._d_gb[layer + 1])
            below = _mm(delta, self._dw[layer].T, self._low)
            delta = _activate_backward(below, acts[layer], self.d_activation)
        return delta

    @staticmethod
    def _sparse_grad(batch: _Batch, delta: torch.Tensor) -> torch.Tensor:
        """``S^T delta`` for the batch's 0/1 rows ``S``: per column, its rows' deltas summed, ``(C, H)``."""
        assert batch.t_pos is not None and batch.t_offsets is not None
        return F.embedding_bag(batch.t_pos, delta, batch.t_offsets, mode="sum")

    # ------------------------------------------------------------------ steps
    def _d_grads(self, batch: _Batch, fake: torch.Tensor, logits: torch.Tensor) -> list[torch.Tensor]:
        """D's gradients for one mini-batch, in parameter order; its logits go to ``logits[:2B]``.

        ``fake`` is ``G(c) * k`` of the batch's rows ``(B, C)``, a constant here. The loss is
        ``mean softplus(-logit_real) + mean softplus(logit_fake)`` (+ L2, inside Adam).
        """
        n = len(batch)
        cond = self._d_condition(batch)  # (B, Hd1)
        pre = torch.empty((2 * n, cond.shape[1]), device=cond.device)  # real rows, then fake rows
        torch.add(cond, F.embedding_bag(batch.cols, self._d_x, batch.offsets, mode="sum"), out=pre[:n])
        _addmm(cond, fake, self._d_x, self._low, out=pre[n:])
        acts = self._d_forward(pre)
        logit = acts[-1]  # (2B, 1)
        logits[: 2 * n].copy_(logit.view(-1))
        # d/dl softplus(-l) = sigmoid(l) - 1 on real rows, d/dl softplus(l) = sigmoid(l) on fake rows.
        dlogit = torch.sigmoid(logit).sub_(self._real_label(n)).div_(n)
        delta = self._d_backward(acts, dlogit, weight_grads=True)  # (2B, Hd1)
        d_real, d_fake = delta[:n], delta[n:]
        both = d_real + d_fake
        grads = [
            self._sparse_grad(batch, both),  # condition block
            _addmm_(self._sparse_grad(batch, d_real), fake.T, d_fake, self._low),  # fake-input block
        ]
        if self._d_cls is not None:
            grads.append(torch.zeros_like(self._d_cls).index_add_(0, batch.rows, both))
        torch.sum(delta, 0, out=self._d_gb[0])
        return grads + self._d_gw + self._d_gb

    def _real_label(self, n: int) -> torch.Tensor:
        cache = self.__dict__.setdefault("_labels", {})
        if n not in cache:
            cache[n] = torch.cat([torch.ones(n, 1), torch.zeros(n, 1)]).to(self.device_)
        return cache[n]

    def _g_grads(
        self,
        batch: _Batch,
        keep: torch.Tensor,
        zr: torch.Tensor | None,
        z: torch.Tensor | None,
        logits: torch.Tensor,
        zr_sum: torch.Tensor,
        d_cond: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """G's gradients for one mini-batch, in parameter order.

        ``keep`` is ``k`` (real entries and PM samples set to 1), ``zr`` the ZR samples, both ``(B, C)``.
        D's logits go to ``logits[:B]`` and ``sum_r sum_{j in ZR} G(c_r)_j^2`` to ``zr_sum`` (0-d), from
        which the epoch's losses are computed. ``d_cond`` is D's condition term of the batch's rows
        (:meth:`_d_condition`) when already known.
        """
        n = len(batch)
        dev = self.device_
        hidden = self._layers(self.g_hidden, "g_hidden")
        acts = [torch.empty((n, w), device=dev) for w in hidden] + [self._scratch("g_out", n)]
        grad = self._scratch("g_grad", n)  # d loss / d out
        sq = self._scratch("g_sq", n) if zr is not None and self.alpha else None
        cond = self._d_condition(batch) if d_cond is None else d_cond
        self._g_front(batch, keep, zr, z, cond, n, acts, grad, sq, logits[:n])
        if sq is not None:
            torch.dot(sq.view(-1), acts[-1].view(-1), out=zr_sum)
        else:
            zr_sum.zero_()
        for layer in range(len(self._gw) - 1, -1, -1):
            _mm(acts[layer].T, grad, self._low, out=self._g_gw[layer])
            torch.sum(grad, 0, out=self._g_gb[layer + 1])
            below = _mm(grad, self._gw[layer].T, self._low)
            grad = _activate_backward(below, acts[layer], self.g_activation)
        first = [self._sparse_grad(batch, grad)]
        if self._g_cls is not None:
            first.append(torch.zeros_like(self._g_cls).index_add_(0, batch.rows, grad))
        if z is not None:
            first.append(_mm(z.T, grad, self._low))
        torch.sum(grad, 0, out=self._g_gb[0])
        return first + self._g_gw + self._g_gb

    def _g_front(
        self,
        batch: _Batch,
        keep: torch.Tensor,
        zr: torch.Tensor | None,
        z: torch.Tensor | None,
        cond: torch.Tensor,
        n: int,
        acts: list[torch.Tensor],
        grad: torch.Tensor,
        sq: torch.Tensor | None,
        logits: torch.Tensor,
    ) -> None:
        """G's and D's forward passes and the gradient of the loss w.r.t. G's output, for one mini-batch.

        The activations of the batch's ``n`` rows go to ``acts``, the gradient to ``grad``,
        ``G(c_r)_j^2`` on the ZR samples to ``sq`` and D's logits to ``logits``. ``cond`` (D's condition
        term of the rows) is overwritten.
        """
        acts[0].copy_(self._g_first(batch, z))
        for layer, (w, b) in enumerate(zip(self._gw, self._gb[1:], strict=True)):
            _addmm(b, acts[layer], w, self._low, out=acts[layer + 1])
            if layer < len(self._gw) - 1:
                _activate_(acts[layer + 1], self.g_activation)
        out = acts[-1]  # (b, C)
        fake = torch.mul(out, keep, out=self._scratch("g_fake", n))
        d_acts = self._d_forward(_addmm_(cond, fake, self._d_x, self._low))
        logit = d_acts[-1]  # (b, 1)
        logits.copy_(logit.view(-1))
        if self.g_loss == "nonsaturating":
            dlogit = torch.sigmoid(logit).sub_(1.0).div_(n)  # d/dl mean softplus(-l)
        else:
            dlogit = torch.sigmoid(logit).div_(-n)  # d/dl mean log(1 - sigmoid(l)) = d/dl -softplus(l)
        delta_d = self._d_backward(d_acts, dlogit, weight_grads=False)  # (b, Hd1)
        d_x_t = self._d_x.T if self._d_x_t is None else self._d_x_t
        _mm(delta_d, d_x_t, self._low, out=grad).mul_(keep)
        if sq is not None:
            assert zr is not None
            torch.mul(out, zr, out=sq)
            grad.add_(sq, alpha=2.0 * float(self.alpha) / n)

    # ------------------------------------------------------------------ masks
    def _draw(self, observed: np.ndarray | torch.Tensor, ratio: float) -> torch.Tensor:
        """Uniform subsets of the unobserved entries as a float32 ``(n, C)`` 0/1 tensor on the device.

        Drawn from the generators all ranks share: every rank draws the same samples for all rows, so a
        row's samples stay one set per epoch for its D and G passes (as in the original) even when those
        passes visit it on different ranks.
        """
        if isinstance(observed, np.ndarray):
            mask = _sample_subsets_np(observed, ratio, self.np_rng_)
            return torch.from_numpy(mask.view(np.uint8)).to(self.device_, torch.float32)
        return _sample_subsets_torch(observed, ratio, self.torch_gen_).float()

    def _masks(
        self, observed: np.ndarray | torch.Tensor, observed_f: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(k, zr)`` for these rows: real entries plus PM samples, and the ZR samples (or ``None``)."""
        keep = observed_f
        if self._uses_pm:
            keep = self._draw(observed, float(self.pm_ratio)).add_(observed_f)
        zr = self._draw(observed, float(self.zr_ratio)) if self._uses_zr else None
        return keep, zr

    def _batch_masks(
        self, batch: _Batch, *, with_zr: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(k, zr)`` for one mini-batch with ``resample="batch"``.

        The batch's rows are densified from CSR (or taken from the dense rows when kept); each unobserved
        entry is drawn independently with probability ``pm_ratio`` / ``zr_ratio``: the expected sizes of
        the exact per-epoch draws, without a sort of every row per mini-batch. ``with_zr=False`` (D's
        steps, which do not use them) skips the ZR draw.

        On the CPU see :meth:`_cpu_masks`; on a GPU the draws are floats from the rank's torch generator.
        """
        ratios = [
            float(self.pm_ratio) if self._uses_pm else None,
            float(self.zr_ratio) if self._uses_zr and with_zr else None,
        ]
        if self.device_.type == "cpu":
            return self._cpu_masks(batch, ratios)
        if self._dense:
            real = self._observed_f.index_select(0, batch.rows)  # (B, C)
        else:
            real = torch.zeros((len(batch), self._n_cols), device=self.device_)
            lengths = torch.diff(batch.offsets, append=batch.offsets.new_tensor([len(batch.cols)]))
            pos = torch.repeat_interleave(torch.arange(len(batch), device=self.device_), lengths)
            real[pos, batch.cols] = 1.0
        free = 1.0 - real
        gen = self.rank_torch_gen_
        keep = real
        if ratios[0] is not None:
            keep = torch.rand(real.shape, generator=gen, device=self.device_).lt_(ratios[0]).mul_(free)
            keep = keep.add_(real)
        zr = None
        if ratios[1] is not None:
            zr = torch.rand(real.shape, generator=gen, device=self.device_).lt_(ratios[1]).mul_(free)
        return keep, zr

    def _cpu_masks(
        self, batch: _Batch, ratios: list[float | None]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`_batch_masks` on the CPU: ``(k, zr)`` of the batch's rows, drawn with numpy.

        The draws are 16-bit integers (each raw 64-bit output of the generator cut in four) compared
        with ``round(ratio * 2^16)`` (the probability differs from ``ratio`` by at most ``2^-17``):
        torch's CPU ``rand`` took 28% of an ML-20M-sized epoch and these draws are about 8x cheaper.
        They are drawn a few rows at a time, so the 16-bit draws stay in cache and each mask is written
        once, as float32 0/1; then the real entries are set (PM: to 1, so ``k`` holds them) or cleared
        (ZR: never a real entry) by one scatter over the batch's nonzeros. The rows are split in two
        halves, each drawn from its own generator seeded from the rank's numpy generator; with two or
        more torch threads the second half runs on the epoch's worker thread (numpy releases the GIL
        for these fills), so the bits are the same however many threads run. Without PM, ``k`` is the
        0/1 rows themselves.
        """
        n, n_cols = len(batch), self._n_cols
        masks = [
            None if ratio is None else self._scratch(name, n, torch.float32)
            for ratio, name in zip(ratios, ("keep", "zr"), strict=True)
        ]
        real = self._scratch("real", n, torch.float32) if masks[0] is None else None
        cols = batch.cols.numpy()
        ends = np.append(batch.offsets.numpy(), len(cols))  # (B + 1,) row r's entries: ends[r]:ends[r + 1]
        seeds = self.rank_np_rng_.integers(0, 2**63, size=2)
        half = (n + 1) // 2
        # Rows per draw: a multiple of 4, so every draw but a half's last consumes whole 64-bit outputs
        # and the stream (hence the bits) is the same as one draw per half.
        chunk = max(4, (self._mask_chunk // max(n_cols, 1)) // 4 * 4)

        def fill(lo: int, hi: int, seed: int) -> None:
            # Flat positions of the real entries within rows lo:hi.
            flat = np.repeat(np.arange(hi - lo) * n_cols, np.diff(ends[lo : hi + 1]))
            flat += cols[ends[lo] : ends[hi]]
            if real is not None:
                part = real[lo:hi].numpy()
                part.fill(0.0)
                part.reshape(-1)[flat] = 1.0
            gen = np.random.PCG64(seed)  # raw 64-bit outputs only
            for ratio, mask, value in zip(ratios, masks, (1.0, 0.0), strict=True):
                if ratio is None or mask is None:
                    continue
                part = mask[lo:hi].numpy()
                threshold = round(ratio * 65536)
                for s in range(0, hi - lo, chunk):
                    block = part[s : s + chunk]
                    bits = gen.random_raw((block.size + 3) // 4).view(np.uint16)
                    np.less(bits[: block.size].reshape(block.shape), threshold, out=block, casting="unsafe")
                # PM: drawn or real (k); ZR: drawn and not real.
                part.reshape(-1)[flat] = value

        pool = self._pool
        later = pool.submit(fill, half, n, int(seeds[1])) if pool is not None else None
        fill(0, half, int(seeds[0]))
        if later is not None:
            later.result()
        else:
            fill(half, n, int(seeds[1]))
        keep = masks[0] if masks[0] is not None else real
        assert keep is not None
        return keep, masks[1]

    # ------------------------------------------------------------------ epoch
    @staticmethod
    def _spans(n: int, batch_size: int) -> list[tuple[int, int]]:
        return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]

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
        dev = self.device_
        adam_g: _Adam = self.optimizers_["generator"]  # type: ignore[assignment]
        adam_d: _Adam = self.optimizers_["discriminator"]  # type: ignore[assignment]
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

    def _update(self, adam: _Adam, grads: list[torch.Tensor]) -> None:
        """One player's update from its gradients; under torchrun first averaged over the ranks (one
        all-reduce)."""
        if self._sync:
            distributed.all_reduce_mean_(grads)
        adam.step(grads)

    def _epoch_losses(
        self, d_logits: torch.Tensor, g_logits: torch.Tensor, zr_sums: torch.Tensor, n: int
    ) -> dict[str, float]:
        """Mean per-step losses and mean D outputs of the epoch, from the stored logits.

        ``n`` is the rows this rank visits per pass. Under torchrun every rank's batches have the same
        sizes, so the loop's average of these over the ranks is the mean over the effective batches.
        """
        out: dict[str, float] = {}
        if len(g_logits):
            sizes = torch.tensor(
                [e - s for s, e in self._spans(n, int(self.g_batch_size))] * int(self.g_steps),
                device=g_logits.device,
                dtype=torch.float64,
            )
            valid = torch.arange(g_logits.shape[1], device=g_logits.device)[None, :] < sizes[:, None]
            per = (
                -F.softplus(g_logits.double()) if self.g_loss == "minimax" else F.softplus(-g_logits.double())
            )
            adv = ((per * valid).sum(1) / sizes).mean()
            zr = (zr_sums.double() * float(self.alpha) / sizes).mean()
            out.update({"g_loss": float(adv + zr), "g_adv": float(adv), "zr": float(zr)})
        if len(d_logits):
            bs = int(self.d_batch_size)
            sizes_l = [e - s for s, e in self._spans(n, bs)] * int(self.d_steps)
            sizes = torch.tensor(sizes_l, device=d_logits.device, dtype=torch.float64)
            col = torch.arange(d_logits.shape[1], device=d_logits.device)[None, :]
            real = col < sizes[:, None]
            fake = (col >= sizes[:, None]) & (col < 2 * sizes[:, None])
            lg = d_logits.double()
            loss = (((F.softplus(-lg) * real).sum(1) + (F.softplus(lg) * fake).sum(1)) / sizes).mean()
            prob = torch.sigmoid(lg)
            total = float(sizes.sum())
            out.update(
                {
                    "d_loss": float(loss),
                    "d_real": float((prob * real).sum()) / total,
                    "d_fake": float((prob * fake).sum()) / total,
                }
            )
        return out

    def _d_condition_all(self) -> torch.Tensor:
        """D's condition term (:meth:`_d_condition`) of every row, ``(R, Hd1)``."""
        p = self._all_pass
        return torch.cat(
            [self._d_condition(p.batch(s, e)) for s, e in self._spans(self._n_rows, self.chunk_rows)]
        )

    def _g_output_all(self) -> torch.Tensor:
        """G's output for every row, ``(R, C)``, computed in chunks."""
        out = torch.empty((self._n_rows, self._n_cols), device=self.device_)
        p = self._all_pass
        for s, e in self._spans(self._n_rows, self.chunk_rows):
            out[s:e] = self._g_forward(p.batch(s, e), self._mean_noise(e - s))[-1]
        return out

    # ------------------------------------------------------------------ scoring
    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        super()._fit(train, valid)
        # The loop may have put back the best epoch's weights after the last validation.
        self._version = getattr(self, "_version", 0) + 1

    def _score_pass(self) -> _Pass:
        if getattr(self, "_score_rows", None) is None:
            indptr, indices = self._row_csr(self.seen_)
            order = np.arange(len(indptr) - 1, dtype=np.int64)
            self._score_rows = self._make_pass(order, indptr, indices, self.chunk_rows, grads=False)
        assert self._score_rows is not None
        return self._score_rows

    def _item_hidden(self) -> torch.Tensor:
        """Last hidden layer of G for every item row, ``(n_items, H_L)``, cached per weight version."""
        cached = getattr(self, "_hidden_cache", None)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        p = self._score_pass()
        parts = [
            self._g_forward(p.batch(s, e), self._mean_noise(e - s), hidden_only=True)[-1]
            for s, e in self._spans(self._n_rows, self.chunk_rows)
        ]
        hidden = torch.cat(parts) if len(parts) > 1 else parts[0]
        self._hidden_cache = (self._version, hidden)
        return hidden

    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        if self.mode == "item":
            hidden = self._item_hidden()  # (n_items, H)
            w = self._gw[-1].index_select(1, users)  # (H, n)
            return torch.addmm(self._gb[-1].index_select(0, users)[:, None], w.T, hidden.T)  # (n, n_items)
        host = users.cpu().numpy()
        return self._g_forward(
            self._rows_batch(self._score_pass(), host, users), self._mean_noise(len(host))
        )[-1]

    def _rows_batch(self, p: _Pass, host: np.ndarray, rows: torch.Tensor) -> _Batch:
        """Any rows of the natural-order pass ``p`` as one (forward-only) batch."""
        starts = np.asarray(p.starts_host, dtype=np.int64)
        lengths = starts[host + 1] - starts[host]
        offsets = np.zeros(len(host), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        entry = np.repeat(starts[host] - offsets, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)
        dev = self.device_
        return _Batch(
            rows,
            host,
            p.cols.index_select(0, torch.from_numpy(entry).to(dev)),
            torch.from_numpy(offsets).to(dev),
        )

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self._n_rows, self._n_cols = self._dims(self.n_users, self.n_items)
        self._score_rows = None
        self._hidden_cache = None
        self._bind()
