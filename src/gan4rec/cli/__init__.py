"""The ``gan4rec`` command: parse, call the library, print.

This is the only module that configures logging. Errors print one line and exit with: 2 usage (a bad flag
or flag value, checked at parse time where it is cheap), 65 data error (bad rows, bad config values,
corrupt artifacts), 66 missing input, 70 a distributed peer failed. ``--debug`` adds the traceback and
keeps the exit code; ``--quiet`` leaves stderr to warnings and errors (no progress logs or bars).

The commands live by concern: :mod:`~gan4rec.cli.train_cmds` (models, train, tune, compare, demo),
:mod:`~gan4rec.cli.model_cmds` (evaluate, info, recommend, serve, explain on a saved model) and
:mod:`~gan4rec.cli.data_cmds` (data fetch, info, split); :mod:`~gan4rec.cli.common` holds what they share.
``synthesize`` lives with its library in :mod:`gan4rec.synth.command`.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from gan4rec import __version__
from gan4rec.cli import data_cmds, model_cmds, train_cmds
from gan4rec.cli.common import (
    EXIT_DATA,
    EXIT_NOINPUT,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    DistributedFailure,
    UsageError,
)
from gan4rec.errors import ArtifactError, DataError, MissingInputError, NotFittedError
from gan4rec.synth import command as synth_command

__all__ = ["main"]


# ---------------------------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other gan4rec error."""

    def error(self, message: str) -> NoReturn:
        # "argument --seeds: must be >= 1, got '0'" (a flag type's message) reads "--seeds must be >= 1, ..."
        message = re.sub(r"^argument ([^:]+): must ", r"\1 must ", message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="gan4rec",
        description="GAN recommenders, honestly evaluated against strong classic baselines.",
    )
    p.add_argument("--version", action="version", version=f"gan4rec {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr (no progress logs or bars)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    train_cmds.add_parsers(sub)
    model_cmds.add_parsers(sub)
    data_cmds.add_parsers(sub)
    sy = sub.add_parser("synthesize", help="synthetic users from a GAN (or a baseline), with fidelity and privacy measured")
    synth_command.add_arguments(sy)
    sy.set_defaults(func=synth_command.run)
    return p


def _configure_logging(debug: bool, quiet: bool) -> tuple[list[logging.Handler], int, bool]:
    """Send the library's logs to stderr; returns the previous state, restored when main() returns."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if debug else "%(message)s"))
    root = logging.getLogger("gan4rec")
    previous = (root.handlers[:], root.level, root.propagate)
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    return previous


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gan4rec`` console script; returns the exit code (also for a bad flag)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: a bad flag or value (2), or --help / --version (0)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    previous = _configure_logging(args.debug, args.quiet)
    try:
        return int(args.func(args))
    except UsageError as e:
        return _fail(args, e, EXIT_USAGE)
    except (MissingInputError, FileNotFoundError) as e:
        return _fail(args, e, EXIT_NOINPUT)
    except (DataError, ArtifactError) as e:
        return _fail(args, e, EXIT_DATA)
    except (NotFittedError, DistributedFailure) as e:
        return _fail(args, e, EXIT_SOFTWARE)
    except KeyboardInterrupt:
        print("gan4rec: interrupted", file=sys.stderr)
        return 130
    finally:
        root = logging.getLogger("gan4rec")
        root.handlers[:], root.level, root.propagate = previous


def _fail(args: argparse.Namespace, e: BaseException, code: int) -> int:
    """Print the one-line error (after the traceback with ``--debug``) and return the exit code."""
    if args.debug:
        traceback.print_exc()
    message = getattr(e, "cli_message", None) or str(e)
    print(f"gan4rec: error: {message}", file=sys.stderr)
    return code
