"""GAN recommenders: CFGAN (Chae et al., CIKM 2018) and IRGAN (Wang et al., SIGIR 2017)."""

from gan4rec.models.gan.cfgan import CFGAN
from gan4rec.models.gan.irgan import IRGAN

__all__ = ["CFGAN", "IRGAN"]
