"""Resumable training checkpoints: modules, optimisers, generators and loop state, written atomically.

Layout of a checkpoint folder::

    ckpt/epoch-000004/   a gan4rec artifact (CURRENT, v.../tensors.safetensors, meta.json, MANIFEST.json)
    ckpt/epoch-000006/   the newest one; the previous one is kept until a newer one is complete

Each ``epoch-NNNNNN`` is written with :func:`gan4rec.artifacts.save_artifact`, which stages the whole tree
under a hidden name and renames it into place, so a crash (even SIGKILL) leaves either a complete
checkpoint or none; leftover hidden staging folders are ignored. Loading verifies sha256, shapes and
dtypes; when the newest checkpoint fails (truncated, corrupted), :meth:`CheckpointStore.load_latest` logs
a warning and falls back to the previous one.

What goes where (tensors as safetensors, the rest as JSON, never pickle)::

    module/<name>/<key>         module state_dict entries
    best/<name>/<key>           the best-so-far weights (early stopping restores them at the end)
    optim/<name>/<param>/<key>  optimiser state tensors (Adam moments, step counters)
    rng/<name>                  torch generator states (uint8)
    meta["optim"][<name>]       param_groups and non-tensor optimiser state
    meta["rng"][<name>]         numpy ``bit_generator.state``
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gan4rec.artifacts import load_artifact, save_artifact
from gan4rec.errors import ArtifactError, DataError, MissingInputError
from gan4rec.train.seeding import get_rng_state, set_rng_state

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "CheckpointStore",
    "pack_training_state",
    "snapshot_modules",
    "unpack_training_state",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "gan4rec-checkpoint-1"
"""Tag stored in every checkpoint's metadata; a different tag is refused on resume."""

_NAME = re.compile(r"^epoch-(\d{6,})$")

StateDicts = dict[str, dict[str, torch.Tensor]]
Rng = np.random.Generator | torch.Generator


@dataclass(frozen=True)
class Checkpoint:
    """One loaded checkpoint: the epoch it ends, its folder, its arrays and its JSON metadata."""

    epoch: int
    path: Path
    tensors: dict[str, np.ndarray]
    meta: dict[str, Any]


class CheckpointStore:
    """The ``epoch-NNNNNN`` checkpoints of one training run in ``folder``.

    Parameters
    ----------
    folder
        Created on the first save.
    keep
        How many of the newest checkpoints to keep (at least 2, so that a corrupted newest one still has
        a fallback).
    """

    def __init__(self, folder: str | Path, *, keep: int = 2) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 2:
            raise DataError(f"keep={keep!r}; expected an int >= 2 (the newest checkpoint and a fallback)")
        self.folder = Path(folder)
        self.keep = keep

    def epochs(self) -> list[tuple[int, Path]]:
        """``(epoch, folder)`` of every checkpoint folder present, newest first (validity not checked)."""
        if not self.folder.is_dir():
            return []
        out = []
        for child in self.folder.iterdir():
            m = _NAME.match(child.name)
            if m and child.is_dir():
                out.append((int(m.group(1)), child))
        return sorted(out, reverse=True)

    def save(self, epoch: int, tensors: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
        """Write the checkpoint of ``epoch`` atomically, then prune all but the ``keep`` newest."""
        target = self.folder / f"epoch-{epoch:06d}"
        if target.exists():
            # Left by an earlier attempt of this run (it is about to be rewritten with the same content, or
            # it was unreadable and skipped on resume); save_artifact would add a version beside it.
            shutil.rmtree(target)
        save_artifact(target, tensors, {"format": CHECKPOINT_FORMAT, "epoch": int(epoch), **meta})
        for _, old in self.epochs()[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)
        logger.debug("checkpoint of epoch %d written to %s", epoch, target)
        return target

    def load_latest(self) -> Checkpoint | None:
        """The newest readable checkpoint, falling back past unreadable ones with a warning; None if none."""
        found = self.epochs()
        for j, (epoch, path) in enumerate(found):
            try:
                tensors, meta = load_artifact(path)
                if meta.get("format") != CHECKPOINT_FORMAT or meta.get("epoch") != epoch:
                    raise ArtifactError(
                        f"{path}: metadata says format {meta.get('format')!r}, epoch {meta.get('epoch')!r}; "
                        f"expected {CHECKPOINT_FORMAT!r}, epoch {epoch}"
                    )
            except (ArtifactError, MissingInputError, OSError, ValueError) as e:
                nxt = found[j + 1][1].name if j + 1 < len(found) else None
                logger.warning(
                    "checkpoint %s is unreadable (%s); %s",
                    path,
                    e,
                    f"falling back to the previous checkpoint {nxt}"
                    if nxt
                    else "no older checkpoint to fall back to",
                )
                continue
            return Checkpoint(epoch=epoch, path=path, tensors=tensors, meta=meta)
        return None

    def discard_after(self, epoch: int) -> None:
        """Remove checkpoints newer than ``epoch`` (unreadable ones skipped by a resume)."""
        for e, path in self.epochs():
            if e > epoch:
                shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- packing
def snapshot_modules(modules: Mapping[str, nn.Module]) -> StateDicts:
    """Detached copies of every module's state_dict (on the modules' device)."""
    return {name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in modules.items()}


def pack_training_state(
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    rngs: Mapping[str, Rng],
    *,
    best: StateDicts | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Flatten the training state into named arrays and JSON-ready metadata.

    Returns
    -------
    tensors, meta
        ``meta`` holds ``optim`` (param_groups and non-tensor state per optimiser), ``rng`` (numpy
        generator states) and ``has_best``.
    """
    tensors: dict[str, np.ndarray] = {}
    for name, m in modules.items():
        _check_name(name, "module")
        for key, value in m.state_dict().items():
            tensors[f"module/{name}/{key}"] = _to_numpy(value, f"module {name!r} entry {key!r}")
    if best is not None:
        for name, sd in best.items():
            for key, value in sd.items():
                tensors[f"best/{name}/{key}"] = _to_numpy(value, f"best state of {name!r} entry {key!r}")
    optim_meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        _check_name(name, "optimizer")
        osd: dict[str, Any] = opt.state_dict()
        plain: dict[str, dict[str, Any]] = {}
        for pid, pstate in osd["state"].items():
            for key, value in pstate.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{name}/{pid}/{key}"] = _to_numpy(
                        value, f"optimizer {name!r} state {key!r}"
                    )
                else:
                    plain.setdefault(str(pid), {})[key] = value
        optim_meta[name] = {
            "param_groups": osd["param_groups"],
            "plain_state": plain,
            "params_with_state": [int(p) for p in osd["state"]],
        }
    rng_meta: dict[str, Any] = {}
    for name, rng in rngs.items():
        _check_name(name, "generator")
        state = get_rng_state(rng)
        if isinstance(state, np.ndarray):
            tensors[f"rng/{name}"] = state
        else:
            rng_meta[name] = state
    # save_artifact turns 0-d arrays (Adam's step, BatchNorm's counter) into 1-element 1-d ones.
    scalars = sorted(k for k, v in tensors.items() if v.ndim == 0)
    meta = {"optim": optim_meta, "rng": rng_meta, "has_best": best is not None, "scalars": scalars}
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ArtifactError(f"training state holds a value that is not JSON-ready ({e})") from None
    return tensors, meta


def unpack_training_state(
    tensors: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    rngs: Mapping[str, Rng],
    *,
    where: str = "checkpoint",
) -> StateDicts | None:
    """Load what :func:`pack_training_state` wrote into live objects, in place; return the best state.

    Raises
    ------
    ArtifactError
        When the checkpoint does not match the objects (missing or extra entries, other shapes).
    """
    scalars = set(meta.get("scalars", []))
    groups = _group({k: v.reshape(()) if k in scalars and v.size == 1 else v for k, v in tensors.items()})
    for name, m in modules.items():
        _load_module(m, groups["module"].pop(name, {}), f"{where}: module {name!r}")
    if groups["module"]:
        raise ArtifactError(
            f"{where}: holds modules {sorted(groups['module'])} that this model does not have"
        )

    optim_meta = meta.get("optim", {})
    if set(optim_meta) != set(optimizers):
        raise ArtifactError(f"{where}: holds optimizers {sorted(optim_meta)}, expected {sorted(optimizers)}")
    for name, opt in optimizers.items():
        om = optim_meta[name]
        arrays = groups["optim"].get(name, {})
        state: dict[int, dict[str, Any]] = {}
        for pid in om["params_with_state"]:
            entry: dict[str, Any] = dict(om["plain_state"].get(str(pid), {}))
            for key, arr in arrays.get(str(pid), {}).items():
                entry[key] = torch.from_numpy(np.array(arr, copy=True))
            state[int(pid)] = entry
        try:
            opt.load_state_dict({"state": state, "param_groups": om["param_groups"]})
        except (ValueError, KeyError, RuntimeError) as e:
            raise ArtifactError(f"{where}: optimizer {name!r} state does not fit ({e})") from None

    rng_meta = meta.get("rng", {})
    for name, rng in rngs.items():
        if isinstance(rng, torch.Generator):
            if name not in groups["rng"]:
                raise ArtifactError(f"{where}: lacks the state of torch generator {name!r}")
            set_rng_state(rng, groups["rng"][name])
        else:
            if name not in rng_meta:
                raise ArtifactError(f"{where}: lacks the state of numpy generator {name!r}")
            try:
                set_rng_state(rng, rng_meta[name])
            except (DataError, TypeError, ValueError, KeyError) as e:
                raise ArtifactError(f"{where}: numpy generator {name!r}: {e}") from None

    if not meta.get("has_best"):
        return None
    best: StateDicts = {}
    for name, m in modules.items():
        sd = m.state_dict()
        saved = groups["best"].get(name, {})
        if set(saved) != set(sd):
            raise ArtifactError(f"{where}: best state of module {name!r} has other entries than the module")
        best[name] = {}
        for key, ref in sd.items():
            arr = saved[key]
            if tuple(arr.shape) != tuple(ref.shape):
                raise ArtifactError(
                    f"{where}: best state {name}.{key} has shape {arr.shape}, expected {tuple(ref.shape)}"
                )
            best[name][key] = torch.from_numpy(np.array(arr, copy=True)).to(
                device=ref.device, dtype=ref.dtype
            )
    return best


def _group(tensors: Mapping[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Split flat names back: ``{"module": {name: {key: arr}}, "optim": {name: {pid: {key: arr}}}, ...}``."""
    out: dict[str, dict[str, Any]] = {"module": {}, "best": {}, "optim": {}, "rng": {}}
    for full, arr in tensors.items():
        kind, _, rest = full.partition("/")
        if kind == "rng":
            out["rng"][rest] = arr
        elif kind in ("module", "best"):
            name, _, key = rest.partition("/")
            out[kind].setdefault(name, {})[key] = arr
        elif kind == "optim":
            name, _, rest2 = rest.partition("/")
            pid, _, key = rest2.partition("/")
            out["optim"].setdefault(name, {}).setdefault(pid, {})[key] = arr
    return out


def _load_module(module: nn.Module, arrays: dict[str, np.ndarray], where: str) -> None:
    sd = module.state_dict()
    if set(arrays) != set(sd):
        missing, extra = sorted(set(sd) - set(arrays)), sorted(set(arrays) - set(sd))
        raise ArtifactError(f"{where}: entries differ (missing {missing}, unexpected {extra})")
    loaded = {}
    for key, ref in sd.items():
        arr = arrays[key]
        if tuple(arr.shape) != tuple(ref.shape):
            raise ArtifactError(f"{where}: entry {key!r} has shape {arr.shape}, expected {tuple(ref.shape)}")
        loaded[key] = torch.from_numpy(np.array(arr, copy=True))
    module.load_state_dict(loaded)


def _to_numpy(t: torch.Tensor, what: str) -> np.ndarray:
    try:
        return t.detach().cpu().numpy().copy()
    except TypeError as e:  # e.g. bfloat16, which numpy cannot hold
        raise ArtifactError(f"{what}: dtype {t.dtype} cannot be checkpointed ({e})") from None


def _check_name(name: str, what: str) -> None:
    if not name or "/" in name:
        raise DataError(f"{what} name {name!r} must be non-empty and contain no '/'")
