"""The HTML report: self-contained, deterministic figures, escaping, and a real browser's screenshot."""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan4rec.compare import compare
from gan4rec.config import load_experiment
from gan4rec.experiment import DataSpec, Protocol
from gan4rec.report import make_plots, render_html, write_report
from gan4rec.report.plots import gan_curves, training_curves

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result() -> dict:
    spec = DataSpec(dataset="synthetic", synthetic={"n_users": 100, "n_items": 120, "n_interactions": 2500})
    models = {"toppop": {}, "ease": {}, "bpr": {"epochs": 3, "eval_every": 1, "patience": None}}
    return compare(models, spec, Protocol(), seeds=1, trials=1, description="report <test> & friends")


@pytest.fixture(scope="module")
def report_dir(result: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report(result, out)
    return out


def _gan_result(result: dict) -> dict:
    """The result with BPR dressed up as an adversarial model that logged G/D diagnostics."""
    res = copy.deepcopy(result)
    entry = res["results"]["bpr"]
    entry["adversarial"] = True
    rows = []
    for e in range(1, 6):
        rows.append({"epoch": e, "g_loss": 1.0 / e, "d_loss": 0.5 + 0.1 * e, "d_real": 0.6 + 0.05 * e,
                     "d_fake": 0.4 - 0.05 * e, "valid_NDCG@20": 0.1 * e, "seconds": 0.1})
    entry["history"] = {"split": 0, "seed": 0, "fit": rows, "refit": rows[:5], "selection_key": "valid_NDCG@20",
                        "best_epoch": 5}
    for row in res["leaderboard"]:
        if row["model"] == "bpr":
            row["adversarial"] = True
    return res


def test_report_is_one_self_contained_file(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    for forbidden in ("http://", "https://", "file://", "<link", "<script", "@import", "url("):
        assert forbidden not in page, forbidden
    sources = re.findall(r"src='([^']*)'", page)
    assert len(sources) >= 4, "at least four figures"
    assert page.count("<img ") == len(sources)
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    for section in ("id='leaderboard'", "id='metric-bars'", "id='popularity'", "id='validation'",
                    "id='significance'", "id='reproduce'"):
        assert section in page


def test_report_content_escaping_and_side_files(result: dict, report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    assert "report &lt;test&gt; &amp; friends" in page and "<test>" not in page
    assert result["splits"][0]["fingerprint"] in page  # the exact split fingerprint
    for key in ("numpy", "torch", "scipy"):
        assert f"<th>{key}</th><td><code>{result['versions'][key]}</code>" in page
    assert "p vs best" in page and "NDCG@20" in page
    assert json.loads((report_dir / "results.json").read_text()) == result
    exp = load_experiment(report_dir / "experiment.toml")
    assert exp["models"] == result["models"] and exp["trials"] == 1


def test_figures_are_deterministic_and_cover_the_result(result: dict, report_dir: Path) -> None:
    first = make_plots(result)
    assert [p.key for p in first] == ["metric-bars", "paired-outcomes", "popularity", "validation", "training", "cost"]
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    embedded = [base64.b64decode(s) for s in re.findall(r"src='data:image/png;base64,([^']*)'", page)]
    assert [p.png for p in first] == embedded, "the same result gives byte-identical images"
    for p in first:
        assert p.png.startswith(PNG_MAGIC) and p.width == 1400 and 150 < p.height < 1400


def test_gan_models_get_loss_and_discriminator_curves(result: dict) -> None:
    assert gan_curves(result) is None  # no adversarial model in the run
    res = _gan_result(result)
    plot = gan_curves(res)
    assert plot is not None and plot.key == "gan"
    # EASE and TopPop log no epochs and BPR (now a GAN) moved to the GAN figure: no plain training curves.
    assert training_curves(res) is None and training_curves(result) is not None
    page = render_html(res, plots=[plot])
    assert "GAN training" in page and "class='badge gan'" in page


def test_single_model_and_missing_matplotlib(result: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DataSpec(dataset="synthetic", synthetic={"n_users": 50, "n_items": 60, "n_interactions": 900})
    single = compare(["toppop"], spec, Protocol(), seeds=1, trials=0)
    page = render_html(single)
    assert "Only one model: nothing to compare." in page and page.count("<img ") >= 3
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    page = render_html(result)
    assert "matplotlib is not installed" in page and "<img " not in page and "id='leaderboard'" in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it with apt)")
def test_headless_chromium_screenshot(report_dir: Path, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    profile.mkdir()
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--hide-scrollbars", "--window-size=1280,4000", f"--screenshot={shot}",
           (report_dir / "report.html").resolve().as_uri()]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    img = mpimg.imread(shot)  # (height, width, channels) floats in [0, 1]
    assert img.shape[:2] == (4000, 1280)
    rgb = img[..., :3]
    assert rgb.std() > 0.05, "the page rendered blank"
    # The header band is dark blue, the figures below add many distinct colours.
    top = rgb[:150].reshape(-1, 3).mean(axis=0)
    assert top[2] > top[0] + 0.1 and top.mean() < 0.5
    body = (rgb[400:] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(body[:: 37], axis=0)) > 200
    assert (np.abs(body.astype(int) - body[0].astype(int)).sum(axis=1) > 30).mean() > 0.1


def test_header_states_seeds_trials_and_one_run_time_without_single_run_spread(result: dict) -> None:
    from gan4rec.leaderboard import leaderboard_text, run_time_text

    one = copy.deepcopy(result)
    one["seeds"], one["splits"] = one["seeds"][:1], one["splits"][:1]
    page = render_html(one, plots=[])
    assert "± " not in page and "one run" in page
    seeds = f"{one['seeds'][0]} (1 seed)"
    assert f"<dt>seeds</dt><dd>{seeds}</dd>" in page
    assert f"<dt>run time</dt><dd>{run_time_text(one['seconds'])}</dd>" in page
    assert f"run time: {run_time_text(one['seconds'])}" in leaderboard_text(one)
    assert "+-" not in leaderboard_text(one).split("\n", 2)[1]
    for name in one["models"]:
        t = one["results"][name]["tuning"][0]
        shown = f"{name} {t['n_trials']}/{one['trials']} trials" if t["tuned"] else f"{name} not tuned"
        assert shown in page
