"""Classic recommenders that every GAN is measured against."""

from gan4rec.models.baselines.bpr import BPR
from gan4rec.models.baselines.ease import EASE
from gan4rec.models.baselines.ials import IALS
from gan4rec.models.baselines.knn import ItemKNN, UserKNN
from gan4rec.models.baselines.multvae import MultVAE
from gan4rec.models.baselines.popularity import TopPop
from gan4rec.models.baselines.rp3beta import RP3beta
from gan4rec.models.baselines.slim import SLIM
from gan4rec.models.baselines.svd import PureSVD

__all__ = ["BPR", "EASE", "IALS", "SLIM", "ItemKNN", "MultVAE", "PureSVD", "RP3beta", "TopPop", "UserKNN"]
