"""The shared training loop: early stopping, checkpoints and resume (also after SIGKILL), threads, seeding."""

from __future__ import annotations

import logging
import math
import re
import textwrap
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from sigkill import run_and_sigkill
from torch import nn

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.baselines.bpr import BPR
from gan4rec.train.checkpoint import CheckpointStore, pack_training_state, unpack_training_state
from gan4rec.train.loop import fit_loop, parse_metric, torch_threads
from gan4rec.train.seeding import dropout, get_rng_state, make_rngs, seeded_init, set_rng_state

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ a toy model
def _one_user() -> tuple[Interactions, Interactions]:
    """One user, five items: item 4 is in train (never ranked), item 0 is the validation item."""
    users, items = IdMap(np.arange(1)), IdMap(np.arange(5))
    train = Interactions.from_indices(np.array([0]), np.array([4]), users, items)
    valid = Interactions.from_indices(np.array([0]), np.array([0]), users, items)
    return train, valid


class _Scripted:
    """A trainable whose epoch ``e`` puts the validation item at rank ``RANKS[e]`` among items 0-3.

    NDCG@20 with one relevant item at rank r is 1 / log2(r + 1), so the validation curve is known exactly.
    """

    RANKS: ClassVar[dict[int, int]] = {1: 3, 2: 1, 3: 2, 4: 4, 5: 4, 6: 1}

    def __init__(self) -> None:
        self.scores = nn.Module()
        self.scores.w = nn.Parameter(torch.zeros(5))
        self.threads_seen: list[int] = []

    def weights_for(self, epoch: int) -> torch.Tensor:
        rank = self.RANKS[epoch]
        w = torch.tensor([0.0, 3.0, 2.0, 1.0, 9.0])  # items 1-3 ranked 1st-3rd, item 4 masked as train
        w[0] = 4.5 - rank  # 3.5 tops item 1 (3.0); 2.5 falls between items 1 and 2; ...
        return w

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.threads_seen.append(torch.get_num_threads())
        with torch.no_grad():
            self.scores.w.copy_(self.weights_for(epoch))
        return {"loss": float(10 - epoch)}

    def valid_score(self, users: np.ndarray) -> torch.Tensor:
        return self.scores.w.detach().expand(len(users), 5)

    def modules(self) -> dict[str, nn.Module]:
        return {"scores": self.scores}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def rngs(self) -> dict[str, np.random.Generator | torch.Generator]:
        return {}


def _ndcg(rank: int) -> float:
    return 1.0 / math.log2(rank + 1)


def test_early_stopping_restores_the_best_epoch() -> None:
    train, valid = _one_user()
    model = _Scripted()
    res = fit_loop(model, train=train, valid=valid, epochs=6, patience=2, device="cpu")
    # Validation: epoch 1 rank 3, epoch 2 rank 1 (best), 3 and 4 worse: two misses, stop after epoch 4.
    assert [row["epoch"] for row in res.history] == [1, 2, 3, 4]
    expected = [_ndcg(3), _ndcg(1), _ndcg(2), _ndcg(4)]
    np.testing.assert_allclose([row["valid_NDCG@20"] for row in res.history], expected, rtol=1e-12)
    assert [row["loss"] for row in res.history] == [9.0, 8.0, 7.0, 6.0]
    assert res.best_epoch == 2 and res.best_value == pytest.approx(1.0) and res.stopped_early
    assert torch.equal(model.scores.w.detach(), model.weights_for(2))


def test_eval_every_validates_on_schedule_and_after_the_last_epoch() -> None:
    train, valid = _one_user()
    model = _Scripted()
    res = fit_loop(model, train=train, valid=valid, epochs=5, eval_every=2, device="cpu")
    evaluated = [row["epoch"] for row in res.history if "valid_NDCG@20" in row]
    assert evaluated == [2, 4, 5]
    assert res.best_epoch == 2 and not res.stopped_early
    assert torch.equal(model.scores.w.detach(), model.weights_for(2))


def test_without_validation_all_epochs_run_and_last_weights_stay() -> None:
    train, _ = _one_user()
    model = _Scripted()
    res = fit_loop(model, train=train, valid=None, epochs=3, patience=1, device="cpu")
    assert len(res.history) == 3 and res.best_epoch is None and math.isnan(res.best_value)
    assert all("valid_NDCG@20" not in row for row in res.history)
    assert torch.equal(model.scores.w.detach(), model.weights_for(3))


def test_a_non_finite_loss_stops_and_keeps_the_best_weights(caplog) -> None:
    class Diverging(_Scripted):
        def train_epoch(self, epoch: int) -> dict[str, float]:
            out = super().train_epoch(epoch)
            if epoch == 3:
                self.scores.w.data.fill_(float("nan"))
                out["loss"] = float("nan")
            return out

    train, valid = _one_user()
    model = Diverging()
    caplog.set_level(logging.WARNING, logger="gan4rec.train")
    res = fit_loop(model, train=train, valid=valid, epochs=6, device="cpu")
    assert "loss became non-finite at epoch 3" in caplog.text
    assert len(res.history) == 3 and res.stopped_early and res.best_epoch == 2
    assert torch.equal(model.scores.w.detach(), model.weights_for(2))


def test_a_long_fit_logs_an_estimate_after_its_first_epoch(caplog, monkeypatch) -> None:
    from gan4rec.train import loop

    monkeypatch.setattr(loop, "ESTIMATE_MIN_SECONDS", 0.0)  # every fit counts as long
    train, valid = _one_user()
    caplog.set_level(logging.INFO, logger="gan4rec.train")
    fit_loop(_Scripted(), train=train, valid=valid, epochs=6, patience=2, device="cpu", desc="toy")
    lines = [r.getMessage() for r in caplog.records if "estimate" in r.getMessage()]
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"toy: about 6 epochs x \d+\.\d s/epoch = .+ \(estimate; early stopping may end sooner\)", lines[0]
    )
    # It comes right after the first epoch's line.
    messages = [r.getMessage() for r in caplog.records]
    assert messages[messages.index(lines[0]) - 1].startswith("toy: epoch 1/6")


def test_a_short_fit_logs_no_estimate(caplog) -> None:
    train, _ = _one_user()
    caplog.set_level(logging.INFO, logger="gan4rec.train")
    fit_loop(_Scripted(), train=train, epochs=3, device="cpu", desc="toy")
    assert "estimate" not in caplog.text
    assert "toy: epoch 3/3" in caplog.text


def test_long_epochs_announce_themselves(caplog, monkeypatch) -> None:
    import gan4rec._progress as progress_mod

    monkeypatch.setattr(progress_mod, "LONG_STEP_SECONDS", 0.0)
    train, _ = _one_user()
    caplog.set_level(logging.INFO, logger="gan4rec.train")
    fit_loop(_Scripted(), train=train, epochs=2, device="cpu", desc="toy")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:2] == ["toy: epoch 1/2: started", messages[1]] and messages[1].startswith("toy: epoch 1/2 ")
    assert "toy: epoch 2/2: started" in messages


def test_threads_are_set_and_restored() -> None:
    train, valid = _one_user()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        model = _Scripted()
        fit_loop(model, train=train, valid=valid, epochs=2, device="cpu", n_threads=1)
        assert model.threads_seen == [1, 1]
        assert torch.get_num_threads() == 2
        model = _Scripted()
        fit_loop(model, train=train, valid=valid, epochs=1, device="cpu", n_threads=None)
        assert model.threads_seen == [2]
        with pytest.raises(RuntimeError), torch_threads(1):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2, "restored on error too"
    finally:
        torch.set_num_threads(before)


def test_bad_loop_arguments() -> None:
    train, valid = _one_user()
    with pytest.raises(DataError, match="metric='NDCG20'"):
        fit_loop(_Scripted(), train=train, valid=valid, epochs=2, metric="NDCG20", device="cpu")
    with pytest.raises(DataError, match="epochs=0"):
        fit_loop(_Scripted(), train=train, valid=valid, epochs=0, device="cpu")
    with pytest.raises(DataError, match="checkpoint_dir"):
        fit_loop(_Scripted(), train=train, valid=valid, epochs=2, checkpoint_every=1, device="cpu")
    assert parse_metric("Recall@5") == ("Recall", 5)


# ------------------------------------------------------------------------------------------- seeding
def test_seeded_init_leaves_the_global_generator_alone() -> None:
    state = torch.random.get_rng_state()
    with seeded_init(7):
        a = nn.Linear(4, 3).weight.detach().clone()
    assert torch.equal(torch.random.get_rng_state(), state)
    with seeded_init(7):
        b = nn.Linear(4, 3).weight.detach().clone()
    with seeded_init(8):
        c = nn.Linear(4, 3).weight.detach().clone()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_make_rngs_and_dropout_are_reproducible() -> None:
    np1, g1, s1 = make_rngs(3)
    np2, g2, s2 = make_rngs(3)
    assert s1 == s2 and np1.integers(1 << 30) == np2.integers(1 << 30)
    x = torch.ones(200, 50)
    d1, d2 = dropout(x, 0.5, g1), dropout(x, 0.5, g2)
    assert torch.equal(d1, d2)
    assert set(torch.unique(d1).tolist()) == {0.0, 2.0}, "survivors are scaled by 1 / (1 - p)"
    assert 0.45 < float((d1 == 0).float().mean()) < 0.55
    assert torch.equal(dropout(x, 0.5, g1, training=False), x)
    assert make_rngs(4)[2] != s1
    with pytest.raises(DataError, match="random_state"):
        make_rngs(-1)  # type: ignore[arg-type]
    # A state round trip through get/set replays the same draws.
    state_np, state_t = get_rng_state(np1), get_rng_state(g1)
    a = (np1.random(3), torch.rand(3, generator=g1))
    set_rng_state(np1, state_np)
    set_rng_state(g1, state_t)
    b = (np1.random(3), torch.rand(3, generator=g1))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_pack_unpack_round_trips_adam_and_generators(tmp_path: Path) -> None:
    with seeded_init(0):
        net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.ones(4, 3)).sum().backward()
    opt.step()
    rng, gen = np.random.default_rng(5), torch.Generator().manual_seed(9)
    tensors, meta = pack_training_state({"net": net}, {"adam": opt}, {"np": rng, "t": gen})
    # The same through a save and load, which turns 0-d arrays (Adam's step) into 1-d ones.
    store = CheckpointStore(tmp_path / "ckpt")
    store.save(1, tensors, meta)
    ckpt = store.load_latest()
    assert ckpt is not None and ckpt.epoch == 1
    with seeded_init(1):
        net2 = nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.5)
    rng2, gen2 = np.random.default_rng(0), torch.Generator().manual_seed(0)
    unpack_training_state(ckpt.tensors, ckpt.meta, {"net": net2}, {"adam": opt2}, {"np": rng2, "t": gen2})
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s2["param_groups"][0]["lr"] == 0.1
    for pid in s1["state"]:
        for key, value in s1["state"][pid].items():
            assert torch.equal(value, s2["state"][pid][key]) and value.shape == s2["state"][pid][key].shape
    assert rng.random() == rng2.random() and torch.equal(
        torch.rand(2, generator=gen), torch.rand(2, generator=gen2)
    )


# ------------------------------------------------------------------------------------ checkpoints, resume
def _small_data() -> tuple[Interactions, Interactions]:
    """A small seeded dataset with a validation part (the same in the child process of the kill test)."""
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    users = np.repeat(np.arange(n_users), 12)
    items = (users % 4) * 10 + rng.integers(0, 10, len(users))  # four blocks of taste
    data = Interactions.from_indices(users, items, IdMap(np.arange(n_users)), IdMap(np.arange(n_items)))
    hold = rng.random(data.nnz) < 0.2
    return data.subset(~hold), data.subset(hold)


# A high learning rate without L2 overfits: validation peaks around epoch 4 of 10, so a resumed run must
# restore the best weights from the checkpoint, not just continue.
BPR_PARAMS = {
    "n_factors": 32,
    "lr": 0.1,
    "l2": 0.0,
    "epochs": 10,
    "batch_size": 64,
    "eval_every": 1,
    "patience": None,
    "device": "cpu",
    "random_state": 3,
}


def _weights(model: BPR) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.modules_["mf"].state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _no_seconds(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in history]


@pytest.fixture(scope="module")
def reference() -> BPR:
    """The uninterrupted run every resumed run must reproduce bit for bit."""
    train, valid = _small_data()
    model = BPR(**BPR_PARAMS).fit(train, valid)
    assert model.best_epoch_ is not None and model.best_epoch_ < 8, "the best epoch precedes the checkpoints"
    return model


def test_resume_after_a_corrupt_latest_checkpoint(reference: BPR, tmp_path: Path, caplog) -> None:
    train, valid = _small_data()
    ckpt = tmp_path / "ckpt"
    first = BPR(**BPR_PARAMS).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=3)
    assert _same(_weights(first), _weights(reference)), "checkpointing does not change the run"
    # Every 3 epochs plus the last; only the two newest are kept.
    assert [e for e, _ in CheckpointStore(ckpt).epochs()] == [10, 9]
    # Truncate the newest checkpoint's tensors: the resume must fall back to epoch 9 and say so.
    newest = ckpt / "epoch-000010"
    tensors = next(newest.glob("v*/tensors.safetensors"))
    tensors.write_bytes(tensors.read_bytes()[:100])
    caplog.set_level(logging.INFO, logger="gan4rec.train")
    resumed = BPR(**BPR_PARAMS).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=3, resume=ckpt)
    assert "falling back to the previous checkpoint epoch-000009" in caplog.text
    assert resumed.fit_result_.resumed_from == 9
    assert _same(_weights(resumed), _weights(reference))
    assert _no_seconds(resumed.history_) == _no_seconds(reference.history_)
    assert resumed.best_epoch_ == reference.best_epoch_


def test_multvae_resume_replays_dropout_noise_and_annealing(tmp_path: Path) -> None:
    from gan4rec.models.baselines.multvae import MultVAE

    train, valid = _small_data()
    params = {
        "hidden": 16,
        "latent": 4,
        "epochs": 6,
        "batch_size": 16,
        "total_anneal_steps": 20,
        "patience": None,
        "device": "cpu",
        "random_state": 0,
    }
    ref = MultVAE(**params).fit(train, valid)
    ckpt = tmp_path / "ckpt"
    MultVAE(**params).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=2)
    # As if the run had died during epoch 5: only the checkpoint of epoch 4 survives.
    store = CheckpointStore(ckpt)
    store.discard_after(4)
    assert store.epochs()[0][0] == 4
    resumed = MultVAE(**params).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=2, resume=ckpt)
    assert resumed.fit_result_.resumed_from == 4
    ref_w, res_w = ref.modules_["vae"].state_dict(), resumed.modules_["vae"].state_dict()
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)
    assert _no_seconds(resumed.history_) == _no_seconds(ref.history_)  # beta (annealing step) included


def test_resume_refuses_another_run_and_fresh_runs_refuse_a_used_folder(tmp_path: Path) -> None:
    train, valid = _small_data()
    ckpt = tmp_path / "ckpt"
    params = {**BPR_PARAMS, "epochs": 2}
    BPR(**params).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=1)
    with pytest.raises(DataError, match="another run .*trainable differs"):
        BPR(**{**params, "lr": 0.5}).fit(train, valid, resume=ckpt)
    with pytest.raises(DataError, match="already holds checkpoints"):
        BPR(**params).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=1)
    # An empty resume folder is a fresh start.
    fresh = BPR(**params).fit(train, valid, resume=tmp_path / "nothing-here")
    assert fresh.fit_result_.resumed_from is None and len(fresh.history_) == 2


_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from test_train_loop import BPR_PARAMS, _small_data
from gan4rec.models.baselines.bpr import BPR

class SlowBPR(BPR):
    def _train_epoch(self, epoch):
        time.sleep(0.25)  # gives the parent time to kill us mid-run; does not change any number
        return super()._train_epoch(epoch)

train, valid = _small_data()
SlowBPR(**BPR_PARAMS).fit(train, valid, checkpoint_dir={ckpt!r}, checkpoint_every=1)
print("finished")
"""


def test_resume_after_sigkill_is_bit_identical(reference: BPR, tmp_path: Path) -> None:
    train, valid = _small_data()
    ckpt = tmp_path / "ckpt"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD.format(tests=str(ROOT / "tests"), ckpt=str(ckpt))))
    run_and_sigkill(script, ckpt, timeout=60, max_delay=1.2)
    resumed = BPR(**BPR_PARAMS).fit(train, valid, checkpoint_dir=ckpt, checkpoint_every=1, resume=ckpt)
    assert resumed.fit_result_.resumed_from is not None and 1 <= resumed.fit_result_.resumed_from < 10
    assert _same(_weights(resumed), _weights(reference))
    assert _no_seconds(resumed.history_) == _no_seconds(reference.history_)
