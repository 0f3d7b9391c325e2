"""What IRGAN's adversarial phase adds: IRGAN against its own pre-trained start and against tuned BPR-MF.

For each seed, on the CFGAN ML-100K split with the shared honest protocol (validation = 20% of each user's
train items, seed 42; refit on the full train; test read once), three runs of
:func:`gan4rec.experiment.run_on_split`:

- ``irgan``: ``configs/irgan-ml100k.toml`` (tuned on validation, 25 trials);
- ``irgan-start``: the same config with ``epochs=0``, i.e. IRGAN's pre-trained starting point (BPR-MF
  pre-training, early-stopped on validation exactly as inside the ``irgan`` run) with no adversarial round;
- ``bpr``: ``configs/bpr-ml100k.toml`` (tuned on validation with the same 25-trial budget).

IRGAN's pre-training uses BPR-MF's tuned settings (``n_factors``, ``pretrain_lr/l2/batch_size`` in the
IRGAN config are BPR's) and, with an int ``random_state``, is exactly the ``bpr`` model of that seed (tested
in tests/test_irgan.py), early-stopped on the same validation. So ``irgan-start`` IS tuned BPR-MF, seed by
seed, bit for bit, and the paired test of IRGAN against it is also the test against BPR-MF. ``--runs
irgan,irgan-start`` skips the separate ``bpr`` runs (they only re-check that identity, ~5 min per seed);
their test values are then compared with ``benchmarks/results/tune-bpr.json``'s per-seed values.

Significance is computed on per-user test NDCG@20 averaged over the seeds (paired Wilcoxon signed-rank and
t-test across users, two-sided). The JSON records, for every IRGAN run, the adversarial rounds behind the
kept model (``refit_params.epochs``, chosen on validation; it must be > 0).

    python benchmarks/irgan_adversarial_gain.py --seeds 5 --json benchmarks/results/irgan-adversarial-gain.json

Runs one model at a time with one torch thread (the configs say so); about 10-15 min per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GAN4REC_SHARED", ROOT.parent / "shared")) / "datasets" / "cfgan-ml100k"
METRIC = "NDCG@20"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--runs", default="irgan,irgan-start,bpr", help="which of irgan,irgan-start,bpr to run")
    args = ap.parse_args(argv)
    if not (SHARED / "ML100K.train").is_file():
        print(f"skipped: {SHARED} is absent (the CFGAN ML-100K split)")
        return 0

    from gan4rec.atomic import atomic_write_text
    from gan4rec.config import load_config
    from gan4rec.evaluation.significance import paired_ttest, paired_wilcoxon
    from gan4rec.experiment import DataSpec, Protocol, load_split, run_on_split

    irgan_cfg = load_config(ROOT / "configs" / "irgan-ml100k.toml")
    bpr_cfg = load_config(ROOT / "configs" / "bpr-ml100k.toml")
    protocol = Protocol(**{k: (tuple(v) if k == "ks" else v) for k, v in irgan_cfg["protocol"].items()})
    spec = DataSpec(train=str(SHARED / "ML100K.train"), test=str(SHARED / "ML100K.test"), format="uir")
    split, info = load_split(spec, protocol)
    all_runs = {
        "irgan": ("irgan", dict(irgan_cfg["params"])),
        "irgan-start": ("irgan", {**irgan_cfg["params"], "epochs": 0}),
        "bpr": ("bpr", dict(bpr_cfg["params"])),
    }
    wanted = [r.strip() for r in args.runs.split(",") if r.strip()]
    if "irgan" not in wanted or any(r not in all_runs for r in wanted):
        raise SystemExit(f"--runs: expected irgan plus any of irgan-start,bpr; got {args.runs!r}")
    runs = {name: all_runs[name] for name in wanted}
    print(f"# {' '.join([sys.executable, *sys.argv])}")
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} cpus; split {split.fingerprint[:12]}")
    per_user: dict[str, list[np.ndarray]] = {name: [] for name in runs}
    records: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    users = None
    for seed in range(args.seeds):
        for name, (model, params) in runs.items():
            t0 = time.perf_counter()
            res = run_on_split(model, params, split, info, protocol, seed=seed)
            ev = res.test_eval
            users = ev.users if users is None else users
            if not np.array_equal(users, ev.users):
                raise SystemExit("evaluated users differ between runs")
            per_user[name].append(ev.per_user[METRIC])
            rec = {
                "seed": seed,
                "test": ev.metrics,
                "valid": res.result["metrics"]["valid"],
                "refit_params": res.result["refit_params"],
                "fit_seconds": res.result["fit_seconds"],
            }
            if model == "irgan":
                rec["adversarial_epochs"] = int(res.result["refit_params"].get("epochs", 0))
            records[name].append(rec)
            print(
                f"seed {seed} {name:12s} test {METRIC} {ev.metrics[METRIC]:.4f}  valid "
                f"{res.result['metrics']['valid'][METRIC]:.4f}  refit {res.result['refit_params']}  "
                f"{time.perf_counter() - t0:.0f} s",
                flush=True,
            )

    means = {name: np.mean(np.stack(v), axis=0) for name, v in per_user.items()}
    summary: dict[str, Any] = {}
    for name, recs in records.items():
        vals = [r["test"][METRIC] for r in recs]
        summary[name] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "per_seed": vals}
    tests = {}
    for other in [r for r in runs if r != "irgan"]:
        diff = means["irgan"] - means[other]
        tests[f"irgan vs {other}"] = {
            "mean_difference": float(diff.mean()),
            "wilcoxon": paired_wilcoxon(means["irgan"], means[other]).to_json(),
            "ttest": paired_ttest(means["irgan"], means[other]).to_json(),
        }
    print(f"\n| run | test {METRIC} mean +- std over {args.seeds} seeds | per seed |")
    print("|---|---|---|")
    for name, s in summary.items():
        if "mean" not in s:
            continue
        print(f"| {name} | {s['mean']:.4f} +- {s['std']:.4f} | {', '.join(f'{v:.4f}' for v in s['per_seed'])} |")
    for key, t in tests.items():
        print(
            f"{key}: mean per-user difference {t['mean_difference']:+.4f}, Wilcoxon p = "
            f"{t['wilcoxon']['p']:.3g}, t-test p = {t['ttest']['p']:.3g}"
        )
    adv = [r["adversarial_epochs"] for r in records["irgan"]]
    bpr_ref = ROOT / "benchmarks" / "results" / "tune-bpr.json"
    if "irgan-start" in runs and bpr_ref.is_file():
        ref = {r["seed"]: r["metrics"]["test"][METRIC] for r in json.loads(bpr_ref.read_text())["per_seed"]}
        pairs = [(r["test"][METRIC], ref.get(r["seed"])) for r in records["irgan-start"]]
        summary["bpr (tune-bpr.json)"] = {
            "per_seed": [b for _, b in pairs],
            "same_as_irgan_start": all(b is not None and abs(a - b) < 1e-12 for a, b in pairs),
        }
        print(f"irgan-start == tuned BPR-MF per seed (tune-bpr.json): {summary['bpr (tune-bpr.json)']}")
    print(f"adversarial rounds behind the kept IRGAN models: {adv}")
    if args.json:
        out = {
            "command": " ".join([sys.executable, *sys.argv]),
            "dataset": info,
            "protocol": res.result["protocol"],
            "metric": METRIC,
            "summary": summary,
            "tests": tests,
            "runs": records,
            "adversarial_epochs": adv,
        }
        atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
