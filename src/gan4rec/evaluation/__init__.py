"""Offline evaluation: top-K metrics and a batched full-ranking evaluator over any scoring function.

Importing this package imports torch (the evaluator ranks with it); ``import gan4rec`` alone does not.
"""

from gan4rec.evaluation.evaluator import PROTOCOL, EvalResult, ScoreFn, evaluate, topk
from gan4rec.evaluation.metrics import (
    ALL_METRICS,
    CATALOG_METRICS,
    RANKING_METRICS,
    average_precision_at_k,
    catalog_metrics,
    catalog_metrics_from_counts,
    gini_index,
    hit_rate_at_k,
    item_coverage,
    metric_name,
    ndcg_at_k,
    novelty,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    reciprocal_rank_at_k,
    recommendation_counts,
)

__all__ = [
    "ALL_METRICS",
    "CATALOG_METRICS",
    "PROTOCOL",
    "RANKING_METRICS",
    "EvalResult",
    "ScoreFn",
    "average_precision_at_k",
    "catalog_metrics",
    "catalog_metrics_from_counts",
    "evaluate",
    "gini_index",
    "hit_rate_at_k",
    "item_coverage",
    "metric_name",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "reciprocal_rank_at_k",
    "recommendation_counts",
    "topk",
]
