"""The synthesis report: figures (matplotlib, Agg) and one self-contained HTML page, from result dicts.

Figures are drawn from the JSON-ready results of :func:`gan4rec.synth.experiment.evaluate_generator`
(one run) and :func:`gan4rec.synth.experiment.compare` (every generator over seeds), with the PNG
encoder of :func:`gan4rec.report.plots.figure_png`, and embedded as base64 data URIs.
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gan4rec.report.plots import PALETTE, Plot, figure_png

__all__ = ["frontier_plot", "render_page", "run_plots"]

logger = logging.getLogger(__name__)

_REAL, _SYNTH = "#6b7280", PALETTE[0]


def _figure(ncols: int = 1, height: float = 3.4) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, height), dpi=110, layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _plot(key: str, title: str, caption: str, fig: Any) -> Plot:
    png, w, h = figure_png(fig)
    return Plot(key=key, title=title, caption=caption, png=png, width=w, height=h)


def run_plots(result: Mapping[str, Any]) -> list[Plot]:
    """Figures of one generator run: marginals, co-occurrence, TSTR bars, MIA ROC."""
    c = result["curves"]
    label = result["label"]
    plots = []
    fig, (a, b) = _figure(2)
    for ax, key, what in ((a, "pop", "share of users"), (b, "act", "items per user")):
        ax.plot(np.arange(1, len(c[f"{key}_real"]) + 1), c[f"{key}_real"], color=_REAL, label="real (members)")
        ax.plot(np.arange(1, len(c[f"{key}_synth"]) + 1), c[f"{key}_synth"], color=_SYNTH, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("rank")
        ax.set_ylabel(what)
        ax.legend()
    a.set_title("Item popularity")
    b.set_title("User activity")
    m = result["marginals"]
    plots.append(_plot("marginals", "Popularity and activity, real vs synthetic",
                       f"Sorted curves. KS: items {m['item_popularity']['ks']:.3f}, users "
                       f"{m['user_activity']['ks']:.3f}; Gini of items real {m['item_popularity']['gini_real']:.3f}, "
                       f"synthetic {m['item_popularity']['gini_synth']:.3f}.", fig))
    fig, (ax,) = _figure(1, 4.0)
    ax.scatter(c["cooc_real"], c["cooc_synth"], s=4, alpha=0.4, color=_SYNTH)
    hi = float(max(np.max(c["cooc_real"], initial=0), np.max(c["cooc_synth"], initial=0)))
    ax.plot([0, hi], [0, hi], color=_REAL, linewidth=1)
    ax.set_xlabel("real pair share")
    ax.set_ylabel("synthetic pair share")
    plots.append(_plot("cooccurrence", "Co-occurrence of the most popular items",
                       f"Each dot is a pair of the top items; correlation {result['cooccurrence_corr']:.3f}.", fig))
    fig, (ax,) = _figure(1, 3.2)
    names = list(result["real_ndcg"])
    x = np.arange(len(names))
    ax.bar(x - 0.2, [result["real_ndcg"][n] for n in names], 0.4, color=_REAL, label="trained on real members")
    ax.bar(x + 0.2, [result["tstr_ndcg"][n] for n in names], 0.4, color=_SYNTH, label=f"trained on {label}")
    ax.set_xticks(x, names)
    ax.set_ylabel("NDCG@20 on held-out real users")
    ax.legend()
    plots.append(_plot("tstr", "Train on synthetic, test on real",
                       f"TSTR ratio (EASE) {result['tstr_ratio']:.3f}; Kendall tau of the model ranking "
                       f"{result['kendall_tau']:.3f}.", fig))
    fig, (ax,) = _figure(1, 4.0)
    ax.plot(c["mia_fpr"], c["mia_tpr"], color=_SYNTH, label=f"DCR attacker, AUC {result['mia_auc']:.3f}")
    if "shadow_fpr" in c:
        ax.plot(c["shadow_fpr"], c["shadow_tpr"], color=PALETTE[2],
                label=f"shadow attacker, AUC {result['mia_auc_shadow']:.3f}")
    ax.plot([0, 1], [0, 1], color=_REAL, linewidth=1, linestyle="--")
    ax.set_xlabel("false positive rate (non-members)")
    ax.set_ylabel("true positive rate (members)")
    ax.legend()
    plots.append(_plot("mia-roc", "Membership inference ROC",
                       f"AUC 0.5: members and non-members look alike. Exact copies: {result['exact_copy_rate']:.3f}; "
                       f"median DCR members {result['dcr_members_median']:.3f}, non-members "
                       f"{result['dcr_nonmembers_median']:.3f}.", fig))
    return plots


def frontier_plot(summary: Mapping[str, Mapping[str, Any]], title: str = "Privacy-utility frontier",
                  auc_key: str = "mia_auc") -> Plot:
    """TSTR ratio (EASE) against MIA AUC, one point per generator, mean with 1 std error bars over seeds.

    ``auc_key``: ``"mia_auc"`` (DCR attacker) or ``"mia_auc_worst"`` (the stronger of DCR and shadow).
    """
    fig, (ax,) = _figure(1, 4.2)
    for j, (label, s) in enumerate(summary.items()):
        if auc_key not in s:
            auc_key = "mia_auc"
        xm, xs = s[auc_key]["mean"], s[auc_key].get("std") or 0.0
        ym, ys = s["tstr_ratio"]["mean"], s["tstr_ratio"].get("std") or 0.0
        ax.errorbar([xm], [ym], xerr=[xs], yerr=[ys], fmt="o", color=PALETTE[j % len(PALETTE)], capsize=3)
        ax.annotate(label, (xm, ym), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.axvline(0.55, color=_REAL, linewidth=1, linestyle=":")
    attacker = "stronger of DCR and shadow attackers" if auc_key == "mia_auc_worst" else "DCR attacker"
    ax.set_xlabel(f"membership-inference AUC ({attacker}; 0.5 = private)")
    ax.set_ylabel("TSTR ratio, EASE (1 = as good as real)")
    return _plot("frontier", title, "Up and to the left is better; the dotted line is AUC 0.55.", fig)


def _table(rows: Sequence[Sequence[Any]], head: Sequence[str]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _fig_html(p: Plot) -> str:
    data = base64.b64encode(p.png).decode("ascii")
    return (f"<section id='{html.escape(p.key)}'><h2>{html.escape(p.title)}</h2>"
            f"<img alt='{html.escape(p.title)}' width='{p.width}' src='data:image/png;base64,{data}'>"
            f"<p class='cap'>{html.escape(p.caption)}</p></section>")


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1120px;margin:2em auto;color:#1f2937}"
        "img{max-width:100%;height:auto}table{border-collapse:collapse;font-size:13px}"
        "td,th{border-bottom:1px solid #e5e7eb;padding:3px 8px;text-align:right}.cap{color:#6b7280}")


def render_page(title: str, headline: Mapping[str, Any], plots: Sequence[Plot], table: tuple[list[str], list[list[Any]]] | None = None) -> str:
    """A self-contained HTML page: a title, a table of headline figures, an optional table, the figures."""
    head = _table([[k, (f"{v:.4f}" if isinstance(v, float) else v)] for k, v in headline.items()], ["figure", "value"])
    extra = _table(table[1], table[0]) if table else ""
    figs = "".join(_fig_html(p) for p in plots)
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{head}{extra}{figs}</body></html>\n")
