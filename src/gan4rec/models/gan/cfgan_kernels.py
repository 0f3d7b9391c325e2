"""Speed machinery of :mod:`gan4rec.models.gan.cfgan`: hand-written passes, sparse gathers, fused Adam.

CFGAN's model, losses and epoch read in :mod:`~gan4rec.models.gan.cfgan`; this module holds how its steps run
fast. The tests check every hand-written gradient against autograd of the plain losses
(:func:`~gan4rec.models.gan.cfgan.discriminator_loss`, :func:`~gan4rec.models.gan.cfgan.generator_loss`).

Speed. About 65,000 small steps make per-step overhead as important as FLOPs, so the steps are written
out by hand (no autograd; the tests check them against autograd of those losses):

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
  (:class:`FusedAdam`); the logits and ZR sums of every step are stored on the device and the epoch's
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
bfloat16 operands; weights, gradients, Adam state, sums and nonlinearities stay fp32 (:func:`mm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan4rec.data.interactions import Interactions

__all__ = [
    "Batch", "FusedAdam", "HandWrittenSteps", "Pass", "activate_", "activate_backward", "addmm", "addmm_", "mm",
]


# ------------------------------------------------------------------------------------------- kernels

def activate_(x: torch.Tensor, name: str) -> torch.Tensor:
    """Apply the activation in place and return ``x``."""
    if name == "sigmoid":
        return x.sigmoid_()
    if name == "tanh":
        return x.tanh_()
    if name == "relu":
        return x.relu_()
    return x


def activate_backward(grad: torch.Tensor, out: torch.Tensor, name: str) -> torch.Tensor:
    """``grad * f'(pre)``, with ``f'`` taken from the activation's output ``out`` (one fused kernel)."""
    if name == "sigmoid":
        return torch.ops.aten.sigmoid_backward(grad, out)
    if name == "tanh":
        return torch.ops.aten.tanh_backward(grad, out)
    if name == "relu":
        return torch.ops.aten.threshold_backward(grad, out, 0.0)
    return grad


def mm(a: torch.Tensor, b: torch.Tensor, low: bool, out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b`` (into ``out``); with ``low``, the product of bfloat16 copies of ``a`` and ``b``, in fp32.

    Without ``low`` exactly the call the fp32 code makes, so fp32 results keep their bits.
    """
    if low:
        prod = torch.mm(a.to(torch.bfloat16), b.to(torch.bfloat16))
        return prod.float() if out is None else out.copy_(prod)
    return torch.mm(a, b) if out is None else torch.mm(a, b, out=out)


def addmm(
    bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, low: bool, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``bias + a @ b`` (into ``out``), the product in bfloat16 with ``low`` (see :func:`mm`)."""
    if low:
        prod = torch.mm(a.to(torch.bfloat16), b.to(torch.bfloat16))
        return torch.add(bias, prod) if out is None else torch.add(bias, prod, out=out)
    return torch.addmm(bias, a, b) if out is None else torch.addmm(bias, a, b, out=out)


def addmm_(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor, low: bool) -> torch.Tensor:
    """``t += a @ b`` in place, the product in bfloat16 with ``low`` (see :func:`mm`)."""
    if low:
        return t.add_(torch.mm(a.to(torch.bfloat16), b.to(torch.bfloat16)))
    return t.addmm_(a, b)


class FusedAdam:
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
class Batch:
    rows: torch.Tensor  # (B,) row ids
    rows_host: np.ndarray
    cols: torch.Tensor  # (nnz_B,) columns of the rows' entries, row after row
    offsets: torch.Tensor  # (B,) where each row starts in ``cols`` (embedding_bag offsets)
    t_pos: torch.Tensor | None = None  # (nnz_B,) batch position of each entry, entries sorted by column
    t_offsets: torch.Tensor | None = None  # (C,) where each column starts in ``t_pos``

    def __len__(self) -> int:
        return len(self.rows_host)


@dataclass
class Pass:
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

    def batch(self, s: int, e: int) -> Batch:
        a, b = self.starts_host[s], self.starts_host[e]
        out = Batch(self.order[s:e], self.order_host[s:e], self.cols[a:b], self.starts[s:e] - a)
        if self.t_pos is not None:
            out.t_pos = self.t_pos[a:b]
            if self.t_offsets is not None:
                out.t_offsets = self.t_offsets[s // self.batch_size]
            else:
                assert self.t_cols is not None and self.col_range is not None
                out.t_offsets = torch.searchsorted(self.t_cols[a:b], self.col_range)
        return out



# ------------------------------------------------------------------------------------------- the steps
class HandWrittenSteps:
    """CFGAN's forward and backward passes written out by hand (no autograd), mixed into the model.

    Reads the model's hyperparameters and the weight handles that :meth:`CFGAN._bind` sets; writes the
    dense gradients into the persistent buffers made in ``_prepare``.
    """

    # Set by the model (declared for type checkers).
    chunk_rows: ClassVar[int]
    g_activation: str
    d_activation: str
    g_loss: str
    alpha: float
    g_batch_size: int
    d_batch_size: int
    g_steps: int
    d_steps: int
    device_: torch.device
    _low: bool
    _n_rows: int
    _n_cols: int
    _csc_cols: np.ndarray
    _csc_rows: np.ndarray
    _all_pass: Pass
    _d_x_t: torch.Tensor | None
    _mean_noise: Callable[[int], torch.Tensor | None]
    _version: int
    _score_rows: Pass | None
    _hidden_cache: tuple[int, torch.Tensor] | None
    class_condition: bool
    noise_dim: int
    seen_: Interactions
    modules_: dict[str, nn.Module]
    _row_csr: Callable[[Interactions], tuple[np.ndarray, np.ndarray]]
    # Detached weight handles (set by ``_bind``) and the dense gradients' buffers (set by ``_prepare``).
    _g_c: torch.Tensor
    _g_cls: torch.Tensor | None
    _g_z: torch.Tensor | None
    _gw: list[torch.Tensor]
    _gb: list[torch.Tensor]
    _d_c: torch.Tensor
    _d_x: torch.Tensor
    _d_cls: torch.Tensor | None
    _dw: list[torch.Tensor]
    _db: list[torch.Tensor]
    _g_gw: list[torch.Tensor]
    _g_gb: list[torch.Tensor]
    _d_gw: list[torch.Tensor]
    _d_gb: list[torch.Tensor]

    def _bind(self) -> None:
        """Detached handles on the weights for the hand-written passes (in-place weight loads keep them)."""
        gen: Any = self.modules_["generator"]  # an MLP (cfgan.MLP)
        dis: Any = self.modules_["discriminator"]
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

    def _make_pass(
        self, order: np.ndarray, indptr: np.ndarray, indices: np.ndarray, batch_size: int, *, grads: bool
    ) -> Pass:
        """The layout of one pass over ``order`` in mini-batches (``grads``: also the by-column layout)."""
        lengths = indptr[order + 1] - indptr[order]  # (n,)
        starts = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        entry = np.repeat(indptr[order] - starts[:-1], lengths) + np.arange(int(starts[-1]), dtype=np.int64)
        dev = self.device_
        p = Pass(
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
        batch: Batch,
        z: torch.Tensor | None,
        *,
        hidden_only: bool = False,
        out: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Activations ``[a_1, ..., a_L]`` of G on the batch's rows; ``a_L`` is the output ``(B, C)``
        (written into ``out`` when given)."""
        return self._g_upper(self._g_first(batch, z), hidden_only=hidden_only, out=out)

    def _g_first(self, batch: Batch, z: torch.Tensor | None) -> torch.Tensor:
        """G's first hidden layer ``a_1`` on the batch's rows (reads only the first layer's weights)."""
        h = F.embedding_bag(batch.cols, self._g_c, batch.offsets, mode="sum")  # (B, H1)
        if self._g_cls is not None:
            h.add_(self._g_cls.index_select(0, batch.rows))
        if z is not None and self._g_z is not None:
            addmm_(h, z, self._g_z, self._low)
        h.add_(self._gb[0])
        return activate_(h, self.g_activation)

    def _g_upper(
        self, first: torch.Tensor, *, hidden_only: bool = False, out: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """All of G's activations from the first one (``hidden_only``: without the output; ``out``: the
        output's buffer)."""
        acts = [first]
        top = len(self._gw) - int(hidden_only)
        for layer in range(top):
            last = layer == len(self._gw) - 1
            a = addmm(self._gb[layer + 1], acts[-1], self._gw[layer], self._low, out=out if last else None)
            acts.append(a if last else activate_(a, self.g_activation))
        return acts

    def _d_condition(self, batch: Batch) -> torch.Tensor:
        """D's first-layer pre-activation from the condition block(s) and the bias: ``(B, Hd1)``."""
        cond = F.embedding_bag(batch.cols, self._d_c, batch.offsets, mode="sum")
        if self._d_cls is not None:
            cond.add_(self._d_cls.index_select(0, batch.rows))
        return cond.add_(self._db[0])

    def _d_forward(self, pre: torch.Tensor) -> list[torch.Tensor]:
        """Activations of D from its first layer's pre-activation; the last one is the logit ``(N, 1)``."""
        acts = [activate_(pre, self.d_activation)]
        for layer in range(len(self._dw)):
            a = addmm(self._db[layer + 1], acts[-1], self._dw[layer], self._low)
            acts.append(a if layer == len(self._dw) - 1 else activate_(a, self.d_activation))
        return acts

    def _d_backward(
        self, acts: list[torch.Tensor], delta: torch.Tensor, *, weight_grads: bool
    ) -> torch.Tensor:
        """Back-propagate ``d loss / d logit`` through D's upper layers; returns the first layer's delta."""
        for layer in range(len(self._dw) - 1, -1, -1):
            if weight_grads:
                mm(acts[layer].T, delta, self._low, out=self._d_gw[layer])
                torch.sum(delta, 0, out=self._d_gb[layer + 1])
            below = mm(delta, self._dw[layer].T, self._low)
            delta = activate_backward(below, acts[layer], self.d_activation)
        return delta

    @staticmethod
    def _sparse_grad(batch: Batch, delta: torch.Tensor) -> torch.Tensor:
        """``S^T delta`` for the batch's 0/1 rows ``S``: per column, its rows' deltas summed, ``(C, H)``."""
        assert batch.t_pos is not None and batch.t_offsets is not None
        return F.embedding_bag(batch.t_pos, delta, batch.t_offsets, mode="sum")

    # ------------------------------------------------------------------ steps
    def _d_grads(self, batch: Batch, fake: torch.Tensor, logits: torch.Tensor) -> list[torch.Tensor]:
        """D's gradients for one mini-batch, in parameter order; its logits go to ``logits[:2B]``.

        ``fake`` is ``G(c) * k`` of the batch's rows ``(B, C)``, a constant here. The loss is
        ``mean softplus(-logit_real) + mean softplus(logit_fake)`` (+ L2, inside Adam).
        """
        n = len(batch)
        cond = self._d_condition(batch)  # (B, Hd1)
        pre = torch.empty((2 * n, cond.shape[1]), device=cond.device)  # real rows, then fake rows
        torch.add(cond, F.embedding_bag(batch.cols, self._d_x, batch.offsets, mode="sum"), out=pre[:n])
        addmm(cond, fake, self._d_x, self._low, out=pre[n:])
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
            addmm_(self._sparse_grad(batch, d_real), fake.T, d_fake, self._low),  # fake-input block
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
        batch: Batch,
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
        hidden = [b.shape[0] for b in self._gb[:-1]]  # G's hidden widths
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
            mm(acts[layer].T, grad, self._low, out=self._g_gw[layer])
            torch.sum(grad, 0, out=self._g_gb[layer + 1])
            below = mm(grad, self._gw[layer].T, self._low)
            grad = activate_backward(below, acts[layer], self.g_activation)
        first = [self._sparse_grad(batch, grad)]
        if self._g_cls is not None:
            first.append(torch.zeros_like(self._g_cls).index_add_(0, batch.rows, grad))
        if z is not None:
            first.append(mm(z.T, grad, self._low))
        torch.sum(grad, 0, out=self._g_gb[0])
        return first + self._g_gw + self._g_gb

    def _g_front(
        self,
        batch: Batch,
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
            addmm(b, acts[layer], w, self._low, out=acts[layer + 1])
            if layer < len(self._gw) - 1:
                activate_(acts[layer + 1], self.g_activation)
        out = acts[-1]  # (b, C)
        fake = torch.mul(out, keep, out=self._scratch("g_fake", n))
        d_acts = self._d_forward(addmm_(cond, fake, self._d_x, self._low))
        logit = d_acts[-1]  # (b, 1)
        logits.copy_(logit.view(-1))
        if self.g_loss == "nonsaturating":
            dlogit = torch.sigmoid(logit).sub_(1.0).div_(n)  # d/dl mean softplus(-l)
        else:
            dlogit = torch.sigmoid(logit).div_(-n)  # d/dl mean log(1 - sigmoid(l)) = d/dl -softplus(l)
        delta_d = self._d_backward(d_acts, dlogit, weight_grads=False)  # (b, Hd1)
        d_x_t = self._d_x.T if self._d_x_t is None else self._d_x_t
        mm(delta_d, d_x_t, self._low, out=grad).mul_(keep)
        if sq is not None:
            assert zr is not None
            torch.mul(out, zr, out=sq)
            grad.add_(sq, alpha=2.0 * float(self.alpha) / n)


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

    @staticmethod
    def _spans(n: int, batch_size: int) -> list[tuple[int, int]]:
        return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]

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


    def _rows_batch(self, p: Pass, host: np.ndarray, rows: torch.Tensor) -> Batch:
        """Any rows of the natural-order pass ``p`` as one (forward-only) batch."""
        starts = np.asarray(p.starts_host, dtype=np.int64)
        lengths = starts[host + 1] - starts[host]
        offsets = np.zeros(len(host), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        entry = np.repeat(starts[host] - offsets, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)
        dev = self.device_
        return Batch(
            rows,
            host,
            p.cols.index_select(0, torch.from_numpy(entry).to(dev)),
            torch.from_numpy(offsets).to(dev),
        )

    def _score_pass(self) -> Pass:
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
