"""``gan4rec data fetch|info|split``: datasets by name, files, and splits written to disk."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gan4rec.cli.common import UsageError, add_data_options, dataset_name, json_default, specs, write_json

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    """Add ``data`` and its subcommands to the subcommands ``sub``."""
    d = sub.add_parser("data", help="fetch, describe and split datasets")
    dsub = d.add_subparsers(dest="data_cmd", metavar="SUBCOMMAND")
    f = dsub.add_parser("fetch", help="download a dataset into the cache (GAN4REC_DATA or ~/.cache/gan4rec)")
    f.add_argument("name", metavar="NAME", type=dataset_name)
    di = dsub.add_parser("info", help="sizes and checksums status of a dataset or file")
    di.add_argument("name", metavar="NAME", nargs="?", type=dataset_name)
    add_data_options(di, default_dataset=False)
    ds = dsub.add_parser("split", help="split a dataset and write train/valid/test files")
    add_data_options(ds)
    ds.add_argument("--out", required=True, metavar="DIR")
    ds.add_argument("--out-format", choices=["csv", "tsv", "parquet"], default="csv")
    d.set_defaults(func=_cmd_data)


def _cmd_data(args: argparse.Namespace) -> int:
    from gan4rec.data import datasets

    if args.data_cmd == "fetch":
        path = datasets.fetch(args.name)
        print(f"{args.name}: {path}")
        return 0
    if args.data_cmd == "info":
        if args.name or args.dataset:
            info = datasets.dataset_info(args.name or args.dataset)
        else:
            from gan4rec.data.io import read_interactions

            if not args.data:
                raise UsageError("data info needs a dataset NAME or --data FILE")
            spec, _ = specs(args)
            inter = read_interactions(spec.data, format=spec.format, min_rating=spec.min_rating,
                                      **({"columns": spec.columns} if spec.columns else {}),
                                      **({"sep": spec.sep} if spec.sep else {}))
            info = {"file": args.data, "n_users": inter.n_users, "n_items": inter.n_items,
                    "n_interactions": inter.nnz, "density": inter.nnz / max(1, inter.n_users * inter.n_items),
                    "fingerprint": inter.fingerprint()}
        print(json.dumps(info, indent=2, default=json_default))
        return 0
    if args.data_cmd == "split":
        from gan4rec.data.io import write_interactions
        from gan4rec.experiment import load_split

        spec, protocol = specs(args)
        split, info = load_split(spec, protocol)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        ext = args.out_format
        for part in ("train", "valid", "test"):
            inter = getattr(split, part)
            if inter is not None:
                write_interactions(inter, out / f"{part}.{ext}")
        write_json(str(out / "split.json"), {"spec": split.spec, "fingerprint": split.fingerprint, "data": info})
        print(f"wrote {', '.join(p for p in ('train', 'valid', 'test') if getattr(split, p) is not None)} "
              f"and split.json to {out} (fingerprint {split.fingerprint[:12]})")
        return 0
    raise UsageError("data: expected a subcommand: fetch, info or split")
