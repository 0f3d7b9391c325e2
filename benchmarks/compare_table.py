"""BENCHMARKS.md's table of a cold-items ``gan4rec compare`` result: per model, N/P/R@20 of each task and p vs best.

Rows are in the order of the overall task's leaderboard; each cell is the mean over seeds of NDCG/Precision/
Recall@20 and the Holm-corrected paired Wilcoxon p against that task's best model (``best`` for the best,
``cannot`` where a model cannot score the task)::

    python benchmarks/compare_table.py benchmarks/results/compare-cold-citeulike-t.json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

METRICS = ("NDCG@20", "Precision@20", "Recall@20")


def table(result: dict[str, Any]) -> str:
    by_task = {t: {row["model"]: row for row in result["leaderboard"][t]} for t in result["tasks"]}
    lines = ["| model | warm N/P/R (p) | cold N/P/R (p) | overall N/P/R (p) |", "|---|---|---|---|"]
    for row in result["leaderboard"]["overall"]:
        cells = []
        for task in ("warm", "cold", "overall"):
            r = by_task[task].get(row["model"])
            if r is None or r.get("cannot"):
                cells.append("cannot")
                continue
            nums = "/".join(f"{r['metrics'][m]['mean']:.4f}".lstrip("0") for m in METRICS)
            p = "best" if r.get("is_best") else "p " + f"{r['p_wilcoxon_holm']:.2g}".replace("e-0", "e-")
            cells.append(f"{nums} ({p})")
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("result", help="a compare JSON (--json) of a cold-items run")
    with open(p.parse_args().result, encoding="utf-8") as f:
        print(table(json.load(f)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
