"""Aggregate a comparison's runs: per-model entries, per-user pooling, significance and the leaderboard.

These are the steps of :func:`gan4rec.compare.compare` after every run is done (see its module docstring
for the protocol). On a cold-start split the results have one level more, the task (``warm``, ``cold``,
``overall``): :func:`task_summary` ranks and tests each task on its own, and :func:`leaderboard_text`
prints a table per task. Standard deviations over runs are sample standard deviations (``ddof=1``; 0.0 for
a single run, which the leaderboard then does not show); results record this as :data:`STD_NOTE`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ALPHA",
    "STD_NOTE",
    "TASK_FAMILIES",
    "leaderboard_rows",
    "leaderboard_text",
    "mean_std",
    "metrics_mean_std",
    "model_entry",
    "pool_users",
    "run_time_text",
    "significance_tests",
    "task_rows",
    "task_summary",
    "tuning_lines",
    "user_ci",
]

#: Significance level of the leaderboard's stars and the report's verdicts.
ALPHA = 0.05

#: How every standard deviation over runs is computed, recorded in results as ``"std"``.
STD_NOTE = "sample (ddof=1); 0.0 for a single run"

#: The metric families a cold-start leaderboard shows for each task, at the K of the protocol's metric.
TASK_FAMILIES: tuple[str, ...] = ("NDCG", "Precision", "Recall")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0.0 for a single value) of ``values``."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _by_task(metrics: Mapping[str, Any]) -> bool:
    """Whether ``metrics`` is ``{task: metrics or None}`` (a cold-start result) rather than ``{name: value}``."""
    return bool(metrics) and all(isinstance(v, Mapping) or v is None for v in metrics.values())


def metrics_mean_std(runs: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Mean and sample std (:func:`mean_std`) over runs of each metric, as two dicts keyed like the runs.

    Task-keyed metrics (``{task: {name: value} or None}``, a cold-start split) give task-keyed dicts; a
    task that is ``None`` in some run (the cold task of a model that cannot score cold items) is ``None``.
    """
    mean: dict[str, Any] = {}
    std: dict[str, Any] = {}
    if _by_task(runs[0]):
        for task in runs[0]:
            if any(r.get(task) is None for r in runs):
                mean[task] = std[task] = None
            else:
                mean[task], std[task] = metrics_mean_std([r[task] for r in runs])
        return mean, std
    for key in runs[0]:
        mean[key], std[key] = mean_std([r[key] for r in runs])
    return mean, std


def _valid_mean(runs: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    if _by_task(runs[0]):
        return {task: None if any(r.get(task) is None for r in runs) else _valid_mean([r[task] for r in runs])
                for task in runs[0]}
    return {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}


def model_entry(
    name: str, runs: list[dict[str, Any]], tuning: list[dict[str, Any]], history: dict[str, Any] | None, cls: Any
) -> dict[str, Any]:
    """One model's result, in the schema of ``gan4rec train`` (means over runs) plus the per-run values."""
    first = runs[0]["result"]
    test_mean, test_std = metrics_mean_std([r["metrics"]["test"] for r in runs])
    valid = None
    if all(r["metrics"]["valid"] is not None for r in runs):
        valid = _valid_mean([r["metrics"]["valid"] for r in runs])
    # A cold-start comparison times no top-K recommendation (its runs have no recommend_seconds).
    timing = {key: mean_std([r[key] for r in runs]) for key in ("fit_seconds", "eval_seconds", "recommend_seconds")
              if all(key in r for r in runs)}
    rec = timing.get("recommend_seconds")
    return {
        "model": name,
        "adversarial": bool(cls.adversarial),
        "dataset": first["dataset"],
        "protocol": first["protocol"],
        "seed": sorted({r["seed"] for r in runs}),
        "params": first["params"],
        "best_params": tuning[0]["best_params"],
        "refit_params": first["refit_params"],
        "fit_seconds": round(timing["fit_seconds"][0], 4),
        "fit_seconds_std": round(timing["fit_seconds"][1], 4),
        "eval_seconds": round(timing["eval_seconds"][0], 4),
        "recommend_seconds": None if rec is None else round(rec[0], 4),
        "recommend_seconds_std": None if rec is None else round(rec[1], 4),
        "tune_seconds": round(sum(t["seconds"] for t in tuning), 3),
        "metrics": {"valid": valid, "test": test_mean, "test_std": test_std},
        "n_runs": len(runs),
        "versions": first["versions"],
        "per_seed": [{k: v for k, v in r.items() if k != "result"} for r in runs],
        "tuning": [{k: v for k, v in t.items()} for t in tuning],
        "history": history,
    }


def pool_users(
    user_values: dict[str, list[dict[str, np.ndarray]]], split_users: list[np.ndarray]
) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """Per-user values averaged over the splits where the user is a test user, aligned across models."""
    all_users = np.concatenate(split_users)  # (sum of test users over splits,)
    units, inverse = np.unique(all_users, return_inverse=True)  # units: (n_units,)
    counts = np.bincount(inverse, minlength=len(units)).astype(np.float64)  # (n_units,)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, per_split in user_values.items():
        out[name] = {}
        for metric in per_split[0]:
            values = np.concatenate([ps[metric] for ps in per_split])  # aligned with all_users
            out[name][metric] = np.bincount(inverse, weights=values, minlength=len(units)) / counts
    return out, units


def user_ci(per_user: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """95% Student-t interval of the mean over users, per metric (``per_user``: metric -> ``(n_users,)``)."""
    from gan4rec.evaluation.significance import mean_ci

    out = {}
    for metric, values in per_user.items():
        mean, low, high = mean_ci(values, 0.95)
        out[metric] = {"mean": mean, "low": low, "high": high, "n_users": len(values)}
    return out


def significance_tests(per_user: dict[str, dict[str, np.ndarray]], best: str, metric: str, n_units: int) -> dict[str, Any]:
    """Paired Wilcoxon and t-tests of ``best`` against every other model, Holm-corrected, for every metric."""
    from gan4rec.evaluation.significance import holm, paired_ttest, paired_wilcoxon

    others = [n for n in per_user if n != best]
    tests: dict[str, dict[str, Any]] = {}
    for m in per_user[best]:
        a = per_user[best][m]
        rows: dict[str, Any] = {}
        for name in others:
            b = per_user[name][m]
            diff = a - b
            rows[name] = {
                "mean_best": float(a.mean()), "mean_model": float(b.mean()), "mean_diff": float(diff.mean()),
                "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum()),
                "wilcoxon": paired_wilcoxon(a, b).to_json(), "ttest": paired_ttest(a, b).to_json(),
            }
        for test in ("wilcoxon", "ttest"):
            adjusted = holm([rows[n][test]["p"] for n in others])
            for name, p in zip(others, adjusted, strict=True):
                rows[name][test]["p_holm"] = float(p)
        tests[m] = rows
    return {
        "best": best,
        "metric": metric,
        "alpha": ALPHA,
        "unit": "test user; each user's metric averaged over the seeds (and over the splits where the user is "
                "a test user)",
        "n_users": int(n_units),
        "alternative": "two-sided",
        "correction": "Holm over the models compared with the best, separately for each test and metric",
        "tests": tests,
    }


def leaderboard_rows(results: dict[str, Any], significance: dict[str, Any], metric: str, best: str) -> list[dict[str, Any]]:
    """Leaderboard rows, best mean ``metric`` first (ties in the models' order), with p-values and CIs."""
    order = sorted(results, key=lambda n: (-results[n]["metrics"]["test"].get(metric, -math.inf), list(results).index(n)))
    rows = []
    tests = significance["tests"].get(metric, {})
    for rank, name in enumerate(order, 1):
        e = results[name]
        t = tests.get(name)
        ci = e["user_ci95"].get(metric, {})
        rows.append({
            "rank": rank, "model": name, "adversarial": e["adversarial"], "metric": metric,
            "mean": e["metrics"]["test"].get(metric), "std": e["metrics"]["test_std"].get(metric),
            "ci95": [ci.get("low"), ci.get("high")],
            "p_wilcoxon_holm": None if t is None else t["wilcoxon"]["p_holm"],
            "p_ttest_holm": None if t is None else t["ttest"]["p_holm"],
            "significant": None if t is None else bool(t["wilcoxon"]["p_holm"] <= ALPHA),
            "fit_seconds": e["fit_seconds"], "recommend_seconds": e["recommend_seconds"],
            "tune_seconds": e["tune_seconds"], "is_best": name == best,
        })
    return rows


def leaderboard_text(result: Mapping[str, Any]) -> str:
    """The leaderboard as a fixed-width text table, for the terminal (one table per task on a cold-start split)."""
    if result.get("tasks"):
        return _task_text(result)
    metric = result["metric"]
    k = metric.split("@")[1]
    n_runs = len(result["seeds"]) * len(result["splits"])
    spread = n_runs > 1  # one run has no spread to show
    extra = [m for m in (f"Recall@{k}", f"Coverage@{k}") if m in result["results"][result["best"]]["metrics"]["test"]]
    head = ["#", "model", f"{metric} mean +- std" if spread else metric, *extra, "fit s", "rec s",
            f"p vs {result['best']}"]
    lines = []
    for row in result["leaderboard"]:
        e = result["results"][row["model"]]
        cells = [str(row["rank"]), row["model"] + (" (GAN)" if row["adversarial"] else ""),
                 f"{_num(row['mean'])} +- {_num(row['std'])}" if spread else _num(row["mean"])]
        cells += [_num(e["metrics"]["test"].get(m)) for m in extra]
        cells += [f"{e['fit_seconds']:.2f}", f"{e['recommend_seconds']:.3f}"]
        p = row["p_wilcoxon_holm"]
        cells.append("best" if row["is_best"] else f"{_p(p)}{' *' if row['significant'] else ''}")
        lines.append(cells)
    widths = [max(len(c) for c in col) for col in zip(head, *lines, strict=True)]
    fmt = "  ".join(f"{{:{'<' if i == 1 else '>'}{w}}}" for i, w in enumerate(widths))
    runs = (f"mean +- sample std over {n_runs} runs" if spread else "1 run") + (
        f" ({_seeds_text(result['seeds'])} x {len(result['splits'])} split(s))")
    out = [*tuning_lines(result),
           (f"leaderboard: test {metric}, {runs}; "
            f"p: paired Wilcoxon across {result['significance']['n_users']} users, Holm-corrected, * p <= 0.05"),
           fmt.format(*head)]
    out += [fmt.format(*cells) for cells in lines]
    sig = result["significance"]
    tests = sig["tests"].get(metric, {})
    for name in (row["model"] for row in result["leaderboard"] if row["model"] in tests):
        t = tests[name]
        out.append(f"{sig['best']} vs {name}: {metric} diff {t['mean_diff']:+.4f}, users better/tied/worse "
                   f"{t['wins']}/{t['ties']}/{t['losses']}; Wilcoxon p = {_p(t['wilcoxon']['p'])} "
                   f"(Holm {_p(t['wilcoxon']['p_holm'])}), t-test p = {_p(t['ttest']['p'])} "
                   f"(Holm {_p(t['ttest']['p_holm'])})")
    if result.get("skipped"):
        out.append("skipped: " + ", ".join(f"{n} ({why})" for n, why in result["skipped"].items()))
    if result.get("seconds") is not None:
        out.append(f"run time: {run_time_text(result['seconds'])}")
    return "\n".join(out)


def task_summary(
    results: dict[str, dict[str, Any]], user_values: Mapping[str, Mapping[str, list[dict[str, np.ndarray]]]],
    split_users: Mapping[str, list[np.ndarray]], metric: str, tasks: Sequence[str],
) -> dict[str, Any]:
    """Rank and test each task of a cold-start comparison on its own.

    Parameters
    ----------
    results
        :func:`model_entry` of each model, with task-keyed metrics; each gets ``user_ci95[task]`` (``None``
        for a task the model did not run).
    user_values
        ``task -> model -> per split {metric: (n_users,)}``, each user's values averaged over the seeds; only
        the models that ran the task (a model that cannot score cold items has no cold task).
    split_users
        ``task -> per split (n_users,)``: the task's test users, the same for every model.
    metric, tasks
        The protocol's metric, which picks each task's best model, and the tasks in report order.

    Returns
    -------
    dict
        ``best``, ``significance`` and ``leaderboard``, each ``{task: ...}``; a task no model ran has best
        and significance ``None``. Significance: :func:`significance_tests` among the models of the task,
        so Holm corrects over the models compared with that task's best.
    """
    best: dict[str, str | None] = {}
    significance: dict[str, Any] = {}
    leaderboard: dict[str, list[dict[str, Any]]] = {}
    order = list(results)
    for task in tasks:
        able = [n for n in order if n in user_values.get(task, {})]
        for name in order:
            results[name].setdefault("user_ci95", {})[task] = None
        best[task] = significance[task] = None
        if able:
            per_user, units = pool_users({n: user_values[task][n] for n in able}, list(split_users[task]))
            for name in able:
                results[name]["user_ci95"][task] = user_ci(per_user[name])
            best[task] = max(able, key=lambda n: (results[n]["metrics"]["test"][task].get(metric, -math.inf),
                                                  -order.index(n)))
            significance[task] = {"task": task, **significance_tests(per_user, best[task], metric, len(units))}  # type: ignore[arg-type]
        leaderboard[task] = task_rows(results, task, significance[task], metric, best[task])
    return {"best": best, "significance": significance, "leaderboard": leaderboard}


def task_rows(
    results: Mapping[str, Any], task: str, significance: Mapping[str, Any] | None, metric: str, best: str | None
) -> list[dict[str, Any]]:
    """One task's leaderboard rows: the models that ran it by mean ``metric`` (ties in the models' order),
    then those that cannot (``cannot = True``, ``rank``/``mean``/``metrics`` ``None``).

    ``metrics`` holds the mean and sample std of each :data:`TASK_FAMILIES` metric at the K of ``metric``.
    """
    order = list(results)
    able = [n for n in order if results[n]["metrics"]["test"][task] is not None]
    able.sort(key=lambda n: (-results[n]["metrics"]["test"][task].get(metric, -math.inf), order.index(n)))
    k = metric.split("@")[1]
    tests = (significance or {}).get("tests", {}).get(metric, {})
    rows = []
    for rank, name in enumerate([*able, *(n for n in order if n not in able)], 1):
        e = results[name]
        test, std = e["metrics"]["test"][task], e["metrics"]["test_std"][task]
        t = tests.get(name)
        ci = (e["user_ci95"].get(task) or {}).get(metric, {})
        rows.append({
            "rank": rank if test is not None else None, "model": name, "task": task,
            "adversarial": e["adversarial"], "cold_start": e.get("cold_start"), "cannot": test is None,
            "metric": metric, "mean": None if test is None else test.get(metric),
            "std": None if std is None else std.get(metric),
            "metrics": None if test is None else {
                f"{fam}@{k}": {"mean": test[f"{fam}@{k}"], "std": std[f"{fam}@{k}"]}
                for fam in TASK_FAMILIES if f"{fam}@{k}" in test},
            "ci95": [ci.get("low"), ci.get("high")],
            "p_wilcoxon_holm": None if t is None else t["wilcoxon"]["p_holm"],
            "p_ttest_holm": None if t is None else t["ttest"]["p_holm"],
            "significant": None if t is None else bool(t["wilcoxon"]["p_holm"] <= ALPHA),
            "fit_seconds": e["fit_seconds"], "tune_seconds": e["tune_seconds"], "is_best": name == best,
        })
    return rows


def _task_text(result: Mapping[str, Any]) -> str:
    """:func:`leaderboard_text` of a cold-start comparison: one table per task."""
    metric = result["metric"]
    n_runs = len(result["seeds"]) * len(result["splits"])
    spread = n_runs > 1
    runs = (f"mean +- sample std over {n_runs} runs" if spread else "1 run") + (
        f" ({_seeds_text(result['seeds'])} x {len(result['splits'])} split(s))")
    out = [*tuning_lines(result),
           f"objective: {result.get('objective', '')}",
           (f"leaderboard: test, {runs}; p: paired Wilcoxon against the task's best across its test users, "
            f"Holm-corrected within the task, * p <= {ALPHA}")]
    for task in result["tasks"]:
        rows = result["leaderboard"][task]
        sig = result["significance"][task]
        names = list((rows[0]["metrics"] or {}) if rows and rows[0]["metrics"] else [metric])
        head = ["#", "model", *names, f"p vs {result['best'][task]}" if result["best"][task] else "p"]
        lines = []
        for row in rows:
            cells = ["-" if row["rank"] is None else str(row["rank"]),
                     row["model"] + (" (GAN)" if row["adversarial"] else "")]
            if row["cannot"]:
                cells += ["cannot"] * len(names) + ["cannot score cold items"]
            else:
                cells += [f"{_num(row['metrics'][m]['mean'])} +- {_num(row['metrics'][m]['std'])}" if spread
                          else _num(row["metrics"][m]["mean"]) for m in names]
                cells.append("best" if row["is_best"] else
                             f"{_p(row['p_wilcoxon_holm'])}{' *' if row['significant'] else ''}")
            lines.append(cells)
        widths = [max(len(c) for c in col) for col in zip(head, *lines, strict=True)]
        fmt = "  ".join(f"{{:{'<' if i == 1 else '>'}{w}}}" for i, w in enumerate(widths))
        users = f"{sig['n_users']} test users" if sig else "no model can rank this task"
        out += ["", f"{task} task ({users}):", fmt.format(*head), *(fmt.format(*c) for c in lines)]
    if result.get("skipped"):
        out.append("skipped: " + ", ".join(f"{n} ({why})" for n, why in result["skipped"].items()))
    if result.get("seconds") is not None:
        out.append(f"run time: {run_time_text(result['seconds'])}")
    return "\n".join(out)


def tuning_lines(result: Mapping[str, Any]) -> list[str]:
    """What tuning each model actually got, and a WARNING for each model the time box cut short.

    First ``tuning on validation: cfgan 4/4 trials, ...``: trials that ran to their end (complete, or
    pruned by the median rule) of those asked for. Then one WARNING line per model the time box cut
    short, with the trials it stopped mid-fit and those it never started. The report's header shows the
    same counts.
    """
    parts, warnings = [], []
    for name in result["models"]:
        runs = result["results"][name]["tuning"]
        searched = [t for t in runs if t.get("tuned") or t.get("timed_out")]
        if not searched:
            parts.append(f"{name} not tuned ({runs[0].get('reason')})")
            continue
        asked = sum(t.get("n_requested", result["trials"]) for t in searched)
        started = sum(t.get("n_trials", 0) for t in searched)
        boxed = sum(t.get("n_time_boxed", 0) for t in searched)
        parts.append(f"{name} {started - boxed}/{asked} trials")
        if any(t.get("timed_out") for t in searched):
            detail = [f"{boxed} stopped mid-fit"] if boxed else []
            if asked > started:
                detail.append(f"{asked - started} never started")
            fallback = "; defaults + fixed params used" if not any(t.get("tuned") for t in searched) else ""
            warnings.append(f"WARNING: the {result.get('timeout_per_model') or 0:g} s tuning time box cut {name} "
                            f"short: {started - boxed} of {asked} trials ran ({', '.join(detail)}){fallback}")
    return [f"tuning on validation: {', '.join(parts)}", *warnings]


def run_time_text(seconds: float) -> str:
    """A run's wall time as the report and the terminal both show it, e.g. ``"42.5 s"`` or ``"3 min 5 s"``."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _seeds_text(seeds: list[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(str(s) for s in seeds)}"


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _p(p: Any) -> str:
    if p is None:
        return "n/a"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.1e}"
