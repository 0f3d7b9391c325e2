"""CFGAN: hand-written gradients against autograd, training signal, determinism, resume, variants."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sigkill import run_and_sigkill
from test_train_loop import _no_seconds, _same

from gan4rec.data.interactions import Interactions
from gan4rec.data.split import make_split
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError
from gan4rec.evaluation.evaluator import evaluate
from gan4rec.models import create
from gan4rec.models.gan.cfgan import CFGAN
from gan4rec.models.gan.cfgan_kernels import FusedAdam
from gan4rec.models.gan.cfgan_sampling import sample_subsets_np
from gan4rec.models.torch_base import TorchRecommender
from gan4rec.train.checkpoint import CheckpointStore
from gan4rec.train.seeding import make_rngs, seeded_init

ROOT = Path(__file__).resolve().parents[1]

# Small networks and large learning rates: a few epochs of a few steps move everything.
TINY = {
    "g_hidden": 16,
    "d_hidden": 8,
    "g_lr": 1e-2,
    "d_lr": 1e-2,
    "g_batch_size": 16,
    "d_batch_size": 16,
    "device": "cpu",
}


def _data() -> tuple[Interactions, Interactions]:
    """80 users x 50 items with taste clusters; a validation part (the same in the kill test's child)."""
    data = make_synthetic(80, 50, 1500, n_factors=4, mainstream_share=0.0, random_state=0)
    split = make_split(data, "random", test_frac=0.2, valid_frac=0.0, random_state=0)
    assert split.test is not None
    return split.train, split.test


def _weights(model: TorchRecommender) -> dict[str, torch.Tensor]:
    return {f"{name}/{k}": v.clone() for name, m in model.modules_.items() for k, v in m.state_dict().items()}


@pytest.fixture
def float64() -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _training_state(params: dict, data: Interactions) -> CFGAN:
    """A model with built modules, optimisers and per-fit data, ready for single steps."""
    model = CFGAN(**{**TINY, **params, "epochs": 1, "random_state": 0})
    model.fit(data)
    model.np_rng_, model.torch_gen_, _ = make_rngs(1)
    model.optimizers_ = model._build_optimizers(model.modules_)
    model._prepare(data)
    return model


def _reference_mlp(net: torch.nn.Module, x: torch.Tensor, activation: str) -> torch.Tensor:
    """The network as the module docstring defines it, with plain (autograd) tensor ops."""
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda t: t}[
        activation
    ]
    weights = [torch.cat(list(net.inputs)), *net.weights]
    for i, (w, b) in enumerate(zip(weights, net.biases, strict=True)):
        x = x @ w + b
        if i < len(weights) - 1:
            x = act(x)
    return x


VARIANTS = [
    {"mode": "user"},
    {"mode": "item"},
    {"mode": "user", "class_condition": True, "noise_dim": 3, "noise": "uniform"},
    {
        "mode": "item",
        "g_hidden": [7, 5],
        "d_hidden": [6, 4],
        "g_activation": "tanh",
        "d_activation": "relu",
        "g_loss": "minimax",
    },
]


# ------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("rows", ["all", "shard"])
@pytest.mark.parametrize("params", VARIANTS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_hand_written_gradients_equal_autograd_of_the_documented_losses(
    params: dict, rows: str, float64: None
) -> None:
    """Also on a pass over every other row, as one rank of two visits (its by-column layout then holds
    only the visited rows' entries)."""
    train, _ = _data()
    model = _training_state(params, train)
    gen, dis = model.modules_["generator"], model.modules_["discriminator"]
    n_rows = model._n_rows
    order = np.random.default_rng(3).permutation(model._train_rows)
    p = model._make_pass(
        order if rows == "all" else order[1::2], model._indptr, model._indices, 10, grads=True
    )
    batch = p.batch(10, 20)
    assert model._observed is not None
    real = torch.from_numpy(model._observed[batch.rows_host].astype(np.float64))  # (10, C)
    gen_t = torch.Generator().manual_seed(0)
    keep = real + (torch.rand(real.shape, generator=gen_t) < 0.5) * (1 - real)
    zr = (torch.rand(real.shape, generator=gen_t) < 0.5) * (1 - real)
    z = model._noise(len(batch))
    logits, zr_sum = torch.zeros(10), torch.zeros(())
    with torch.no_grad():
        manual = [g.clone() for g in model._g_grads(batch, keep, zr.double(), z, logits, zr_sum)]

    onehot = [F.one_hot(batch.rows, n_rows).double()] if model.class_condition else []
    out = _reference_mlp(
        gen, torch.cat([real, *onehot, *([z] if z is not None else [])], 1), model.g_activation
    )
    logit = _reference_mlp(dis, torch.cat([real, out * keep, *onehot], 1), model.d_activation)
    if model.g_loss == "nonsaturating":
        adv = F.softplus(-logit).mean()
    else:
        adv = torch.log(1 - torch.sigmoid(logit)).mean()
    zr_term = model.alpha * (out.square() * zr).sum(1).mean()
    expected = torch.autograd.grad(adv + zr_term, list(gen.parameters()))
    assert len(manual) == len(expected)
    for got, want in zip(manual, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(logits, logit.detach().view(-1))
    assert float(zr_sum) * model.alpha / 10 == pytest.approx(float(zr_term.detach()), rel=1e-12)

    fake = (out * keep).detach()
    d_logits = torch.zeros(20)
    with torch.no_grad():
        manual = [g.clone() for g in model._d_grads(batch, fake.clone(), d_logits)]
    l_real = _reference_mlp(dis, torch.cat([real, real, *onehot], 1), model.d_activation)
    l_fake = _reference_mlp(dis, torch.cat([real, fake, *onehot], 1), model.d_activation)
    d_loss = F.softplus(-l_real).mean() + F.softplus(l_fake).mean()
    expected = torch.autograd.grad(d_loss, list(dis.parameters()))
    for got, want in zip(manual, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(d_logits, torch.cat([l_real, l_fake]).detach().view(-1))


def test_the_adversarial_term_alone_trains_g() -> None:
    """No ZR, no L2: G's only gradient comes through D (a port that detached D's output trains nothing)."""
    train, _ = _data()
    params = {"mode": "user", "scheme": "none", "g_l2": 0.0, "alpha": 0.0}
    model = _training_state(params, train)
    batch = model._make_pass(model._train_rows, model._indptr, model._indices, 16, grads=True).batch(0, 16)
    real = model._observed_f.index_select(0, batch.rows)
    with torch.no_grad():
        grads = model._g_grads(batch, real, None, None, torch.zeros(16), torch.zeros(()))
    assert all(float(g.abs().sum()) > 0 for g in grads), "every G tensor gets an adversarial gradient"
    before = _weights(model)
    fitted = CFGAN(**{**TINY, **params, "epochs": 2, "random_state": 0}).fit(train)
    assert fitted.history_[-1]["zr"] == 0.0
    init = _initial_weights(CFGAN(**{**TINY, **params, "random_state": 0}), train)
    after = _weights(fitted)
    moved = [k for k in init if k.startswith("generator/") and not torch.equal(init[k], after[k])]
    assert len(moved) == sum(k.startswith("generator/") for k in before), "all of G moved"


def _initial_weights(model: CFGAN, train: Interactions) -> dict[str, torch.Tensor]:
    """The weights ``model`` starts from (built exactly as fit builds them)."""
    _, _, init_seed = make_rngs(model.random_state)
    with seeded_init(init_seed):
        modules = model._build_modules(train.n_users, train.n_items)
    return {f"{name}/{k}": v.clone() for name, m in modules.items() for k, v in m.state_dict().items()}


def test_a_few_steps_change_both_players_and_history_is_recorded() -> None:
    train, valid = _data()
    model = CFGAN(**TINY, mode="item", epochs=2, eval_every=1, patience=None, random_state=0).fit(
        train, valid
    )
    init, after = _initial_weights(model, train), _weights(model)
    assert init.keys() == after.keys()
    for key in init:
        assert not torch.equal(init[key], after[key]), f"{key} did not change"
    row = model.history_[-1]
    for key in ("g_loss", "g_adv", "zr", "d_loss", "d_real", "d_fake", "valid_NDCG@20"):
        assert np.isfinite(row[key]), key
    assert 0 < row["d_real"] < 1 and 0 < row["d_fake"] < 1
    assert row["g_loss"] == pytest.approx(row["g_adv"] + row["zr"])


# ------------------------------------------------------------------------------------------- determinism
def test_same_seed_is_bit_identical_and_another_seed_is_not() -> None:
    train, _ = _data()
    params = {**TINY, "mode": "user", "epochs": 3}
    a = CFGAN(**params, random_state=5).fit(train)
    b = CFGAN(**params, random_state=5).fit(train)
    c = CFGAN(**params, random_state=6).fit(train)
    users = np.arange(train.n_users)
    assert _same(_weights(a), _weights(b))
    np.testing.assert_array_equal(a.recommend(users, 10)[0], b.recommend(users, 10)[0])
    assert _no_seconds(a.history_) == _no_seconds(b.history_)
    assert not _same(_weights(a), _weights(c))
    assert not np.array_equal(a.recommend(users, 10)[0], c.recommend(users, 10)[0])


def test_two_threads_are_bit_reproducible_and_the_thread_setting_is_put_back() -> None:
    """At the paper's widths (G's output product 32 x 400 x 943) two torch threads split the larger products
    between them (their sums may then round otherwise than one thread's, so one and two threads need not
    agree), but a seed still fixes every bit."""
    data = make_synthetic(943, 100, 4000, n_factors=6, random_state=1)  # item mode: 100 rows, 943 columns
    params = {"mode": "item", "epochs": 1, "g_steps": 1, "d_steps": 1, "n_threads": 2, "device": "cpu"}
    threads = torch.get_num_threads()
    a, b = (CFGAN(**params, random_state=0).fit(data) for _ in range(2))
    assert torch.get_num_threads() == threads
    assert _same(_weights(a), _weights(b))
    assert _no_seconds(a.history_) == _no_seconds(b.history_)


class _SyncCFGAN(CFGAN):
    """Takes the distributed step path in one process: gradients returned, all-reduced (a no-op here), then
    one Adam step over all of them."""

    def _prepare(self, train: Interactions) -> None:
        super()._prepare(train)
        self._sync = True


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("params", VARIANTS[1:3], ids=["item", "user-cls-noise"])
def test_the_distributed_step_path_gives_the_single_process_bits(params: dict, n_threads: int) -> None:
    """Under torchrun each step all-reduces its gradients before its Adam step; without a process group
    that all-reduce changes no bit, so the path gives the same bits as a single-process run."""
    train, _ = _data()
    kw = {**TINY, **params, "epochs": 2, "random_state": 0, "n_threads": n_threads}
    usual, synced = CFGAN(**kw).fit(train), _SyncCFGAN(**kw).fit(train)
    assert _same(_weights(usual), _weights(synced))
    assert _no_seconds(usual.history_) == _no_seconds(synced.history_)


# ------------------------------------------------------------------------------------------- resume
RESUME = {**TINY, "mode": "item", "epochs": 8, "eval_every": 1, "patience": None, "random_state": 3}

_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from test_cfgan import RESUME, _data
from gan4rec.models.gan.cfgan import CFGAN

class SlowCFGAN(CFGAN):
    def _train_epoch(self, epoch):
        time.sleep(0.25)  # gives the parent time to kill us mid-run; does not change any number
        return super()._train_epoch(epoch)

train, valid = _data()
SlowCFGAN(**RESUME).fit(train, valid, checkpoint_dir={ckpt!r}, checkpoint_every=1)
print("finished")
"""


@pytest.fixture(scope="module")
def reference() -> CFGAN:
    train, valid = _data()
    return CFGAN(**RESUME).fit(train, valid)


def test_resume_after_sigkill_is_bit_identical(reference: CFGAN, tmp_path: Path) -> None:
    train, valid = _data()
    ckpt = tmp_path / "ckpt"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD.format(tests=str(ROOT / "tests"), ckpt=str(ckpt))))
    run_and_sigkill(script, ckpt, timeout=120, max_delay=1.2)
    resumed = CFGAN(**RESUME).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=1, resume=ckpt)
    assert resumed.fit_result_.resumed_from is not None and 1 <= resumed.fit_result_.resumed_from < 8
    assert _same(_weights(resumed), _weights(reference))
    assert _no_seconds(resumed.history_) == _no_seconds(reference.history_)
    assert resumed.best_epoch_ == reference.best_epoch_


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_one(
    reference: CFGAN, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train, valid = _data()
    ckpt = tmp_path / "ckpt"
    CFGAN(**RESUME).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=3)
    assert [e for e, _ in CheckpointStore(ckpt).epochs()] == [8, 6]
    tensors = next((ckpt / "epoch-000008").glob("v*/tensors.safetensors"))
    tensors.write_bytes(tensors.read_bytes()[:100])
    caplog.set_level(logging.INFO, logger="gan4rec.train")
    resumed = CFGAN(**RESUME).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=3, resume=ckpt)
    assert "falling back to the previous checkpoint epoch-000006" in caplog.text
    assert resumed.fit_result_.resumed_from == 6
    assert _same(_weights(resumed), _weights(reference))
    assert _no_seconds(resumed.history_) == _no_seconds(reference.history_)


def test_scores_use_the_restored_best_weights(reference: CFGAN) -> None:
    """Item-based scores come from a cache of G's hidden layer: it must follow the weights put back."""
    train, valid = _data()
    assert reference.best_epoch_ is not None and reference.best_epoch_ < 8, "the best epoch is not the last"
    best = reference.history_[reference.best_epoch_ - 1]["valid_NDCG@20"]
    assert evaluate(reference.score, train, valid, ks=(20,)).metrics["NDCG@20"] == pytest.approx(
        best, abs=1e-12
    )


# ------------------------------------------------------------------------------------------- variants
@pytest.mark.parametrize("mode", ["user", "item"])
@pytest.mark.parametrize("scheme", ["zp", "zr", "pm", "none"])
def test_every_mode_and_scheme_trains(mode: str, scheme: str) -> None:
    train, _ = _data()
    model = CFGAN(**TINY, mode=mode, scheme=scheme, epochs=2, random_state=0).fit(train)
    row = model.history_[-1]
    assert all(np.isfinite(v) for v in row.values())
    assert (row["zr"] > 0) == (scheme in ("zp", "zr"))
    scores = model.score(np.arange(train.n_users))
    assert scores.shape == (train.n_users, train.n_items) and np.isfinite(scores).all()


def test_item_scores_are_the_transposed_generator_output() -> None:
    train, _ = _data()
    model = CFGAN(**TINY, mode="item", epochs=2, random_state=0).fit(train)
    gen = model.modules_["generator"]
    items = torch.from_numpy(train.csr().T.toarray())  # (n_items, n_users): item rows
    with torch.no_grad():
        expected = _reference_mlp(gen, items, "sigmoid").T.numpy()  # (n_users, n_items)
    np.testing.assert_allclose(model.score(np.arange(train.n_users)), expected, rtol=1e-5, atol=1e-5)
    some = np.array([7, 0, 3])
    np.testing.assert_allclose(model.score(some), expected[some], rtol=1e-5, atol=1e-5)


def test_noise_and_class_condition_widen_the_inputs_as_documented() -> None:
    train, _ = _data()
    n_users, n_items = train.n_users, train.n_items
    assert CFGAN(mode="user").input_widths(n_users, n_items) == (n_items, 2 * n_items)
    assert CFGAN(mode="item").input_widths(n_users, n_items) == (n_users, 2 * n_users)
    wide = CFGAN(**TINY, mode="user", noise_dim=5, class_condition=True, epochs=1, random_state=0)
    assert wide.input_widths(n_users, n_items) == (n_items + n_users + 5, 2 * n_items + n_users)
    wide.fit(train)
    g_in = [tuple(w.shape) for w in wide.modules_["generator"].inputs]
    d_in = [tuple(w.shape) for w in wide.modules_["discriminator"].inputs]
    assert g_in == [(n_items, 16), (n_users, 16), (5, 16)]
    assert d_in == [(n_items, 8), (n_items, 8), (n_users, 8)]
    # Scoring uses the noise's mean, so it is deterministic.
    np.testing.assert_array_equal(wide.score([0, 1]), wide.score([0, 1]))


def test_batch_resampling_densifies_rows_on_the_fly_identically() -> None:
    """Rows densified per batch from CSR (no dense matrix kept) give the same run as dense rows."""

    class NoDense(CFGAN):
        dense_limit_bytes = 0

    train, _ = _data()
    params = {**TINY, "mode": "user", "resample": "batch", "epochs": 2, "random_state": 0}
    dense = CFGAN(**params).fit(train)
    sparse = NoDense(**params).fit(train)
    assert _same(_weights(dense), _weights(sparse))
    per_epoch = CFGAN(**{**params, "resample": "epoch"}).fit(train)
    assert not _same(_weights(dense), _weights(per_epoch))
    with pytest.raises(DataError, match="resample='batch'"):
        NoDense(**{**params, "resample": "epoch"}).fit(train)


def test_batch_masks_on_the_cpu_draw_each_unobserved_entry_with_its_ratio_on_any_thread_count() -> None:
    train, _ = _data()
    params = {**TINY, "mode": "user", "scheme": "zp", "resample": "batch", "pm_ratio": 0.3, "zr_ratio": 0.8}
    model = CFGAN(**params, random_state=0)
    model._setup_fit(train)
    p = model._make_pass(np.arange(train.n_users), model._indptr, model._indices, train.n_users, grads=True)
    batch = p.batch(0, train.n_users)
    observed = train.csr().toarray() > 0  # (n_users, n_items)
    draws = {}
    # One draw per half (the default at this width) or 4 rows per draw: the same stream, the same bits.
    for threads, pool, chunk in ((1, None, CFGAN._mask_chunk), (2, ThreadPoolExecutor(1), CFGAN._mask_chunk),
                                 (1, None, 4 * train.n_items)):
        model._pool = pool
        model._mask_chunk = chunk
        model.rank_np_rng_ = np.random.default_rng(7)
        keep, zr = (m.numpy().copy() for m in model._batch_masks(batch))  # step buffers: copy them
        d_keep, d_zr = model._batch_masks(batch, with_zr=False)
        assert d_zr is None
        draws[threads, chunk] = (keep, zr, d_keep.numpy().copy())
        if pool is not None:
            pool.shutdown()
    assert 2 * 4 < train.n_users and CFGAN._mask_chunk > train.n_users * train.n_items
    for other in list(draws)[1:]:  # the worker thread and smaller draws give the same bits
        for a, b in zip(draws[1, CFGAN._mask_chunk], draws[other], strict=True):
            np.testing.assert_array_equal(a, b)
    keep, zr, d_keep = draws[1, CFGAN._mask_chunk]
    assert set(np.unique(keep)) <= {0.0, 1.0} and set(np.unique(zr)) <= {0.0, 1.0}
    assert (keep[observed] == 1).all() and (zr[observed] == 0).all()  # k holds every real entry, ZR none
    free = ~observed
    assert abs(keep[free].mean() - 0.3) < 0.02 and abs(zr[free].mean() - 0.8) < 0.02
    assert abs(np.corrcoef(keep[free], zr[free])[0, 1]) < 0.05  # PM and ZR drawn independently
    assert not np.array_equal(keep, d_keep)  # the next batch draws afresh
    model.scheme = "zr"  # without PM, k is the 0/1 rows themselves
    keep, zr = model._batch_masks(batch)
    np.testing.assert_array_equal(keep.numpy(), observed.astype(np.float32))
    assert zr is not None and (zr.numpy()[observed] == 0).all()


def test_the_subset_sampler_draws_exact_uniform_subsets_of_unobserved_entries() -> None:
    rng = np.random.default_rng(0)
    observed = rng.random((6, 40)) < 0.3
    observed[0] = True  # nothing to draw
    observed[1] = False
    counts = np.zeros(observed.shape)
    for _ in range(400):
        mask = sample_subsets_np(observed, 0.7, rng)
        assert not (mask & observed).any()
        np.testing.assert_array_equal(mask.sum(1), np.floor(0.7 * (~observed).sum(1) + 1e-9))
        counts += mask
    share = counts[~observed] / 400  # every unobserved entry is drawn with probability ~k / n
    expected = (np.floor(0.7 * (~observed).sum(1) + 1e-9) / np.maximum((~observed).sum(1), 1))[:, None]
    np.testing.assert_allclose(share, np.broadcast_to(expected, observed.shape)[~observed], atol=0.1)

    class Tied:
        """Every float32 key equal: the threshold rule alone would draw whole rows."""

        def random(self, shape: tuple[int, int], dtype: type = np.float64) -> np.ndarray:
            return np.zeros(shape, dtype=dtype) if dtype == np.float32 else rng.random(shape)

    mask = sample_subsets_np(observed, 0.5, Tied())  # type: ignore[arg-type]
    np.testing.assert_array_equal(mask.sum(1), np.floor(0.5 * (~observed).sum(1)))
    assert not (mask & observed).any()


def test_adam_is_torch_fused_adam_and_round_trips_its_state() -> None:
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(30, 7, generator=gen), torch.randn(7, generator=gen)]
    ref = [torch.nn.Parameter(p.clone()) for p in start]
    torch_adam = torch.optim.Adam(ref, lr=1e-2, weight_decay=1e-3, fused=True)
    mine = [p.clone() for p in start]
    adam = FusedAdam(mine, lr=1e-2, weight_decay=1e-3)
    for _ in range(4):
        grads = [torch.randn(p.shape, generator=gen) for p in start]
        for p, g in zip(ref, grads, strict=True):
            p.grad = g.clone()
        torch_adam.step()
        adam.step(grads)
    assert all(torch.equal(a.detach(), b) for a, b in zip(ref, mine, strict=True))
    copy = FusedAdam([p.clone() for p in mine], lr=1.0, weight_decay=0.0)
    copy.load_state_dict(adam.state_dict())
    assert copy.param_groups[0]["lr"] == 1e-2 and float(copy._step) == 4.0
    assert all(torch.equal(a, b) for a, b in zip(copy.exp_avg_sqs, adam.exp_avg_sqs, strict=True))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"mode": "users"}, r"^mode='users'; expected one of 'user', 'item'$"),
        ({"scheme": "ZP"}, r"^scheme='ZP'; expected one of"),
        ({"zr_ratio": 1.5}, r"^zr_ratio=1.5; expected a number in \[0, 1\]$"),
        ({"pm_ratio": -0.1}, r"^pm_ratio=-0.1;"),
        ({"alpha": float("nan")}, r"^alpha=nan;"),
        ({"g_hidden": []}, r"^g_hidden=\[\]; expected a positive int or a non-empty list of positive ints$"),
        ({"d_hidden": [10, 0]}, r"^d_hidden=\[10, 0\];"),
        ({"g_activation": "gelu"}, r"^g_activation='gelu'; expected one of"),
        ({"g_lr": 0.0}, r"^g_lr=0.0; expected a number in \(0, inf\]$"),
        ({"g_batch_size": 0}, r"^g_batch_size=0; expected an int >= 1$"),
        ({"g_loss": "wasserstein"}, r"^g_loss='wasserstein'; expected one of"),
        ({"noise_dim": -1}, r"^noise_dim=-1; expected an int >= 0$"),
        ({"noise": "gaussian"}, r"^noise='gaussian'; expected one of"),
        ({"class_condition": "yes"}, r"^class_condition='yes'; expected True or False$"),
        ({"resample": "step"}, r"^resample='step'; expected one of"),
        ({"precision": "fp16"}, r"^precision='fp16'; expected one of 'fp32', 'bf16'$"),
        ({"precision": "bf16"}, r"^precision='bf16' runs on cuda only \(device is cpu\); use precision='fp32' here$"),
        ({"g_steps": 0, "d_steps": 0}, r"^g_steps=0 and d_steps=0; expected at least one pass per epoch$"),
    ],
)
def test_bad_params_raise_one_sentence_data_errors(params: dict, match: str) -> None:
    train, _ = _data()
    with pytest.raises(DataError, match=match) as info:
        CFGAN(**{**TINY, "epochs": 1, **params}).fit(train)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------- bf16
class _CpuBF16(CFGAN):
    """CFGAN with bf16 allowed on the CPU, to exercise the cast products where no GPU is present."""

    bf16_devices = ("cuda", "cpu")


@pytest.mark.parametrize("params", VARIANTS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_bf16_steps_keep_fp32_state_and_stay_close_to_fp32_gradients(params: dict) -> None:
    """bf16 products (operands rounded to 8 bits of mantissa) change each gradient by about 1%; weights,
    gradients and Adam's moments stay fp32; scores are fp32 products."""
    train, _ = _data()
    model = _training_state(params, train)
    p = model._make_pass(model._train_rows, model._indptr, model._indices, 16, grads=True)
    batch = p.batch(0, 16)
    assert model._observed_f is not None
    keep = model._observed_f.index_select(0, batch.rows)
    z = model._noise(len(batch))
    grads = {}
    for low in (False, True):
        model._low = low
        with torch.no_grad():
            g = [t.clone() for t in model._g_grads(batch, keep, None, z, torch.zeros(16), torch.zeros(()))]
            fake = model._g_forward(batch, z)[-1].mul_(keep)
            d = [t.clone() for t in model._d_grads(batch, fake, torch.zeros(32))]
        grads[low] = g + d
    model._low = False
    for lo, hi in zip(grads[True], grads[False], strict=True):
        assert lo.dtype == torch.float32
        assert float((lo - hi).norm()) <= 0.05 * float(hi.norm()) + 1e-6
    assert any(not torch.equal(lo, hi) for lo, hi in zip(grads[True], grads[False], strict=True))

    fitted = _CpuBF16(**{**TINY, **params, "precision": "bf16", "epochs": 2, "random_state": 0}).fit(train)
    reference = CFGAN(**{**TINY, **params, "epochs": 2, "random_state": 0}).fit(train)
    assert all(v.dtype == torch.float32 for v in _weights(fitted).values())
    assert not _same(_weights(fitted), _weights(reference))
    assert all(np.isfinite(v) for row in fitted.history_ for v in row.values())
    assert fitted._low is False and fitted.score(np.arange(3)).dtype == np.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_trains_on_cuda(precision: str) -> None:
    train, valid = _data()
    kw = {**TINY, "device": "cuda", "precision": precision, "epochs": 3, "eval_every": 1, "patience": None}
    model = CFGAN(**kw, random_state=0).fit(train, valid)
    assert model.device_.type == "cuda" and all(v.is_cuda for v in _weights(model).values())
    assert all(np.isfinite(row["g_loss"]) and np.isfinite(row["d_loss"]) for row in model.history_)
    assert np.isfinite(model.score(np.arange(5))).all()


# ------------------------------------------------------------------------------------------- accuracy
def test_cfgan_beats_toppop_on_synthetic_data() -> None:
    data = make_synthetic(300, 200, 9000, n_factors=6, mainstream_share=0.0, random_state=0)
    split = make_split(data, "random", test_frac=0.2, valid_frac=0.0, random_state=0)
    assert split.test is not None

    def ndcg(model: Any) -> float:
        return evaluate(model.score, split.train, split.test, ks=(10,)).metrics["NDCG@10"]

    toppop = ndcg(create("toppop").fit(split.train))
    params = {
        "mode": "user",
        "scheme": "zp",
        "g_hidden": 64,
        "d_hidden": 32,
        "g_lr": 1e-3,
        "d_lr": 1e-3,
        "epochs": 15,
        "device": "cpu",
    }
    cfgan = ndcg(create("cfgan", params, random_state=0).fit(split.train))
    assert cfgan > toppop + 0.1, (cfgan, toppop)
