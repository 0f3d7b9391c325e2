"""One self-contained HTML page for a :func:`gan4rec.compare.compare` result.

The page has no external reference at all: styles are inline, figures are ``data:image/png;base64`` URIs,
fonts are the reader's system fonts. It opens from a file, offline, in any browser, and can be mailed or
attached to a ticket as is. Every piece of text that comes from the result is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gan4rec.leaderboard import ALPHA, run_time_text, tuning_lines
from gan4rec.report.plots import Plot, model_colors

__all__ = ["render_html", "write_report"]

log = logging.getLogger(__name__)

_CSS = """
:root { --ink:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f4f6f9; --card:#ffffff; --accent:#4269d0;
        --good:#15803d; --warn:#b45309; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 0 24px 48px; }
header.hero { background: linear-gradient(135deg, #172554 0%, #1e3a8a 55%, #3554b8 100%); color:#fff;
              padding: 34px 0 30px; margin-bottom: 26px; }
header.hero .inner { max-width:1160px; margin:0 auto; padding:0 24px; }
.kicker { text-transform: uppercase; letter-spacing: .12em; font-size: 12px; opacity: .75; font-weight: 600; }
h1 { font-size: 30px; line-height:1.2; margin: 6px 0 8px; font-weight: 700; }
.lede { font-size: 16px; max-width: 900px; margin: 0 0 18px; color: #dbe4ff; }
.lede b { color:#fff; }
.facts { display:flex; flex-wrap:wrap; gap:8px; margin:0; padding:0; }
.facts div { background: rgba(255,255,255,.12); border:1px solid rgba(255,255,255,.18); border-radius: 999px;
             padding: 4px 12px; font-size: 13px; }
.facts dt { display:inline; opacity:.75; margin-right:6px; }
.facts dd { display:inline; margin:0; font-weight:600; }
section.card { background:var(--card); border:1px solid var(--line); border-radius: 14px; padding: 22px 26px;
               margin: 0 0 22px; box-shadow: 0 1px 2px rgba(16,24,40,.04); }
h2 { font-size: 19px; margin: 0 0 4px; }
h3 { font-size: 16px; margin: 0 0 4px; }
p.note, figcaption, .sub { color: var(--muted); font-size: 13.5px; margin: 4px 0 12px; }
figure { margin: 0; }
figure img { display:block; width:100%; height:auto; margin-top: 10px; }
.grid2 { display:grid; grid-template-columns: 1fr 1fr; gap: 0 26px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 8px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap;
         vertical-align: top; }
td.fp code { word-break: break-all; white-space: normal; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600;
     background: #f9fafb; }
td.l, th.l { text-align: left; }
tr.best td { background: #eef4ff; }
tr.best td.model { font-weight: 700; }
.sd { display:block; color: var(--muted); font-size: 11.5px; line-height: 1.2; }
.main-metric .sd { font-weight: 400; }
.dot { display:inline-block; width:10px; height:10px; border-radius: 3px; margin-right: 8px; vertical-align: -1px; }
.badge { display:inline-block; font-size: 11px; font-weight:700; letter-spacing:.04em; padding: 1px 7px;
         border-radius: 999px; margin-left: 8px; vertical-align: 1px; }
.badge.gan { background:#fde68a; color:#78350f; }
.badge.best { background:#dbeafe; color:#1e3a8a; }
.sig { color: var(--good); font-weight: 700; }
.ns { color: var(--warn); }
.main-metric { font-weight: 700; }
details { margin-top: 12px; }
summary { cursor: pointer; color: var(--accent); font-weight: 600; font-size: 14px; }
.scroll { overflow-x: auto; }
pre { background:#0f172a; color:#e2e8f0; padding: 14px 16px; border-radius: 10px; overflow-x:auto;
      font: 12.5px/1.5 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; margin: 8px 0 0; }
code { font: 12.5px ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; background:#f3f4f6;
       padding: 1px 5px; border-radius: 5px; white-space: normal; }
td code { white-space: normal; }
.kv th { text-align:left; width: 30%; text-transform:none; letter-spacing:0; font-size:13px; background:none; }
.kv td { text-align:left; white-space: normal; }
.warn { background:#fffbeb; border:1px solid #fde68a; color:#78350f; border-radius:10px; padding:10px 14px;
        font-size: 14px; margin: 0 0 22px; }
footer { color: var(--muted); font-size: 12.5px; text-align:center; margin-top: 10px; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _p(p: Any) -> str:
    if p is None:
        return "n/a"
    if p < 1e-4:
        return f"{p:.1e}"
    return f"{p:.4f}" if p < 0.1 else f"{p:.3f}"


def _sd(std: Any, result: Mapping[str, Any]) -> str:
    """The ``± std`` after a mean; nothing for a single run, whose std says nothing."""
    if len(result["seeds"]) * len(result["splits"]) < 2:
        return ""
    return f"<span class='sd'>± {_num(std)}</span>"


def _secs(v: Any) -> str:
    if v is None:
        return "n/a"
    v = float(v)
    if v < 1e-4:
        return "< 0.1 ms"
    if v < 0.01:
        return f"{1000 * v:.1f} ms"
    return f"{v:.2f} s" if v < 100 else f"{v:.0f} s"


def _when(result: Mapping[str, Any]) -> str:
    created = str(result.get("created") or "")
    return created.replace("T", " ").replace("+00:00", " UTC")


def _names(names: Sequence[str]) -> str:
    names = [f"<b>{_e(n)}</b>" for n in names]
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# ---------------------------------------------------------------------------------------------- sections
def _hero(result: Mapping[str, Any]) -> str:
    lede = _task_lede(result) if result.get("tasks") else _lede(result)
    chips = _facts(result)
    title = result.get("description") or "Model comparison"
    return (f'<header class="hero"><div class="inner"><div class="kicker">gan4rec · comparison report</div>'
            f"<h1>{_e(title)}</h1><p class=\"lede\">{lede}</p><dl class=\"facts\">{chips}</dl></div></header>")


def _lede(result: Mapping[str, Any]) -> str:
    metric, best = result["metric"], result["best"]
    sig = result["significance"]
    rows = sig["tests"].get(metric, {})
    alpha = sig.get("alpha", 0.05)
    best_row = next(r for r in result["leaderboard"] if r["model"] == best)
    n_runs = len(result["seeds"]) * len(result["splits"])
    spread = f"± {_num(best_row['std'])} over {n_runs} runs" if n_runs > 1 else "one run"
    lede = (f"<b>{_e(best)}</b> has the best mean test {_e(metric)}: <b>{_num(best_row['mean'])}</b> "
            f"({spread}).")
    if rows:
        better = [m for m in rows if (rows[m]["wilcoxon"].get("p_holm") or 1.0) <= alpha]
        tied = [m for m in rows if m not in better]
        if better:
            lede += f" It is significantly better than {_names(better)}"
            lede += f" (paired Wilcoxon across {sig['n_users']} test users, Holm-corrected, p ≤ {alpha})."
        if tied:
            lede += f" It is <b>not</b> significantly different from {_names(tied)}" + (
                "." if better else f" (paired Wilcoxon across {sig['n_users']} test users, Holm-corrected).")
    return lede


def _task_lede(result: Mapping[str, Any]) -> str:
    """The hero's sentence for a cold-start comparison: each task's best model."""
    metric = result["metric"]
    parts = []
    for task in result["tasks"]:
        best = result["best"][task]
        row = next((r for r in result["leaderboard"][task] if r["model"] == best), None)
        parts.append(f"{_e(task)}: no model can rank it" if row is None else
                     f"{_e(task)}: <b>{_e(best)}</b> ({_num(row['mean'])})")
    return (f"Cold-start comparison with three tasks, each ranked and tested on its own. Best mean test "
            f"{_e(metric)}: {'; '.join(parts)}.")


def _facts(result: Mapping[str, Any]) -> str:
    """The hero's chips: data, split, metric, seeds, splits, tuning, run time."""
    ds, proto, metric = result["dataset"], result["protocol"], result["metric"]
    source = ds.get("name") or ds.get("file") or (f"{ds.get('train')} + {ds.get('test')}" if ds.get("train") else "data")
    split = proto.get("split", "random")
    if ds.get("train"):
        split_text = f"pre-split train/test, validation {100 * proto.get('valid_frac', 0):.0f}% of train"
    elif split == "leave-k-out":
        split_text = f"leave-{proto.get('k')}-out"
    elif split == "cold-items":
        t, v = proto.get("test_frac", 0.1), proto.get("valid_frac", 0.1)
        split_text = (f"cold-items: new items held out (half validation, half test), warm interactions "
                      f"{100 * (1 - t - v):.0f}/{100 * v:.0f}/{100 * t:.0f}")
    else:
        split_text = f"{split} {100 * (1 - proto.get('test_frac', 0.2)):.0f}/{100 * proto.get('test_frac', 0.2):.0f}, " \
                     f"validation {100 * proto.get('valid_frac', 0):.0f}% of train"
    facts = [
        ("data", f"{source}: {ds.get('n_users', '?'):,} users × {ds.get('n_items', '?'):,} items"),
        ("interactions", f"{ds.get('n_train', 0) + ds.get('n_test', 0):,}"),
        ("split", split_text),
        ("metric", metric),
        ("seeds", ", ".join(str(s) for s in result["seeds"])
                  + f" ({len(result['seeds'])} seed{'s' if len(result['seeds']) != 1 else ''})"),
        ("splits", str(len(result["splits"]))),
        ("tuning", tuning_lines(result)[0].removeprefix("tuning on validation: ")),
        ("run time", run_time_text(result["seconds"]) if result.get("seconds") is not None else "n/a"),
    ]
    return "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts)


def _leaderboard(result: Mapping[str, Any]) -> str:
    metric = result["metric"]
    k = metric.split("@")[1]
    colors = model_colors(result)
    best_metrics = result["results"][result["best"]]["metrics"]["test"]
    extra = [m for m in (f"Recall@{k}", f"HitRate@{k}", f"Coverage@{k}")
             if m in best_metrics and m != metric]
    head = ("<tr><th class='l'>#</th><th class='l'>model</th>"
            f"<th>{_e(metric)}</th><th>95% CI (users)</th>"
            + "".join(f"<th>{_e(m)}</th>" for m in extra)
            + "<th>p vs best</th><th>fit</th><th>recommend</th></tr>")
    body = []
    for row in result["leaderboard"]:
        name = row["model"]
        e = result["results"][name]
        test, std = e["metrics"]["test"], e["metrics"]["test_std"]
        badges = ""
        if row["adversarial"]:
            badges += "<span class='badge gan'>GAN</span>"
        if row["is_best"]:
            badges += "<span class='badge best'>BEST</span>"
        lo, hi = row["ci95"]
        cells = [f"<td class='l'>{row['rank']}</td>",
                 f"<td class='l model'><span class='dot' style='background:{colors[name]}'></span>{_e(name)}{badges}</td>",
                 f"<td class='main-metric'>{_num(row['mean'])}{_sd(row['std'], result)}</td>",
                 f"<td>{_num(lo)} – {_num(hi)}</td>"]
        for m in extra:
            cells.append(f"<td>{_num(test.get(m))}{_sd(std.get(m), result)}</td>")
        if row["is_best"]:
            cells.append("<td>—</td>")
        else:
            p = row["p_wilcoxon_holm"]
            cls = "sig" if row["significant"] else "ns"
            cells.append(f"<td class='{cls}' title='t-test (Holm): {_p(row['p_ttest_holm'])}'>{_p(p)}"
                         f"{' *' if row['significant'] else ''}</td>")
        cells.append(f"<td>{_secs(row['fit_seconds'])}</td><td>{_secs(row['recommend_seconds'])}</td>")
        body.append(f"<tr class='{'best' if row['is_best'] else ''}'>{''.join(cells)}</tr>")
    n_runs = len(result["seeds"]) * len(result["splits"])
    runs = (f"mean ± sample standard deviation (ddof=1) over {n_runs} runs" if n_runs > 1
            else "one run, so no standard deviation") + f" ({len(result['seeds'])} seed(s) × {len(result['splits'])} split(s))"
    note = (f"Test metrics: {runs}. 95% CI: Student-t interval of the mean over "
            f"{result['significance']['n_users']} test users. p vs best: two-sided paired Wilcoxon signed-rank test "
            f"on per-user {_e(metric)} (averaged over seeds), Holm-corrected; * p ≤ "
            f"{result['significance'].get('alpha', 0.05)}. Fit: final refit, mean over runs. Recommend: top-K for "
            "all test users.")
    skipped = ""
    if result.get("skipped"):
        skipped = ("<p class='note'>Skipped: " + ", ".join(f"<b>{_e(n)}</b> ({_e(w)})" for n, w in result["skipped"].items())
                   + ".</p>")
    all_metrics = _all_metrics_table(result)
    return (f"<section class='card' id='leaderboard'><h2>Leaderboard</h2><p class='note'>{note}</p>"
            f"<div class='scroll'><table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>"
            f"{skipped}<details><summary>All test metrics</summary><div class='scroll'>{all_metrics}</div></details>"
            "</section>")


def _task_leaderboard(result: Mapping[str, Any]) -> str:
    """The cold-start leaderboard: a table per task, "cannot" for a model that cannot rank the task."""
    metric = result["metric"]
    colors = model_colors(result)
    tables = []
    for task in result["tasks"]:
        rows, sig = result["leaderboard"][task], result["significance"][task]
        names = next((list(r["metrics"]) for r in rows if r["metrics"]), [metric])
        head = ("<tr><th class='l'>#</th><th class='l'>model</th>" + "".join(f"<th>{_e(m)}</th>" for m in names)
                + f"<th>95% CI ({_e(metric)}, users)</th><th>p vs best</th><th>fit</th></tr>")
        body = []
        for row in rows:
            name = row["model"]
            badges = ("<span class='badge gan'>GAN</span>" if row["adversarial"] else "") + (
                "<span class='badge best'>BEST</span>" if row["is_best"] else "")
            cells = [f"<td class='l'>{row['rank'] or '—'}</td>",
                     f"<td class='l model'><span class='dot' style='background:{colors[name]}'></span>{_e(name)}{badges}</td>"]
            if row["cannot"]:
                cells.append(f"<td class='ns' colspan='{len(names) + 2}'>cannot: this model cannot score cold items</td>")
            else:
                cells += [f"<td class='{'main-metric' if m == metric else ''}'>{_num(row['metrics'][m]['mean'])}"
                          f"{_sd(row['metrics'][m]['std'], result)}</td>" for m in names]
                lo, hi = row["ci95"]
                cells.append(f"<td>{_num(lo)} – {_num(hi)}</td>")
                if row["is_best"]:
                    cells.append("<td>—</td>")
                else:
                    cls = "sig" if row["significant"] else "ns"
                    cells.append(f"<td class='{cls}' title='t-test (Holm): {_p(row['p_ttest_holm'])}'>"
                                 f"{_p(row['p_wilcoxon_holm'])}{' *' if row['significant'] else ''}</td>")
            cells.append(f"<td>{_secs(row['fit_seconds'])}</td>")
            body.append(f"<tr class='{'best' if row['is_best'] else ''}'>{''.join(cells)}</tr>")
        users = f"{sig['n_users']} test users" if sig else "no model can rank it"
        tables.append(f"<h3 style='margin-top:16px' id='task-{_e(task)}'>{_e(task)} task ({users})</h3>"
                      f"<div class='scroll'><table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>")
    n_runs = len(result["seeds"]) * len(result["splits"])
    runs = (f"mean ± sample standard deviation (ddof=1) over {n_runs} runs" if n_runs > 1
            else "one run, so no standard deviation") + f" ({len(result['seeds'])} seed(s) × {len(result['splits'])} split(s))"
    note = ("Tasks: <b>warm</b> ranks the warm items (cold items masked), <b>cold</b> only the cold-test items, "
            "<b>overall</b> warm and cold-test items together (hybrids' cold-item scores calibrated on the validation "
            f"overall task). Test metrics: {runs}. 95% CI: Student-t interval of the mean over the task's test users. "
            f"p vs best: two-sided paired Wilcoxon signed-rank test on per-user {_e(metric)} (averaged over seeds) "
            f"against the task's best model, Holm-corrected within the task; * p ≤ {ALPHA}. Fit: final refit, mean "
            "over runs.")
    return (f"<section class='card' id='leaderboard'><h2>Leaderboard (warm, cold, overall)</h2>"
            f"<p class='note'>{note}</p>{''.join(tables)}</section>")


def _task_significance(result: Mapping[str, Any]) -> str:
    """Per task, the task's best model against each other model of the task (every metric in a fold)."""
    metric = result["metric"]
    parts = []
    for task in result["tasks"]:
        sig = result["significance"][task]
        if not sig or not sig["tests"].get(metric):
            parts.append(f"<h3 style='margin-top:16px'>{_e(task)} task</h3><p class='note'>Fewer than two models "
                         "can rank this task: nothing to compare.</p>")
            continue
        lb = result["leaderboard"][task]
        others = "".join(f"<h4>{_e(m)}</h4><div class='scroll'>{_sig_table(sig, m, lb)}</div>"
                         for m in sig["tests"] if m != metric)
        parts.append(f"<h3 style='margin-top:16px'>{_e(task)} task: best {_e(sig['best'])}, "
                     f"{sig['n_users']} test users</h3><div class='scroll'>{_sig_table(sig, metric, lb)}</div>"
                     f"<details><summary>Every other metric</summary>{others}</details>")
    note = ("Unit: test user of the task, each user's metric averaged over the seeds. Holm corrects over the models "
            "compared with the task's best, within the task. Both tests are two-sided.")
    return (f"<section class='card' id='significance'><h2>Significance by task ({_e(metric)})</h2>"
            f"<p class='note'>{note}</p>{''.join(parts)}</section>")


def _all_metrics_table(result: Mapping[str, Any]) -> str:
    names = list(result["results"][result["best"]]["metrics"]["test"])
    head = "<tr><th class='l'>model</th>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"
    rows = []
    for row in result["leaderboard"]:
        e = result["results"][row["model"]]["metrics"]
        cells = "".join(f"<td>{_num(e['test'].get(n))}{_sd(e['test_std'].get(n), result)}</td>" for n in names)
        rows.append(f"<tr><td class='l'>{_e(row['model'])}</td>{cells}</tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _figure(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (f"<section class='card' id='{_e(plot.key)}'><h2>{_e(plot.title)}</h2><figure>"
            f"<img src='data:image/png;base64,{data}' width='{plot.width}' height='{plot.height}' "
            f"alt='{_e(plot.title)}'><figcaption>{_e(plot.caption)}</figcaption></figure></section>")


def _sig_table(sig: Mapping[str, Any], m: str, leaderboard: Sequence[Mapping[str, Any]]) -> str:
    """The significance table of metric ``m``: the best model against each other, in leaderboard order."""
    rows = sig["tests"][m]
    head = ("<tr><th class='l'>comparison</th><th>mean diff</th><th>wins / ties / losses</th>"
            "<th>Wilcoxon W</th><th>p</th><th>p (Holm)</th><th>t</th><th>p</th><th>p (Holm)</th></tr>")
    body = []
    order = [r["model"] for r in leaderboard if r["model"] in rows]
    for name in order:
        r = rows[name]
        w, t = r["wilcoxon"], r["ttest"]
        cls = "sig" if w["p_holm"] <= sig.get("alpha", 0.05) else "ns"
        body.append(
            f"<tr><td class='l'>{_e(sig['best'])} vs {_e(name)}</td><td>{r['mean_diff']:+.4f}</td>"
            f"<td>{r['wins']} / {r['ties']} / {r['losses']}</td><td>{_num(w['statistic'], 1)}</td>"
            f"<td>{_p(w['p'])}</td><td class='{cls}'>{_p(w['p_holm'])}</td><td>{_num(t['statistic'], 3)}</td>"
            f"<td>{_p(t['p'])}</td><td>{_p(t['p_holm'])}</td></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _significance(result: Mapping[str, Any]) -> str:
    sig = result["significance"]
    metric = sig["metric"]
    if not sig["tests"].get(metric):
        return ("<section class='card' id='significance'><h2>Significance</h2>"
                "<p class='note'>Only one model: nothing to compare.</p></section>")

    def table(m: str) -> str:
        return _sig_table(sig, m, result["leaderboard"])

    others = [m for m in sig["tests"] if m != metric]
    more = "".join(f"<h3 style='margin-top:16px'>{_e(m)}</h3><div class='scroll'>{table(m)}</div>" for m in others)
    note = (f"The best model by mean {_e(metric)}, <b>{_e(sig['best'])}</b>, against each other model. Unit: "
            f"{_e(sig['unit'])} ({sig['n_users']} users). Wins: users for whom {_e(sig['best'])} scores higher. "
            f"{_e(sig['correction'])}. Both tests are two-sided.")
    return (f"<section class='card' id='significance'><h2>Significance ({_e(metric)})</h2><p class='note'>{note}</p>"
            f"<div class='scroll'>{table(metric)}</div>"
            f"<details><summary>Every other metric ({len(others)})</summary>{more}</details></section>")


def _tuning(result: Mapping[str, Any]) -> str:
    head = ("<tr><th class='l'>model</th><th class='l'>search</th><th>trials</th><th>best valid</th>"
            "<th>time</th><th class='l'>parameters used (split 1)</th></tr>")
    body = []
    # A cold-start result has a leaderboard per task: list the models in their own order.
    order = result["models"] if result.get("tasks") else [row["model"] for row in result["leaderboard"]]
    for name in order:
        e = result["results"][name]
        t = e["tuning"][0]
        how = "tuned" if t.get("tuned") else f"not tuned ({t.get('reason')})"
        if t.get("timed_out"):
            how += ", stopped by the time box"
        params = json.dumps({**e.get("best_params", {}), **e.get("refit_params", {})}, sort_keys=True)
        # Trials that ran to their end, as in the header; those the time box stopped mid-fit do not count.
        trials = sum(x.get("n_trials", 0) - x.get("n_time_boxed", 0) for x in e["tuning"])
        asked = sum(x.get("n_requested", result["trials"]) for x in e["tuning"] if x.get("tuned") or x.get("timed_out"))
        shown = f"{trials} of {asked}" if asked else str(trials)
        body.append(f"<tr><td class='l'>{_e(name)}</td><td class='l'>{_e(how)}</td><td>{shown}</td>"
                    f"<td>{_num(t.get('best_value'))}</td><td>{_secs(e.get('tune_seconds')) if t.get('tuned') else '—'}</td>"
                    f"<td class='l'><code>{_e(params)}</code></td></tr>")
    note = (f"Each model was tuned on the validation split only, with the same budget ({result['trials']} trials"
            + (f", {result['timeout_per_model']:g} s" if result.get("timeout_per_model") else "")
            + f") and seed {result['seeds'][0]}, maximising "
            + (_e(result["objective"]) if result.get("objective") else f"validation {_e(result['metric'])}")
            + ". The chosen parameters "
            "(and the epoch count early stopping picked) were then refit on the full training data once per seed.")
    return (f"<section class='card' id='tuning'><h2>Tuning</h2><p class='note'>{note}</p><div class='scroll'>"
            f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div></section>")


def _reproduce(result: Mapping[str, Any]) -> str:
    cfg = result.get("config")
    if cfg:
        origin = (f"This run came from <code>{_e(cfg.get('path'))}</code> (sha256 <code>{_e(str(cfg.get('sha256'))[:16])}…"
                  f"</code>): <code>gan4rec compare --config {_e(cfg.get('path'))}</code> reproduces it.")
    else:
        origin = "This run was configured by command-line flags."
    origin += (" The effective experiment below (written next to this report as <code>experiment.toml</code>) "
               "reproduces it with <code>gan4rec compare --config experiment.toml</code>; paths in it are relative "
               "to the directory the command ran in.")
    splits = "".join(
        f"<tr><td class='l'>{s['index'] + 1}</td><td>{s['split_seed']}</td><td class='l fp'><code>{_e(s['fingerprint'])}</code></td>"
        f"<td>{s['dataset'].get('n_fit', 0):,}</td><td>{s['dataset'].get('n_valid', 0):,}</td>"
        f"<td>{s['dataset'].get('n_test', 0):,}</td></tr>"
        for s in result["splits"])
    split_table = ("<table><thead><tr><th class='l'>split</th><th>seed</th><th class='l'>fingerprint (sha256)</th>"
                   f"<th>train</th><th>valid</th><th>test</th></tr></thead><tbody>{splits}</tbody></table>")
    versions = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in result["versions"].items())
    facts = [("created", _when(result)), ("model seeds", ", ".join(map(str, result["seeds"]))),
             ("models run", ", ".join(result["models"]))]
    if result.get("skipped"):
        facts.append(("skipped", ", ".join(f"{n} ({w})" for n, w in result["skipped"].items())))
    fact_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    protocol = json.dumps(result["protocol"], indent=2)
    source = ""
    if cfg and cfg.get("text"):
        source = f"<details><summary>Config file as read ({_e(cfg.get('path'))})</summary><pre>{_e(cfg['text'])}</pre></details>"
    return (f"<section class='card' id='reproduce'><h2>Reproduce</h2><p class='note'>{origin}</p>"
            f"<div class='grid2'><div><h3>Run</h3><table class='kv'>{fact_rows}</table></div>"
            f"<div><h3>Versions</h3><table class='kv'>{versions}</table></div></div>"
            f"<h3 style='margin-top:18px'>Splits</h3><div class='scroll'>{split_table}</div>"
            f"<h3 style='margin-top:18px'>Experiment (experiment.toml)</h3><pre>{_e(result.get('experiment_toml', ''))}</pre>"
            f"{source}<details><summary>Protocol and evaluation rules</summary><pre>{_e(protocol)}</pre></details>"
            "</section>")


# ---------------------------------------------------------------------------------------------- page
def render_html(result: Mapping[str, Any], plots: Sequence[Plot] | None = None) -> str:
    """The whole report page as a string.

    Parameters
    ----------
    result
        A :func:`gan4rec.compare.compare` result (or the same dict read back from JSON).
    plots
        Figures to embed; ``None`` draws them with :func:`gan4rec.report.plots.make_plots` (the page is
        still written, without figures and with a notice, when matplotlib is not installed).
    """
    warning = ""
    cold = bool(result.get("tasks"))
    if plots is None:
        try:
            from gan4rec.report.plots import make_plots

            plots = make_plots(result)
        except ImportError:
            log.warning("matplotlib is not installed: the report has no figures (pip install 'gan4rec[report]')")
            plots = []
            warning = ("<div class='warn'>matplotlib is not installed, so this report has no figures. "
                       "Install it with <code>pip install 'gan4rec[report]'</code> and run again.</div>")
    from gan4rec import __version__

    figures = "".join(_figure(p) for p in plots)
    title = (f"gan4rec · cold-start comparison on {result['metric']}" if cold
             else f"gan4rec · {result['best']} leads on {result['metric']}")
    board, sig = (_task_leaderboard(result), _task_significance(result)) if cold else (
        _leaderboard(result), _significance(result))
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"{_hero(result)}<main>{warning}{board}{figures}{sig}{_tuning(result)}"
        f"{_reproduce(result)}<footer>Generated by gan4rec {_e(__version__)} · {_e(_when(result))}"
        "</footer></main></body></html>\n"
    )


def write_report(result: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html``, ``out_dir/results.json`` and ``out_dir/experiment.toml`` (atomically).

    Returns
    -------
    pathlib.Path
        The path of ``report.html``.
    """
    from gan4rec.atomic import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = render_html(result)
    atomic_write_text(out / "results.json", json.dumps(result, indent=2, allow_nan=False) + "\n")
    if result.get("experiment_toml"):
        atomic_write_text(out / "experiment.toml", result["experiment_toml"])
    path = atomic_write_text(out / "report.html", page)
    log.info("wrote %s", path)
    return Path(path)
