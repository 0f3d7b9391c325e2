"""``gan4rec synthesize``: fit a generator on real users, write synthetic users and a fidelity/privacy report.

::

    gan4rec synthesize --dataset ml-100k --users 500 --out s.parquet --report DIR --seed 0
    gan4rec synthesize --dataset ml-100k --compare --seeds 5 --report DIR

The generator is fitted on the *members* (half of the users, chosen by ``--seed``), so that the released
file is exactly what the privacy figures measure: members against the non-members it never saw, utility
on held-out users (see :mod:`gan4rec.synth.experiment`). Everything is computed before anything is
written; each file is then written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_arguments", "run"]

logger = logging.getLogger(__name__)

_OUT_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv")
_EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``synthesize`` subcommand's flags."""
    from gan4rec.synth.generators import GENERATORS

    src = parser.add_argument_group("data source (one of)")
    src.add_argument("--dataset", metavar="NAME", help="dataset by name (ml-100k, ml-latest-small, ...)")
    src.add_argument("--data", metavar="FILE", help="one interactions file (csv, tsv, parquet, uir, movielens)")
    src.add_argument("--format", choices=["auto", "uir", "csv", "tsv", "parquet", "movielens"], default=None)
    src.add_argument("--sep", default=None, help="field separator of CSV-like files")
    src.add_argument("--min-rating", type=float, default=None, help="positive when rating >= this (default: all)")
    g = parser.add_argument_group("generation")
    g.add_argument("--generator", choices=list(GENERATORS), default="gan", help="default: gan (WGAN-GP)")
    g.add_argument("--params", metavar="JSON", default=None,
                   help='generator parameters as a JSON object, e.g. \'{"steps": 800}\' or \'{"epsilon": 3}\'')
    g.add_argument("--users", type=int, default=None, help="synthetic users to generate (default: as many as members)")
    g.add_argument("--seed", type=int, default=0, help="seed of the member split, the generator and sampling")
    g.add_argument("--out", metavar="FILE", help="synthetic interactions with raw item ids (.parquet, .csv, .tsv)")
    g.add_argument("--report", metavar="DIR", help="folder for metrics.json and report.html")
    g.add_argument("--no-shadow", action="store_true", help="skip the shadow-model attacker (it refits the generator)")
    c = parser.add_argument_group("comparison")
    c.add_argument("--compare", action="store_true", help="every generator on the same splits; writes the frontier")
    c.add_argument("--seeds", type=int, default=5, help="--compare: seeds 0..N-1 (default 5)")


def _usage(msg: str) -> int:
    print(f"gan4rec synthesize: error: {msg}", file=sys.stderr)
    return _EXIT_USAGE


def _check(args: argparse.Namespace) -> str | None:
    """The first usage problem of ``args``, or ``None``."""
    if bool(args.dataset) == bool(args.data):
        return "give exactly one of --dataset NAME or --data FILE"
    if args.users is not None and args.users < 1:
        return f"--users {args.users}: expected a positive integer"
    if args.seed < 0:
        return f"--seed {args.seed}: expected a non-negative integer"
    if args.compare:
        if not args.report:
            return "--compare needs --report DIR"
        if args.seeds < 1:
            return f"--seeds {args.seeds}: expected a positive integer"
    elif not (args.out or args.report):
        return "nothing to write: give --out FILE and/or --report DIR"
    if args.out and Path(args.out).suffix.lower() not in _OUT_SUFFIXES:
        return f"--out {args.out}: expected a file ending in {', '.join(_OUT_SUFFIXES)}"
    for flag in ("out", "report"):
        value = getattr(args, flag)
        parent = Path(value).parent if value else None
        if parent is not None and not parent.exists():
            return f"--{flag} {value}: folder {parent} does not exist"
    return None


def _params(text: str | None) -> dict[str, Any] | str:
    if not text:
        return {}
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return f"--params: not valid JSON ({e.msg} at character {e.pos})"
    return obj if isinstance(obj, dict) else "--params: expected a JSON object, e.g. '{\"steps\": 800}'"


def _load(args: argparse.Namespace) -> Any:
    if args.dataset:
        from gan4rec.data.datasets import load_dataset

        kw = {"min_rating": args.min_rating} if args.min_rating is not None else {}
        return load_dataset(args.dataset, **kw)
    from gan4rec.data.io import read_interactions

    kw2: dict[str, Any] = {k: v for k, v in (("format", args.format), ("sep", args.sep),
                                             ("min_rating", args.min_rating)) if v is not None}
    return read_interactions(args.data, **kw2)


def jsonable(obj: Any, digits: int = 6) -> Any:
    """``obj`` with numpy values as lists/floats (rounded to ``digits``) and NaN/inf as ``None``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), digits)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return round(v, digits) if math.isfinite(v) else None
    return obj


def _headline(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("tstr_ratio", "kendall_tau", "mia_auc", "mia_auc_shadow", "mia_auc_worst", "exact_copy_rate", "dcr_members_median",
            "dcr_nonmembers_median", "cooccurrence_corr", "fit_seconds", "sample_seconds")
    return {k: r[k] for k in keys if k in r}


def _run_one(args: argparse.Namespace, data: Any, params: dict[str, Any]) -> int:
    from gan4rec.artifacts import atomic_write_text
    from gan4rec.synth.experiment import evaluate_generator, prepare
    from gan4rec.synth.report import frontier_plot, render_page, run_plots

    ctx = prepare(data, args.seed)
    synth, result = evaluate_generator(ctx, args.generator, params, n_users=args.users, shadow=not args.no_shadow)
    result = {**result, "split": ctx.describe(), "source": args.dataset or str(args.data)}
    page = None
    if args.report:
        summ = {result["label"]: {"mia_auc": {"mean": result["mia_auc"]}, "tstr_ratio": {"mean": result["tstr_ratio"]}}}
        plots = [*run_plots(result), frontier_plot(summ, "Privacy-utility point of this generator")]
        page = render_page(f"gan4rec synthesize · {result['label']} on {result['source']}", _headline(result), plots)
    text = json.dumps(jsonable(result), indent=1, allow_nan=False) + "\n"
    if args.out:
        from gan4rec.data.io import write_interactions

        write_interactions(synth, args.out)
        print(f"wrote {synth.n_users} synthetic users, {synth.nnz} interactions to {args.out}")
    if args.report and page is not None:
        out = Path(args.report)
        out.mkdir(exist_ok=True)
        atomic_write_text(out / "metrics.json", text)
        atomic_write_text(out / "report.html", page)
        print(f"wrote {out / 'report.html'} and {out / 'metrics.json'}")
    for k, v in _headline(result).items():
        print(f"  {k:>22}: {v:.4f}")
    return 0


def _run_compare(args: argparse.Namespace, data: Any) -> int:
    from gan4rec.artifacts import atomic_write_bytes, atomic_write_text
    from gan4rec.synth.experiment import compare
    from gan4rec.synth.report import frontier_plot, render_page

    res = compare(data, list(range(args.seeds)), n_users=args.users, shadow=not args.no_shadow)
    res["source"] = args.dataset or str(args.data)
    summ = res["summary"]
    cols = ["tstr_ratio", "kendall_tau", "mia_auc", "mia_auc_shadow", "mia_auc_worst", "exact_copy_rate",
            "dcr_members_median"]
    rows = [[lab] + [_pm(s.get(c)) for c in cols] for lab, s in summ.items()]
    fr = frontier_plot(summ, f"Privacy-utility frontier, {res['source']}, {args.seeds} seeds", auc_key="mia_auc_worst")
    headline = {"seeds": args.seeds, "target (GAN beats all at AUC<=0.55)": json.dumps(jsonable(res["target"]))[:300]}
    page = render_page(f"gan4rec synthesize --compare on {res['source']}", headline, [fr], (["generator", *cols], rows))
    for r in res["runs"]:
        r.pop("curves", None)
    text = json.dumps(jsonable(res), indent=1, allow_nan=False) + "\n"
    out = Path(args.report)
    out.mkdir(exist_ok=True)
    atomic_write_text(out / "compare.json", text)
    atomic_write_bytes(out / "frontier.png", fr.png)
    atomic_write_text(out / "report.html", page)
    print(f"wrote {out / 'report.html'}, {out / 'compare.json'} and {out / 'frontier.png'}")
    return 0


def _pm(s: dict[str, Any] | None) -> str:
    if not s:
        return "-"
    return f"{s['mean']:.3f} ± {s['std']:.3f}" if s.get("std") is not None else f"{s['mean']:.3f}"


def run(args: argparse.Namespace) -> int:
    """Run ``gan4rec synthesize``; returns the exit code (data errors propagate to the CLI's handler)."""
    problem = _check(args)
    if problem:
        return _usage(problem)
    params = _params(args.params)
    if isinstance(params, str):
        return _usage(params)
    data = _load(args)
    if args.compare:
        return _run_compare(args, data)
    return _run_one(args, data, params)
