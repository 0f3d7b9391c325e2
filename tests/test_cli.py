"""The gan4rec command end to end: acceptance runs, exit codes, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gan4rec.cli import main

SYNTH = ["--synthetic-size", "ml-100k"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_toppop_on_cfgan_split_matches_reference(cfgan_split, tmp_path, capsys) -> None:
    """Acceptance: the original CFGAN evaluation code gives TopPop NDCG@20 0.213 and P@20 0.156 here."""
    train, test = cfgan_split
    r = tmp_path / "r.json"
    code, out, err = _run(capsys, "train", "--model", "toppop", "--train", str(train), "--test", str(test),
                          "--format", "uir", "--json", str(r))
    assert code == 0, err
    assert "943 users, 1653 items, 80000 train" in out and "19963 test pairs" in out
    res = json.loads(r.read_text())
    d = res["dataset"]
    assert (d["n_users"], d["n_items"], d["n_train"], d["n_test"]) == (943, 1653, 80000, 19963)
    test_m = res["metrics"]["test"]
    assert abs(test_m["NDCG@20"] - 0.213) <= 0.002
    assert abs(test_m["Precision@20"] - 0.156) <= 0.002
    assert {"Recall@20", "MRR@20", "Precision@5"} <= set(test_m)
    assert res["metrics"]["valid"] is not None and "NDCG@20" in res["metrics"]["valid"]
    assert set(res) >= {"model", "dataset", "protocol", "seed", "params", "fit_seconds", "metrics"}
    assert res["protocol"]["valid_frac"] == 0.2 and res["protocol"]["split_seed"] == 42


def test_bad_row_exits_65_and_writes_nothing(tmp_path, capsys) -> None:
    """Acceptance: a CSV whose line 7 has rating nan exits 65 naming :7; no r.json, no model dir."""
    rows = ["user,item,rating"] + [f"{u},{i},4" for u in range(1, 3) for i in range(1, 3)]
    rows += ["3,1,5", "3,2,nan", "4,1,3"]
    assert rows[6] == "3,2,nan"  # physical line 7
    f = tmp_path / "ratings.csv"
    f.write_text("\n".join(rows) + "\n")
    code, _, err = _run(capsys, "train", "--data", str(f), "--json", str(tmp_path / "r.json"),
                        "--save", str(tmp_path / "m"))
    assert code == 65
    assert f"{f}:7" in err and err.count("\n") == 1, "one line, no traceback"
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "m").exists()


def test_exit_codes_for_usage_and_missing_input(tmp_path, capsys) -> None:
    assert main(["train", "--no-such-flag"]) == 2, "main returns argparse's code rather than raising"
    code, _, err = _run(capsys, "train", "--data", str(tmp_path / "absent.csv"))
    assert code == 66 and "absent.csv" in err
    code, _, err = _run(capsys, "train", "--model", "nope")
    assert code == 2 and "unknown model 'nope'" in err, "a bad flag value is a usage error"
    code, _, err = _run(capsys, "train", "--params", "[1]")
    assert code == 2 and "--params" in err


def test_data_info_offline_from_local_copy(shared_datasets, monkeypatch, capsys) -> None:
    """Acceptance: GAN4REC_DATA=../shared/datasets gan4rec data info ml-100k works with no network."""
    monkeypatch.setenv("GAN4REC_DATA", str(shared_datasets))
    monkeypatch.setenv("GAN4REC_OFFLINE", "1")
    code, out, err = _run(capsys, "data", "info", "ml-100k")
    assert code == 0, err
    info = json.loads(out)
    assert info["n_users"] == 943 and info["n_items"] == 1682 and info["n_interactions"] == 100000
    assert info["verified"] is True


def test_models_json_lists_registry(capsys) -> None:
    code, out, _ = _run(capsys, "models", "--json")
    assert code == 0
    reg = json.loads(out)
    assert reg["toppop"]["adversarial"] is False and "defaults" in reg["toppop"]


def test_train_save_info_evaluate_recommend_on_synthetic(tmp_path, capsys) -> None:
    pl = pytest.importorskip("polars")
    m, r = tmp_path / "m", tmp_path / "r.json"
    code, out, err = _run(capsys, "train", *SYNTH, "--save", str(m), "--json", str(r), "--ks", "10,20")
    assert code == 0, err
    res = json.loads(r.read_text())
    assert res["dataset"]["name"] == "synthetic" and res["metrics"]["test"]["NDCG@20"] > 0

    code, out, err = _run(capsys, "info", str(m))
    assert code == 0, err
    info = json.loads(out)
    assert info["model"] == "toppop" and info["format_version"] == 1
    assert info["split_fingerprint"] == res["dataset"]["split_fingerprint"]

    code, out, err = _run(capsys, "evaluate", str(m), "--json", str(tmp_path / "e.json"))
    assert code == 0, err
    again = json.loads((tmp_path / "e.json").read_text())["metrics"]["test"]
    assert again == res["metrics"]["test"], "evaluate re-creates the same split and the same numbers"

    code, out, err = _run(capsys, "recommend", str(m), "-k", "5", "--out", str(tmp_path / "recs.parquet"))
    assert code == 0, err
    recs = pl.read_parquet(tmp_path / "recs.parquet")
    assert recs.height == 5 * res["dataset"]["n_users"]
    assert set(recs.columns) >= {"user", "item", "rank", "score"}

    users = tmp_path / "users.txt"
    first = str(recs["user"][0])
    users.write_text(f"{first}\n")
    code, out, err = _run(capsys, "recommend", str(m), "--users", str(users), "-k", "3",
                          "--out", str(tmp_path / "recs.csv"))
    assert code == 0, err
    lines = (tmp_path / "recs.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[1].split(",")[0] == first
    users.write_text("no-such-user\n")
    code, _, err = _run(capsys, "recommend", str(m), "--users", str(users), "--out", str(tmp_path / "x.csv"))
    assert code == 65 and "users.txt:1" in err and not (tmp_path / "x.csv").exists()


def test_config_file_and_flag_override(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('model = "toppop"\n[protocol]\nvalid_frac = 0.0\nks = [5]\n[data]\ndataset = "synthetic"\n'
                   '[data.synthetic]\nsize = "ml-100k"\n')
    r = tmp_path / "r.json"
    code, _, err = _run(capsys, "train", "--config", str(cfg), "--json", str(r))
    assert code == 0, err
    res = json.loads(r.read_text())
    assert res["metrics"]["valid"] is None, "valid_frac = 0 fits on the whole train"
    assert set(res["metrics"]["test"]) >= {"NDCG@5"} and "NDCG@20" not in res["metrics"]["test"]
    code, _, err = _run(capsys, "train", "--config", str(cfg), "--ks", "20", "--json", str(r))
    assert code == 0 and "NDCG@20" in json.loads(r.read_text())["metrics"]["test"]
    cfg.write_text('model = "toppop"\n[protocol]\nvalid_fraction = 0.1\n')
    code, _, err = _run(capsys, "train", "--config", str(cfg))
    assert code == 65 and "unknown protocol key 'valid_fraction'" in err


def test_main_command_runs_as_a_process(tmp_path) -> None:
    """The README's main command, as a user types it (offline: it needs no network)."""
    env = {**os.environ, "GAN4REC_OFFLINE": "1", "GAN4REC_DATA": str(tmp_path / "empty-cache")}
    proc = subprocess.run([sys.executable, "-m", "gan4rec", "train"], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "test:" in proc.stdout and "NDCG" in proc.stdout
    assert not (tmp_path / "empty-cache").exists(), "the built-in dataset needs no download cache"


@pytest.mark.slow
def test_readme_main_command_demo_runs_offline(tmp_path) -> None:
    """`gan4rec demo`, the README's main command, as a process, offline, with its default size."""
    env = {**os.environ, "GAN4REC_OFFLINE": "1", "GAN4REC_DATA": str(tmp_path / "empty-cache")}
    proc = subprocess.run([sys.executable, "-m", "gan4rec", "demo", "--report", str(tmp_path / "demo")],
                          capture_output=True, text=True, env=env, timeout=600, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "leaderboard" in proc.stdout and (tmp_path / "demo" / "report.html").is_file()
