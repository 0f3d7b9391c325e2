"""Issue 18's pre-registered tests (Q1, Q2) from the per-user results of ``benchmarks/cold_start.py``.

The protocol is ``benchmarks/results/issue18-preregistration.md`` (section 3), applied as written:

- **Q1** (per dataset): the candidate ``gar`` (``score_with="backbone"``) against the best *calibrated* non-GAN
  hybrid (``content-knn``, ``ridge-map``, ``ease-side``, ``dropoutnet``: the highest VALIDATION overall
  NDCG@20 after calibration on seed 0, kept for every seed), on the **overall** test task by NDCG@20.
- **Q2** (per dataset): ``gar`` against its regression-only ablation ``gar-reg``, on the **cold** task.
- The unit is the user: each user's NDCG@20 averaged over the seeds in which they are a test user of that
  task (seeds where both models ran); the pairs are those per-user means.
- Two-sided paired Wilcoxon signed-rank test per (question, dataset), Holm over all of them (4 when both
  datasets are given); reported with the mean difference, its 95% CI (``mean_ci`` of the per-user
  differences), the paired t-test p (secondary) and each model's mean NDCG@20 per task over seeds.

Each ``--runs`` item is ``NAME=RESULTS.json`` (its per-user values in ``RESULTS.peruser.json``)::

    python benchmarks/cold_significance.py \\
        --runs ml-latest-small=benchmarks/results/cold-ml-latest-small-t10.json \\
               citeulike-t=benchmarks/results/cold-citeulike-t-t1.json \\
        --json benchmarks/results/cold-significance.json

``--seeds citeulike-t=0,1,2`` restricts a run to those seeds (a registered analysis of a file that later grew).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

CANDIDATE = "gar"
ABLATION = "gar-reg"
NON_GAN = ("content-knn", "ridge-map", "ease-side", "dropoutnet")
TASKS = ("warm", "cold", "overall")
METRIC = "NDCG@20"


def _rows(path: Path, seeds: set[int] | None = None) -> list[dict[str, Any]]:
    return [r for r in json.loads(path.read_text())["rows"]
            if "error" not in r and "test" in r and (seeds is None or r.get("seed", 0) in seeds)]


def _per_user(path: Path, seeds: set[int] | None = None) -> dict[str, Any]:
    per_user = json.loads(path.with_suffix(".peruser.json").read_text())
    return {k: v for k, v in per_user.items() if seeds is None or int(k.split("/")[1]) in seeds}


def best_non_gan(rows: list[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    """The non-GAN hybrid with the highest validation overall NDCG@20 (after calibration) on seed 0."""
    vals = {r["model"]: float(r["valid"]["overall"][METRIC]) for r in rows
            if r["model"] in NON_GAN and r.get("seed", 0) == 0}
    if not vals:
        raise SystemExit("no seed-0 row of a non-GAN hybrid: cannot choose the comparator")
    return max(vals, key=lambda m: vals[m]), vals


def user_means(per_user: dict[str, Any], model: str, task: str, seeds: list[int]) -> dict[Any, float]:
    """Each user's NDCG@20 on ``task`` averaged over ``seeds`` in which they are a test user."""
    acc: dict[Any, list[float]] = defaultdict(list)
    for s in seeds:
        pu = per_user[f"{model}/{s}"][task]
        for u, v in zip(pu["users"], pu[METRIC], strict=True):
            acc[u].append(float(v))
    return {u: float(np.mean(v)) for u, v in acc.items()}


def compare(per_user: dict[str, Any], a: str, b: str, task: str) -> dict[str, Any]:
    """Paired tests of ``a - b`` on ``task`` over the seeds where both ran."""
    from gan4rec.evaluation.significance import mean_ci, paired_ttest, paired_wilcoxon

    def seeds_of(m: str) -> set[int]:
        return {int(k.split("/")[1]) for k in per_user if k.split("/")[0] == m}

    seeds = sorted(seeds_of(a) & seeds_of(b))
    if not seeds:
        return {"a": a, "b": b, "task": task, "seeds": [], "error": "no seed where both ran"}
    ma, mb = user_means(per_user, a, task, seeds), user_means(per_user, b, task, seeds)
    users = sorted(set(ma) & set(mb), key=str)
    x = np.array([ma[u] for u in users])
    y = np.array([mb[u] for u in users])
    mean, lo, hi = mean_ci(x - y)
    return {"a": a, "b": b, "task": task, "seeds": seeds, "users": len(users), "mean_a": float(x.mean()),
            "mean_b": float(y.mean()), "diff": mean, "ci95": [lo, hi],
            "wilcoxon": paired_wilcoxon(x, y).to_json(), "ttest": paired_ttest(x, y).to_json()}


def model_means(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each model's test NDCG@20 per task, mean over its seeds (with the seeds)."""
    out: dict[str, dict[str, Any]] = {}
    for model in sorted({r["model"] for r in rows}):
        rs = [r for r in rows if r["model"] == model]
        out[model] = {"seeds": sorted(r.get("seed", 0) for r in rs)}
        for task in TASKS:
            v = [r["test"][task][METRIC] for r in rs if task in r["test"]]
            out[model][task] = float(np.mean(v)) if v else None
    return out


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """BENCHMARKS.md's table of a run: per model, test N/P/R@20 of each task (mean over seeds), fit s, peak MB.

    A model that cannot score cold items (``cold_start`` false in the registry) reads "(cannot)" on the cold
    task: its number there is the evaluator's tie order by item index, not a result (:mod:`gan4rec.evaluation.cold`).
    """
    from gan4rec.models import MODELS

    lines = ["| model | seeds | trials | warm N/P/R | cold N/P/R | overall N/P/R | fit s (mean) | peak MB (max) |",
             "|---|---|---|---|---|---|---|---|"]
    order = list(dict.fromkeys(r["model"] for r in rows if "error" not in r))
    for model in order:
        rs = [r for r in rows if r["model"] == model and "error" not in r]
        cells = []
        for task in TASKS:
            have = [r["test"][task] for r in rs if task in r.get("test", {})]
            if task == "cold" and not MODELS[model].cold_start:
                have = []
            if not have:
                cells.append("(cannot)")
                continue
            cells.append("/".join(f"{np.mean([h[m] for h in have]):.4f}".lstrip("0")
                                  for m in ("NDCG@20", "Precision@20", "Recall@20")))
        seeds = ",".join(str(r.get("seed", 0)) for r in rs)
        trials = ",".join(sorted({str(r.get("trials", "")) for r in rs}))
        fit = np.mean([r["fit_s"] for r in rs])
        peak = max(r.get("peak_rss_mb", 0) for r in rs)
        lines.append(f"| {model} | {seeds} | {trials} | {' | '.join(cells)} | {fit:.1f} | {peak:.0f} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="NAME=RESULTS.json, one per dataset")
    p.add_argument("--json", help="write the tests and the means here")
    p.add_argument("--markdown", action="store_true", help="also print each run's table for BENCHMARKS.md")
    p.add_argument("--seeds", action="append", default=[], metavar="NAME=S,S,...",
                   help="use only these seeds of run NAME, e.g. citeulike-t=0,1,2 (default: every seed in its file)")
    args = p.parse_args()
    only: dict[str, set[int]] = {}
    for item in args.seeds:
        name, _, seeds = item.partition("=")
        only[name] = {int(x) for x in seeds.split(",") if x}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from gan4rec.evaluation.significance import holm

    tests: list[dict[str, Any]] = []
    means: dict[str, Any] = {}
    for spec in args.runs:
        name, _, path_s = spec.partition("=")
        path = Path(path_s)
        rows = _rows(path, only.get(name))
        per_user = _per_user(path, only.get(name))
        best, valid = best_non_gan(rows)
        means[name] = {"models": model_means(rows), "best_non_gan": best, "valid_overall_seed0": valid}
        tests.append({"question": "Q1", "data": name, **compare(per_user, CANDIDATE, best, "overall")})
        tests.append({"question": "Q2", "data": name, **compare(per_user, CANDIDATE, ABLATION, "cold")})
    ok = [t for t in tests if "error" not in t]
    for t, adj in zip(ok, holm([t["wilcoxon"]["p"] for t in ok]), strict=True):
        t["holm_p"] = float(adj)
        t["significant"] = bool(adj < 0.05)
    if args.markdown:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        for spec in args.runs:
            name, _, path_s = spec.partition("=")
            print(f"\n{name}:\n\n{markdown_table(_rows(Path(path_s), only.get(name)))}")
    for name, m in means.items():
        print(f"\n{name}: test {METRIC}, mean over seeds (best non-GAN hybrid on seed-0 validation overall: "
              f"{m['best_non_gan']})")
        print(f"{'model':<12} {'seeds':<11} " + " ".join(f"{t:>8}" for t in TASKS))
        for model, v in m["models"].items():
            cells = " ".join(f"{v[t]:>8.4f}" if v[t] is not None else f"{'-':>8}" for t in TASKS)
            print(f"{model:<12} {','.join(map(str, v['seeds'])):<11} {cells}")
    print(f"\n{'test':<4} {'data':<16} {'a - b (task)':<32} {'seeds':<10} {'users':>5} {'mean a':>7} "
          f"{'mean b':>7} {'diff':>8} {'95% CI':>19} {'p Wilcoxon':>10} {'p Holm':>8} {'p t':>8}")
    for t in tests:
        if "error" in t:
            print(f"{t['question']:<4} {t['data']:<16} {t['a']} - {t['b']}: {t['error']}")
            continue
        ci = f"[{t['ci95'][0]:+.4f}, {t['ci95'][1]:+.4f}]"
        print(f"{t['question']:<4} {t['data']:<16} {t['a'] + ' - ' + t['b'] + ' (' + t['task'] + ')':<32} "
              f"{','.join(map(str, t['seeds'])):<10} {t['users']:>5} {t['mean_a']:>7.4f} {t['mean_b']:>7.4f} "
              f"{t['diff']:>+8.4f} {ci:>19} {t['wilcoxon']['p']:>10.3g} {t['holm_p']:>8.3g} "
              f"{t['ttest']['p']:>8.3g}")
    if args.json:
        from gan4rec.artifacts import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps({"command": " ".join(sys.argv), "tests": tests,
                                                       "means": means}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
