"""Hybrid (content + collaborative) recommenders that can rank cold items; shared pieces in ``common``."""

from gan4rec.models.hybrid.common import HybridRecommender, calibrate
from gan4rec.models.hybrid.content_knn import ContentKNN

__all__ = ["ContentKNN", "HybridRecommender", "calibrate"]
