"""Commands on a saved model: ``evaluate``, ``info``, ``recommend``, ``serve`` and ``explain``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gan4rec.cli.common import (
    UsageError,
    add_data_options,
    device_name,
    json_default,
    load_model,
    non_negative_int,
    output_file,
    positive_float,
    positive_int,
)
from gan4rec.cli.evaluate_cmd import cmd_evaluate
from gan4rec.errors import DataError, MissingInputError

__all__ = ["add_parsers"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number in 0..65535, got {text!r}")
    return value


# ---------------------------------------------------------------------------------------------- parsers
def add_parsers(sub: Any) -> None:
    """Add evaluate, info, recommend, serve and explain to the subcommands ``sub``."""
    e = sub.add_parser("evaluate", help="evaluate a saved model on the test split it was held out from")
    e.add_argument("model_dir", metavar="MODEL_DIR")
    e.add_argument("--json", type=output_file, metavar="FILE", help="write the result as JSON")
    e.add_argument("--device", type=device_name, default=None)
    e.epilog = ("Without data options, the data recorded in MODEL_DIR's meta.json are read (never downloaded); "
                "data options replace the recorded source, reading flags override the recorded ones.")
    add_data_options(e, default_dataset=False)
    e.set_defaults(func=cmd_evaluate)

    i = sub.add_parser("info", help="params, versions, data fingerprint and format version of a saved model")
    i.add_argument("model_dir", metavar="MODEL_DIR")
    i.set_defaults(func=_cmd_info)

    r = sub.add_parser("recommend", help="batch top-K for many users, streamed to parquet or csv")
    r.add_argument("model_dir", metavar="MODEL_DIR")
    r.add_argument("--users", default="all", help="'all' or a file of raw user ids, one per line")
    r.add_argument("-k", type=positive_int, default=10, help="recommendations per user (default 10)")
    r.add_argument("--out", required=True, type=output_file, metavar="FILE", help="recs.parquet or recs.csv")
    r.add_argument("--include-seen", action="store_true", help="do not exclude the users' training items")
    r.add_argument("--batch-size", type=positive_int, default=1024)
    r.add_argument("--new-items", metavar="FILE",
                   help="new items to rank with the catalog (cold-start models): a table item,feature[,value] "
                        "(csv/parquet) whose features are the model's content columns")
    r.set_defaults(func=_cmd_recommend)

    sv = sub.add_parser("serve", help="serve a saved model over HTTP (recommend, explain, similar, web page)")
    sv.add_argument("model_dir", metavar="MODEL_DIR")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=_port, default=8000)
    sv.add_argument("--workers", type=positive_int, default=1,
                    help="worker processes (default 1; with more, SIGHUP restarts workers one by one)")
    sv.add_argument("--api-key-file", metavar="FILE", help="accepted API keys, one per line (X-API-Key header)")
    sv.add_argument("--items-file", metavar="FILE",
                    help="item titles: MovieLens u.item / movies.dat / movies.csv, or a CSV with item,title")
    sv.add_argument("--new-items", metavar="FILE",
                    help="new items to rank with the catalog (cold-start models): a table item,feature[,value] "
                         "(csv/parquet), re-read when it changes; POST /items adds more")
    sv.add_argument("--strict-users", action="store_true",
                    help="answer 404 to unknown users instead of recommending popular items")
    sv.add_argument("--max-body-bytes", type=positive_int, default=4 * 2**20, help="largest request body (default 4 MiB)")
    sv.add_argument("--graceful-timeout", type=float, default=30.0,
                    help="seconds SIGTERM waits for requests in flight before exiting (default 30)")
    sv.add_argument("--threads", type=positive_int, default=None, help="torch/OpenMP threads per worker")
    sv.add_argument("--no-access-log", action="store_true", help="do not log every request")
    # Connection bounds (defaults: gan4rec.serve.app's DEFAULT_* constants; repeated here so --help needs no
    # FastAPI import).
    sv.add_argument("--keep-alive-timeout", type=positive_float, default=5.0,
                    help="seconds an idle connection (new, or between requests) stays open (default 5)")
    sv.add_argument("--head-timeout", type=positive_float, default=10.0,
                    help="seconds a client has to send a request head, from its first byte, else 408 (default 10)")
    sv.add_argument("--body-timeout", type=positive_float, default=30.0,
                    help="seconds from a request head to the last byte of its body, else 408 (default 30)")
    sv.add_argument("--limit-concurrency", type=non_negative_int, default=1024,
                    help="open connections or requests per worker before new requests get 503 (default 1024; "
                         "0: no cap)")
    sv.set_defaults(func=_cmd_serve)

    ex = sub.add_parser("explain", help="which of a user's history items (or, for a cold item of a hybrid, which "
                                        "of its content features) drove a model's score of an item")
    ex.add_argument("model_dir", metavar="MODEL_DIR")
    ex.add_argument("--user", required=True, help="raw user id")
    ex.add_argument("--item", required=True, help="raw item id")
    ex.add_argument("--top", type=positive_int, default=10, help="history items to show (default 10)")
    ex.add_argument("--items-file", metavar="FILE", help="item titles (as for serve)")
    ex.add_argument("--json", action="store_true", help="print JSON")
    ex.add_argument("--content", action="store_true",
                    help="explain by the item's content features (cold-start hybrids; the default for a cold item)")
    ex.add_argument("--new-item-features", metavar="FILE",
                    help="a NEW item's content: a table item,feature[,value] whose features are the model's column "
                         "labels (genres=Action, text=neural: feature_names in its meta.json); --item names an item of it")
    ex.epilog = ("A cold-start hybrid's cold item (no training interaction) is explained by its content features: "
                 "exact contributions for content-knn and ridge-map, occlusion for the others (gan4rec.explain_cold).")
    ex.set_defaults(func=_cmd_explain)


# ---------------------------------------------------------------------------------------------- commands
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
    print(json.dumps(summary, indent=2, default=json_default))
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    import numpy as np

    from gan4rec.data.io import write_recommendations

    suffix = Path(args.out).suffix.lower()
    if suffix not in (".csv", ".tsv", ".parquet"):
        raise UsageError(f"--out {args.out}: expected a .parquet, .csv or .tsv file name")
    path = Path(args.users)
    if args.users != "all" and not path.is_file():
        raise MissingInputError(f"{path}: no such users file")
    if args.new_items and not Path(args.new_items).is_file():
        raise MissingInputError(f"{args.new_items}: no such new-items file (--new-items)")
    model, _ = load_model(args.model_dir)
    new_items = _read_new_items(model, args.new_items) if args.new_items else None
    if args.users == "all":
        users = np.arange(model.n_users)
    else:
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
            if new_items is None:
                items, scores = model.recommend(chunk, args.k, exclude_seen=not args.include_seen)
            else:
                items, scores = _recommend_with_new(model, new_items, chunk, args.k, not args.include_seen)
            yield chunk, items, scores

    item_map = model.item_map_
    if new_items is not None:
        from gan4rec.data.idmap import IdMap

        item_map = IdMap(np.concatenate([item_map.ids, new_items.item_map.ids]))  # new item j: n_items + j
    n = write_recommendations(args.out, batches(), model.user_map_, item_map)
    extra = f", ranking {len(new_items)} new items with the catalog" if new_items is not None else ""
    print(f"wrote {n} recommendations for {len(users)} users to {args.out}{extra}")
    return 0


def _read_new_items(model: Any, path: str) -> Any:
    """The new items of ``--new-items`` encoded for ``model`` (exit 2 for a model that cannot score them)."""
    from gan4rec.serve.new_items import encode_new_items, new_items_support, read_new_items_file

    reason = new_items_support(model)
    if reason is not None:
        raise UsageError(f"--new-items: {reason}")
    return encode_new_items(model, read_new_items_file(path))


def _recommend_with_new(model: Any, new_items: Any, users: Any, k: int, exclude_seen: bool) -> tuple[Any, Any]:
    """Top-``k`` over the catalog and the new items (index ``n_items + j``), as ``model.recommend`` ranks."""
    import numpy as np

    from gan4rec.evaluation.evaluator import topk

    scores = np.asarray(model.score(users), dtype=np.float32).copy()  # (n, n_items)
    if exclude_seen:
        indptr, indices = model.seen_.indptr, model.seen_.indices
        for r, u in enumerate(np.asarray(users).tolist()):
            scores[r, indices[indptr[u] : indptr[u + 1]]] = -np.inf
    new = np.asarray(model.score_new_items(users, new_items.features), dtype=np.float32)  # (n, m)
    values, idx = topk(np.hstack([scores, new]), k)  # (n, k), padded with -1 where too few items
    return idx.numpy().astype(np.int64), values.numpy()


def _cmd_serve(args: argparse.Namespace) -> int:
    from gan4rec.serve.app import run_server
    from gan4rec.serve.new_items import NewItemsUnsupportedError

    if args.new_items and not Path(args.new_items).is_file():
        raise MissingInputError(f"{args.new_items}: no such new-items file (--new-items)")
    try:
        run_server(args.model_dir, host=args.host, port=args.port, workers=args.workers,
                   api_key_file=args.api_key_file, items_file=args.items_file, new_items_file=args.new_items,
                   strict_users=args.strict_users, max_body_bytes=args.max_body_bytes,
                   graceful_timeout=args.graceful_timeout, access_log=not args.no_access_log,
                   threads=args.threads, log_level="debug" if args.debug else "warning" if args.quiet else "info",
                   keep_alive_timeout=args.keep_alive_timeout, head_timeout=args.head_timeout,
                   body_timeout=args.body_timeout, limit_concurrency=args.limit_concurrency or None)
    except NewItemsUnsupportedError as e:  # the model was loaded, the server not started
        raise UsageError(f"--new-items {e}") from None
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from gan4rec.explain import UnsupportedError, explain
    from gan4rec.serve.state import lookup_id, read_item_titles

    if args.items_file and not Path(args.items_file).is_file():
        raise MissingInputError(f"{args.items_file}: no such items file (--items-file)")
    if args.new_item_features and not Path(args.new_item_features).is_file():
        raise MissingInputError(f"{args.new_item_features}: no such features file (--new-item-features)")
    model, _ = load_model(args.model_dir)
    user, item = lookup_id(model.user_map_, args.user), lookup_id(model.item_map_, args.item)
    if user < 0:
        raise DataError(f"--user {args.user!r}: unknown user; the model was not trained on it")
    if args.new_item_features:
        if item >= 0:
            raise UsageError(f"--item {args.item!r} is an item of the model; --new-item-features is for new items")
        return _explain_content(args, model, user, None, None)
    if item < 0:
        raise DataError(f"--item {args.item!r}: unknown item; the model was not trained on it")
    titles = read_item_titles(args.items_file, model.item_map_) if args.items_file else None
    cold = getattr(model, "cold_start", False) and not bool(model.warm_[item])
    if args.content or cold:
        return _explain_content(args, model, user, item, titles)
    try:
        e = explain(model, item, user=user, top=args.top)
    except UnsupportedError:
        if not getattr(model, "cold_start", False):
            raise
        return _explain_content(args, model, user, item, titles)  # a hybrid's warm item: its content score
    raw_items = model.item_map_.to_raw(e.items).tolist()
    rows = [{"item": r, "weight": w, "title": None if titles is None else titles[i]}
            for r, w, i in zip(raw_items, e.weights.tolist(), e.items.tolist())]
    out = {"model": model.name, "user": model.user_map_.to_raw([user]).tolist()[0],
           "item": model.item_map_.to_raw([item]).tolist()[0], "title": None if titles is None else titles[item],
           "score": e.score, "method": e.method, "approximate": e.approximate, "total": e.total,
           "baseline": e.baseline, "history_size": e.history_size, "contributions": rows,
           "warnings": list(e.warnings)}
    if args.json:
        print(json.dumps(out, indent=2, default=json_default))
        return 0
    name = f"{out['item']}" + (f" ({out['title']})" if out["title"] else "")
    print(f"{model.name}: item {name} scores {e.score:.6g} for user {out['user']} "
          f"(method: {e.method}; {e.history_size} history items)")
    if e.total is not None:
        what = "the score" if e.baseline is None else f"score - baseline ({e.baseline:.6g})"
        print(f"sum of all history weights: {e.total:.6g} (equals {what})")
    print(f"{'rank':>4}  {'item':>10}  {'weight':>12}" + ("  title" if titles is not None else ""))
    for rank, row in enumerate(rows, 1):
        title = f"  {row['title']}" if row["title"] else ""
        print(f"{rank:>4}  {row['item']!s:>10}  {row['weight']:>12.6g}{title}")
    return 0


def _new_item_row(model: Any, path: str, raw_item: str) -> Any:
    """The content row of new item ``raw_item`` from ``path`` (item,feature[,value]; features: column labels)."""
    import numpy as np
    import scipy.sparse as sp

    from gan4rec.data.idmap import IdMap
    from gan4rec.data.io import read_feature_table
    from gan4rec.explain_cold import content_method

    content_method(model)  # a hybrid with content, before the file is read
    raw: Any = int(raw_item) if model.item_map_.kind == "int" and raw_item.lstrip("-").isdigit() else raw_item
    table = read_feature_table(path, IdMap(np.array([raw], dtype=object if isinstance(raw, str) else np.int64)),
                               on_unknown="ignore")
    if table.matrix.nnz == 0:
        raise DataError(f"{path}: no feature row for item {raw_item!r}")
    labels = {name: j for j, name in enumerate(model.feature_names_)}
    unknown = [str(n) for n in table.names.tolist() if n not in labels]
    if unknown:
        raise DataError(f"{path}: feature {unknown[0]!r} is not a content column of the model (its columns are "
                        f"labelled like {model.feature_names_[0]!r}; its meta.json lists them under feature_names)")
    cols = np.array([labels[str(n)] for n in table.names.tolist()], dtype=np.int64)
    m = table.matrix.tocoo()
    return sp.csr_matrix((m.data, (np.zeros_like(m.row), cols[m.col])), shape=(1, len(labels)))


def _explain_content(args: argparse.Namespace, model: Any, user: int, item: int | None, titles: Any) -> int:
    """Print which content features drove a hybrid's score of an item (:func:`gan4rec.explain_cold.explain_cold`).

    ``item=None``: the new item ``args.item`` of ``args.new_item_features``.
    """
    from gan4rec.explain_cold import explain_cold

    if item is None:
        row = _new_item_row(model, args.new_item_features, args.item)
        e = explain_cold(model, user, features=row, top=args.top)
    else:
        e = explain_cold(model, user, item=item, top=args.top)
    rows = [{"feature": f, "value": v, "contribution": c}
            for f, v, c in zip(e.features, e.values.tolist(), e.contributions.tolist(), strict=True)]
    out = {"model": model.name, "user": model.user_map_.to_raw([user]).tolist()[0],
           "item": args.item if item is None else model.item_map_.to_raw([item]).tolist()[0],
           "title": None if titles is None or item is None else titles[item], "explains": "content",
           "new": item is None, "cold": item is None or not bool(model.warm_[item]), "score": e.score, "method": e.method,
           "total": e.total, "rest": e.rest, "baseline": e.baseline, "n_features": e.n_nonzero,
           "contributions": rows, "warnings": list(e.warnings)}
    if args.json:
        print(json.dumps(out, indent=2, default=json_default))
        return 0
    name = f"{out['item']}" + (f" ({out['title']})" if out["title"] else "")
    kind = "new " if out["new"] else "cold " if out["cold"] else ""
    print(f"{model.name}: {kind}item {name} scores {e.score:.6g} for user {out['user']} "
          f"(method: {e.method}; {e.n_nonzero} content features)")
    if e.rest is not None:
        print(f"sum of all feature contributions: {e.total:.6g} (the score minus {e.rest:.6g}, which does not "
              "depend on the content)")
    if e.baseline is not None:
        print(f"score with no content at all: {e.baseline:.6g}; each contribution is the drop in score without "
              "that feature")
    for w in e.warnings:
        print(f"note: {w}")
    width = max([len("feature"), *(len(r["feature"]) for r in rows)])
    print(f"{'rank':>4}  {'feature':<{width}}  {'value':>10}  {'contribution':>12}")
    for rank, row in enumerate(rows, 1):
        print(f"{rank:>4}  {row['feature']:<{width}}  {row['value']:>10.4g}  {row['contribution']:>12.6g}")
    return 0
