"""Exit codes of the gan4rec command, one table: 2 bad flag or value, 65 bad data or artifact, 66 missing input.

Each row is a command line (``{model}``, ``{tmp}`` and the other braces are filled in per test), the exit
code the README promises, and a phrase the one-line error must contain.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_evaluate import rewrite_meta

from gan4rec.cli import main

ROWS = "user,item,rating\n" + "".join(f"{u},{i},{1 + (u * 7 + i) % 5}\n"
                                      for u in range(30) for i in range(40) if (u * 3 + i * 5) % 7 < 3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny CSV, an itemknn model trained on it (``--save``), and its train result."""
    root = tmp_path_factory.mktemp("cli-codes")
    data = root / "ratings.csv"
    data.write_text(ROWS)
    assert main(["-q", "train", "--model", "itemknn", "--data", str(data), "--save", str(root / "model"),
                 "--json", str(root / "train.json")]) == 0
    return {"root": root, "data": data, "model": root / "model", "result": root / "train.json"}


def _version(model: Path) -> Path:
    return model / (model / "CURRENT").read_text().strip()


def _copy_model(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# (command line, exit code, phrase in the error)
CASES = [
    # 2: a bad flag or value, caught at parse time (before any model is loaded: MODEL_DIR may not exist)
    ("train --no-such-flag", 2, "unrecognized arguments"),
    ("train --model nosuch", 2, "unknown model 'nosuch'"),
    ("tune --model nosuch --trials 1", 2, "unknown model 'nosuch'"),
    ("train --ks -5", 2, "--ks"),
    ("train --ks 5,x", 2, "--ks"),
    ("train --ks 0,10", 2, "--ks"),
    ("train --params {bad", 2, "--params: invalid JSON"),
    ("train --params [1]", 2, "--params: expected a JSON object"),
    ('train --model ease --params {"nosuch":1}', 2, "--params: model 'ease' has no parameter 'nosuch'"),
    ("train --split bogus", 2, "--split"),
    ("train --valid-frac 1.5", 2, "--valid-frac"),
    ("train --valid-frac nan", 2, "--valid-frac"),
    ("train --test-frac 0", 2, "--test-frac"),
    ("train --leave-k 0", 2, "--leave-k"),
    ("train --seed -1", 2, "--seed"),
    ("train --split-seed x", 2, "--split-seed"),
    ("train --min-user-interactions -2", 2, "--min-user-interactions"),
    ("train --columns user", 2, "--columns"),
    ("train --data {data} --dataset ml-100k", 2, "give one data source"),
    ("train --train {data}", 2, "--train and --test go together"),
    ("tune --trials 0", 2, "--trials"),
    ("tune --model ease --trials 1 --seeds 0", 2, "--seeds"),
    ("compare --models toppop --seeds 0", 2, "--seeds"),
    ("compare --models toppop --seeds 0,x", 2, "--seeds must be a count >= 1 or a comma list of seeds >= 0"),
    ("compare --models toppop --seeds 1,-2", 2, "--seeds must be a count >= 1 or a comma list of seeds >= 0"),
    ("compare --models toppop --seeds 1,,2", 2, "--seeds must be a count >= 1 or a comma list of seeds >= 0"),
    ("compare --models toppop --seeds 2,2", 2, "--seeds must list each seed once"),
    ("compare --models toppop,toppop", 2, "lists a model twice"),
    ("compare --models toppop --timeout -1", 2, "--timeout"),
    ("demo --users 0", 2, "--users"),
    ("recommend {absent} -k -3 --out {tmp}/r.csv", 2, "-k"),
    ("recommend {absent} --batch-size 0 --out {tmp}/r.csv", 2, "--batch-size"),
    ("recommend {model} --out {tmp}/r.txt", 2, "--out"),
    ("explain {absent} --user 1 --item 1 --top 0", 2, "--top"),
    ("serve {absent} --port 70000", 2, "--port"),
    ("serve {absent} --workers 0", 2, "--workers"),
    ("recommend {model} --new-items {badnewitems} --out {tmp}/r.csv", 2,
     "--new-items: model 'itemknn' cannot score new items"),
    ("data", 2, "expected a subcommand"),
    ("train --json {tmp}", 2, "--json must name a file"),
    ("train --save {data}", 2, "--save must name a new directory or a saved model"),
    ("train --save {tmp}", 2, "is not a gan4rec artifact"),
    ("tune --trials 1 --save-config {tmp}", 2, "--save-config must name a file"),
    ("recommend {absent} --out {tmp}", 2, "--out must name a file"),
    ("data fetch nosuch", 2, "NAME must be a known dataset"),
    ("train --dataset nosuch", 2, "--dataset must be a known dataset"),
    ("train --device tpu9", 2, "--device must be cpu, cuda or cuda:N"),
    ("tune --model ease --trials 1 --metric NDCG", 2, "--metric must look like NDCG@20"),
    ("compare --models toppop --metric NDCG@0", 2, "--metric must look like NDCG@20"),
    ("evaluate {model} --device gpu", 2, "--device"),
    ("evaluate {bare}", 2, "records no data source"),
    ("train --item-features-text abstract", 2, "--item-features-text needs --item-features FILE"),
    ("train --item-features {data} --max-features 5", 2, "--max-features applies to a text column"),
    ("train --max-features 0", 2, "--max-features"),
    ("train --min-df 1.5", 2, "--min-df must be a document count >= 1 or a share in (0, 1)"),
    # 65: bad data or a bad artifact
    ("train --data {badrow}", 65, "badrow.csv:3"),
    ("train --config {badparams}", 65, "badparams.toml: [params]: model 'ease' has no parameter 'lamda'"),
    ("train --config {badmodel}", 65, "badmodel.toml: unknown model 'nosuch'"),
    ("train --config {badproto}", 65, "unknown protocol key 'valid_fraction'"),
    ("info {corrupt}", 65, "sha256 does not match"),
    ("evaluate {corrupt}", 65, "sha256 does not match"),
    ("recommend {corrupt} --out {tmp}/r.csv", 65, "sha256 does not match"),
    ("explain {model} --user 99999 --item 1", 65, "unknown user"),
    ("recommend {model} --users {badusers} --out {tmp}/r.csv", 65, "badusers.txt:1: unknown user"),
    ("evaluate {model} --data {data} --split-seed 7", 65, "do not reproduce the split"),
    ("train --data {data} --item-features {badfeatunknown}", 65, "badfeatunknown.csv:2: unknown item id 'x'"),
    ("train --data {data} --item-features {badfeatvalue}", 65, "badfeatvalue.csv:3: value 'many' is not a finite"),
    ("train --data {data} --item-features {badfeattext} --item-features-text abstract", 65,
     "badfeattext.csv:3: the abstract is empty"),
    ("train --data {data} --item-features {badfeattwice} --item-features-text abstract", 65,
     "badfeattwice.csv:3: item '1' has a second text"),
    ("train --data {data} --item-features {badfeattext} --item-features-text nosuch", 65, "no column 'nosuch'"),
    ("train --config {badfeatcfg}", 65, "data.max_features = 0"),
    # 66: missing input
    ("train --data {tmp}/absent.csv", 66, "absent.csv"),
    ("train --config {tmp}/absent.toml", 66, "absent.toml"),
    ("evaluate {absent}", 66, "no such model artifact"),
    ("info {absent}", 66, "no such model artifact"),
    ("recommend {model} --users {tmp}/absent.txt --out {tmp}/r.csv", 66, "no such users file"),
    ("explain {model} --user 1 --item 1 --items-file {tmp}/absent.csv", 66, "no such items file"),
    ("recommend {model} --new-items {tmp}/absent.csv --out {tmp}/r.csv", 66, "no such new-items file"),
    ("serve {model} --new-items {tmp}/absent.csv", 66, "no such new-items file"),
    ("explain {model} --user 1 --item 1 --new-item-features {tmp}/absent.csv", 66, "no such features file"),
    ("evaluate {moved}", 66, "pass --data FILE"),
    ("train --data {data} --item-features {tmp}/absent-features.csv", 66, "absent-features.csv"),
]


@pytest.fixture(scope="module")
def files(saved: dict[str, Path]) -> dict[str, str]:
    """The files the table's braces name."""
    root = saved["root"] / "inputs"
    root.mkdir()
    (root / "badrow.csv").write_text("user,item,rating\n1,1,4\n1,2,nan\n")
    (root / "badparams.toml").write_text('model = "ease"\n[params]\nlamda = 5\n')
    (root / "badmodel.toml").write_text('model = "nosuch"\n')
    (root / "badproto.toml").write_text('model = "toppop"\n[protocol]\nvalid_fraction = 0.1\n')
    (root / "badusers.txt").write_text("no-such-user\n")
    (root / "badnewitems.csv").write_text("item,feature\n9999,0\n")
    (root / "badfeatunknown.csv").write_text("item,feature\nx,a\ny,b\n")
    (root / "badfeatvalue.csv").write_text("item,feature,value\n1,a,1\n2,b,many\n")
    (root / "badfeattext.csv").write_text("item,abstract\n1,some words\n2,\n")
    (root / "badfeattwice.csv").write_text("item,abstract\n1,some words\n1,other words\n")
    (root / "badfeatcfg.toml").write_text('model = "toppop"\n[data]\nitem_features = "f.csv"\n'
                                          'item_features_text = "t"\nmax_features = 0\n')
    corrupt = _copy_model(saved["model"], root / "corrupt")
    (_version(corrupt) / "tensors.safetensors").write_bytes(b"\0" * 64)
    bare = _copy_model(saved["model"], root / "bare")
    rewrite_meta(bare, data=None, data_spec=None)
    moved = _copy_model(saved["model"], root / "moved")
    rewrite_meta(moved, data={"file": str(root / "gone.csv"), "format": "csv"},
                 data_spec={"data": str(root / "gone.csv"), "format": "csv"})
    return {"tmp": str(root), "data": str(saved["data"]), "model": str(saved["model"]),
            "absent": str(root / "absent-model"), "corrupt": str(corrupt), "bare": str(bare),
            "moved": str(moved), **{f.stem: str(f) for f in root.glob("bad*")}}


@pytest.mark.parametrize(("line", "code", "phrase"), CASES, ids=[c[0] for c in CASES])
def test_exit_code(line: str, code: int, phrase: str, files: dict[str, str],
                   capsys: pytest.CaptureFixture[str]) -> None:
    argv = line.split(" ")
    for key, value in files.items():
        argv = [part.replace("{" + key + "}", value) for part in argv]
    got = main(["-q", *argv])
    err = capsys.readouterr().err
    assert got == code, err
    assert phrase in err, err
    assert err.strip().count("\n") == 0, f"one line, no usage, no traceback: {err!r}"


def test_debug_shows_the_traceback_and_keeps_the_code(files: dict[str, str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "train", "--data", f"{files['tmp']}/absent.csv"]) == 66
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("gan4rec: error:")
    assert main(["--debug", "train", "--config", files["badparams"]]) == 65
    assert "Traceback" in capsys.readouterr().err


def test_cli_message_is_printed_instead_of_the_message(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A DataError's ``cli_message`` (the message in the CLI's words) replaces ``str(e)``."""
    from gan4rec.errors import DataError

    def fail(*args: object, **kwargs: object) -> None:
        e = DataError("library words")
        e.cli_message = "command-line words"  # type: ignore[attr-defined]
        raise e

    monkeypatch.setattr("gan4rec.experiment.run", fail)
    assert main(["train"]) == 65
    err = capsys.readouterr().err
    assert "command-line words" in err and "library words" not in err


def test_a_bad_flag_value_fails_before_the_heavy_imports(tmp_path: Path) -> None:
    """`recommend -k -3` answers at parse time: no model load, no torch import."""
    import subprocess
    import sys

    code = ("import sys; from gan4rec.cli import main; "
            f"rc = main(['recommend', {str(tmp_path / 'absent')!r}, '-k', '-3', '--out', 'r.csv']); "
            "sys.exit(rc if 'torch' not in sys.modules else 99)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "-k must be >= 1, got '-3'" in proc.stderr


def test_serve_connection_flags_reach_run_server(monkeypatch) -> None:
    """The serve flags for the connection bounds are passed on to run_server (0 concurrency: no cap)."""
    from gan4rec.cli import main
    from gan4rec.serve import app

    seen: dict = {}
    monkeypatch.setattr(app, "run_server", lambda model_dir, **kw: seen.update(kw))
    assert main(["serve", "m", "--keep-alive-timeout", "2", "--head-timeout", "3", "--body-timeout", "4",
                 "--limit-concurrency", "0"]) == 0
    assert (seen["keep_alive_timeout"], seen["head_timeout"], seen["body_timeout"]) == (2.0, 3.0, 4.0)
    assert seen["limit_concurrency"] is None
    assert main(["serve", "m", "--head-timeout", "0"]) == 2
