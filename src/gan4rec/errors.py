"""Exceptions raised by gan4rec at its public boundaries.

Each carries a one-sentence message: what was wrong, where (file:line or field), and what was expected.
The CLI maps them to exit codes: :class:`DataError` 65, :class:`MissingInputError` 66.
"""

from __future__ import annotations

__all__ = ["ArtifactError", "DataError", "Gan4recError", "MissingInputError", "NotFittedError"]


class Gan4recError(Exception):
    """Base class of every error gan4rec raises on purpose."""


class DataError(Gan4recError, ValueError):
    """Input data is malformed: a bad row, an empty file, an unknown id, a wrong shape."""

    cli_message: str | None = None
    """The same error worded for the command line (``--columns item=COL`` for ``columns={"item": "COL"}``)."""


class MissingInputError(Gan4recError, FileNotFoundError):
    """An input file or dataset is not where it was looked for (and cannot be downloaded)."""


class NotFittedError(Gan4recError, RuntimeError):
    """A model was used before ``fit`` (or ``load``)."""


class ArtifactError(Gan4recError, ValueError):
    """A saved model is incomplete, corrupted, or of an unsupported format version."""
