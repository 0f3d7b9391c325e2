"""``gan4rec evaluate MODEL_DIR``: re-create the split a saved model was trained on and test it again.

A model trained with ``--split cold-items`` is tested on the warm, cold and overall tasks, printed and
written (``--json``) as ``train`` does (:func:`gan4rec.experiment.evaluate_model`): the cold task of a model
that cannot score cold items is "cannot" in text and ``null`` in JSON.

Without data options the data come from the model's ``meta.json``, as ``train --save`` recorded them
(``data_spec``: the source and every reading option, the item-features file and its TF-IDF options
included; older artifacts: ``data``, the source and format).
An artifact is data, not a command, so its record is followed cautiously:

- the file it reads is logged, and a recorded file that is missing is an error saying which flag to pass;
- a recorded dataset name is used only if it is already in the local cache: nothing is ever downloaded
  because an artifact says so (``--dataset NAME`` on the command line downloads as usual);
- an error about a recorded file never quotes the file's content (a hostile ``meta.json`` could point at
  any readable file); naming the file with ``--data`` shows the full error.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

from gan4rec.cli.common import UsageError, load_model, print_metrics, specs, write_json
from gan4rec.errors import ArtifactError, DataError, MissingInputError, NotFittedError

__all__ = ["cmd_evaluate"]

log = logging.getLogger(__name__)

_SOURCES = ("dataset", "data", "train", "test")
# Errors of the split check, which name fingerprints and counts but nothing read from the file.
_SAFE = ("the data and protocol given do not reproduce", "the data's users and items differ")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a saved model on its test split; the data from the flags, else from its meta.json."""
    from gan4rec.experiment import Protocol, evaluate_model

    model, meta = load_model(args.model_dir)
    named = any(getattr(args, k, None) for k in _SOURCES)
    recorded = _recorded_data(meta)
    if not named and not any(recorded.get(k) for k in _SOURCES):
        raise UsageError(f"{args.model_dir}: its meta.json records no data source; name the data it was "
                         "trained on with --data FILE, --train FILE --test FILE or --dataset NAME")
    data = {k: v for k, v in recorded.items() if k not in _SOURCES} if named else recorded
    saved_proto = meta.get("protocol")
    if not isinstance(saved_proto, dict):
        saved_proto = {}
    protocol_fields = {f.name for f in dataclasses.fields(Protocol)}
    cfg = {"data": data, "protocol": {k: v for k, v in saved_proto.items() if k in protocol_fields}}
    try:
        spec, protocol = specs(args, cfg)
    except (TypeError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise ArtifactError(f"{args.model_dir}: its meta.json records a data or protocol option gan4rec "
                            f"cannot use ({type(e).__name__}: {e})") from None
    if named:
        res = evaluate_model(model, meta, spec, protocol, device=args.device)
    else:
        _check_recorded_source(spec, args.model_dir)
        try:
            res = evaluate_model(model, meta, spec, protocol, device=args.device)
        except (MissingInputError, ArtifactError, NotFittedError):
            raise
        except Exception as e:  # noqa: BLE001 -- any reader's error may quote the file: keep its text out
            raise _without_content(e, spec, args.model_dir) from None
    print_metrics("test", res["metrics"]["test"])  # one table per task on a cold-items split
    if args.json:
        write_json(args.json, res)
        print(f"wrote {args.json}")
    return 0


def _recorded_data(meta: dict[str, Any]) -> dict[str, Any]:
    """The DataSpec fields a model's meta.json records (empty when it records none)."""
    from gan4rec.experiment import DataSpec

    fields = {f.name for f in dataclasses.fields(DataSpec)}
    full = meta.get("data_spec")
    if isinstance(full, dict):
        recorded = {k: v for k, v in full.items() if k in fields and v is not None}
        for key, value in recorded.items():
            _check_recorded_type(key, value)
        return recorded
    short = meta.get("data")
    if not isinstance(short, dict):
        return {}
    out: dict[str, Any] = {}
    for key, field in (("file", "data"), ("train", "train"), ("test", "test"), ("name", "dataset"),
                       ("format", "format"), ("synthetic", "synthetic")):
        if short.get(key) is not None:
            out[field] = short[key]
    return out


#: The JSON types each recorded reading option may have (anything else is a damaged or hostile artifact).
_RECORDED_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "data": (str,), "train": (str,), "test": (str,), "format": (str,), "sep": (str,),
    "on_bad_rows": (str,), "duplicates": (str,), "min_rating": (int, float), "min_user_interactions": (int,),
    "min_item_interactions": (int,), "columns": (dict,), "synthetic": (dict,), "item_features": (str,),
    "item_features_text": (str,), "max_features": (int,), "min_df": (int, float),
}


def _check_recorded_type(key: str, value: Any) -> None:
    """A recorded reading option of the wrong JSON type is an artifact error, before anything reads it."""
    types = _RECORDED_TYPES.get(key)
    ok = types is not None and isinstance(value, types) and not isinstance(value, bool)
    if ok and isinstance(value, dict):
        ok = all(isinstance(k, str) and isinstance(v, (str, int, float)) and not isinstance(v, bool)
                 for k, v in value.items())
    if not ok:
        raise ArtifactError(f"meta.json: data_spec.{key} is {type(value).__name__}, not a valid reading option")


def _check_recorded_source(spec: Any, model_dir: str) -> None:
    """Log what a recorded source reads; refuse a missing file or a dataset that would need a download."""
    where = f"{model_dir}'s meta.json"
    if spec.item_features is not None and not Path(spec.item_features).exists():
        raise MissingInputError(f"{spec.item_features}: the item features file recorded in {where} is missing; "
                                "pass --item-features FILE with the features the model was trained on")
    src = spec.source()
    if src == "dataset":
        name = spec.dataset or "synthetic"
        if name == "synthetic":
            log.info("evaluate: generating the synthetic dataset recorded in %s", where)
            return
        from gan4rec.data.datasets import cache_root, get_spec

        ds = get_spec(name)
        root = cache_root()
        if not (root / ds.name).is_dir() and not (root / f"{ds.name}.zip").is_file():
            raise MissingInputError(
                f"dataset {ds.name!r}, recorded in {where}, is not in the local cache {root}; evaluate does "
                f"not download what an artifact names: pass --dataset {ds.name} to fetch it, or --data FILE")
        log.info("evaluate: reading dataset %s from %s (recorded in %s)", ds.name, root / ds.name, where)
        return
    flags = {"data": "--data FILE"} if src == "data" else {"train": "--train FILE", "test": "--test FILE"}
    hint = " ".join(flags.values())
    for key in flags:
        path = Path(str(getattr(spec, key)))
        if not path.exists():
            raise MissingInputError(f"{path}: the data file recorded in {where} is missing; pass {hint} "
                                    "with the data the model was trained on")
        log.info("evaluate: reading %s (recorded in %s)", path, where)


def _without_content(e: Exception, spec: Any, model_dir: str) -> Exception:
    """``e`` with nothing read from a file the user did not name: the file (and line), never its text."""
    message = getattr(e, "cli_message", None) or str(e)
    if isinstance(e, DataError) and message.startswith(_SAFE):
        return e
    paths = [str(p) for p in (spec.data, spec.train, spec.test) if p]
    location = spec.dataset or "synthetic"
    if paths:
        location = " and ".join(paths)
        for p in paths:
            m = re.match(re.escape(p) + r"(:\d+)?", message)
            if m:
                location = m.group(0)
                break
    flag = "--data FILE" if spec.data else "--train FILE --test FILE" if paths else f"--dataset {location}"
    what = "" if isinstance(e, DataError) else f"{type(e).__name__}, "
    return DataError(f"{location}: cannot read the data recorded in {model_dir}'s meta.json ({what}format "
                     f"{spec.format}); its content is not shown because the command line did not name it: "
                     f"pass {flag} to see the full error")
