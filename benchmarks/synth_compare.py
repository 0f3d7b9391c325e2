"""Every synthetic-data generator on one dataset over seeds: the BENCHMARKS table and the frontier plot.

    PYTHONPATH=src python benchmarks/synth_compare.py --dataset ml-100k --seeds 5 \\
        --out benchmarks/results/synth-compare-ml-100k.json

Runs :func:`gan4rec.synth.experiment.compare` (same member / non-member / held-out split per seed, each
split recorded in the JSON), writes the JSON (runs without their plot curves, summary, target test) and
the frontier PNG beside it, and prints one Markdown table: mean ± sample std (ddof=1) over seeds.
``--min-item-interactions`` drops rarer items first (recorded), to keep EASE's n_items^3 affordable.

When one generator changes (e.g. the GAN's defaults), rerun only it and put its runs into the saved
result; the other generators' runs stay, since every seed's split is fixed and recorded::

    python benchmarks/synth_compare.py --dataset ml-100k --seeds 5 --only gan --out /tmp/gan.json
    python benchmarks/synth_compare.py --merge /tmp/gan.json --into benchmarks/results/synth-compare-ml-100k.json

``--merge`` refuses a partial result whose split of a seed differs from the saved one (data fingerprint,
sizes, the reference models' NDCG), and records what was replaced under ``"reruns"``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from gan4rec.artifacts import atomic_write_bytes, atomic_write_text
from gan4rec.data.datasets import load_dataset
from gan4rec.synth.command import jsonable
from gan4rec.synth.experiment import COMPARE_GENERATORS, compare, summarize, target_test
from gan4rec.synth.report import frontier_plot

COLUMNS = [
    ("item KS", "marginals.item_popularity.ks"),
    ("item W1", "marginals.item_popularity.wasserstein"),
    ("item Gini (real)", "marginals.item_popularity.gini_synth"),
    ("user KS", "marginals.user_activity.ks"),
    ("user W1", "marginals.user_activity.wasserstein"),
    ("co-occ r", "cooccurrence_corr"),
    ("TSTR EASE", "tstr_ratio_by_model.ease"),
    ("TSTR ItemKNN", "tstr_ratio_by_model.itemknn"),
    ("TSTR iALS", "tstr_ratio_by_model.ials"),
    ("Kendall tau", "kendall_tau"),
    ("MIA AUC (DCR)", "mia_auc"),
    ("MIA AUC (shadow)", "mia_auc_shadow"),
    ("MIA AUC (stronger)", "mia_auc_worst"),
    ("DCR members", "dcr_members_median"),
    ("DCR non-members", "dcr_nonmembers_median"),
    ("exact copies", "exact_copy_rate"),
]


def _pm(s: dict[str, Any] | None, digits: int = 3) -> str:
    if not s:
        return "-"
    std = s.get("std")
    return f"{s['mean']:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{s['mean']:.{digits}f}"


def table(res: dict[str, Any]) -> str:
    """The Markdown table of a compare result."""
    summ = res["summary"]
    gini_real = next(iter(summ.values())).get("marginals.item_popularity.gini_real", {}).get("mean")
    head = [c[0] if c[0] != "item Gini (real)" else f"item Gini synth (real {gini_real:.3f})" for c in COLUMNS]
    lines = ["| generator | " + " | ".join(head) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for label, s in summ.items():
        lines.append(f"| {label} | " + " | ".join(_pm(s.get(k)) for _, k in COLUMNS) + " |")
    return "\n".join(lines)


def merge(partial: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` with the runs of ``partial`` in place of its runs of the same label and seed."""
    by_seed = {int(sp["seed"]): sp for sp in saved["splits"]}
    for sp in partial["splits"]:
        old = by_seed.get(int(sp["seed"]))
        if old is None or any(old[k] != sp[k] for k in ("data", "n_members", "n_nonmembers", "n_holdout")) or any(
            abs(old["real_ndcg"][m] - v) > 1e-9 for m, v in sp["real_ndcg"].items()
        ):
            raise SystemExit(f"seed {sp['seed']}: the partial result's split differs from the saved one")
    new = {(r["label"], int(r["seed"])): r for r in partial["runs"]}
    runs = [new.pop((r["label"], int(r["seed"])), r) for r in saved["runs"]]
    if new:
        raise SystemExit(f"runs without a counterpart in the saved result: {sorted(new)}")
    labels = sorted({r["label"] for r in partial["runs"]})
    out = dict(saved, runs=runs, summary=summarize(runs), target=target_test(runs),
               target_worst=target_test(runs, auc_key="mia_auc_worst"))
    gens = {g["label"]: g for g in partial["generators"]}
    out["generators"] = [gens.get(g["label"], g) for g in saved["generators"]]
    out["reruns"] = [*saved.get("reruns", []), {"labels": labels, "seeds": partial["seeds"],
                                                "seconds": partial["seconds"], "date": time.strftime("%Y-%m-%d")}]
    return out


def _save_and_print(result: dict, path: Path) -> None:
    """Write a (merged or re-summarised) result to ``path`` with its frontier plot beside it; print its table."""
    atomic_write_text(path, json.dumps(jsonable(result), indent=1, allow_nan=False) + "\n")
    fr = frontier_plot(result["summary"], f"Privacy-utility frontier, {result['dataset']}, "
                       f"{len(result['seeds'])} seeds", auc_key="mia_auc_worst")
    atomic_write_bytes(path.with_suffix(".png"), fr.png)
    print(table(result))
    print(json.dumps(jsonable({"target_dcr": result["target"], "target_worst": result["target_worst"]}), indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset")
    ap.add_argument("--table", metavar="JSON",
                    help="print the table of a saved result; its summary, targets and PNG are recomputed in place")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--min-item-interactions", type=int, default=None)
    ap.add_argument("--only", default=None, help="comma-separated generator labels (default: all)")
    ap.add_argument("--out", help="JSON path; the frontier PNG goes beside it")
    ap.add_argument("--merge", metavar="PARTIAL", help="put this result's runs into --into (see above)")
    ap.add_argument("--into", metavar="JSON", help="the saved result --merge rewrites, with its PNG")
    args = ap.parse_args()
    if args.merge:
        if not args.into:
            ap.error("--merge needs --into")
        merged = merge(json.loads(Path(args.merge).read_text()), json.loads(Path(args.into).read_text()))
        _save_and_print(merged, Path(args.into))
        return
    if args.table:
        saved = json.loads(Path(args.table).read_text())
        for r in saved["runs"]:  # results saved before the key existed
            if "mia_auc_shadow" in r:
                r.setdefault("mia_auc_worst", max(r["mia_auc"], r["mia_auc_shadow"]))
        saved["summary"] = summarize(saved["runs"])
        saved["target"] = target_test(saved["runs"])
        saved["target_worst"] = target_test(saved["runs"], auc_key="mia_auc_worst")
        _save_and_print(saved, Path(args.table))
        return
    if not args.dataset:
        ap.error("--dataset is required (or --table JSON)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data = load_dataset(args.dataset)
    if args.min_item_interactions:
        # One round on items only (users keep what is left): the k-core filter with users at 0.
        data = data.filter(min_item_interactions=args.min_item_interactions, max_rounds=1)
    gens = COMPARE_GENERATORS
    if args.only:
        wanted = set(args.only.split(","))
        gens = tuple(g for g in gens if g[0] in wanted)
    t0 = time.perf_counter()
    out = Path(args.out)
    runs: list[dict[str, Any]] = []
    splits: list[dict[str, Any]] = []
    for seed in range(args.seeds):  # one seed at a time, the JSON rewritten after each: a cut run keeps its seeds
        part = compare(data, [seed], generators=gens)
        for r in part["runs"]:
            r.pop("curves", None)
        runs += part["runs"]
        splits += part["splits"]
        res = {"seeds": list(range(seed + 1)), "splits": splits, "runs": runs, "summary": summarize(runs),
               "target": target_test(runs), "target_worst": target_test(runs, auc_key="mia_auc_worst"),
               "dataset": args.dataset,
               "min_item_interactions": args.min_item_interactions, "shape": list(data.shape),
               "nnz": int(data.nnz), "seconds": time.perf_counter() - t0,
               "generators": [{"label": g[0], "name": g[1], "params": g[2]} for g in gens]}
        atomic_write_text(out, json.dumps(jsonable(res), indent=1, allow_nan=False) + "\n")
    fr = frontier_plot(res["summary"], f"Privacy-utility frontier, {args.dataset}, {len(res['seeds'])} seeds")
    atomic_write_bytes(out.with_suffix(".png"), fr.png)
    print(table(res))
    print(json.dumps(jsonable(res["target"]), indent=1))


if __name__ == "__main__":
    main()
