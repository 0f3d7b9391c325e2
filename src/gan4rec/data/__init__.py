"""Data layer: id maps, interactions, readers, datasets by name, splits.

Only the light core is imported here; readers (:mod:`gan4rec.data.io`), the dataset registry
(:mod:`gan4rec.data.datasets`) and splits (:mod:`gan4rec.data.split`) are imported where used.
"""

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions

__all__ = ["IdMap", "Interactions"]
