"""TOML configs: one model's (``gan4rec train --config``) and an experiment's (``gan4rec compare --config``).

Both are checked key by key against :class:`~gan4rec.experiment.DataSpec` and
:class:`~gan4rec.experiment.Protocol`, so a typo is a one-line :class:`~gan4rec.errors.DataError` naming the
file and the key, never a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from pathlib import Path
from typing import Any

from gan4rec.errors import DataError, MissingInputError
from gan4rec.experiment import DataSpec, Protocol

__all__ = ["EXPERIMENT_KEYS", "load_config", "load_experiment"]

#: Top-level keys an experiment config may hold.
EXPERIMENT_KEYS: tuple[str, ...] = (
    "description", "models", "params", "model_configs", "seeds", "trials", "splits", "timeout_per_model",
    "skip_missing_models", "data", "protocol", "search_space", "wide", "defaults_first",
)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML experiment config: ``model = "..."``, ``[params]``, ``[protocol]``, ``[data]``."""
    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"{p}: no such config file")
    try:
        cfg = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{p}: invalid TOML ({e})") from None
    allowed = {"model", "params", "protocol", "data", "description"}
    for key in cfg:
        if key not in allowed:
            raise DataError(f"{p}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
    for table in ("params", "protocol", "data"):
        if table in cfg and not isinstance(cfg[table], dict):
            raise DataError(f"{p}: [{table}] must be a table")
    proto_fields = {f.name for f in dataclasses.fields(Protocol)}
    for key in cfg.get("protocol", {}):
        if key not in proto_fields:
            raise DataError(f"{p}: unknown protocol key {key!r} (allowed: {', '.join(sorted(proto_fields))})")
    data_fields = {f.name for f in dataclasses.fields(DataSpec)}
    for key in cfg.get("data", {}):
        if key not in data_fields:
            raise DataError(f"{p}: unknown data key {key!r} (allowed: {', '.join(sorted(data_fields))})")
    return cfg


def load_experiment(path: str | Path) -> dict[str, Any]:
    """Read and check a TOML experiment config.

    Keys (all optional; command-line flags override them):

    - ``description``: free text shown in the report.
    - ``models``: registry names, e.g. ``["cfgan", "ease", "toppop"]``.
    - ``[params.NAME]``: params of model ``NAME`` held fixed (not searched while tuning).
    - ``[model_configs]``: ``NAME = "configs/NAME.toml"``, a model config (``model``, ``[params]``) whose
      params are held fixed; ``[params.NAME]`` entries override it.
    - ``seeds`` (int N for seeds 0..N-1, or a list), ``trials`` (per model, >= 0), ``splits`` (>= 1),
      ``timeout_per_model`` (seconds of tuning per model).
    - ``skip_missing_models``: skip (with a warning) listed models that this build does not have.
    - ``[search_space.NAME]``: ``PARAM = {type = "float", low = 1.0, high = 10.0, log = true}`` entries (or
      ``type = "int"``, or ``type = "categorical", choices = [...]``), replacing model ``NAME``'s declared
      search space (:func:`gan4rec.tuning.suggest` reads them).
    - ``wide``: search ``search_space_wide`` for the models that declare one.
    - ``defaults_first``: each model's first trial is its defaults (then the sampler's draws).
    - ``[data]``: the :class:`~gan4rec.experiment.DataSpec` fields (``dataset``, ``train``, ``test``,
      ``format``..., ``item_features`` with ``item_features_text``, ``max_features``, ``min_df``). Paths are
      relative to the current working directory.
    - ``[protocol]``: the :class:`~gan4rec.experiment.Protocol` fields (``split``, ``valid_frac``, ``ks``,
      ``metric``...).

    Returns
    -------
    dict
        The keys above with ``params`` resolved (model configs merged in) and ``source``: the path, the
        sha256 and the text of the file, recorded with every result.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"{p}: no such experiment config file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
        cfg = tomllib.loads(text)
    except UnicodeDecodeError:
        raise DataError(f"{p}: not UTF-8 text; expected a TOML experiment config") from None
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{p}: invalid TOML ({e})") from None
    for key in cfg:
        if key not in EXPERIMENT_KEYS:
            raise DataError(f"{p}: unknown key {key!r}; expected keys among {', '.join(EXPERIMENT_KEYS)}")
    out: dict[str, Any] = {}
    if "description" in cfg:
        out["description"] = _expect(cfg["description"], str, p, "description", "a string")
    if "models" in cfg:
        models = cfg["models"]
        if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
            raise DataError(f"{p}: models = {models!r}; expected a non-empty list of registry names")
        if len(set(models)) != len(models):
            raise DataError(f"{p}: models = {models!r} lists a model twice")
        out["models"] = list(models)
    params: dict[str, dict[str, Any]] = {}
    configs = cfg.get("model_configs", {})
    if not isinstance(configs, dict):
        raise DataError(f"{p}: [model_configs] must be a table of NAME = \"path/to/model.toml\"")
    for name, cfg_path in configs.items():
        if not isinstance(cfg_path, str):
            raise DataError(f"{p}: model_configs.{name} = {cfg_path!r}; expected a path string")
        model_cfg = load_config(cfg_path)
        if model_cfg.get("model", name) != name:
            raise DataError(
                f"{p}: model_configs.{name} = {cfg_path!r} configures model {model_cfg['model']!r}, not {name!r}"
            )
        params[name] = dict(model_cfg.get("params", {}))
    table = cfg.get("params", {})
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise DataError(f"{p}: [params] must hold one table per model, e.g. [params.ease] l2 = 500.0")
    for name, values in table.items():
        params[name] = {**params.get(name, {}), **values}
    out["params"] = params
    if configs:
        out["model_configs"] = dict(configs)
    if "seeds" in cfg:
        seeds = cfg["seeds"]
        if isinstance(seeds, list):
            if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
                raise DataError(f"{p}: seeds = {seeds!r}; expected a count >= 1 or a non-empty list of seeds >= 0")
        else:
            _expect_int(seeds, p, "seeds", 1)
        out["seeds"] = seeds
    if "trials" in cfg:
        out["trials"] = _expect_int(cfg["trials"], p, "trials", 0)
    if "splits" in cfg:
        out["splits"] = _expect_int(cfg["splits"], p, "splits", 1)
    if "timeout_per_model" in cfg:
        t = cfg["timeout_per_model"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise DataError(f"{p}: timeout_per_model = {t!r}; expected a positive number of seconds")
        out["timeout_per_model"] = float(t)
    if "skip_missing_models" in cfg:
        out["skip_missing_models"] = _expect(cfg["skip_missing_models"], bool, p, "skip_missing_models", "true or false")
    if "wide" in cfg:
        out["wide"] = _expect(cfg["wide"], bool, p, "wide", "true or false")
    if "defaults_first" in cfg:
        out["defaults_first"] = _expect(cfg["defaults_first"], bool, p, "defaults_first", "true or false")
    if "search_space" in cfg:
        out["search_space"] = _search_space_tables(cfg["search_space"], p)
    for table_name, cls in (("data", DataSpec), ("protocol", Protocol)):
        section = cfg.get(table_name, {})
        if not isinstance(section, dict):
            raise DataError(f"{p}: [{table_name}] must be a table")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in section:
            if key not in known:
                raise DataError(f"{p}: unknown {table_name} key {key!r}; expected keys among {', '.join(sorted(known))}")
        out[table_name] = dict(section)
    if "ks" in out["protocol"]:
        out["protocol"]["ks"] = tuple(out["protocol"]["ks"])
    out["source"] = {"path": str(p), "sha256": hashlib.sha256(raw).hexdigest(), "text": text}
    return out


def _search_space_tables(table: Any, path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Check ``[search_space.NAME]`` tables: each entry a float/int range or a categorical choice list."""
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise DataError(f"{path}: [search_space] must hold one table per model, e.g. "
                        "[search_space.ease] l2 = {{type = \"float\", low = 50.0, high = 5000.0, log = true}}")
    for name, space in table.items():
        for param, spec in space.items():
            where = f"{path}: search_space.{name}.{param}"
            kind = spec.get("type") if isinstance(spec, dict) else None
            if kind == "categorical":
                if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                    raise DataError(f"{where}: expected choices = [a non-empty list]")
            elif kind in ("float", "int"):
                low, high = spec.get("low"), spec.get("high")
                numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
                if not numbers or not low <= high:  # type: ignore[operator]
                    raise DataError(f"{where}: expected numbers low <= high, got low = {low!r}, high = {high!r}")
            else:
                raise DataError(f"{where} = {spec!r}; expected a table with type = \"float\", \"int\" or "
                                "\"categorical\"")
    return {name: {p: dict(s) for p, s in space.items()} for name, space in table.items()}


def _expect(value: Any, kind: type, path: Path, key: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise DataError(f"{path}: {key} = {value!r}; expected {what}")
    return value


def _expect_int(value: Any, path: Path, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DataError(f"{path}: {key} = {value!r}; expected an integer >= {low}")
    return value
