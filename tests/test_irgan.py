"""IRGAN: both players learn, estimator pieces by hand, seeding, resume after SIGKILL, options, quality."""

from __future__ import annotations

import textwrap
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from sigkill import run_and_sigkill

from gan4rec.data.interactions import Interactions
from gan4rec.data.split import Split, random_holdout
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError
from gan4rec.evaluation.evaluator import evaluate
from gan4rec.models import create
from gan4rec.models.baselines.bpr import BPR
from gan4rec.models.gan import irgan as irgan_mod
from gan4rec.models.gan import irgan_pretrain
from gan4rec.models.gan.irgan import IRGAN, MLPScorer
from gan4rec.train.checkpoint import CheckpointStore

ROOT = Path(__file__).resolve().parents[1]

# Small and quick: a BPR start of a few epochs, then short rounds.
FAST = {
    "n_factors": 16,
    "pretrain_lr": 0.02,
    "pretrain_l2": 1e-3,
    "pretrain_epochs": 5,
    "pretrain_batch_size": 256,
    "epochs": 3,
    "d_epochs": 2,
    "d_resample_every": 1,
    "d_batch_size": 512,
    "g_epochs": 2,
    "g_batch_users": 32,
    "g_lr": 1e-3,
    "d_lr": 1e-3,
    "tau": 0.5,
    "patience": None,
    "device": "cpu",
    "random_state": 0,
}


def _data() -> Split:
    """Few sharp taste clusters, flat popularity (the same in the child process of the kill test)."""
    data = make_synthetic(
        200, 120, 6000, n_factors=4, mainstream_share=0.02, popularity_alpha=0.6, random_state=0
    )
    return random_holdout(data, test_frac=0.2, valid_frac=0.2, random_state=0)


@pytest.fixture(scope="module")
def split() -> Split:
    return _data()


def _weights(model: IRGAN) -> dict[str, torch.Tensor]:
    return {f"{n}/{k}": v.clone() for n, m in model.modules_.items() for k, v in m.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _no_seconds(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in history]


def _ndcg(model, s: Split, k: int = 10) -> float:
    res = evaluate(model.score, s.train, s.test, ks=[k], metrics=["NDCG"], exclude=s.valid, device="cpu")
    return res.metrics[f"NDCG@{k}"]


def _started(train: Interactions, **params) -> IRGAN:
    """The pre-trained start (``epochs=0``), re-armed for calling the D and G steps directly."""
    model = IRGAN(**{**FAST, **params, "epochs": 0}).fit(train)
    model._prepare(train)
    model.optimizers_ = model._build_optimizers(model.modules_)
    for m in model.modules_.values():
        m.train()
    return model


def _totals() -> irgan_mod._Totals:
    return irgan_mod._Totals.zeros(torch.device("cpu"))


# ------------------------------------------------------------------------------ the estimator by hand
def test_importance_sampling_proposal_by_hand() -> None:
    p = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]])
    seen = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    q = irgan_mod._is_proposal(p, seen, 0.2)
    # Row 0: 0.8 * p + 0.2 * [0, 1, 0]; row 1: 0.8 * p + 0.2 * [0.5, 0.5, 0].
    torch.testing.assert_close(q, torch.tensor([[0.4, 0.4, 0.2], [0.18, 0.58, 0.24]]))
    # The weights p / q make the estimate unbiased: E_q[w f] = E_p[f] for any f.
    f = torch.tensor([[3.0, -1.0, 2.0], [0.5, 4.0, -2.0]])
    torch.testing.assert_close((q * (p / q) * f).sum(1), (p * f).sum(1))


def test_leave_one_out_baseline_by_hand() -> None:
    reward = torch.tensor([[1.0, 2.0, 3.0, 9.0], [5.0, 7.0, 7.0, 7.0]])
    keep = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])  # row 0: 3 samples; row 1: one
    counts = torch.tensor([3, 1])
    base = irgan_mod._loo_baseline(reward, keep, counts)
    torch.testing.assert_close(base[0, :3], torch.tensor([2.5, 2.0, 1.5]))
    assert base[1, 0] == 0.0, "a lone sample has no other sample to compare with"


# -------------------------------------------------------------------------------------- gradient flow
def test_a_d_step_changes_d_only_and_a_g_step_changes_g_only(split: Split) -> None:
    model = _started(split.train)
    before = _weights(model)
    neg = model._sample_for_d(_totals())
    assert neg.shape == (split.train.nnz,)
    model._d_epoch(neg, _totals())
    after_d = _weights(model)
    assert all(torch.equal(before[k], after_d[k]) for k in before if k.startswith("generator/"))
    assert all(not torch.equal(before[k], after_d[k]) for k in before if k.startswith("discriminator/"))
    model._g_epoch(_totals())
    after_g = _weights(model)
    assert all(torch.equal(after_d[k], after_g[k]) for k in before if k.startswith("discriminator/"))
    assert all(not torch.equal(after_d[k], after_g[k]) for k in before if k.startswith("generator/"))


def test_the_policy_gradient_carries_d_s_signal(split: Split) -> None:
    # g_l2 = 0, so the REINFORCE term is G's only gradient: it moves G...
    model = _started(split.train, g_l2=0.0)
    g0 = {k: v for k, v in _weights(model).items() if k.startswith("generator/")}
    model._g_epoch(_totals())
    assert any(not torch.equal(g0[k], v) for k, v in _weights(model).items() if k in g0)
    # ...and it vanishes when D gives every item the same reward: the leave-one-out baseline then
    # cancels each reward exactly, the gradient is zero and Adam leaves G where it was.
    flat = _started(split.train, g_l2=0.0)
    with torch.no_grad():
        for p in flat.modules_["discriminator"].parameters():
            p.zero_()
    g0 = {k: v for k, v in _weights(flat).items() if k.startswith("generator/")}
    flat._g_epoch(_totals())
    assert all(torch.equal(g0[k], v) for k, v in _weights(flat).items() if k in g0)


def test_g_samples_drawn_for_d_follow_the_options(split: Split) -> None:
    model = _started(split.train, exclude_seen=True, tau=0.05)
    tot = _totals()
    neg = model._sample_for_d(tot)
    users = split.train.user_index()
    seen = np.zeros(split.train.shape, dtype=bool)
    seen[users, split.train.indices] = True
    assert tot.fake_pos == 0 and tot.n_draws == len(neg) and not seen[users, neg.numpy()].any(), (
        "exclude_seen never proposes a train item"
    )
    # Without exclude_seen and a cold softmax, the pre-trained G mostly proposes the user's own items.
    model = _started(split.train, exclude_seen=False, tau=0.05)
    tot = _totals()
    neg = model._sample_for_d(tot)
    rate = tot.row()["fake_pos_rate"]
    assert rate == pytest.approx(seen[users, neg.numpy()].mean()) and rate > 0.5


# ----------------------------------------------------------------------------------------- seeding
def test_same_seed_bit_identical_other_seed_different(split: Split) -> None:
    a = IRGAN(**FAST).fit(split.train, split.valid)
    b = IRGAN(**FAST).fit(split.train, split.valid)
    assert _same(_weights(a), _weights(b))
    users = np.arange(split.train.n_users)
    np.testing.assert_array_equal(a.recommend(users, 10)[0], b.recommend(users, 10)[0])
    assert _no_seconds(a.history_) == _no_seconds(b.history_)
    c = IRGAN(**{**FAST, "random_state": 1}).fit(split.train, split.valid)
    assert not np.array_equal(a.recommend(users, 10)[0], c.recommend(users, 10)[0])


def test_memoised_pretraining_is_bit_identical_and_leaves_global_rngs_alone(split: Split) -> None:
    params = {**FAST, "epochs": 1, "random_state": 5}
    irgan_pretrain.PRETRAIN_CACHE.clear()
    cpu_state = torch.get_rng_state()
    fresh = IRGAN(**params).fit(split.train, split.valid)
    assert torch.equal(torch.get_rng_state(), cpu_state)
    assert len(irgan_pretrain.PRETRAIN_CACHE) == 1
    with torch.no_grad():  # a fitted model's weights are its own, not the memo's
        fresh.modules_["generator"].user.weight.add_(1.0)
    again = IRGAN(**params).fit(split.train, split.valid)
    reference = IRGAN(**params)
    irgan_pretrain.PRETRAIN_CACHE.clear()
    reference.fit(split.train, split.valid)
    assert _same(_weights(again), _weights(reference))


def test_pretraining_memo_is_bounded_in_bytes(monkeypatch) -> None:
    monkeypatch.setattr(irgan_pretrain, "PRETRAIN_CACHE", OrderedDict())
    monkeypatch.setattr(irgan_pretrain, "PRETRAIN_CACHE_BYTES", 100)
    entry = ({"w": torch.zeros(10)}, None, [])  # 40 bytes
    for key in "abc":
        irgan_pretrain.remember((key,), entry)
    assert list(irgan_pretrain.PRETRAIN_CACHE) == [("b",), ("c",)], "the oldest entry goes beyond 100 bytes"
    irgan_pretrain.remember(("big",), ({"w": torch.zeros(30)}, None, []))  # 120 bytes: never kept
    assert ("big",) not in irgan_pretrain.PRETRAIN_CACHE


# ------------------------------------------------------------------------------- validation, refit
def test_start_rounds_and_refit_params(split: Split) -> None:
    start = IRGAN(**{**FAST, "epochs": 0}).fit(split.train, split.valid)
    assert start.history_ == [] and start.best_epoch_ is None
    assert start.start_valid_ is not None and start.pretrain_best_epoch_ is not None
    assert start.refit_params() == {"pretrain_epochs": start.pretrain_best_epoch_}
    valid_now = evaluate(start.score, split.train, split.valid, ks=[20], metrics=["NDCG"], device="cpu")
    assert valid_now.metrics["NDCG@20"] == pytest.approx(start.start_valid_, abs=1e-12)

    model = IRGAN(**FAST).fit(split.train, split.valid)
    first = model.history_[0]
    assert first["start_valid_NDCG@20"] == pytest.approx(start.start_valid_, abs=1e-12)
    for key in (
        "d_loss",
        "d_real",
        "d_fake",
        "g_loss",
        "reward",
        "g_entropy",
        "fake_pos_rate",
        "valid_NDCG@20",
    ):
        assert all(np.isfinite(row[key]) for row in model.history_), key
    assert 0 < first["d_real"] < 1 and 0 < first["d_fake"] < 1
    # The kept weights come from an adversarial round, never from the start.
    assert model.best_epoch_ is not None and model.best_epoch_ >= 1
    assert model.refit_params() == {
        "epochs": model.best_epoch_,
        "pretrain_epochs": start.pretrain_best_epoch_,
    }
    # The pinned refit runs without validation exactly the chosen number of BPR epochs and rounds.
    refit = IRGAN(**{**FAST, **model.refit_params()}).fit(split.train)
    assert len(refit.history_) == model.best_epoch_
    assert refit.history_[0]["pretrain_epochs"] == start.pretrain_best_epoch_


def test_the_start_is_the_bpr_baseline_of_the_same_seed(split: Split) -> None:
    # Same settings and seed: IRGAN's pre-trained start is that BPR-MF run bit for bit, so comparing
    # IRGAN with BPR-MF seed by seed measures the adversarial phase alone.
    bpr = BPR(n_factors=16, lr=0.02, l2=1e-3, epochs=5, batch_size=256, device="cpu", random_state=7)
    bpr.fit(split.train, split.valid)
    start = IRGAN(**{**FAST, "epochs": 0, "random_state": 7}).fit(split.train, split.valid)
    users = np.arange(split.train.n_users)
    np.testing.assert_array_equal(start.score(users), bpr.score(users))
    assert start.refit_params() == {"pretrain_epochs": bpr.refit_params()["epochs"]}


def test_beats_toppop_on_clustered_data(split: Split) -> None:
    top = _ndcg(create("toppop").fit(split.train), split)
    model = IRGAN(**{**FAST, "g_lr": 3e-4, "patience": 2}).fit(split.train, split.valid)
    assert _ndcg(model, split) > top + 0.05


# ------------------------------------------------------------------------------------------ options
def test_recommend_with_either_player(split: Split) -> None:
    # Without validation the run does not depend on which player recommends.
    g = IRGAN(**FAST).fit(split.train)
    d = IRGAN(**{**FAST, "recommend_with": "discriminator"}).fit(split.train)
    assert _same(_weights(g), _weights(d))
    users = np.arange(split.train.n_users)
    with torch.no_grad():
        expect_g = g.modules_["generator"].scores(torch.as_tensor(users)).numpy()
        expect_d = d.modules_["discriminator"].scores(torch.as_tensor(users)).numpy()
    np.testing.assert_array_equal(g.score(users), expect_g)
    np.testing.assert_array_equal(d.score(users), expect_d)
    assert not np.array_equal(expect_g, expect_d)


def test_importance_sampling_mlp_scorer_rewards_and_baselines_run(split: Split) -> None:
    base = IRGAN(**{**FAST, "epochs": 1}).fit(split.train)
    mixed = IRGAN(**{**FAST, "epochs": 1, "importance_sampling": 0.2}).fit(split.train)
    assert not _same(_weights(base), _weights(mixed)), "the proposal changes G's samples and weights"
    for extra in (
        {"reward": "log", "baseline": "ema"},
        {"baseline": "none", "g_optimizer": "sgd"},
        {"scorer": "mlp", "mlp_hidden": 8, "pretrain_d": True},
    ):
        model = IRGAN(**{**FAST, "epochs": 1, **extra}).fit(split.train)
        assert all(np.isfinite(v) for v in model.history_[0].values())
    assert isinstance(model.modules_["generator"], MLPScorer)


def test_mlp_scorer_full_catalogue_matches_pairs() -> None:
    torch.manual_seed(0)
    scorer = MLPScorer(7, 11, 4, 5)
    scorer.max_cells = 2 * 11 * 5  # two users per chunk: exercises the chunking
    users = torch.arange(7)
    full = scorer.scores(users)  # (7, 11)
    pairs = scorer.pair_scores(users[:, None].expand(7, 11), torch.arange(11)[None, :].expand(7, 11))
    torch.testing.assert_close(full, pairs)


def test_pretrain_d_copies_g_and_warm_start_loads_bpr(split: Split, tmp_path: Path) -> None:
    start = IRGAN(**{**FAST, "epochs": 0, "pretrain_d": True}).fit(split.train)
    g, d = start.modules_["generator"].state_dict(), start.modules_["discriminator"].state_dict()
    assert all(torch.equal(g[k], d[k]) for k in g)
    bpr = BPR(n_factors=16, epochs=2, device="cpu", random_state=0).fit(split.train)
    bpr.save(tmp_path / "bpr")
    warm = IRGAN(**{**FAST, "epochs": 0, "warm_start": str(tmp_path / "bpr")}).fit(split.train)
    users = np.arange(split.train.n_users)
    np.testing.assert_array_equal(warm.score(users), bpr.score(users))
    with pytest.raises(DataError, match="fitted on other data"):
        IRGAN(**{**FAST, "warm_start": str(tmp_path / "bpr")}).fit(split.full_train())


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"scorer": "gru"}, r"scorer='gru'; expected one of 'mf', 'mlp'"),
        ({"recommend_with": "both"}, "recommend_with='both'"),
        ({"reward": "wasserstein"}, "reward="),
        ({"tau": 0.0}, r"tau=0.0; expected a number in \(0, inf\]"),
        ({"importance_sampling": 1.0}, "importance_sampling=1.0"),
        ({"importance_sampling": 0.2, "exclude_seen": True}, "set one of them off"),
        ({"pretrain_d": True, "d_factors": 8}, "d_factors=8 must equal n_factors=16"),
        ({"g_samples": 0}, "g_samples=0; expected an int >= 1"),
        ({"epochs": -1}, "epochs=-1; expected an int >= 0"),
        ({"exclude_seen": "yes"}, "exclude_seen='yes'; expected true or false"),
        ({"warm_start": "x", "scorer": "mlp"}, "warm_start needs scorer='mf'"),
        ({"precision": "fp16"}, "precision='fp16'; expected one of 'fp32', 'bf16'"),
        ({"precision": "bf16"}, r"precision='bf16' runs on cuda only \(device is cpu\); use precision='fp32' here"),
    ],
)
def test_bad_params_raise_one_sentence(split: Split, params: dict, match: str) -> None:
    with pytest.raises(DataError, match=match) as err:
        IRGAN(**{**FAST, **params}).fit(split.train)
    assert "\n" not in str(err.value) and str(err.value).count(". ") == 0


# ------------------------------------------------------------------------------- resume after SIGKILL
RESUME = {**FAST, "epochs": 4, "random_state": 3}

_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from test_irgan import RESUME, _data
from gan4rec.models.gan.irgan import IRGAN

class SlowIRGAN(IRGAN):
    def _train_epoch(self, epoch):
        time.sleep(0.25)  # gives the parent time to kill us mid-run; does not change any number
        return super()._train_epoch(epoch)

s = _data()
SlowIRGAN(**RESUME).fit(s.train, s.valid, checkpoint_dir={ckpt!r}, checkpoint_every=1)
print("finished")
"""


def test_resume_after_sigkill_is_bit_identical(split: Split, tmp_path: Path) -> None:
    reference = IRGAN(**RESUME).fit(split.train, split.valid)
    ckpt = tmp_path / "ckpt"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD.format(tests=str(ROOT / "tests"), ckpt=str(ckpt))))
    run_and_sigkill(script, ckpt, timeout=90, max_delay=0.5)
    done = CheckpointStore(ckpt).epochs()[0][0]
    assert 1 <= done < RESUME["epochs"]
    resumed = IRGAN(**RESUME).fit(
        split.train, split.valid, checkpoint_dir=ckpt, checkpoint_every=1, resume=ckpt
    )
    assert resumed.fit_result_.resumed_from is not None and resumed.fit_result_.resumed_from >= done
    assert _same(_weights(resumed), _weights(reference))
    assert _no_seconds(resumed.history_) == _no_seconds(reference.history_)
    # The pre-training was not rerun: what it chose travels in the checkpoint.
    assert (
        resumed.refit_params() == reference.refit_params() and resumed.start_valid_ == reference.start_valid_
    )


class _CpuBF16(IRGAN):
    """IRGAN with bf16 allowed on the CPU (CPU autocast), to exercise that path where no GPU is present."""

    bf16_devices = ("cuda", "cpu")


@pytest.mark.parametrize("scorer", ["mf", "mlp"])
def test_bf16_rounds_train_with_fp32_state_close_to_fp32(split: Split, scorer: str) -> None:
    """Under bf16 autocast the rounds train (same pre-trained start, different bits, similar losses);
    weights stay fp32, and scoring is fp32."""
    kw = {**FAST, "scorer": scorer, "epochs": 2}
    low, ref = _CpuBF16(**kw, precision="bf16").fit(split.train), IRGAN(**kw).fit(split.train)
    assert all(v.dtype == torch.float32 for v in _weights(low).values())
    assert not _same(_weights(low), _weights(ref))
    for a, b in zip(low.history_, ref.history_, strict=True):
        assert np.isfinite(a["d_loss"]) and abs(a["d_loss"] - b["d_loss"]) <= 0.05 * abs(b["d_loss"])
    assert low.score(np.arange(3)).dtype == np.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_bf16_runs_on_cuda(split: Split) -> None:
    model = IRGAN(**{**FAST, "device": "cuda", "epochs": 2, "precision": "bf16"}).fit(split.train, split.valid)
    assert model.modules_["generator"].user.weight.dtype == torch.float32
    assert all(np.isfinite(row["d_loss"]) for row in model.history_)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_runs_on_cuda(split: Split) -> None:
    model = IRGAN(**{**FAST, "device": "cuda", "epochs": 2}).fit(split.train, split.valid)
    assert model.device_.type == "cuda" and model.modules_["generator"].user.weight.is_cuda
    assert _ndcg(model, split) > 0
