"""Synthetic-data generators, fidelity and privacy measures, and the ``synthesize`` command."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import scipy.sparse as sp

from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError, MissingInputError, NotFittedError
from gan4rec.synth import command, fidelity, privacy
from gan4rec.synth.experiment import evaluate_generator, prepare, summarize, user_split
from gan4rec.synth.generators import GENERATORS, create_generator, rows_of, sample_without_replacement

FAST = {"gan": {"steps": 3, "hidden": 16, "noise": 4, "batch_size": 16}, "lowrank": {"epochs": 2, "hidden": 16, "latent": 4}}


@pytest.fixture(scope="module")
def data():
    return make_synthetic(400, 120, 8000, random_state=3)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generator_contract(data, name):
    """Same item map, fresh synthetic ids, the asked number of users, bit-identical under one seed."""
    gen = create_generator(name, FAST.get(name), random_state=0)
    with pytest.raises(NotFittedError):
        gen.sample(3)
    gen.fit(data)
    a, b = gen.sample(50, random_state=5), gen.sample(50, random_state=5)
    assert a.n_users == 50 and a.item_map is data.item_map
    assert a.user_map.ids[0] == "synth-0"
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    again = create_generator(name, FAST.get(name), random_state=0).fit(data).sample(50, random_state=5)
    assert np.array_equal(a.indices, again.indices)


@pytest.mark.parametrize("name", ["gan", "lowrank"])
def test_bootstrapped_degrees_come_from_training_degrees(data, name):
    gen = create_generator(name, FAST.get(name), random_state=0).fit(data)
    synth = gen.sample(200, random_state=1)
    assert set(synth.user_counts().tolist()) <= set(data.user_counts().tolist())


def test_gumbel_top_k_draws_distinct_items_and_never_zero_weight():
    """Three of a row whose first weight is zero are the other three; a full row is every item."""
    rng = np.random.default_rng(0)
    with np.errstate(divide="ignore"):
        logw = np.log(np.array([[0.0, 1.0, 1.0, 5.0], [1.0, 1.0, 1.0, 1.0]]))
    rows = sample_without_replacement(logw, np.array([3, 4]), rng)
    assert rows[0].tolist() == [1, 2, 3] and rows[1].tolist() == [0, 1, 2, 3]


def test_randomized_response_rejects_bad_epsilon_and_flips_at_the_stated_rate(data):
    with pytest.raises(DataError, match="epsilon"):
        create_generator("randomized_response", {"epsilon": 0}).fit(data)
    gen = create_generator("randomized_response", {"epsilon": 2.0}, random_state=0).fit(data)
    synth = gen.sample(data.n_users, random_state=1)
    assert gen.epsilon_effective_ == 2.0  # every row released once
    # Rows come out in a permuted order; the share of flipped cells is the same either way.
    flipped = abs(synth.nnz - data.nnz) + 0.0
    q = 1 / (1 + np.exp(2.0))
    expected = q * (data.n_users * data.n_items - data.nnz) - q * data.nnz
    assert abs(flipped - expected) < 0.1 * expected


def test_unknown_generator_and_bad_params_are_one_line_errors():
    with pytest.raises(DataError, match="unknown generator 'nope'; known generators: gan"):
        create_generator("nope")
    with pytest.raises(DataError, match="bad parameters"):
        create_generator("bernoulli", {"steps": 3})


def test_distance_features_by_hand():
    """Jaccard: {0,1} vs {0,1} -> 0; {0,1} vs {1,2} -> 1 - 1/3; {2} vs {1,2} -> 1/2."""
    synth = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    q = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32))
    f = privacy.distance_features(q, synth)
    assert f[0, 0] == pytest.approx(0.0) and f[0, 1] == pytest.approx(2 / 3)
    assert f[1, 0] == pytest.approx(0.5) and f[1, 1] == pytest.approx(1.0)
    assert f[1, 3] == pytest.approx(np.log(2))
    assert privacy.exact_copy_rate(q, synth) == 0.5


def test_marginals_and_cooccurrence_of_identical_data_are_perfect(data):
    m = fidelity.marginals(data, data)
    assert m["item_popularity"]["ks"] == 0 and m["user_activity"]["wasserstein"] == 0
    assert fidelity.cooccurrence(data, data, top_n=20)["correlation"] == pytest.approx(1.0)


def test_user_split_is_disjoint_and_fixed_by_its_seed(data):
    s = user_split(data, 4)
    allu = np.concatenate(list(s.values()))
    assert len(np.unique(allu)) == len(allu) == data.n_users
    assert np.array_equal(user_split(data, 4)["members"], s["members"])
    assert len(s["members"]) == 200 and len(s["nonmembers"]) == 100


@pytest.fixture(scope="module")
def ctx(data):
    return prepare(data, 0, models=("ease", "itemknn", "toppop"))


def test_known_case_real_release_is_fully_exposed(ctx):
    """Releasing the training rows as they are: MIA AUC near 1, every synthetic user an exact copy."""
    _, r = evaluate_generator(ctx, "real", shadow=True)
    assert r["exact_copy_rate"] == 1.0
    assert r["mia_auc"] > 0.95 and r["mia_auc_shadow"] > 0.95
    assert r["tstr_ratio"] == pytest.approx(1.0)
    assert r["dcr_members_median"] == 0.0


def test_known_case_independent_bernoulli_cannot_be_told_apart(ctx):
    """Independent cells remember nobody: MIA AUC near 0.5 and no exact copies."""
    _, r = evaluate_generator(ctx, "bernoulli", shadow=True)
    assert abs(r["mia_auc"] - 0.5) < 0.1 and abs(r["mia_auc_shadow"] - 0.5) < 0.12
    assert r["exact_copy_rate"] == 0.0


def test_summary_uses_sample_std():
    runs = [{"label": "g", "seed": s, "mia_auc": v} for s, v in enumerate([0.5, 0.6, 0.7])]
    s = summarize(runs)["g"]["mia_auc"]
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1)


def test_attribute_inference_with_conditioned_gan(data):
    rng = np.random.default_rng(0)
    gender = np.where(rng.random(data.n_users) < 0.5, "F", "M").astype(object)
    from gan4rec.data.interactions import Interactions

    d = Interactions(data.indptr, data.indices, data.user_map, data.item_map, user_features={"gender": gender})
    gen = create_generator("gan", {**FAST["gan"], "condition": ["gender"]}, random_state=0).fit(d)
    synth = gen.sample(80, random_state=1)
    assert set(synth.user_features["gender"].tolist()) <= {"F", "M"}
    out = privacy.attribute_inference(synth, rows_of(d, np.arange(100)))
    assert out is not None and 0.0 <= out["auc_items"] <= 1.0
    with pytest.raises(DataError, match="condition feature 'age'"):
        create_generator("gan", {**FAST["gan"], "condition": ["age"]}).fit(data)


# ------------------------------------------------------------------------------------------ command
def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    command.add_arguments(p)
    return p.parse_args(list(argv))


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory, data):
    from gan4rec.data.io import write_interactions

    path = tmp_path_factory.mktemp("d") / "x.csv"
    write_interactions(data, path)
    return path


@pytest.mark.parametrize("argv, message", [
    ((), "exactly one of --dataset"),
    (("--data", "x.csv", "--dataset", "ml-100k", "--out", "s.parquet"), "exactly one of --dataset"),
    (("--data", "x.csv", "--out", "s.txt"), "expected a file ending in .parquet"),
    (("--data", "x.csv"), "nothing to write"),
    (("--data", "x.csv", "--out", "s.parquet", "--users", "0"), "--users 0"),
    (("--data", "x.csv", "--compare"), "--compare needs --report"),
    (("--data", "x.csv", "--out", "s.parquet", "--params", "{bad"), "--params: not valid JSON"),
    (("--data", "x.csv", "--out", "/no/such/dir/s.parquet"), "does not exist"),
])
def test_command_usage_errors(argv, message, capsys):
    assert command.run(_args(*argv)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_command_missing_file_is_missing_input(tmp_path):
    with pytest.raises(MissingInputError):
        command.run(_args("--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "s.parquet")))
    assert not (tmp_path / "s.parquet").exists()


def test_command_writes_raw_ids_and_a_report(csv_file, tmp_path):
    import polars as pl

    out, rep = tmp_path / "s.parquet", tmp_path / "rep"
    rc = command.run(_args("--data", str(csv_file), "--generator", "bernoulli", "--users", "60",
                           "--out", str(out), "--report", str(rep), "--no-shadow"))
    assert rc == 0
    df = pl.read_parquet(out)
    assert df["user"].n_unique() <= 60 and df["user"][0].startswith("synth-")
    raw_items = set(pl.read_csv(csv_file)["item"].to_list())
    assert set(df["item"].to_list()) <= raw_items
    metrics = json.loads((rep / "metrics.json").read_text())
    for key in ("mia_auc", "tstr_ratio", "kendall_tau", "exact_copy_rate", "marginals", "tstr_ratio_by_model"):
        assert key in metrics
    page = (rep / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "<script" not in page
    assert sorted(p.name for p in rep.iterdir()) == ["metrics.json", "report.html"]


def test_gradient_penalty_of_a_linear_critic_is_its_norm_gap_squared():
    """D(x) = w.x has gradient w everywhere: penalty (|w| - 1)^2, 0 for a unit w and 1 for |w| = 2."""
    import torch

    from gan4rec.synth.gan import _Critic, _gradient_penalty

    critic = _Critic(3, 4)
    critic.net = torch.nn.Linear(3, 1, bias=False)
    real, fake, gen = torch.rand(5, 3), torch.rand(5, 3), torch.Generator().manual_seed(0)
    for norm, expected in ((1.0, 0.0), (2.0, 1.0)):
        with torch.no_grad():
            critic.net.weight.copy_(torch.tensor([[0.6, 0.8, 0.0]]) * norm)
        assert _gradient_penalty(critic, real, fake, gen).item() == pytest.approx(expected, abs=1e-6)


def test_cli_synthesize_exit_codes(tmp_path, capsys):
    from gan4rec.cli import main

    assert main(["synthesize", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "s.parquet")]) == 66
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\n1\n")
    assert main(["synthesize", "--data", str(bad), "--out", str(tmp_path / "s.parquet")]) == 65
    assert main(["synthesize", "--data", str(bad)]) == 2
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.slow
def test_cli_synthesize_ml100k_acceptance(ml100k_dir, tmp_path, monkeypatch):
    """The issue's command on the local ML-100K copy (fewer GAN steps): raw item ids, report and JSON keys."""
    import polars as pl

    from gan4rec.cli import main

    monkeypatch.setenv("GAN4REC_DATA", str(ml100k_dir.parent))
    monkeypatch.setenv("GAN4REC_OFFLINE", "1")
    out, rep = tmp_path / "s.parquet", tmp_path / "DIR"
    assert main(["synthesize", "--dataset", "ml-100k", "--users", "500", "--out", str(out), "--report", str(rep),
                 "--seed", "0", "--params", '{"steps": 20}']) == 0
    df = pl.read_parquet(out)
    raw = {int(line.split("\t")[1]) for line in (ml100k_dir / "u.data").read_text().splitlines()}
    assert df["user"].n_unique() <= 500 and set(df["item"].to_list()) <= raw
    metrics = json.loads((rep / "metrics.json").read_text())
    assert {"mia_auc", "tstr_ratio", "exact_copy_rate", "kendall_tau"} <= set(metrics)
    assert (rep / "report.html").stat().st_size > 10_000


def test_compare_over_seeds_summarises_and_tests_the_target(data):
    from gan4rec.synth.experiment import compare

    gens = (("gan", "bernoulli", {}), ("real", "real", {}))  # "gan" is only a label here
    res = compare(data, [0, 1], generators=gens, shadow=False)
    assert [r["label"] for r in res["runs"]] == ["gan", "real", "gan", "real"]
    assert [s["seed"] for s in res["splits"]] == [0, 1]
    assert res["summary"]["real"]["exact_copy_rate"]["values"] == [1.0, 1.0]
    versus = res["target"]["versus"]["real"]
    assert versus["matched_privacy"] is False and "p_one_sided" not in versus


def test_synthesize_usage_error_needs_no_torch():
    """Parsing `synthesize` (and refusing a bad flag) imports no torch, like every other command."""
    import subprocess
    import sys

    code = ("import sys; from gan4rec.cli import main; rc = main(['synthesize', '--data', 'x.csv']); "
            "sys.exit(rc if 'torch' not in sys.modules else 99)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
