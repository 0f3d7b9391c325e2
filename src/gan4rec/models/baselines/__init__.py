"""Classic recommenders that every GAN is measured against."""

from gan4rec.models.baselines.popularity import TopPop

__all__ = ["TopPop"]
