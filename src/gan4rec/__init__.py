"""gan4rec: GAN recommenders, honestly evaluated against strong classic baselines.

Importing :mod:`gan4rec` is cheap: no torch, fastapi or matplotlib at top level.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
