"""The report's figures, drawn with matplotlib's Agg canvas from a :func:`gan4rec.compare.compare` result.

Every function takes the JSON-ready result dict (so a report can be redrawn from a saved ``results.json``)
and returns a :class:`Plot` holding PNG bytes, or ``None`` when the result has nothing to show (e.g. no
model logged epochs). Figures are built on :class:`matplotlib.figure.Figure` directly, never through
``pyplot``: no global figure registry, no backend switch, nothing left open. Style comes from one fixed
``rc_context`` (DejaVu Sans, which ships with matplotlib, so text renders the same everywhere) and the PNG
metadata carries no version or date, so the same result gives byte-identical images.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "PALETTE",
    "Plot",
    "cost",
    "figure_png",
    "gan_curves",
    "make_plots",
    "metric_bars",
    "model_colors",
    "paired_outcomes",
    "popularity_bias",
    "task_bars",
    "training_curves",
    "validation_curves",
]

log = logging.getLogger(__name__)

#: Categorical colours, distinguishable for the common colour-vision deficiencies; model i gets colour i.
PALETTE: tuple[str, ...] = (
    "#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0",
)
_INK, _MUTED, _GRID = "#1f2937", "#6b7280", "#e5e7eb"
_WIDTH = 10.0  # inches; at _DPI this is about the report's content width at 1.4x density
_DPI = 140
_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlepad": 8.0,
    "axes.labelsize": 9.5,
    "axes.labelcolor": _INK,
    "axes.edgecolor": "#9ca3af",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": _GRID,
    "grid.linewidth": 0.8,
    "xtick.color": _MUTED,
    "ytick.color": _MUTED,
    "xtick.labelcolor": _INK,
    "ytick.labelcolor": _INK,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "lines.linewidth": 1.8,
    "lines.markersize": 4.5,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "text.color": _INK,
    "svg.hashsalt": "gan4rec",
}
# History keys that are bookkeeping, not training diagnostics.
_NOT_DIAGNOSTIC = ("epoch", "seconds", "valid_seconds")


@dataclass(frozen=True)
class Plot:
    """One figure of the report.

    Attributes
    ----------
    key
        Stable identifier (also the HTML anchor), e.g. ``"metric-bars"``.
    title
        Heading shown above the image.
    caption
        What the figure shows and how to read it.
    png
        The image, PNG bytes.
    width, height
        Pixel size of the PNG.
    """

    key: str
    title: str
    caption: str
    png: bytes
    width: int
    height: int


# ---------------------------------------------------------------------------------------------- helpers
def _new_figure(height: float, ncols: int = 1, nrows: int = 1, **kw: Any) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(_WIDTH, height), dpi=_DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def figure_png(fig: Any) -> tuple[bytes, int, int]:
    """Render ``fig`` to PNG bytes (Agg, no metadata) and return them with the pixel size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    width, height = canvas.get_width_height()
    return buf.getvalue(), int(width), int(height)


def _render(key: str, title: str, caption: str, draw: Callable[[], Any]) -> Plot | None:
    import matplotlib

    with matplotlib.rc_context(_STYLE):  # type: ignore[arg-type]  # stubs want a Literal-keyed dict
        fig = draw()
        if fig is None:
            return None
        png, w, h = figure_png(fig)
    return Plot(key=key, title=title, caption=caption, png=png, width=w, height=h)


def model_colors(result: Mapping[str, Any]) -> dict[str, str]:
    """A fixed colour per model, by its position in the experiment's model list."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(result["models"])}


def _ranked(result: Mapping[str, Any]) -> list[str]:
    return [row["model"] for row in result["leaderboard"]]


def _family_k(metric: str) -> tuple[str, int]:
    family, _, k = metric.partition("@")
    return family, int(k)


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    if p < 1e-4:
        return f"{p:.0e}"
    return f"{p:.3g}" if p < 0.1 else f"{p:.2f}"


def _history_rows(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    hist = entry.get("history") or {}
    return list(hist.get("fit") or hist.get("refit") or [])


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r.get("epoch"), r.get(key)) for r in rows]
    pts = [(float(e), float(v)) for e, v in pts if isinstance(e, (int, float)) and isinstance(v, (int, float))
           and math.isfinite(v)]
    if not pts:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(pts, dtype=np.float64)  # (n, 2)
    return arr[:, 0], arr[:, 1]


def _diagnostic_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for r in rows:
        for key, value in r.items():
            if key in _NOT_DIAGNOSTIC or key.startswith("valid_") or not isinstance(value, (int, float)):
                continue
            keys[key] = None
    return [k for k in keys if len(_series(rows, k)[0]) > 0]


def _mark_epoch(ax: Any, epoch: Any) -> None:
    if isinstance(epoch, (int, float)):
        ax.axvline(float(epoch), color=_MUTED, linestyle=":", linewidth=1.2, zorder=1)


# ---------------------------------------------------------------------------------------------- figures
def metric_bars(result: Mapping[str, Any]) -> Plot | None:
    """Bars of the protocol metric's family at every K, with 95% confidence intervals over users."""
    family, k_main = _family_k(result["metric"])
    ks = [int(k) for k in result["protocol"]["ks"]]
    models = _ranked(result)
    colors = model_colors(result)

    def draw() -> Any:
        fig, axes = _new_figure(3.6)
        ax = axes[0, 0]
        n_k = len(ks)
        width = 0.8 / n_k
        x = np.arange(len(models), dtype=np.float64)
        for j, k in enumerate(ks):
            name = f"{family}@{k}"
            means, lows, highs = [], [], []
            for m in models:
                ci = result["results"][m]["user_ci95"].get(name) or {}
                mean = ci.get("mean", result["results"][m]["metrics"]["test"].get(name))
                means.append(np.nan if mean is None else mean)
                lows.append(mean - ci["low"] if ci.get("low") is not None and mean is not None else 0.0)
                highs.append(ci["high"] - mean if ci.get("high") is not None and mean is not None else 0.0)
            pos = x - 0.4 + width * (j + 0.5)
            # Lighter shades for smaller K, the model's own colour at the metric's K.
            alpha = 0.35 + 0.65 * (j + 1) / n_k
            bars = ax.bar(pos, means, width * 0.92, color=[colors[m] for m in models], alpha=alpha,
                          yerr=[lows, highs], capsize=2.5, error_kw={"elinewidth": 1.0, "ecolor": _INK},
                          label=f"@{k}")
            if k == k_main:
                for rect, value, hi in zip(bars, means, highs, strict=True):
                    if math.isfinite(value):
                        ax.annotate(f"{value:.3f}", (rect.get_x() + rect.get_width() / 2, value + hi),
                                    xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                                    fontsize=8, color=_INK)
        ax.set_xticks(x, models)
        ax.set_ylabel(f"{family}@K (test)")
        ax.set_ylim(bottom=0)
        ax.grid(axis="x", visible=False)
        handles = [_shade_handle(0.35 + 0.65 * (j + 1) / n_k, f"{family}@{k}") for j, k in enumerate(ks)]
        ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=n_k)
        ax.margins(y=0.12)
        return fig

    caption = (f"Test {family}@K of each model, bars shaded by K (darkest: @{k_main}, the protocol metric, "
               "labelled). Whiskers: 95% confidence interval of the mean over test users (each user's value "
               "averaged over seeds). Models are in leaderboard order.")
    return _render("metric-bars", f"{family}@K with 95% confidence intervals", caption, draw)


def _shade_handle(alpha: float, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=_MUTED, alpha=alpha, label=label)


def paired_outcomes(result: Mapping[str, Any]) -> Plot | None:
    """Per-user wins / ties / losses of the best model against each other model, with Holm p-values."""
    sig = result["significance"]
    metric, best = sig["metric"], sig["best"]
    rows = sig["tests"].get(metric) or {}
    others = [m for m in _ranked(result) if m in rows]
    if not others:
        return None

    def draw() -> Any:
        fig, axes = _new_figure(0.9 + 0.42 * len(others))
        ax = axes[0, 0]
        y = np.arange(len(others))[::-1]
        parts = [("wins", f"{best} better", "#4269d0"), ("ties", "tie", "#d1d5db"), ("losses", "other better", "#ff725c")]
        left = np.zeros(len(others))
        for key, label, color in parts:
            share = np.array([rows[m][key] / max(rows[m]["wins"] + rows[m]["ties"] + rows[m]["losses"], 1)
                              for m in others])
            ax.barh(y, share, left=left, color=color, height=0.62, label=label)
            for yi, l, s in zip(y, left, share, strict=True):
                if s >= 0.06:
                    ax.text(l + s / 2, yi, f"{100 * s:.0f}%", ha="center", va="center", fontsize=8,
                            color="white" if key != "ties" else _INK)
            left += share
        for yi, m in zip(y, others, strict=True):
            p = rows[m]["wilcoxon"].get("p_holm")
            mark = " *" if p is not None and p <= sig.get("alpha", 0.05) else ""
            ax.text(1.01, yi, f"p = {_fmt_p(p)}{mark}", va="center", ha="left", fontsize=8.5, color=_INK,
                    transform=ax.get_yaxis_transform())
        ax.set_yticks(y, [f"{best} vs {m}" for m in others])
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(_percent())
        ax.set_xlabel(f"share of {sig['n_users']} test users ({metric})")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3)
        return fig

    caption = (f"For each test user, is {best} (the best by mean {metric}) better than, equal to or worse than "
               f"the other model? Right: two-sided paired Wilcoxon signed-rank p-value across users, "
               f"Holm-corrected over the {len(others)} comparison(s); * marks p <= {sig.get('alpha', 0.05)}.")
    return _render("paired-outcomes", f"Per-user comparison with the best model ({best})", caption, draw)


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)


def _log_percent() -> Any:
    from matplotlib.ticker import FuncFormatter

    # PercentFormatter would print 0.1% and 0.01% as "0%" on a log axis.
    return FuncFormatter(lambda v, _pos: f"{100 * v:.{max(0, -math.floor(math.log10(100 * v)))}f}%" if v > 0 else "")


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def popularity_bias(result: Mapping[str, Any]) -> Plot | None:
    """Share of recommendations per item-popularity decile against the training distribution; coverage."""
    pop = result.get("popularity")
    if not pop or not pop.get("models"):
        return None
    models = _ranked(result)
    colors = model_colors(result)
    n_b = int(pop["n_buckets"])

    def draw() -> Any:
        fig, axes = _new_figure(3.7, ncols=2, gridspec_kw={"width_ratios": [1.75, 1.0]})
        ax, ax2 = axes[0, 0], axes[0, 1]
        x = np.arange(1, n_b + 1)
        train = np.asarray(pop["train_share"], dtype=np.float64)
        ax.bar(x, train, width=0.8, color="#e5e7eb", edgecolor="#cbd5e1", label="training interactions")
        floor = 1e-4
        for m in models:
            share = np.asarray(pop["models"][m]["share"], dtype=np.float64)
            ax.plot(x, np.maximum(share, floor), marker="o", color=colors[m], label=m)
        ax.set_yscale("log")
        ax.set_ylim(floor * 0.8, 1.6)  # headroom: a marker at 100% stays whole
        ax.yaxis.set_major_formatter(_log_percent())
        ax.set_xticks(x, [f"{i}" for i in x])
        ax.set_xlabel(f"item popularity decile (1 = most popular {100 // n_b}% of items)")
        ax.set_ylabel(f"share of top-{pop['k']} recommendations")
        ax.set_title("Where recommendations go", fontsize=9.5)
        ax.legend(loc="upper right", ncols=2)
        ax.grid(axis="x", visible=False)

        cov = [100 * pop["models"][m]["coverage"] for m in models]
        y = np.arange(len(models))[::-1]
        ax2.barh(y, cov, color=[colors[m] for m in models], height=0.62)
        ref = pop.get("train_mean_popularity") or 0.0
        for yi, m, c in zip(y, models, cov, strict=True):
            mp = pop["models"][m]["mean_popularity"]
            ratio = f"pop x{mp / ref:.2f}" if ref else ""
            ax2.text(c + 1.5, yi, f"{c:.0f}%  {ratio}", va="center", fontsize=8, color=_INK)
        ax2.set_yticks(y, models)
        ax2.set_xlim(0, 118)
        ax2.set_xticks([0, 25, 50, 75, 100])
        ax2.set_xlabel(f"catalogue coverage @{pop['k']} (%)")
        ax2.set_title("Coverage and popularity lift", fontsize=9.5)
        ax2.grid(axis="y", visible=False)
        return fig

    caption = (f"Left: items are cut into {n_b} equal groups by training popularity; grey bars are the share of "
               f"training interactions in each group, lines the share of all top-{pop['k']} recommendations "
               "(log scale; zero drawn at the floor). A model tracking the grey bars recommends like users "
               "consume; a steeper line concentrates on the head. Right: share of the catalogue recommended to "
               "at least one test user, and the mean popularity of recommended items relative to a training "
               "interaction's item (x1.00 = no popularity amplification).")
    return _render("popularity", "Popularity bias and coverage", caption, draw)


def cost(result: Mapping[str, Any]) -> Plot | None:
    """Tuning, fit and recommendation wall time per model."""
    models = _ranked(result)
    colors = model_colors(result)
    n_users = result["significance"]["n_users"]
    panels = [("tune_seconds", "tuning (all trials)"), ("fit_seconds", "fit (final, mean over runs)"),
              ("recommend_seconds", f"recommend top-K, {n_users} users")]

    def draw() -> Any:
        fig, axes = _new_figure(0.95 + 0.36 * len(models), ncols=3, sharey=True)
        y = np.arange(len(models))[::-1]
        for ax, (key, label) in zip(axes[0], panels, strict=True):
            vals = np.array([float(result["results"][m].get(key) or 0.0) for m in models])
            positive = vals[vals > 0]
            log_scale = positive.size > 1 and positive.max() / positive.min() > 50
            # On a log axis a zero has no bar: it starts and ends at the axis' left edge.
            left = float(positive.min()) / 3 if log_scale else 0.0
            shown = np.where(vals > 0, vals, left)
            ax.barh(y, shown - left, left=left, color=[colors[m] for m in models], height=0.62)
            if log_scale:
                ax.set_xscale("log")
                ax.set_xlim(left=left)
            for yi, v, s in zip(y, vals, shown, strict=True):
                text = _fmt_seconds(v) if v > 0 else ("not tuned" if key == "tune_seconds" else "0")
                ax.text(s, yi, f" {text}", va="center", fontsize=8, color=_INK)
            ax.set_title(label, fontsize=9.5)
            ax.set_xlabel("seconds" + (" (log)" if log_scale else ""))
            ax.margins(x=0.28)
            ax.grid(axis="y", visible=False)
        axes[0, 0].set_yticks(y, models)
        return fig

    caption = ("Wall time on this machine. Tuning: all trials of the validation search (the same budget for "
               "every model). Fit: the final refit on the full training data. Recommend: scoring and ranking "
               "every item for all test users (top-K, training items excluded).")
    return _render("cost", "Cost: tuning, training and recommendation time", caption, draw)


def _fmt_seconds(v: float) -> str:
    if v < 1e-4:
        return "< 0.1 ms"
    if v < 0.01:
        return f"{1000 * v:.1f} ms"
    return f"{v:.2f} s" if v < 100 else f"{v:.0f} s"


def validation_curves(result: Mapping[str, Any]) -> Plot | None:
    """Validation metric per epoch for every model that logged one, the early-stopping epoch marked."""
    colors = model_colors(result)
    curves = []
    for m in _ranked(result):
        entry = result["results"][m]
        hist = entry.get("history") or {}
        key = hist.get("selection_key")
        if not key:
            continue
        ep, val = _series(hist.get("fit") or [], key)
        if len(ep):
            curves.append((m, key, ep, val, hist.get("best_epoch")))
    if not curves:
        return None
    keys = sorted({c[1] for c in curves})

    def draw() -> Any:
        fig, axes = _new_figure(3.4)
        ax = axes[0, 0]
        for m, _key, ep, val, best in curves:
            ax.plot(ep, val, marker="o", color=colors[m], label=m, markersize=3.5)
            if best is not None and best in ep:
                bv = val[list(ep).index(best)]
                ax.plot([best], [bv], marker="*", markersize=15, color=colors[m], markeredgecolor=_INK,
                        markeredgewidth=0.8, zorder=5)
                ax.annotate(f"epoch {int(best)}", (best, bv), xytext=(6, 6), textcoords="offset points",
                            fontsize=8, color=_INK)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel(" / ".join(k.removeprefix("valid_") for k in keys) + " (validation)")
        ax.legend(loc="lower right")
        ax.margins(y=0.15)
        return fig

    first = result["results"][curves[0][0]]["history"]
    caption = ("Validation metric after each validated epoch of the fit with validation (split "
               f"{first.get('split', 0) + 1}, seed {first.get('seed', 0)}, tuned params). The star marks the "
               "epoch whose weights early stopping kept; the final model is refit on the full training data "
               "for that many epochs.")
    return _render("validation", "Validation metric per epoch (early stopping)", caption, draw)


def training_curves(result: Mapping[str, Any]) -> Plot | None:
    """Per-epoch training diagnostics (losses...) of the non-adversarial models that log them."""
    panels = []
    for m in _ranked(result):
        entry = result["results"][m]
        if entry.get("adversarial"):
            continue
        rows = _history_rows(entry)
        keys = _diagnostic_keys(rows)[:4]
        if keys:
            panels.append((m, rows, keys, (entry.get("history") or {}).get("best_epoch")))
    if not panels:
        return None
    colors = model_colors(result)
    ncols = max(len(p[2]) for p in panels)

    def draw() -> Any:
        fig, axes = _new_figure(0.5 + 2.1 * len(panels), ncols=ncols, nrows=len(panels))
        for i, (m, rows, keys, best) in enumerate(panels):
            for j in range(ncols):
                ax = axes[i, j]
                if j >= len(keys):
                    ax.set_visible(False)
                    continue
                ep, val = _series(rows, keys[j])
                ax.plot(ep, val, color=colors[m], marker="o" if len(ep) <= 30 else None, markersize=3)
                _mark_epoch(ax, best)
                _integer_epochs(ax)
                ax.set_title(f"{m}: {keys[j]}", fontsize=9.5)
                if i == len(panels) - 1:
                    ax.set_xlabel("epoch")
        return fig

    caption = ("Training diagnostics logged per epoch (the model's own loss terms) during the fit with "
               "validation; the dotted line is the epoch early stopping kept.")
    return _render("training", "Training curves", caption, draw)


def gan_curves(result: Mapping[str, Any]) -> Plot | None:
    """Generator / discriminator losses and mean D(real) / D(fake) per epoch of the adversarial models."""
    panels = []
    for m in _ranked(result):
        entry = result["results"][m]
        if not entry.get("adversarial"):
            continue
        rows = _history_rows(entry)
        keys = _diagnostic_keys(rows)
        d_keys = [k for k in keys if "real" in k.lower() or "fake" in k.lower()]
        loss_keys = [k for k in keys if "loss" in k.lower() and k not in d_keys] or [k for k in keys if k not in d_keys]
        if loss_keys or d_keys:
            panels.append((m, rows, loss_keys[:4], d_keys[:4], (entry.get("history") or {}).get("best_epoch")))
    if not panels:
        return None
    styles = ["-", "--", "-.", ":"]

    def draw() -> Any:
        fig, axes = _new_figure(0.6 + 2.6 * len(panels), ncols=2, nrows=len(panels))
        for i, (m, rows, loss_keys, d_keys, best) in enumerate(panels):
            ax_l, ax_d = axes[i, 0], axes[i, 1]
            for j, key in enumerate(loss_keys):
                ep, val = _series(rows, key)
                ax_l.plot(ep, val, linestyle=styles[j % 4], color=PALETTE[j % len(PALETTE)], label=key)
            ax_l.set_title(f"{m}: generator / discriminator loss", fontsize=9.5)
            _integer_epochs(ax_l)
            _integer_epochs(ax_d)
            if loss_keys:
                ax_l.legend(loc="best")
            _mark_epoch(ax_l, best)
            if d_keys:
                lo, hi = math.inf, -math.inf
                for j, key in enumerate(d_keys):
                    ep, val = _series(rows, key)
                    ax_d.plot(ep, val, linestyle=styles[j % 4], color=PALETTE[(j + 2) % len(PALETTE)], label=key)
                    if len(val):
                        lo, hi = min(lo, float(val.min())), max(hi, float(val.max()))
                if 0 <= lo and hi <= 1:
                    ax_d.set_ylim(-0.02, 1.02)
                    ax_d.axhline(0.5, color=_MUTED, linewidth=0.8, linestyle="--")
                ax_d.legend(loc="best")
                _mark_epoch(ax_d, best)
                ax_d.set_title(f"{m}: mean D(real) / D(fake)", fontsize=9.5)
            else:
                ax_d.set_visible(False)
            if i == len(panels) - 1:
                ax_l.set_xlabel("epoch")
                ax_d.set_xlabel("epoch")
        return fig

    caption = ("Adversarial training per epoch of the fit with validation. Left: the generator's and the "
               "discriminator's losses. Right: the discriminator's mean output on real and on generated "
               "(fake) samples; a discriminator that wins outright pushes them to 1 and 0, while 0.5 for both is "
               "an equilibrium. The dotted line is the epoch early stopping kept. IRGAN's generator loss is "
               "a policy-gradient surrogate with a mean baseline: it sits near 0 whenever the rewards are alike "
               "and is not a loss that should fall. With few discriminator steps per round (a large D batch on "
               "small data) D(real) and D(fake) stay near 0.5 and G barely moves from its pre-trained start: a "
               "weak game, not a broken one (smaller D batches let D separate them, without a better G).")
    return _render("gan", "GAN training: losses and discriminator outputs", caption, draw)


#: The figures of a report, in page order.
def task_bars(result: Mapping[str, Any]) -> Plot | None:
    """A cold-start comparison: the protocol metric of each model in each task, with 95% CIs over users."""
    metric, tasks, models = result["metric"], list(result["tasks"]), list(result["models"])
    colors = model_colors(result)

    def draw() -> Any:
        fig, axes = _new_figure(3.6)
        ax = axes[0, 0]
        width = 0.8 / len(models)
        for j, m in enumerate(models):
            entry = result["results"][m]
            for i, task in enumerate(tasks):
                pos = i - 0.4 + width * (j + 0.5)
                test = entry["metrics"]["test"][task]
                if test is None:  # this model cannot rank the task
                    ax.annotate("cannot", (pos, 0), xytext=(0, 3), textcoords="offset points", ha="center",
                                va="bottom", rotation=90, fontsize=7.5, color=_MUTED)
                    continue
                mean = test[metric]
                ci = (entry.get("user_ci95", {}).get(task) or {}).get(metric) or {}
                err = [[mean - ci["low"]], [ci["high"] - mean]] if ci.get("low") is not None else None
                ax.bar(pos, mean, width * 0.92, color=colors[m], yerr=err, capsize=2.5,
                       error_kw={"elinewidth": 1.0, "ecolor": _INK}, label=m if i == 0 else None)
                ax.annotate(f"{mean:.3f}", (pos, mean + (err[1][0] if err else 0.0)), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=7.5, color=_INK)
        ax.set_xticks(np.arange(len(tasks), dtype=np.float64), [f"{t} task" for t in tasks])
        ax.set_ylabel(f"{metric} (test)")
        ax.set_ylim(bottom=0)
        ax.grid(axis="x", visible=False)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=min(len(models), 6))
        ax.margins(y=0.15)
        return fig

    caption = (f"Test {metric} of each model in the warm, cold and overall tasks (mean over runs). Whiskers: 95% "
               "confidence interval of the mean over the task's test users (each user's value averaged over seeds). "
               "\"cannot\": the model cannot score cold items.")
    return _render("task-bars", f"{metric} by task", caption, draw)


_FIGURES: tuple[Callable[[Mapping[str, Any]], Plot | None], ...] = (
    metric_bars, paired_outcomes, popularity_bias, validation_curves, gan_curves, training_curves, cost,
)


def make_plots(result: Mapping[str, Any]) -> list[Plot]:
    """Every figure that the result has data for, in page order."""
    out = []
    # A cold-start result has three tasks; the other figures read one flat metric per model.
    for fn in (task_bars,) if result.get("tasks") else _FIGURES:
        plot = fn(result)
        if plot is not None:
            out.append(plot)
        else:
            log.debug("report: no data for %s", fn.__name__)
    return out
