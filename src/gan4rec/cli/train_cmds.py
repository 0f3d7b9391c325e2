"""``gan4rec models``, ``train``, ``tune``, ``compare`` and ``demo``: fit and test under the honest protocol."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from gan4rec.cli.common import (
    DistributedFailure,
    UsageError,
    add_data_options,
    artifact_dir,
    data_spec_record,
    device_name,
    json_default,
    load_cfg_and_model,
    metric_name,
    non_negative_int,
    output_file,
    positive_float,
    positive_int,
    print_metrics,
    specs,
    write_json,
)

__all__ = ["add_parsers"]


# ---------------------------------------------------------------------------------------------- parsers
def add_parsers(sub: Any) -> None:
    """Add models, train, tune, compare and demo to the subcommands ``sub``."""
    _add_models_train(sub)
    _add_tune_compare_demo(sub)


def _add_models_train(sub: Any) -> None:
    m = sub.add_parser("models", help="list the registry: defaults, search spaces, adversarial flag")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(func=_cmd_models)

    t = sub.add_parser("train", help="fit a model with the honest protocol and evaluate test once")
    t.add_argument("--model", help="registry name (default: the config's model, else toppop)")
    t.add_argument("--params", help="JSON object of hyperparameters, over the config's [params]")
    t.add_argument("--config", metavar="FILE.toml", help="experiment config: model, [params], [protocol], [data]")
    t.add_argument("--seed", type=non_negative_int, default=None, help="model seed (default 0)")
    t.add_argument("--refit", choices=["full", "none"], default=None,
                   help="after validation, refit on the whole train (full, default) or keep the model")
    t.add_argument("--save", type=artifact_dir, metavar="DIR", help="save the final model (an artifact directory)")
    t.add_argument("--json", type=output_file, metavar="FILE", help="write the result as JSON")
    t.add_argument("--device", type=device_name, default=None, help="cpu or cuda (default: cuda when available)")
    t.add_argument("--distributed", action="store_true",
                   help="train data-parallel (DDP) as one rank of a torchrun launch: gloo on cpu, NCCL on cuda; "
                        "bpr, multvae, irgan, cfgan (see docs/distributed.md)")
    t.add_argument("--dist-timeout", type=positive_float, default=600.0, metavar="SECONDS",
                   help="with --distributed: how long a rank waits for the others, e.g. while rank 0 "
                        "validates (default 600)")
    add_data_options(t)
    t.set_defaults(func=_cmd_train)


def _add_tune_compare_demo(sub: Any) -> None:
    tu = sub.add_parser("tune", help="tune on validation with Optuna, then refit and test once per seed")
    tu.add_argument("--model", help="registry name (default: the config's model)")
    tu.add_argument("--params", help="JSON object of params held fixed")
    tu.add_argument("--config", metavar="FILE.toml")
    tu.add_argument("--trials", type=positive_int, required=True, help="trial budget (the same for every model)")
    tu.add_argument("--metric", type=metric_name, default=None, help="validation metric to maximise (default NDCG@20)")
    tu.add_argument("--timeout", type=positive_float, default=None,
                    help="time box, SECONDS: no trial starts after it and a running epoch-based fit stops at its "
                         "next validation (recorded as pruned)")
    tu.add_argument("--wide-space", action="store_true",
                    help="search the model's wider search space (search_space_wide) where it declares one")
    tu.add_argument("--defaults-first", action="store_true",
                    help="make the first trial the model's defaults (then the sampler's draws)")
    tu.add_argument("--storage", default=None, help="Optuna storage to resume, e.g. sqlite:///tune.db")
    tu.add_argument("--no-prune", action="store_true",
                    help="never abandon a trial early (default: median pruning of epoch-based models)")
    tu.add_argument("--seeds", type=positive_int, default=1, help="refit + test the best params with seeds 0..N-1")
    tu.add_argument("--refit", choices=["full", "none"], default=None)
    tu.add_argument("--json", type=output_file, metavar="FILE")
    tu.add_argument("--save-config", type=output_file, metavar="FILE.toml", help="write the tuned config (model, params, protocol)")
    tu.add_argument("--device", type=device_name, default=None)
    add_data_options(tu)
    tu.set_defaults(func=_cmd_tune)

    c = sub.add_parser("compare", help="tune, refit and test several models on the same split(s); leaderboard, "
                                       "significance tests and an HTML report")
    c.add_argument("--models", help="comma-separated registry names, e.g. cfgan,ease,toppop (default: the config's)")
    c.add_argument("--config", metavar="FILE.toml",
                   help="experiment config (configs/experiments/*.toml); flags override it; paths in it are "
                        "relative to the current directory")
    c.add_argument("--seeds", type=_seeds, default=None, metavar="N|S,S,...",
                   help="refit + test with seeds 0..N-1, or the seeds listed (e.g. 0,1,4; one seed: 4,) "
                        "(default: config, else 3)")
    c.add_argument("--trials", type=non_negative_int, default=None,
                   help="tuning trials per model, the same for all (default: config, else 20; 0 = no tuning)")
    c.add_argument("--splits", type=positive_int, default=None, help="repeat over N splits, split seeds split-seed + i")
    c.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                   help="time box of each model's tuning (the same for all)")
    c.add_argument("--metric", type=metric_name, default=None, help="metric to tune, rank and test (default NDCG@20)")
    c.add_argument("--wide-space", action="store_true",
                   help="search search_space_wide for the models that declare one (default: the config's wide)")
    c.add_argument("--defaults-first", action="store_true",
                   help="make each model's first trial its defaults (default: the config's defaults_first)")
    c.add_argument("--refit", choices=["full", "none"], default=None)
    c.add_argument("--report", metavar="DIR", help="write DIR/report.html (+ results.json, experiment.toml)")
    c.add_argument("--json", type=output_file, metavar="FILE", help="write the result as JSON")
    c.add_argument("--device", type=device_name, default=None, help="cpu or cuda (default: cuda when available)")
    add_data_options(c)
    c.set_defaults(func=_cmd_compare)

    dm = sub.add_parser("demo", help="a compact comparison on built-in synthetic data, with an HTML report")
    dm.add_argument("--report", metavar="DIR", default="gan4rec-demo",
                    help="report folder (default ./gan4rec-demo/); the report is DIR/report.html")
    dm.add_argument("--users", type=positive_int, default=500, help="synthetic users (default 500)")
    dm.add_argument("--items", type=positive_int, default=800, help="synthetic items (default 800); ML-100K density")
    dm.add_argument("--json", type=output_file, metavar="FILE", help="also write the result as JSON")
    dm.add_argument("--device", type=device_name, default=None)
    dm.set_defaults(func=_cmd_demo)


def _seeds(text: str) -> int | list[int]:
    """``--seeds``: a count ``N`` (seeds ``0..N-1``) or a comma list of distinct seeds >= 0 (``0,1,4``; a
    single seed as ``4,``), as the experiment config's ``seeds`` key takes an int or a list."""
    if "," not in text:
        return positive_int(text)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "4," is the list [4]
    if not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"must be a count >= 1 or a comma list of seeds >= 0, got {text!r}")
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"must list each seed once, got {text!r}")
    return seeds


# ---------------------------------------------------------------------------------------------- commands
def _cmd_models(args: argparse.Namespace) -> int:
    from gan4rec.models import describe

    reg = describe()
    if args.json:
        print(json.dumps(reg, indent=2, default=json_default))
        return 0
    for name, entry in reg.items():
        flag = " [adversarial]" if entry["adversarial"] else ""
        print(f"{name}{flag}: {entry['summary']}")
        print(f"  defaults: {json.dumps(entry['defaults'], default=json_default)}")
        if entry["search_space"]:
            print(f"  search space: {json.dumps(entry['search_space'])}")
    return 0


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
        raise UsageError(f"--distributed: model {model_name!r} {what}; supported: {', '.join(supported)}")
    if args.dist_timeout <= 0:
        raise UsageError(f"--dist-timeout must be > 0 seconds, got {args.dist_timeout}")
    if not distributed.launched_by_torchrun():
        raise UsageError("--distributed needs the environment torchrun sets (RANK, WORLD_SIZE, ...); launch "
                          "with: torchrun --nproc-per-node N -m gan4rec train ... --distributed")
    ctx = distributed.init(device=args.device, timeout_s=args.dist_timeout)
    if not ctx.is_main:  # rank 0 speaks for the run; the others only report errors
        logging.getLogger("gan4rec").setLevel(logging.WARNING)
    return ctx


def _cmd_train(args: argparse.Namespace) -> int:
    from gan4rec.experiment import run

    cfg, model_name, params = load_cfg_and_model(args)
    spec, protocol = specs(args, cfg)
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
            raise DistributedFailure(f"rank {ctx.rank}: distributed training failed: another rank stopped "
                                      f"or cannot be reached ({_first_line(e)})") from e
        # Only rank 0 prints and writes; the other ranks hold the same model and results.
        return _report_train(args, out, model_name, spec, protocol, seed) if ctx.is_main else 0
    finally:
        distributed.shutdown()


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
    print(f"model: {model_name} {json.dumps(res['params'], default=json_default)}; seed {seed}; "
          f"fit {res['fit_seconds']:.2f} s; refit {protocol.refit if out.split.valid is not None else 'n/a'}")
    print_metrics("valid", res["metrics"]["valid"])
    print_metrics("test", res["metrics"]["test"])
    # Both outputs are written only once everything has succeeded, each atomically.
    if args.save:
        out.model.save(args.save, extra={
            "split_fingerprint": out.split.fingerprint, "split": out.split.spec,
            "data": spec.describe(), "data_spec": data_spec_record(spec), "protocol": res["protocol"],
            "seed": seed,
            "metrics": res["metrics"],
        })
        print(f"saved model to {args.save}")
    if args.json:
        write_json(args.json, res)
        print(f"wrote {args.json}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from gan4rec.experiment import load_split
    from gan4rec.tuning import refit_and_test, tune, tuned_config, tuned_config_toml

    cfg, model_name, params = load_cfg_and_model(args)
    spec, protocol = specs(args, cfg)
    if args.metric:
        protocol.metric = args.metric
    split, data_info = load_split(spec, protocol)
    tuned = tune(model_name, split, n_trials=args.trials, metric=protocol.metric, ks=protocol.ks,
                 fixed_params=params, timeout=args.timeout, storage=args.storage, seed=0, device=args.device,
                 valid_repeats=protocol.valid_repeats, prune=not args.no_prune, wide=args.wide_space,
                 defaults_first=args.defaults_first)
    # On a cold-items split the value is the cold objective (gan4rec.experiment.cold_objective).
    what = f"cold objective (mean of warm and cold {tuned.metric}; warm only for a CF model)" \
        if protocol.split == "cold-items" else tuned.metric
    print(f"tuned {model_name} on validation: best {what} = {tuned.best_value:.4f}; {tuned.summary()} "
          f"({tuned.seconds:.1f} s)")
    print(f"best params: {json.dumps(tuned.best_params, default=json_default)}")
    if args.timeout is not None:
        left = max(args.timeout - tuned.seconds, 0.0)
        print(f"time box: {left:.0f} s of {args.timeout:g} s left; the {args.seeds} seed refit(s) below run "
              "outside it" + (" (seed 0 reuses the best trial's fit)" if tuned.best_model is not None else ""))
    result = refit_and_test(tuned, split, data_info, protocol, seeds=args.seeds, device=args.device)
    for run in result["per_seed"]:
        print(f"seed {run['seed']}: test {protocol.metric} = {_metric_text(run['metrics']['test'], protocol.metric)}")
    print_metrics(f"test, mean over {args.seeds} seed(s)", result["metrics"]["test"])
    if args.save_config:
        from gan4rec.atomic import atomic_write_text

        atomic_write_text(args.save_config, tuned_config_toml(tuned_config(tuned, split, spec, protocol)))
        print(f"wrote {args.save_config}")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _metric_text(test: dict[str, Any], metric: str) -> str:
    """``0.1234``, or per task on a cold-items split: ``warm 0.1234, cold cannot, overall 0.0987``."""
    if all(isinstance(v, dict) or v is None for v in test.values()):
        return ", ".join(f"{task} {'cannot' if v is None else format(v.get(metric, float('nan')), '.4f')}"
                         for task, v in test.items())
    return f"{test.get(metric, float('nan')):.4f}"


def _cmd_compare(args: argparse.Namespace) -> int:
    from gan4rec.compare import load_experiment

    exp = load_experiment(args.config) if args.config else {}
    names = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else exp.get("models")
    if not names:
        raise UsageError("compare needs --models NAME,NAME,... (or models = [...] in the --config file)")
    if len(set(names)) != len(names):
        raise UsageError(f"--models lists a model twice: {','.join(names)}")
    fixed = exp.get("params", {})
    models = {n: dict(fixed.get(n, {})) for n in names}
    seeds = args.seeds if args.seeds is not None else exp.get("seeds", 3)
    trials = args.trials if args.trials is not None else exp.get("trials", 20)
    splits = args.splits if args.splits is not None else exp.get("splits", 1)
    timeout = args.timeout if args.timeout is not None else exp.get("timeout_per_model")
    if isinstance(seeds, int) and seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {seeds}")
    if trials < 0:
        raise UsageError(f"--trials must be >= 0, got {trials}")
    if splits < 1:
        raise UsageError(f"--splits must be >= 1, got {splits}")
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {timeout}")
    return _run_compare(args, exp, models, seeds=seeds, trials=trials, splits=splits, timeout=timeout,
                        skip_missing=bool(exp.get("skip_missing_models", False)),
                        description=exp.get("description", ""), report=args.report)


def _run_compare(
    args: argparse.Namespace, exp: dict[str, Any], models: dict[str, dict[str, Any]], *, seeds: Any, trials: int,
    splits: int, timeout: float | None, skip_missing: bool, description: str, report: str | None,
) -> int:
    """Shared by compare and demo: run, print the leaderboard, write the report and the JSON."""
    from gan4rec.compare import compare, leaderboard_text

    spec, protocol = specs(args, exp)
    if getattr(args, "metric", None):
        protocol.metric = args.metric
    result = compare(models, spec, protocol, seeds=seeds, trials=trials, splits=splits, timeout_per_model=timeout,
                     config=exp.get("source"), device=args.device, skip_missing=skip_missing,
                     description=description, search_spaces=exp.get("search_space"),
                     wide=bool(getattr(args, "wide_space", False) or exp.get("wide", False)),
                     defaults_first=bool(getattr(args, "defaults_first", False) or exp.get("defaults_first", False)))
    print(leaderboard_text(result))
    if report:
        from gan4rec.report import write_report

        print(f"report: {write_report(result, report)}")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gan4rec.compare import demo_experiment
    from gan4rec.models import MODELS

    exp = demo_experiment(n_users=args.users, n_items=args.items)
    syn = exp["data"]["synthetic"]
    present = [m for m in exp["models"] if m in MODELS]
    missing = [m for m in exp["models"] if m not in MODELS]
    print(f"gan4rec demo: built-in synthetic dataset, {syn['n_users']} users x {syn['n_items']} items, "
          f"{syn['n_interactions']} interactions (offline)")
    print(f"models: {', '.join(present)}" + (f" (skipped {', '.join(missing)}: not in this build)" if missing else "")
          + f"; up to {exp['trials']} tuning trials each on validation in a small space around its defaults "
          f"({exp['timeout_per_model']:g} s time box as a guard), "
          f"{exp['seeds']} seed(s), test read once")
    code = _run_compare(args, exp, {m: dict(exp["params"].get(m, {})) for m in exp["models"]}, seeds=exp["seeds"],
                        trials=exp["trials"], splits=exp["splits"], timeout=exp["timeout_per_model"],
                        skip_missing=True, description=exp["description"], report=args.report)
    print("demo finished; open the report in a browser")
    return code
