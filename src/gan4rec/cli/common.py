"""What the command modules share: exit codes, the data options, spec building, JSON output, tables."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from gan4rec.errors import DataError, Gan4recError

__all__ = [
    "EXIT_DATA",
    "EXIT_NOINPUT",
    "EXIT_SOFTWARE",
    "EXIT_USAGE",
    "DistributedFailure",
    "UsageError",
    "add_data_options",
    "artifact_dir",
    "check_model_and_params",
    "data_spec_record",
    "device_name",
    "fraction",
    "json_default",
    "ks_list",
    "load_cfg_and_model",
    "load_model",
    "metric_name",
    "min_df",
    "non_negative_int",
    "output_file",
    "parse_columns",
    "positive_float",
    "positive_int",
    "print_metrics",
    "specs",
    "unit_fraction",
    "write_json",
]

EXIT_USAGE, EXIT_DATA, EXIT_NOINPUT, EXIT_SOFTWARE = 2, 65, 66, 70


class UsageError(Gan4recError):
    """A bad flag or flag value: exit 2."""


class DistributedFailure(Gan4recError):
    """A distributed run stopped because another rank did: exit 70."""


# ---------------------------------------------------------------------------------------------- flag types
# argparse ``type=`` functions: a bad value fails at parse time (exit 2), before any slow import or load.
def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A fraction in [0, 1) (``--valid-frac``: 0 fits on the whole train)."""
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text!r}")
    return value


def unit_fraction(text: str) -> float:
    """A fraction in (0, 1) (``--test-frac``)."""
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1), got {text!r}")
    return value


def min_df(text: str) -> int | float:
    """TF-IDF minimum document frequency: a count >= 1 (``2``) or a share in (0, 1) (``0.01``)."""
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a document count >= 1 or a share in (0, 1), got {text!r}")
    return value


def ks_list(text: str) -> tuple[int, ...]:
    """Comma-separated list lengths >= 1, e.g. ``5,10,20``."""
    try:
        ks = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    if min(ks) < 1:
        raise argparse.ArgumentTypeError(f"must be list lengths >= 1, got {text!r}")
    return ks


def dataset_name(text: str) -> str:
    """A name of the dataset registry (``gan4rec data info`` lists what each holds)."""
    from gan4rec.data.datasets import DATASETS

    if text not in DATASETS:
        raise argparse.ArgumentTypeError(f"must be a known dataset ({', '.join(DATASETS)}), got {text!r}")
    return text


def device_name(text: str) -> str:
    """A torch device the models take: ``cpu``, ``cuda`` or ``cuda:N``."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
    return text


def metric_name(text: str) -> str:
    """A metric at a cut-off, e.g. ``NDCG@20``."""
    if not re.fullmatch(r"[A-Za-z]+@[1-9][0-9]*", text):
        raise argparse.ArgumentTypeError(f"must look like NDCG@20 (a metric name, @, a list length >= 1), got {text!r}")
    return text


def output_file(text: str) -> str:
    """A file to write (``--json``, ``--out``): refused at once if it names a directory."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"must name a file, but {text} is a directory")
    return text


def artifact_dir(text: str) -> str:
    """A model artifact directory to write (``--save``): new, empty, or an artifact (a new version)."""
    path = Path(text)
    if path.exists() and not (path / "CURRENT").is_file() and (not path.is_dir() or any(path.iterdir())):
        raise argparse.ArgumentTypeError(f"must name a new directory or a saved model, but {text} exists and "
                                         "is not a gan4rec artifact (refusing to overwrite it)")
    return text


# ---------------------------------------------------------------------------------------------- options
def add_data_options(p: argparse.ArgumentParser, *, default_dataset: bool = True) -> None:
    """Add the data source, reading and protocol flags shared by train, tune, compare, evaluate and data."""
    from gan4rec.data.datasets import DATASETS

    g = p.add_argument_group("data source (one of)")
    g.add_argument("--dataset", metavar="NAME", type=dataset_name,
                   help=f"dataset by name ({', '.join(DATASETS)})"
                   + ("; default: synthetic" if default_dataset else ""))
    g.add_argument("--data", metavar="FILE", help="one interactions file, split by --split")
    g.add_argument("--train", metavar="FILE", help="pre-split training file (with --test)")
    g.add_argument("--test", metavar="FILE", help="pre-split test file (with --train)")
    r = p.add_argument_group("reading")
    r.add_argument("--format", choices=["auto", "uir", "csv", "tsv", "parquet", "movielens"], default=None)
    r.add_argument("--columns", metavar="ROLE=COL,...",
                   help="column mapping, e.g. user=userId,item=movieId,rating=rating,timestamp=timestamp")
    r.add_argument("--sep", help="field separator of CSV-like files")
    r.add_argument("--min-rating", type=_float, default=None,
                   help="count an interaction as positive when its rating >= this (default: all count)")
    r.add_argument("--duplicates", choices=["last", "first", "max", "error"], default=None)
    r.add_argument("--on-bad-rows", choices=["error", "skip"], default=None)
    r.add_argument("--min-user-interactions", type=non_negative_int, default=None, help="k-core filter on users")
    r.add_argument("--min-item-interactions", type=non_negative_int, default=None, help="k-core filter on items")
    f = p.add_argument_group("item features (joined by item id; see gan4rec.data.io.feature_files)")
    f.add_argument("--item-features", metavar="FILE",
                   help="csv/tsv/parquet: a long table item,feature[,value], or item,TEXT with --item-features-text; "
                        "items the data lacks are dropped with a warning, items the file lacks get zeros")
    f.add_argument("--item-features-text", metavar="COLUMN", help="the text column of --item-features, made TF-IDF")
    f.add_argument("--max-features", type=positive_int, default=None, help="TF-IDF vocabulary size (default: all)")
    f.add_argument("--min-df", type=min_df, default=None,
                   help="TF-IDF: ignore words in fewer items than this count, or this share (default 1)")
    r.add_argument("--synthetic-size", choices=["ml-100k", "ml-1m", "ml-20m"], default=None,
                   help="size preset of the synthetic dataset")
    s = p.add_argument_group("protocol")
    s.add_argument("--split", choices=["random", "leave-k-out", "temporal", "cold-items"], default=None,
                   help="cold-items: 20%% of the items held out with all their interactions (cold start; "
                        "warm, cold and overall tasks), test/valid fractions of warm interactions 0.1 each")
    s.add_argument("--test-frac", type=unit_fraction, default=None, help="test share of each user (default 0.2)")
    s.add_argument("--valid-frac", type=fraction, default=None,
                   help="validation carved from train (default 0.2; 0 = fit on the whole train)")
    s.add_argument("--leave-k", type=positive_int, default=None, help="k of --split leave-k-out")
    s.add_argument("--split-seed", type=non_negative_int, default=None, help="seed of the split (default 42)")
    s.add_argument("--ks", type=ks_list, default=None, help="list lengths to evaluate, e.g. 5,10,20")
    s.add_argument("--valid-repeats", type=positive_int, default=None,
                   help="tuning: score each trial on N validation carvings (seeds split-seed..+N-1), use the mean")


def parse_columns(text: str | None) -> dict[str, str] | None:
    """``user=userId,item=movieId`` as a dict; ``None`` when not given."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        role, sep, col = part.partition("=")
        if not sep or role.strip() not in ("user", "item", "rating", "timestamp") or not col.strip():
            raise UsageError(f"--columns: bad entry {part!r}; expected ROLE=COLUMN with ROLE in user, item, rating, timestamp")
        out[role.strip()] = col.strip()
    return out


def specs(args: argparse.Namespace, cfg: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """DataSpec and Protocol from the config file (if any), overridden by flags."""
    from gan4rec.experiment import DataSpec, Protocol

    cfg = cfg or {}
    data_kw: dict[str, Any] = dict(cfg.get("data", {}))
    proto_kw: dict[str, Any] = dict(cfg.get("protocol", {}))
    flag_sources = {k: getattr(args, k, None) for k in ("dataset", "data", "train", "test")}
    given = [f"--{k}" for k in ("dataset", "data") if flag_sources[k]]
    given += ["--train/--test"] if flag_sources["train"] or flag_sources["test"] else []
    if len(given) > 1:
        raise UsageError(f"give one data source, not {' and '.join(given)}")
    if bool(flag_sources["train"]) != bool(flag_sources["test"]):
        raise UsageError("--train and --test go together")
    if any(flag_sources.values()):
        for k in ("dataset", "data", "train", "test"):
            data_kw.pop(k, None)
        data_kw.update({k: v for k, v in flag_sources.items() if v})
    for flag, key in (("format", "format"), ("sep", "sep"), ("min_rating", "min_rating"),
                      ("duplicates", "duplicates"), ("on_bad_rows", "on_bad_rows"),
                      ("min_user_interactions", "min_user_interactions"),
                      ("min_item_interactions", "min_item_interactions")):
        value = getattr(args, flag, None)
        if value is not None:
            data_kw[key] = value
    cols = parse_columns(getattr(args, "columns", None))
    if cols:
        data_kw["columns"] = cols
    feature_flags = {"item_features": "--item-features", "item_features_text": "--item-features-text",
                     "max_features": "--max-features", "min_df": "--min-df"}
    for key in feature_flags:
        if getattr(args, key, None) is not None:
            data_kw[key] = getattr(args, key)
    for key, flag in list(feature_flags.items())[1:]:
        if getattr(args, key, None) is not None and not data_kw.get("item_features"):
            raise UsageError(f"{flag} needs --item-features FILE")
        if key != "item_features_text" and getattr(args, key, None) is not None \
                and not data_kw.get("item_features_text"):
            raise UsageError(f"{flag} applies to a text column: add --item-features-text COLUMN")
    if getattr(args, "synthetic_size", None):
        data_kw["synthetic"] = {**data_kw.get("synthetic", {}), "size": args.synthetic_size}
    for flag, key in (("split", "split"), ("test_frac", "test_frac"), ("valid_frac", "valid_frac"),
                      ("leave_k", "k"), ("split_seed", "split_seed"), ("refit", "refit"),
                      ("valid_repeats", "valid_repeats")):
        value = getattr(args, flag, None)
        if value is not None:
            proto_kw[key] = value
    if getattr(args, "ks", None):
        proto_kw["ks"] = tuple(args.ks)
    return DataSpec(**data_kw), Protocol(**proto_kw)


def load_cfg_and_model(args: argparse.Namespace) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The config file (if any), the model name and its params, ``--params`` over the config's.

    The model name and the params are checked here, before any data is read: a bad ``--model`` or
    ``--params`` is a usage error (exit 2), a bad ``model`` or ``[params]`` in the config a data error
    naming the file (exit 65).
    """
    from gan4rec.config import load_config

    cfg = load_config(args.config) if args.config else {}
    model = args.model or cfg.get("model") or "toppop"
    params = dict(cfg.get("params", {}))
    extra: dict[str, Any] = {}
    if args.params:
        try:
            extra = json.loads(args.params)
        except json.JSONDecodeError as e:
            raise UsageError(f"--params: invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(extra, dict):
            raise UsageError("--params: expected a JSON object such as '{\"lambda_\": 500}'")
    check_model_and_params(model, params, extra, config=args.config if not args.model else None,
                           config_params=args.config)
    params.update(extra)
    return cfg, model, params


def check_model_and_params(
    model: str, params: dict[str, Any], extra: dict[str, Any], *, config: str | None = None,
    config_params: str | None = None,
) -> None:
    """Check a model name and its params by building the (unfitted) model, blaming the right source.

    Parameters
    ----------
    model
        Registry name, from ``--model`` (``config`` is None) or from the config file ``config``.
    params, extra
        The config's ``[params]`` (from the file ``config_params``) and the ``--params`` flag's.
    """
    from gan4rec.models import MODELS, create

    if model not in MODELS:
        known = ", ".join(MODELS)
        if config is None:
            raise UsageError(f"--model: unknown model {model!r}; known models: {known} (see gan4rec models)")
        raise DataError(f"{config}: unknown model {model!r}; known models: {known}")
    if params:
        try:
            create(model, params)
        except (DataError, TypeError, ValueError) as e:
            raise DataError(f"{config_params}: [params]: {e}") from None
    if extra:
        try:
            create(model, {**params, **extra})
        except (DataError, TypeError, ValueError) as e:
            raise UsageError(f"--params: {e}") from None


def load_model(path: str) -> tuple[Any, dict[str, Any]]:
    """A saved model and its meta.json."""
    from gan4rec.artifacts import read_artifact_meta
    from gan4rec.models.base import Recommender

    meta = read_artifact_meta(path)
    return Recommender.load(path), meta


def data_spec_record(spec: Any) -> dict[str, Any]:
    """A DataSpec as JSON for a model's meta.json (``data_spec``), read back by ``gan4rec evaluate``.

    Every reading option is kept, so that evaluate reads the data as train did; file paths are made
    absolute, so that evaluate finds them from any directory.
    """
    out = dataclasses.asdict(spec)
    if not any(out.get(k) for k in ("dataset", "data", "train", "test")):
        out["dataset"] = "synthetic"  # the default source, named so that the record stands alone
    for key in ("data", "train", "test", "item_features"):
        if out.get(key):
            out[key] = os.path.abspath(out[key])
    return out


# ---------------------------------------------------------------------------------------------- output
def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (numpy values and paths as plain JSON)."""
    from gan4rec.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, default=json_default) + "\n")


def json_default(o: Any) -> Any:
    """``json.dumps`` fallback for numpy scalars and arrays and paths."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def print_metrics(title: str, metrics: dict[str, Any] | None) -> None:
    """A metric x cut-off table, e.g. ``NDCG  @5 @10 @20``; one table per task for cold-start results."""
    if metrics is None:
        print(f"{title}: (none)")
        return
    if metrics and all(isinstance(v, dict) or v is None for v in metrics.values()):
        for task, task_metrics in metrics.items():
            if task_metrics is None:
                print(f"{title}, {task}: (the model cannot score cold items)")
            else:
                print_metrics(f"{title}, {task}", task_metrics)
        return
    keys = [k for k in metrics if "@" in k]
    ks = sorted({int(k.split("@")[1]) for k in keys})
    names = list(dict.fromkeys(k.split("@")[0] for k in keys))
    print(f"{title}:")
    print("  " + "metric".ljust(11) + "".join(f"@{k}".rjust(9) for k in ks))
    for n in names:
        cells = [f"{metrics[f'{n}@{k}']:.4f}".rjust(9) if f"{n}@{k}" in metrics else " " * 9 for k in ks]
        print("  " + n.ljust(11) + "".join(cells))
