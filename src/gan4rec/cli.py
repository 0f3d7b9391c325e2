"""The ``gan4rec`` command: parse, call the library, print.

This is the only module that configures logging. Errors print one line (no traceback unless ``--debug``)
and exit with: 2 usage, 65 data error (bad rows, corrupt artifacts), 66 missing input, 70 internal error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gan4rec import __version__
from gan4rec.errors import ArtifactError, DataError, Gan4recError, MissingInputError, NotFittedError

__all__ = ["main"]

log = logging.getLogger("gan4rec.cli")

EXIT_USAGE, EXIT_DATA, EXIT_NOINPUT, EXIT_SOFTWARE = 2, 65, 66, 70


class _UsageError(Gan4recError):
    pass


# ---------------------------------------------------------------------------------------------- options
def _add_data_options(p: argparse.ArgumentParser, *, default_dataset: bool = True) -> None:
    g = p.add_argument_group("data source (one of)")
    g.add_argument("--dataset", metavar="NAME",
                   help="dataset by name (ml-100k, ml-1m, ml-latest-small, ml-20m, ml-25m, synthetic)"
                   + ("; default: synthetic" if default_dataset else ""))
    g.add_argument("--data", metavar="FILE", help="one interactions file, split by --split")
    g.add_argument("--train", metavar="FILE", help="pre-split training file (with --test)")
    g.add_argument("--test", metavar="FILE", help="pre-split test file (with --train)")
    r = p.add_argument_group("reading")
    r.add_argument("--format", choices=["auto", "uir", "csv", "tsv", "parquet", "movielens"], default=None)
    r.add_argument("--columns", metavar="ROLE=COL,...",
                   help="column mapping, e.g. user=userId,item=movieId,rating=rating,timestamp=timestamp")
    r.add_argument("--sep", help="field separator of CSV-like files")
    r.add_argument("--min-rating", type=float, default=None,
                   help="count an interaction as positive when its rating >= this (default: all count)")
    r.add_argument("--duplicates", choices=["last", "first", "max", "error"], default=None)
    r.add_argument("--on-bad-rows", choices=["error", "skip"], default=None)
    r.add_argument("--min-user-interactions", type=int, default=None, help="k-core filter on users")
    r.add_argument("--min-item-interactions", type=int, default=None, help="k-core filter on items")
    r.add_argument("--synthetic-size", choices=["ml-100k", "ml-1m", "ml-20m"], default=None,
                   help="size preset of the synthetic dataset")
    s = p.add_argument_group("protocol")
    s.add_argument("--split", choices=["random", "leave-k-out", "temporal"], default=None)
    s.add_argument("--test-frac", type=float, default=None)
    s.add_argument("--valid-frac", type=float, default=None,
                   help="validation carved from train (default 0.2; 0 = fit on the whole train)")
    s.add_argument("--leave-k", type=int, default=None, help="k of --split leave-k-out")
    s.add_argument("--split-seed", type=int, default=None, help="seed of the split (default 42)")
    s.add_argument("--ks", default=None, help="list lengths to evaluate, e.g. 5,10,20")
    s.add_argument("--valid-repeats", type=int, default=None,
                   help="tuning: score each trial on N validation carvings (seeds split-seed..+N-1), use the mean")


def _parse_columns(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        role, sep, col = part.partition("=")
        if not sep or role.strip() not in ("user", "item", "rating", "timestamp") or not col.strip():
            raise _UsageError(f"--columns: bad entry {part!r}; expected ROLE=COLUMN with ROLE in user, item, rating, timestamp")
        out[role.strip()] = col.strip()
    return out


def _specs(args: argparse.Namespace, cfg: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """DataSpec and Protocol from the config file (if any), overridden by flags."""
    from gan4rec.experiment import DataSpec, Protocol

    cfg = cfg or {}
    data_kw: dict[str, Any] = dict(cfg.get("data", {}))
    proto_kw: dict[str, Any] = dict(cfg.get("protocol", {}))
    flag_sources = {k: getattr(args, k, None) for k in ("dataset", "data", "train", "test")}
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
    cols = _parse_columns(getattr(args, "columns", None))
    if cols:
        data_kw["columns"] = cols
    if getattr(args, "synthetic_size", None):
        data_kw["synthetic"] = {**data_kw.get("synthetic", {}), "size": args.synthetic_size}
    for flag, key in (("split", "split"), ("test_frac", "test_frac"), ("valid_frac", "valid_frac"),
                      ("leave_k", "k"), ("split_seed", "split_seed"), ("refit", "refit"),
                      ("valid_repeats", "valid_repeats")):
        value = getattr(args, flag, None)
        if value is not None:
            proto_kw[key] = value
    if getattr(args, "ks", None):
        try:
            proto_kw["ks"] = tuple(int(x) for x in args.ks.split(","))
        except ValueError:
            raise _UsageError(f"--ks: expected comma-separated integers, got {args.ks!r}") from None
    return DataSpec(**data_kw), Protocol(**proto_kw)


def _write_json(path: str, obj: Any) -> None:
    from gan4rec.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _print_metrics(title: str, metrics: dict[str, float] | None) -> None:
    if metrics is None:
        print(f"{title}: (none)")
        return
    keys = [k for k in metrics if "@" in k]
    ks = sorted({int(k.split("@")[1]) for k in keys})
    names = list(dict.fromkeys(k.split("@")[0] for k in keys))
    print(f"{title}:")
    print("  " + "metric".ljust(11) + "".join(f"@{k}".rjust(9) for k in ks))
    for n in names:
        cells = [f"{metrics[f'{n}@{k}']:.4f}".rjust(9) if f"{n}@{k}" in metrics else " " * 9 for k in ks]
        print("  " + n.ljust(11) + "".join(cells))


# ---------------------------------------------------------------------------------------------- commands
def _cmd_models(args: argparse.Namespace) -> int:
    from gan4rec.models import describe

    reg = describe()
    if args.json:
        print(json.dumps(reg, indent=2, default=_json_default))
        return 0
    for name, entry in reg.items():
        flag = " [adversarial]" if entry["adversarial"] else ""
        print(f"{name}{flag}: {entry['summary']}")
        print(f"  defaults: {json.dumps(entry['defaults'], default=_json_default)}")
        if entry["search_space"]:
            print(f"  search space: {json.dumps(entry['search_space'])}")
    return 0


def _load_cfg_and_model(args: argparse.Namespace) -> tuple[dict[str, Any], str, dict[str, Any]]:
    from gan4rec.experiment import load_config

    cfg = load_config(args.config) if args.config else {}
    model = args.model or cfg.get("model") or "toppop"
    params = dict(cfg.get("params", {}))
    if args.params:
        try:
            extra = json.loads(args.params)
        except json.JSONDecodeError as e:
            raise _UsageError(f"--params: invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(extra, dict):
            raise _UsageError("--params: expected a JSON object such as '{\"lambda_\": 500}'")
        params.update(extra)
    return cfg, model, params


def _start_distributed(args: argparse.Namespace, model_name: str) -> Any:
    """Check that ``model_name`` can train data-parallel, then join the torchrun process group."""
    from gan4rec.models import MODELS
    from gan4rec.models.torch_base import TorchRecommender
    from gan4rec.train import distributed

    cls = MODELS.get(model_name)
    supported = sorted(n for n, c in MODELS.items() if getattr(c, "supports_distributed", False))
    if cls is not None and not getattr(cls, "supports_distributed", False):
        if not issubclass(cls, TorchRecommender):
            what = "is not trained by gradient steps, so there is nothing to train data-parallel"
        else:
            what = "is not yet supported"
        raise _UsageError(f"--distributed: model {model_name!r} {what}; supported: {', '.join(supported)}")
    if args.dist_timeout <= 0:
        raise _UsageError(f"--dist-timeout must be > 0 seconds, got {args.dist_timeout}")
    if not distributed.launched_by_torchrun():
        raise _UsageError("--distributed needs the environment torchrun sets (RANK, WORLD_SIZE, ...); launch "
                          "with: torchrun --nproc-per-node N -m gan4rec train ... --distributed")
    ctx = distributed.init(device=args.device, timeout_s=args.dist_timeout)
    if not ctx.is_main:  # rank 0 speaks for the run; the others only report errors
        logging.getLogger("gan4rec").setLevel(logging.WARNING)
    return ctx


def _cmd_train(args: argparse.Namespace) -> int:
    from gan4rec.experiment import run

    cfg, model_name, params = _load_cfg_and_model(args)
    spec, protocol = _specs(args, cfg)
    seed = args.seed if args.seed is not None else int(cfg.get("protocol", {}).get("seed", 0))
    if not args.distributed:
        out = run(model_name, params, spec, protocol, seed=seed, device=args.device)
        return _report_train(args, out, model_name, spec, protocol, seed)
    from gan4rec.train import distributed

    ctx = _start_distributed(args, model_name)
    try:
        try:
            out = run(model_name, params, spec, protocol, seed=seed, device=str(ctx.device))
        except RuntimeError as e:
            if not _is_comm_failure(e):
                raise
            raise _DistributedFailure(f"rank {ctx.rank}: distributed training failed: another rank stopped "
                                      f"or cannot be reached ({_first_line(e)})") from e
        # Only rank 0 prints and writes; the other ranks hold the same model and results.
        return _report_train(args, out, model_name, spec, protocol, seed) if ctx.is_main else 0
    finally:
        distributed.shutdown()


class _DistributedFailure(Gan4recError):
    pass


def _is_comm_failure(e: RuntimeError) -> bool:
    """Whether ``e`` is a failed collective (a peer died, a timeout) rather than a bug in this rank.

    torch.distributed raises ``DistError`` from its own calls, but a failure inside DDP's backward
    all-reduce surfaces as a plain ``RuntimeError`` from the gloo or NCCL transport.
    """
    import torch.distributed as dist

    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(e, dist_error):
        return True
    text = str(e)
    return any(s in text for s in ("gloo", "NCCL", "c10d", "Connection reset", "Connection closed", "Timed out"))


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def _report_train(args: argparse.Namespace, out: Any, model_name: str, spec: Any, protocol: Any, seed: int) -> int:
    res, d = out.result, out.result["dataset"]
    print(f"data: {d['n_users']} users, {d['n_items']} items, {d['n_train']} train "
          f"({d['n_fit']} fit + {d['n_valid']} valid), {d['n_test']} test pairs; split {d['split_fingerprint'][:12]}")
    print(f"model: {model_name} {json.dumps(res['params'], default=_json_default)}; seed {seed}; "
          f"fit {res['fit_seconds']:.2f} s; refit {protocol.refit if out.split.valid is not None else 'n/a'}")
    _print_metrics("valid", res["metrics"]["valid"])
    _print_metrics("test", res["metrics"]["test"])
    # Both outputs are written only once everything has succeeded, each atomically.
    if args.save:
        out.model.save(args.save, extra={
            "split_fingerprint": out.split.fingerprint, "split": out.split.spec,
            "data": spec.describe(), "protocol": res["protocol"], "seed": seed,
            "metrics": res["metrics"],
        })
        print(f"saved model to {args.save}")
    if args.json:
        _write_json(args.json, res)
        print(f"wrote {args.json}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from gan4rec.experiment import load_split, protocol_record, run_on_split
    from gan4rec.tuning import tune

    cfg, model_name, params = _load_cfg_and_model(args)
    spec, protocol = _specs(args, cfg)
    if args.metric:
        protocol.metric = args.metric
    if args.trials < 1:
        raise _UsageError(f"--trials must be >= 1, got {args.trials}")
    if args.seeds < 1:
        raise _UsageError(f"--seeds must be >= 1, got {args.seeds}")
    split, data_info = load_split(spec, protocol)
    tuned = tune(model_name, split, n_trials=args.trials, metric=protocol.metric, ks=protocol.ks,
                 fixed_params=params, timeout=args.timeout, storage=args.storage, seed=0, device=args.device,
                 valid_repeats=protocol.valid_repeats, prune=not args.no_prune)
    print(f"tuned {model_name} on validation: best {tuned.metric} = {tuned.best_value:.4f} "
          f"after {len(tuned.trials)} trials ({tuned.seconds:.1f} s)")
    print(f"best params: {json.dumps(tuned.best_params, default=_json_default)}")
    runs = []
    for seed in range(args.seeds):
        out = run_on_split(model_name, tuned.best_params, split, data_info, protocol, seed=seed,
                           device=args.device)
        runs.append(out.result)
        test = out.result["metrics"]["test"]
        print(f"seed {seed}: test {protocol.metric} = {test.get(protocol.metric, float('nan')):.4f}")
    import numpy as np

    keys = list(runs[0]["metrics"]["test"])
    mean = {k: float(np.mean([r["metrics"]["test"][k] for r in runs])) for k in keys}
    std = {k: float(np.std([r["metrics"]["test"][k] for r in runs])) for k in keys}
    _print_metrics(f"test, mean over {args.seeds} seed(s)", mean)
    result = {**runs[0], "seed": list(range(args.seeds)), "metrics": {
        "valid": runs[0]["metrics"]["valid"], "test": mean, "test_std": std},
        "per_seed": [{"seed": r["seed"], "metrics": r["metrics"], "fit_seconds": r["fit_seconds"]} for r in runs],
        "best_params": tuned.best_params, "tuning": {k: v for k, v in tuned.to_json().items() if k != "trials"},
        "trials": tuned.trials, "protocol": protocol_record(protocol)}
    if args.save_config:
        import tomli_w

        from gan4rec.atomic import atomic_write_text

        proto = {k: v for k, v in protocol_record(protocol).items() if k != "evaluation"}
        proto["ks"] = list(protocol.ks)
        reps = protocol.valid_repeats
        where = f"the mean of {reps} validation carvings" if reps > 1 else "validation only"
        doc = {"description": f"{model_name} tuned by `gan4rec tune` ({args.trials} trials, {tuned.metric} on "
                              f"{where}; split {split.fingerprint[:12]})",
               "model": model_name, "params": tuned.best_params, "protocol": proto}
        atomic_write_text(args.save_config, tomli_w.dumps(doc))
        print(f"wrote {args.save_config}")
    if args.json:
        _write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _load_model(path: str) -> tuple[Any, dict[str, Any]]:
    from gan4rec.artifacts import read_artifact_meta
    from gan4rec.models.base import Recommender

    meta = read_artifact_meta(path)
    return Recommender.load(path), meta


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from gan4rec.experiment import DataSpec, Protocol, evaluate_model

    model, meta = _load_model(args.model_dir)
    saved_proto = {k: v for k, v in meta.get("protocol", {}).items() if k != "evaluation"}
    cfg = {"data": meta.get("data", {}) if not any(getattr(args, k) for k in ("dataset", "data", "train", "test"))
           else {}, "protocol": saved_proto}
    cfg["data"] = {k: v for k, v in cfg["data"].items() if k in {f for f in DataSpec.__dataclass_fields__}}
    if "name" in meta.get("data", {}) and not cfg["data"].get("dataset") and not any(
            getattr(args, k) for k in ("dataset", "data", "train", "test")):
        cfg["data"]["dataset"] = meta["data"]["name"]
        if "synthetic" in meta["data"]:
            cfg["data"]["synthetic"] = meta["data"]["synthetic"]
    cfg["protocol"] = {k: v for k, v in cfg["protocol"].items() if k in Protocol.__dataclass_fields__}
    spec, protocol = _specs(args, cfg)
    res = evaluate_model(model, meta, spec, protocol, device=args.device)
    _print_metrics("test", res["metrics"]["test"])
    if args.json:
        _write_json(args.json, res)
        print(f"wrote {args.json}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from gan4rec.artifacts import read_artifact_meta

    meta = read_artifact_meta(args.model_dir)
    summary = {k: meta.get(k) for k in ("model", "format_version", "params", "adversarial", "versions",
                                        "train_fingerprint", "split_fingerprint", "split", "data", "seed",
                                        "metrics")}
    summary["n_users"] = len(meta.get("user_map", {}).get("ids", []))
    summary["n_items"] = len(meta.get("item_map", {}).get("ids", []))
    summary["tensors"] = meta.get("tensors")
    summary["epochs_logged"] = len(meta.get("history", []))
    print(json.dumps(summary, indent=2, default=_json_default))
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    import numpy as np

    from gan4rec.data.io import write_recommendations

    model, _ = _load_model(args.model_dir)
    if args.k < 1:
        raise _UsageError(f"-k must be >= 1, got {args.k}")
    if args.users == "all":
        users = np.arange(model.n_users)
    else:
        path = Path(args.users)
        if not path.is_file():
            raise MissingInputError(f"{path}: no such users file")
        raws = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if model.user_map_.get(text) < 0:
                raise DataError(f"{path}:{lineno}: unknown user {text!r}")
            raws.append(text)
        users = model.user_map_.index(raws, what="user")

    def batches() -> Any:
        from gan4rec._progress import progress

        for start in progress(range(0, len(users), args.batch_size), desc="recommend", unit="batch"):
            chunk = users[start : start + args.batch_size]
            items, scores = model.recommend(chunk, args.k, exclude_seen=not args.include_seen)
            yield chunk, items, scores

    n = write_recommendations(args.out, batches(), model.user_map_, model.item_map_)
    print(f"wrote {n} recommendations for {len(users)} users to {args.out}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from gan4rec.serve.app import run_server

    if args.workers < 1:
        raise _UsageError(f"--workers must be >= 1, got {args.workers}")
    if not 0 <= args.port <= 65535:
        raise _UsageError(f"--port must be in 0..65535, got {args.port}")
    run_server(args.model_dir, host=args.host, port=args.port, workers=args.workers,
               api_key_file=args.api_key_file, items_file=args.items_file, strict_users=args.strict_users,
               max_body_bytes=args.max_body_bytes, graceful_timeout=args.graceful_timeout,
               access_log=not args.no_access_log, threads=args.threads,
               log_level="debug" if args.debug else "warning" if args.quiet else "info")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from gan4rec.explain import explain
    from gan4rec.serve.state import lookup_id, read_item_titles

    if args.top < 1:
        raise _UsageError(f"--top must be >= 1, got {args.top}")
    model, _ = _load_model(args.model_dir)
    user, item = lookup_id(model.user_map_, args.user), lookup_id(model.item_map_, args.item)
    if user < 0:
        raise DataError(f"--user {args.user!r}: unknown user; the model was not trained on it")
    if item < 0:
        raise DataError(f"--item {args.item!r}: unknown item; the model was not trained on it")
    titles = read_item_titles(args.items_file, model.item_map_) if args.items_file else None
    e = explain(model, item, user=user, top=args.top)
    raw_items = model.item_map_.to_raw(e.items).tolist()
    rows = [{"item": r, "weight": w, "title": None if titles is None else titles[i]}
            for r, w, i in zip(raw_items, e.weights.tolist(), e.items.tolist())]
    out = {"model": model.name, "user": model.user_map_.to_raw([user]).tolist()[0],
           "item": model.item_map_.to_raw([item]).tolist()[0], "title": None if titles is None else titles[item],
           "score": e.score, "method": e.method, "approximate": e.approximate, "total": e.total,
           "baseline": e.baseline, "history_size": e.history_size, "contributions": rows,
           "warnings": list(e.warnings)}
    if args.json:
        print(json.dumps(out, indent=2, default=_json_default))
        return 0
    name = f"{out['item']}" + (f" ({out['title']})" if out["title"] else "")
    print(f"{model.name}: item {name} scores {e.score:.6g} for user {out['user']} "
          f"(method: {e.method}; {e.history_size} history items)")
    if e.total is not None:
        what = "the score" if e.baseline is None else f"score - baseline ({e.baseline:.6g})"
        print(f"sum of all history weights: {e.total:.6g} (equals {what})")
    for rank, row in enumerate(rows, 1):
        title = f"  {row['title']}" if row["title"] else ""
        print(f"{rank:>4}  {row['item']!s:>10}  {row['weight']:>12.6g}{title}")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from gan4rec.data import datasets

    if args.data_cmd == "fetch":
        path = datasets.fetch(args.name)
        print(f"{args.name}: {path}")
        return 0
    if args.data_cmd == "info":
        if args.name:
            info = datasets.dataset_info(args.name)
        else:
            from gan4rec.data.io import read_interactions

            if not args.data:
                raise _UsageError("data info needs a dataset NAME or --data FILE")
            spec, _ = _specs(args)
            inter = read_interactions(spec.data, format=spec.format, min_rating=spec.min_rating,
                                      **({"columns": spec.columns} if spec.columns else {}),
                                      **({"sep": spec.sep} if spec.sep else {}))
            info = {"file": args.data, "n_users": inter.n_users, "n_items": inter.n_items,
                    "n_interactions": inter.nnz, "density": inter.nnz / max(1, inter.n_users * inter.n_items),
                    "fingerprint": inter.fingerprint()}
        print(json.dumps(info, indent=2, default=_json_default))
        return 0
    if args.data_cmd == "split":
        from gan4rec.data.io import write_interactions
        from gan4rec.experiment import load_split

        spec, protocol = _specs(args)
        split, info = load_split(spec, protocol)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        ext = args.out_format
        for part in ("train", "valid", "test"):
            inter = getattr(split, part)
            if inter is not None:
                write_interactions(inter, out / f"{part}.{ext}")
        _write_json(str(out / "split.json"), {"spec": split.spec, "fingerprint": split.fingerprint, "data": info})
        print(f"wrote {', '.join(p for p in ('train', 'valid', 'test') if getattr(split, p) is not None)} "
              f"and split.json to {out} (fingerprint {split.fingerprint[:12]})")
        return 0
    raise _UsageError("data: expected a subcommand: fetch, info or split")


def _cmd_compare(args: argparse.Namespace) -> int:
    from gan4rec.compare import load_experiment

    exp = load_experiment(args.config) if args.config else {}
    names = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else exp.get("models")
    if not names:
        raise _UsageError("compare needs --models NAME,NAME,... (or models = [...] in the --config file)")
    if len(set(names)) != len(names):
        raise _UsageError(f"--models lists a model twice: {','.join(names)}")
    fixed = exp.get("params", {})
    models = {n: dict(fixed.get(n, {})) for n in names}
    seeds = args.seeds if args.seeds is not None else exp.get("seeds", 3)
    trials = args.trials if args.trials is not None else exp.get("trials", 20)
    splits = args.splits if args.splits is not None else exp.get("splits", 1)
    timeout = args.timeout if args.timeout is not None else exp.get("timeout_per_model")
    if isinstance(seeds, int) and seeds < 1:
        raise _UsageError(f"--seeds must be >= 1, got {seeds}")
    if trials < 0:
        raise _UsageError(f"--trials must be >= 0, got {trials}")
    if splits < 1:
        raise _UsageError(f"--splits must be >= 1, got {splits}")
    if timeout is not None and timeout <= 0:
        raise _UsageError(f"--timeout must be > 0 seconds, got {timeout}")
    return _run_compare(args, exp, models, seeds=seeds, trials=trials, splits=splits, timeout=timeout,
                        skip_missing=bool(exp.get("skip_missing_models", False)),
                        description=exp.get("description", ""), report=args.report)


def _run_compare(
    args: argparse.Namespace, exp: dict[str, Any], models: dict[str, dict[str, Any]], *, seeds: Any, trials: int,
    splits: int, timeout: float | None, skip_missing: bool, description: str, report: str | None,
) -> int:
    """Shared by compare and demo: run, print the leaderboard, write the report and the JSON."""
    from gan4rec.compare import compare, leaderboard_text

    spec, protocol = _specs(args, exp)
    if getattr(args, "metric", None):
        protocol.metric = args.metric
    result = compare(models, spec, protocol, seeds=seeds, trials=trials, splits=splits, timeout_per_model=timeout,
                     config=exp.get("source"), device=args.device, skip_missing=skip_missing,
                     description=description)
    print(leaderboard_text(result))
    if report:
        from gan4rec.report import write_report

        print(f"report: {write_report(result, report)}")
    if args.json:
        _write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import time

    from gan4rec.compare import demo_experiment
    from gan4rec.models import MODELS

    exp = demo_experiment(n_users=args.users, n_items=args.items)
    syn = exp["data"]["synthetic"]
    present = [m for m in exp["models"] if m in MODELS]
    missing = [m for m in exp["models"] if m not in MODELS]
    print(f"gan4rec demo: built-in synthetic dataset, {syn['n_users']} users x {syn['n_items']} items, "
          f"{syn['n_interactions']} interactions (offline)")
    print(f"models: {', '.join(present)}" + (f" (skipped {', '.join(missing)}: not in this build)" if missing else "")
          + f"; {exp['trials']} tuning trials each on validation ({exp['timeout_per_model']:g} s box), "
          f"{exp['seeds']} seed(s), test read once")
    t0 = time.perf_counter()
    code = _run_compare(args, exp, {m: dict(exp["params"].get(m, {})) for m in exp["models"]}, seeds=exp["seeds"],
                        trials=exp["trials"], splits=exp["splits"], timeout=exp["timeout_per_model"],
                        skip_missing=True, description=exp["description"], report=args.report)
    print(f"demo finished in {time.perf_counter() - t0:.0f} s; open the report in a browser")
    return code


# ---------------------------------------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gan4rec",
        description="GAN recommenders, honestly evaluated against strong classic baselines.",
    )
    p.add_argument("--version", action="version", version=f"gan4rec {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    m = sub.add_parser("models", help="list the registry: defaults, search spaces, adversarial flag")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(func=_cmd_models)

    t = sub.add_parser("train", help="fit a model with the honest protocol and evaluate test once")
    t.add_argument("--model", help="registry name (default: the config's model, else toppop)")
    t.add_argument("--params", help="JSON object of hyperparameters, over the config's [params]")
    t.add_argument("--config", metavar="FILE.toml", help="experiment config: model, [params], [protocol], [data]")
    t.add_argument("--seed", type=int, default=None, help="model seed (default 0)")
    t.add_argument("--refit", choices=["full", "none"], default=None,
                   help="after validation, refit on the whole train (full, default) or keep the model")
    t.add_argument("--save", metavar="DIR", help="save the final model (an artifact directory)")
    t.add_argument("--json", metavar="FILE", help="write the result as JSON")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    t.add_argument("--distributed", action="store_true",
                   help="train data-parallel (DDP) as one rank of a torchrun launch: gloo on cpu, NCCL on cuda; "
                        "bpr, multvae, irgan, cfgan (see docs/distributed.md)")
    t.add_argument("--dist-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="with --distributed: how long a rank waits for the others, e.g. while rank 0 "
                        "validates (default 600)")
    _add_data_options(t)
    t.set_defaults(func=_cmd_train)

    tu = sub.add_parser("tune", help="tune on validation with Optuna, then refit and test once per seed")
    tu.add_argument("--model", help="registry name (default: the config's model)")
    tu.add_argument("--params", help="JSON object of params held fixed")
    tu.add_argument("--config", metavar="FILE.toml")
    tu.add_argument("--trials", type=int, required=True, help="trial budget (the same for every model)")
    tu.add_argument("--metric", default=None, help="validation metric to maximise (default NDCG@20)")
    tu.add_argument("--timeout", type=float, default=None, help="stop starting trials after SECONDS")
    tu.add_argument("--storage", default=None, help="Optuna storage to resume, e.g. sqlite:///tune.db")
    tu.add_argument("--no-prune", action="store_true",
                    help="never abandon a trial early (default: median pruning of epoch-based models)")
    tu.add_argument("--seeds", type=int, default=1, help="refit + test the best params with seeds 0..N-1")
    tu.add_argument("--refit", choices=["full", "none"], default=None)
    tu.add_argument("--json", metavar="FILE")
    tu.add_argument("--save-config", metavar="FILE.toml", help="write the tuned config (model, params, protocol)")
    tu.add_argument("--device", default=None)
    _add_data_options(tu)
    tu.set_defaults(func=_cmd_tune)

    c = sub.add_parser("compare", help="tune, refit and test several models on the same split(s); leaderboard, "
                                       "significance tests and an HTML report")
    c.add_argument("--models", help="comma-separated registry names, e.g. cfgan,ease,toppop (default: the config's)")
    c.add_argument("--config", metavar="FILE.toml",
                   help="experiment config (configs/experiments/*.toml); flags override it; paths in it are "
                        "relative to the current directory")
    c.add_argument("--seeds", type=int, default=None, help="refit + test with seeds 0..N-1 (default: config, else 3)")
    c.add_argument("--trials", type=int, default=None,
                   help="tuning trials per model, the same for all (default: config, else 20; 0 = no tuning)")
    c.add_argument("--splits", type=int, default=None, help="repeat over N splits, split seeds split-seed + i")
    c.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="time box of each model's tuning (the same for all)")
    c.add_argument("--metric", default=None, help="metric to tune, rank and test (default NDCG@20)")
    c.add_argument("--refit", choices=["full", "none"], default=None)
    c.add_argument("--report", metavar="DIR", help="write DIR/report.html (+ results.json, experiment.toml)")
    c.add_argument("--json", metavar="FILE", help="write the result as JSON")
    c.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    _add_data_options(c)
    c.set_defaults(func=_cmd_compare)

    dm = sub.add_parser("demo", help="a compact comparison on built-in synthetic data, with an HTML report")
    dm.add_argument("--report", metavar="DIR", default="gan4rec-demo",
                    help="report folder (default ./gan4rec-demo/); the report is DIR/report.html")
    dm.add_argument("--users", type=int, default=500, help="synthetic users (default 500)")
    dm.add_argument("--items", type=int, default=800, help="synthetic items (default 800); ML-100K density")
    dm.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    dm.add_argument("--device", default=None)
    dm.set_defaults(func=_cmd_demo)

    e = sub.add_parser("evaluate", help="evaluate a saved model on the test split it was held out from")
    e.add_argument("model_dir", metavar="MODEL_DIR")
    e.add_argument("--json", metavar="FILE")
    e.add_argument("--device", default=None)
    _add_data_options(e, default_dataset=False)
    e.set_defaults(func=_cmd_evaluate)

    i = sub.add_parser("info", help="params, versions, data fingerprint and format version of a saved model")
    i.add_argument("model_dir", metavar="MODEL_DIR")
    i.set_defaults(func=_cmd_info)

    r = sub.add_parser("recommend", help="batch top-K for many users, streamed to parquet or csv")
    r.add_argument("model_dir", metavar="MODEL_DIR")
    r.add_argument("--users", default="all", help="'all' or a file of raw user ids, one per line")
    r.add_argument("-k", type=int, default=10)
    r.add_argument("--out", required=True, metavar="FILE", help="recs.parquet or recs.csv")
    r.add_argument("--include-seen", action="store_true", help="do not exclude the users' training items")
    r.add_argument("--batch-size", type=int, default=1024)
    r.set_defaults(func=_cmd_recommend)

    sv = sub.add_parser("serve", help="serve a saved model over HTTP (recommend, explain, similar, web page)")
    sv.add_argument("model_dir", metavar="MODEL_DIR")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=int, default=1,
                    help="worker processes (default 1; with more, SIGHUP restarts workers one by one)")
    sv.add_argument("--api-key-file", metavar="FILE", help="accepted API keys, one per line (X-API-Key header)")
    sv.add_argument("--items-file", metavar="FILE",
                    help="item titles: MovieLens u.item / movies.dat / movies.csv, or a CSV with item,title")
    sv.add_argument("--strict-users", action="store_true",
                    help="answer 404 to unknown users instead of recommending popular items")
    sv.add_argument("--max-body-bytes", type=int, default=4 * 2**20, help="largest request body (default 4 MiB)")
    sv.add_argument("--graceful-timeout", type=float, default=30.0,
                    help="seconds SIGTERM waits for requests in flight before exiting (default 30)")
    sv.add_argument("--threads", type=int, default=None, help="torch/OpenMP threads per worker")
    sv.add_argument("--no-access-log", action="store_true", help="do not log every request")
    sv.set_defaults(func=_cmd_serve)

    ex = sub.add_parser("explain", help="which of a user's history items drove a model's score of an item")
    ex.add_argument("model_dir", metavar="MODEL_DIR")
    ex.add_argument("--user", required=True, help="raw user id")
    ex.add_argument("--item", required=True, help="raw item id")
    ex.add_argument("--top", type=int, default=10, help="history items to show (default 10)")
    ex.add_argument("--items-file", metavar="FILE", help="item titles (as for serve)")
    ex.add_argument("--json", action="store_true", help="print JSON")
    ex.set_defaults(func=_cmd_explain)

    d = sub.add_parser("data", help="fetch, describe and split datasets")
    dsub = d.add_subparsers(dest="data_cmd", metavar="SUBCOMMAND")
    f = dsub.add_parser("fetch", help="download a dataset into the cache (GAN4REC_DATA or ~/.cache/gan4rec)")
    f.add_argument("name")
    di = dsub.add_parser("info", help="sizes and checksums status of a dataset or file")
    di.add_argument("name", nargs="?")
    _add_data_options(di, default_dataset=False)
    ds = dsub.add_parser("split", help="split a dataset and write train/valid/test files")
    _add_data_options(ds)
    ds.add_argument("--out", required=True, metavar="DIR")
    ds.add_argument("--out-format", choices=["csv", "tsv", "parquet"], default="csv")
    d.set_defaults(func=_cmd_data)
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
    """Entry point of the ``gan4rec`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    previous = _configure_logging(args.debug, args.quiet)
    try:
        return int(args.func(args))
    except _UsageError as e:
        print(f"gan4rec: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (MissingInputError, FileNotFoundError) as e:
        if args.debug:
            raise
        print(f"gan4rec: error: {e}", file=sys.stderr)
        return EXIT_NOINPUT
    except (DataError, ArtifactError) as e:
        if args.debug:
            raise
        print(f"gan4rec: error: {e}", file=sys.stderr)
        return EXIT_DATA
    except (NotFittedError, _DistributedFailure) as e:
        if args.debug:
            raise
        print(f"gan4rec: error: {e}", file=sys.stderr)
        return EXIT_SOFTWARE
    except KeyboardInterrupt:
        print("gan4rec: interrupted", file=sys.stderr)
        return 130
    finally:
        root = logging.getLogger("gan4rec")
        root.handlers[:], root.level, root.propagate = previous
