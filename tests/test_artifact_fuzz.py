"""Structure-aware fuzzing of saved models: a hostile artifact is refused in one line, never a crash.

The manifest is a checksum, not a signature: whoever can write an artifact folder can rewrite any file and
recompute it. So every case below edits a real artifact (trained by ``gan4rec train --save`` on a tiny
data file) and then reseals the manifest, so that the checksum passes and the content itself is what is
tested. Three layers:

- hand-written cases (``CASES``): the adversarial probe's findings and their neighbours; each must be
  refused by ``Recommender.load`` with an :class:`ArtifactError` of one line;
- generated cases (``RANDOM_CASES``): seeded random edits of the metadata's values and types, of the
  arrays' values, dtypes and shapes, and of raw bytes; each must either load (and then score finitely)
  or be refused with an :class:`ArtifactError`;
- the CLI: ``info`` and ``evaluate --data`` over every case, in one child process (a native crash such as
  a SIGSEGV inside scipy kills it, which the parent sees), plus a few runs of the real entry point
  ``python -m gan4rec``: exit 65, one line on stderr, no traceback.

Pickle canaries (bytes whose unpickling creates a marker file) are planted in every place a careless
loader might unpickle; the marker must never appear.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gan4rec.artifacts import read_artifact_meta
from gan4rec.errors import ArtifactError
from gan4rec.models.base import Recommender

ROOT = Path(__file__).resolve().parents[1]
TRAIN_PARAMS: dict[str, dict[str, Any]] = {
    "toppop": {},
    "itemknn": {},
    "ease": {},
    "bpr": {"epochs": 2, "n_factors": 4, "device": "cpu"},
    "cfgan": {"epochs": 2, "g_hidden": 8, "d_hidden": 8, "device": "cpu"},
}


# ------------------------------------------------------------------------------------------ the bases
@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One artifact per model in TRAIN_PARAMS, saved by ``gan4rec train --save``; ``data`` is the data file."""
    from gan4rec.cli import main

    root = tmp_path_factory.mktemp("bases")
    rng = np.random.default_rng(0)
    rows = ["user,item,rating"] + [
        f"{u},{i},1" for u in range(40) for i in range(20) if rng.random() < 0.35 or i == u % 20
    ]
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    out = {"data": root / "data.csv"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for name, params in TRAIN_PARAMS.items():
            code = main(["--quiet", "train", "--model", name, "--data", str(root / "data.csv"),
                         "--save", str(root / name), "--params", json.dumps(params)])
            assert code == 0, name
            out[name] = root / name
    return out


# ------------------------------------------------------------------------------------------ editing
def _version(d: Path) -> Path:
    return d / (d / "CURRENT").read_text().strip()


def _reseal(folder: Path) -> None:
    """Recompute the manifest's sha256 and size of both files, as anyone who can write the folder can."""
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    for name in ("tensors.safetensors", "meta.json"):
        blob = (folder / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))


def _write(d: Path, name: str, data: bytes | str, reseal: bool = True) -> None:
    path = d / name if name == "CURRENT" else _version(d) / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if reseal and name != "CURRENT":
        _reseal(_version(d))


def _edit_meta(d: Path, fn: Callable[[dict[str, Any]], Any]) -> None:
    meta = json.loads((_version(d) / "meta.json").read_text())
    new = fn(meta)
    _write(d, "meta.json", json.dumps(meta if new is None else new))


def _meta_text(d: Path, old: str, new: str) -> None:
    text = (_version(d) / "meta.json").read_text()
    assert old in text
    _write(d, "meta.json", text.replace(old, new, 1))


def _set(path: str | tuple[str, ...], value: Any) -> Callable[[Path], None]:
    """Set the metadata value at ``path`` ("params.g_hidden" or a tuple of keys); ``...`` deletes it."""
    *parents, last = path.split(".") if isinstance(path, str) else path

    def mutate(d: Path) -> None:
        def fn(meta: dict[str, Any]) -> None:
            node = meta
            for key in parents:
                node = node[int(key)] if isinstance(node, list) else node[key]
            if value is ...:
                del node[last]
            else:
                node[int(last) if isinstance(node, list) else last] = value

        _edit_meta(d, fn)

    return mutate


def _edit_arrays(d: Path, fn: Callable[[dict[str, np.ndarray]], Any], *, declare: bool = True) -> None:
    """Rewrite the tensors file with ``fn(arrays)`` applied; ``declare`` also updates the metadata's table."""
    from safetensors.numpy import load_file, save_file

    folder = _version(d)
    arrays = dict(load_file(folder / "tensors.safetensors"))
    fn(arrays)
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, folder / "tensors.safetensors")
    if declare:
        meta = json.loads((folder / "meta.json").read_text())
        meta["tensors"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}
        (folder / "meta.json").write_text(json.dumps(meta))
    _reseal(folder)


def _arr(name: str, fn: Callable[[np.ndarray], np.ndarray], *, declare: bool = True) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        def edit(arrays: dict[str, np.ndarray]) -> None:
            arrays[name] = fn(arrays[name].copy())

        _edit_arrays(d, edit, declare=declare)

    return mutate


def _poke(index: int, value: Any) -> Callable[[np.ndarray], np.ndarray]:
    def fn(a: np.ndarray) -> np.ndarray:
        a.reshape(-1)[index] = value
        return a

    return fn


def _bf16(name: str) -> Callable[[Path], None]:
    """Weights stored as bfloat16 (a dtype numpy cannot represent), declared so in the metadata."""

    def mutate(d: Path) -> None:
        import torch
        from safetensors.numpy import load_file
        from safetensors.torch import save_file

        folder = _version(d)
        arrays = {k: torch.from_numpy(v.copy()) for k, v in load_file(folder / "tensors.safetensors").items()}
        arrays[name] = arrays[name].to(torch.bfloat16)
        save_file(arrays, folder / "tensors.safetensors")
        meta = json.loads((folder / "meta.json").read_text())
        meta["tensors"][name]["dtype"] = "bfloat16"
        (folder / "meta.json").write_text(json.dumps(meta))
        _reseal(folder)

    return mutate


def _swap_rows(a: np.ndarray) -> np.ndarray:
    a[3], a[4] = a[4], a[3]  # non-monotonic indptr, same ends
    return a


def _unsort_row(a: np.ndarray) -> np.ndarray:
    a[0], a[1] = a[1], a[0]
    return a


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def _fifo(d: Path) -> None:
    path = _version(d) / "meta.json"
    path.unlink()
    os.mkfifo(path)


def _current_dir(d: Path) -> None:
    (d / "CURRENT").unlink()
    (d / "CURRENT").mkdir()


# ------------------------------------------------------------------------------------------ the cases
@dataclass(frozen=True)
class Case:
    """A hostile edit of the artifact of ``base``. ``meta_bad``: even ``gan4rec info`` must refuse it."""

    name: str
    base: str
    mutate: Callable[[Path], None]
    meta_bad: bool = True


def _meta_cases() -> list[Case]:
    c = [
        Case("meta-json-list", "toppop", lambda d: _write(d, "meta.json", "[]")),
        Case("meta-nested-100000", "toppop", lambda d: _write(d, "meta.json", _deep(100_000))),
        Case("meta-nested-40", "toppop", _set("data", json.loads(_deep(40)))),
        Case("meta-string", "toppop", lambda d: _write(d, "meta.json", '"model"')),
        Case("meta-null", "toppop", lambda d: _write(d, "meta.json", "null")),
        Case("meta-not-json", "toppop", lambda d: _write(d, "meta.json", "{'model': 1}")),
        Case("meta-not-utf8", "toppop", lambda d: _write(d, "meta.json", b'{"model": "\xff\xfe"}')),
        Case("meta-empty", "toppop", lambda d: _write(d, "meta.json", b"")),
        Case("meta-fifo", "toppop", _fifo),
        Case("meta-huge-int", "toppop", lambda d: _write(d, "meta.json", '{"format_version": 1' + "0" * 5000 + "}")),
        Case("format-abc", "toppop", _set("format_version", "abc")),
        Case("format-nan", "toppop", _set("format_version", float("nan"))),
        Case("format-1e999", "toppop", lambda d: _meta_text(d, '"format_version": 1,', '"format_version": 1e999,')),
        Case("format-float", "toppop", _set("format_version", 1.0)),
        Case("format-true", "toppop", _set("format_version", True)),
        Case("format-missing", "toppop", _set("format_version", ...)),
        Case("format-too-new", "toppop", _set("format_version", 99)),
        Case("format-2**64", "toppop", _set("format_version", 2**64)),
        Case("model-missing", "toppop", _set("model", ...)),
        Case("model-int", "toppop", _set("model", 7)),

        Case("params-list", "toppop", _set("params", [])),
        Case("user-map-list", "toppop", _set("user_map", [1, 2])),
        Case("item-map-kind", "toppop", _set("item_map.kind", "float")),
        Case("item-ids-dict", "toppop", _set("item_map.ids", {"a": 1})),
        Case("history-string", "toppop", _set("history", "x")),
        Case("history-ints", "toppop", _set("history", [1, 2])),
        Case("protocol-list", "toppop", _set("protocol", [])),
        Case("protocol-test-frac-str", "toppop", _set("protocol.test_frac", "x")),
        Case("protocol-ks-str", "toppop", _set("protocol.ks", ["a"])),
        Case("protocol-seed-2**70", "toppop", _set("protocol.split_seed", 2**70)),
        Case("split-fingerprint-int", "toppop", _set("split_fingerprint", 12)),
        Case("adversarial-str", "toppop", _set("adversarial", "yes")),
        Case("seed-str", "toppop", _set("seed", "0")),
        Case("tensors-list", "toppop", _set("tensors", [])),
        Case("tensor-spec-string", "toppop", _set(("tensors", "seen.indptr"), "int64")),
        Case("tensor-shape-str", "toppop", _set(("tensors", "seen.indptr", "shape"), "41")),
        Case("tensor-shape-negative", "toppop", _set(("tensors", "seen.indptr", "shape"), [-41])),
    ]
    # Values a model can only be refused for once its class and the arrays are considered.
    c += [
        Case("user-id-2**64", "toppop", _set("user_map.ids.0", 2**64), meta_bad=False),
        Case("user-id-float", "toppop", _set("user_map.ids.0", 1.5), meta_bad=False),
        Case("user-ids-duplicate", "toppop", _set("user_map.ids.1", 0), meta_bad=False),
        Case("user-ids-fewer", "toppop", _set("user_map.ids", list(range(39))), meta_bad=False),
        Case("item-ids-more", "ease", lambda d: _edit_meta(d, lambda m: m["item_map"]["ids"].append(999)),
             meta_bad=False),
        Case("item-ids-empty", "toppop", _set("item_map.ids", []), meta_bad=False),
        Case("wrong-class-ease-for-toppop", "toppop", _set("model", "ease"), meta_bad=False),
        Case("wrong-class-bpr-for-cfgan", "cfgan", _set("model", "bpr"), meta_bad=False),
        Case("params-unknown", "toppop", _set("params.evil", 1), meta_bad=False),
        Case("model-unknown", "toppop", _set("model", "nosuch\nmodel"), meta_bad=False),
        Case("cfgan-g-hidden-1e9", "cfgan", _set("params.g_hidden", 10**9), meta_bad=False),
        Case("cfgan-g-hidden-1e30", "cfgan", _set("params.g_hidden", 10**30), meta_bad=False),
        Case("cfgan-g-hidden-str", "cfgan", _set("params.g_hidden", "abc"), meta_bad=False),
        Case("cfgan-g-hidden-negative", "cfgan", _set("params.g_hidden", -3), meta_bad=False),
        Case("cfgan-mode-flip", "cfgan", _set("params.mode", "user"), meta_bad=False),
        Case("bpr-factors-more", "bpr", _set("params.n_factors", 5), meta_bad=False),
        Case("bpr-device-int", "bpr", _set("params.device", 5), meta_bad=False),
        Case("bpr-device-bogus", "bpr", _set("params.device", "warp:drive"), meta_bad=False),
    ]
    return c


def _manifest_cases() -> list[Case]:
    def manifest(text: str | bytes) -> Callable[[Path], None]:
        return lambda d: _write(d, "MANIFEST.json", text, reseal=False)

    def entry(**changes: Any) -> Callable[[Path], None]:
        def mutate(d: Path) -> None:
            m = json.loads((_version(d) / "MANIFEST.json").read_text())
            m["files"]["tensors.safetensors"].update(changes)
            (_version(d) / "MANIFEST.json").write_text(json.dumps(m))

        return mutate

    return [
        Case("manifest-files-list", "toppop", manifest('{"format_version": 1, "files": []}')),
        Case("manifest-list", "toppop", manifest("[]")),
        Case("manifest-nested", "toppop", manifest(_deep(100_000))),
        Case("manifest-format-abc", "toppop", lambda d: (_version(d) / "MANIFEST.json").write_text(
            (_version(d) / "MANIFEST.json").read_text().replace('"format_version": 1', '"format_version": "abc"'))),
        Case("manifest-2MB", "toppop", manifest(" " * (2 << 20) + "{}")),
        Case("manifest-missing", "toppop", lambda d: (_version(d) / "MANIFEST.json").unlink()),
        Case("manifest-bytes-str", "toppop", entry(bytes="12")),
        Case("manifest-sha-int", "toppop", entry(sha256=5)),
        Case("manifest-entry-string", "toppop", lambda d: _write(d, "MANIFEST.json", json.dumps(
            {"format_version": 1, "files": {"tensors.safetensors": "x", "meta.json": "y"}}), reseal=False)),
        Case("current-not-utf8", "toppop", lambda d: _write(d, "CURRENT", b"v\xff\xfe")),
        Case("current-pickle", "toppop", lambda d: _write(d, "CURRENT", pickle.dumps({"v": 1}))),
        Case("current-50MB", "toppop", lambda d: _write(d, "CURRENT", b"v" * (50 << 20))),
        Case("current-empty", "toppop", lambda d: _write(d, "CURRENT", b"")),
        Case("current-dotdot", "toppop", lambda d: _write(d, "CURRENT", "../toppop")),
        Case("current-absolute", "toppop", lambda d: _write(d, "CURRENT", "/etc")),
        Case("current-missing-version", "toppop", lambda d: _write(d, "CURRENT", "v20990101T000000-00000000")),
        Case("current-is-dir", "toppop", _current_dir),
        Case("tensors-garbage", "toppop", lambda d: _write(d, "tensors.safetensors", b"\x08" + b"\x00" * 7 + b"garbage!"),
             meta_bad=False),
        Case("tensors-empty", "toppop", lambda d: _write(d, "tensors.safetensors", b""), meta_bad=False),
        Case("tensors-header-huge", "toppop", lambda d: _write(d, "tensors.safetensors", b"\xff" * 8 + b"{}"),
             meta_bad=False),
        Case("tensors-truncated", "toppop", lambda d: _write(
            d, "tensors.safetensors", (_version(d) / "tensors.safetensors").read_bytes()[:-9]), meta_bad=False),
        Case("tensors-header-nested", "toppop", lambda d: _write(
            d, "tensors.safetensors", len(_deep(5000)).to_bytes(8, "little") + _deep(5000).encode()),
             meta_bad=False),
    ]


def _array_cases() -> list[Case]:
    def c(name: str, base: str, mutate: Callable[[Path], None]) -> Case:
        return Case(name, base, mutate, meta_bad=False)

    return [
        c("seen-indptr-minus-1e6", "toppop", _arr("seen.indptr", _poke(5, -1_000_000))),
        c("seen-indptr-minus-1e6-itemknn", "itemknn", _arr("seen.indptr", _poke(5, -1_000_000))),
        c("seen-indptr-non-monotonic", "itemknn", _arr("seen.indptr", _swap_rows)),
        c("seen-indptr-start-1", "toppop", _arr("seen.indptr", _poke(0, 1))),
        c("seen-indptr-end-beyond", "toppop", _arr("seen.indptr", _poke(-1, 10**6))),
        c("seen-indptr-int32", "toppop", _arr("seen.indptr", lambda a: a.astype(np.int32))),
        c("seen-indptr-float", "toppop", _arr("seen.indptr", lambda a: a.astype(np.float64))),
        c("seen-indptr-short", "toppop", _arr("seen.indptr", lambda a: a[:-1])),
        c("seen-indptr-2d", "toppop", _arr("seen.indptr", lambda a: a.reshape(1, -1))),
        c("seen-indices-out-of-range", "ease", _arr("seen.indices", _poke(3, 20))),
        c("seen-indices-negative", "bpr", _arr("seen.indices", _poke(3, -1))),
        c("seen-indices-unsorted", "toppop", _arr("seen.indices", _unsort_row)),
        c("seen-indices-int64", "toppop", _arr("seen.indices", lambda a: a.astype(np.int64))),
        c("seen-missing", "toppop", lambda d: _edit_arrays(d, lambda a: a.pop("seen.indices"))),
        c("extra-array", "toppop", lambda d: _edit_arrays(d, lambda a: a.update({"evil": np.zeros(3)}))),
        c("undeclared-array", "toppop", lambda d: _edit_arrays(d, lambda a: a.update({"model.x": np.zeros(3)}),
                                                                 declare=False)),
        c("ease-weights-int32", "ease", _arr("model.weights", lambda a: (a * 1000).astype(np.int32))),
        c("ease-weights-float64", "ease", _arr("model.weights", lambda a: a.astype(np.float64))),
        c("ease-weights-bf16", "ease", _bf16("model.weights")),
        c("ease-weights-3e38", "ease", _arr("model.weights", lambda a: np.full_like(a, 3e38))),
        c("ease-weights-one-3e38", "ease", _arr("model.weights", _poke(7, 3e38))),
        c("ease-weights-nan", "ease", _arr("model.weights", _poke(0, np.nan))),
        c("ease-weights-transposed-shape", "ease", _arr("model.weights", lambda a: a[:, :-1])),
        c("ease-weights-declared-other", "ease", _arr("model.weights", lambda a: a[:-1], declare=False)),
        c("toppop-popularity-inf", "toppop", _arr("model.popularity", _poke(0, np.inf))),
        c("toppop-popularity-short", "toppop", _arr("model.popularity", lambda a: a[:-1])),
        c("itemknn-indptr-minus", "itemknn", _arr("model.weights.indptr", _poke(5, -1_000_000))),
        c("itemknn-indptr-non-monotonic", "itemknn", _arr("model.weights.indptr", _swap_rows)),
        c("itemknn-indices-out", "itemknn", _arr("model.weights.indices", _poke(0, 10**6))),
        c("itemknn-data-int", "itemknn", _arr("model.weights.data", lambda a: a.astype(np.int32))),
        c("bpr-weights-int32", "bpr", _arr("model.mf/user.weight", lambda a: a.astype(np.int32))),
        c("bpr-weights-bf16", "bpr", _bf16("model.mf/user.weight")),
        c("bpr-weights-3e38", "bpr", _arr("model.mf/item.weight", lambda a: np.full_like(a, 3e38))),
        c("bpr-weights-shape", "bpr", _arr("model.mf/item.weight", lambda a: np.zeros((a.shape[0], 9), a.dtype))),
        c("bpr-best-epoch-float", "bpr", _arr("model.best_epoch", lambda a: a.astype(np.float32))),
        c("bpr-weight-missing", "bpr", lambda d: _edit_arrays(d, lambda a: a.pop("model.mf/item.weight"))),
        c("cfgan-weights-1e35", "cfgan", _arr("model.generator/biases.1", lambda a: np.full_like(a, 1e35))),
        c("cfgan-weights-f16", "cfgan", _arr("model.generator/biases.1", lambda a: a.astype(np.float16))),
    ]


CASES = _meta_cases() + _manifest_cases() + _array_cases()


def _random_cases(n: int) -> list[Case]:
    """Seeded random edits: a metadata value replaced by a hostile one of any type, or an array entry, an
    array's dtype or length, or one byte of a file changed (manifest resealed)."""
    hostile = [None, True, -1, 0, 2**63, 2**64, 1e308, float("inf"), float("nan"), "", "x" * 300, "\n",
               [], [1, "a"], {}, {"kind": "int", "ids": []}, [[[]]]]

    def meta_paths(node: Any, prefix: str) -> list[str]:
        out = [prefix] if prefix else []
        if isinstance(node, dict):
            for k, v in node.items():
                if "." not in k:
                    out += meta_paths(v, f"{prefix}.{k}" if prefix else k)
        elif isinstance(node, list):
            for i, v in enumerate(node[:3]):
                out += meta_paths(v, f"{prefix}.{i}")
        return out

    def edit(seed: int) -> Callable[[Path], None]:
        def mutate(d: Path) -> None:
            rng = np.random.default_rng(seed)
            kind = seed % 3
            if kind == 0:  # a metadata value
                meta = json.loads((_version(d) / "meta.json").read_text())
                paths = meta_paths(meta, "")
                path = paths[int(rng.integers(len(paths)))]
                value = hostile[int(rng.integers(len(hostile)))]
                keys = path.split(".")
                node = meta
                for k in keys[:-1]:
                    node = node[int(k)] if isinstance(node, list) else node[k]
                node[int(keys[-1]) if isinstance(node, list) else keys[-1]] = value
                _write(d, "meta.json", json.dumps(meta))
            elif kind == 1:  # an array: one entry, its dtype or its length
                from safetensors.numpy import load_file

                names = sorted(load_file(_version(d) / "tensors.safetensors"))
                name = names[int(rng.integers(len(names)))]
                how = int(rng.integers(3))
                if how == 0:
                    value = [-1, 2**31 - 1, -(2**40), 3e38, np.nan, 1e31][int(rng.integers(6))]

                    def fn(a: np.ndarray) -> np.ndarray:
                        if a.size:
                            a.reshape(-1)[int(rng.integers(a.size))] = np.asarray(value).astype(a.dtype)
                        return a
                elif how == 1:
                    dtype = [np.int8, np.int32, np.int64, np.float16, np.float64, np.uint8][int(rng.integers(6))]

                    def fn(a: np.ndarray) -> np.ndarray:
                        return a.astype(dtype)
                else:
                    def fn(a: np.ndarray) -> np.ndarray:
                        return a.reshape(-1)[: max(0, a.size - 1)]
                with np.errstate(all="ignore"):
                    _arr(name, fn, declare=bool(rng.integers(2)))(d)
            else:  # one byte of a file, resealed
                name = ["meta.json", "tensors.safetensors"][int(rng.integers(2))]
                blob = bytearray((_version(d) / name).read_bytes())
                blob[int(rng.integers(min(len(blob), 400)))] = int(rng.integers(256))
                _write(d, name, bytes(blob))

        return mutate

    bases = list(TRAIN_PARAMS)
    return [Case(f"random-{i:02d}", bases[i % len(bases)], edit(1000 + i), meta_bad=False) for i in range(n)]


RANDOM_CASES = _random_cases(45)


def _build(case: Case, bases: dict[str, Path], root: Path) -> Path:
    d = root / case.name
    shutil.copytree(bases[case.base], d)
    case.mutate(d)
    return d


def _check_refusal(err: ArtifactError) -> None:
    assert "\n" not in str(err) and str(err), repr(err)


# ------------------------------------------------------------------------------------------ in process
def test_enough_cases() -> None:
    assert len(CASES) + len(RANDOM_CASES) >= 80
    assert len({c.name for c in CASES + RANDOM_CASES}) == len(CASES) + len(RANDOM_CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_artifact_is_refused(case: Case, bases: dict[str, Path], tmp_path: Path) -> None:
    d = _build(case, bases, tmp_path)
    with pytest.raises(ArtifactError) as info:
        Recommender.load(d)
    _check_refusal(info.value)
    if case.meta_bad:
        with pytest.raises(ArtifactError):
            read_artifact_meta(d)
    else:
        try:
            read_artifact_meta(d)
        except ArtifactError as e:
            _check_refusal(e)


@pytest.mark.parametrize("case", RANDOM_CASES, ids=lambda c: c.name)
def test_random_edit_loads_or_is_refused(case: Case, bases: dict[str, Path], tmp_path: Path) -> None:
    d = _build(case, bases, tmp_path)
    try:
        model = Recommender.load(d)
    except ArtifactError as e:
        _check_refusal(e)
        return
    scores = model.score(np.arange(model.n_users))
    assert np.isfinite(scores).all()


def test_bases_load_and_score(bases: dict[str, Path]) -> None:
    for name in TRAIN_PARAMS:
        model = Recommender.load(bases[name])
        assert model.name == name and np.isfinite(model.score(np.arange(model.n_users))).all()


# ------------------------------------------------------------------------------------------ the CLI
_RUNNER = r"""
import contextlib, io, json, sys, traceback
from gan4rec.cli import main
data = sys.argv[1]
for line in sys.stdin:
    name, d = line.rstrip("\n").split("\t")
    for cmd in (["info", d], ["evaluate", d, "--data", data]):
        print(json.dumps({"case": name, "cmd": cmd[0], "started": True}), flush=True)
        err = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                rc = main(cmd)
        except BaseException:
            rc, err = "raised", io.StringIO(traceback.format_exc())
        print(json.dumps({"case": name, "cmd": cmd[0], "rc": rc, "stderr": err.getvalue()}), flush=True)
"""


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def test_cli_refuses_every_case_in_one_line(
    bases: dict[str, Path], canaries: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    """``info`` and ``evaluate --data`` over every case in a child process: a native crash kills the child.

    The pickle canaries go through the CLI too; their marker must not appear.
    """
    cases = CASES + RANDOM_CASES
    lines = [f"{c.name}\t{_build(c, bases, tmp_path)}" for c in cases]
    lines += [f"good-{name}\t{bases[name]}" for name in TRAIN_PARAMS]
    lines += [f"{d.name}\t{d}" for d in canaries[1]]
    proc = subprocess.run([sys.executable, "-c", _RUNNER, str(bases["data"])], input="\n".join(lines) + "\n", check=False,
                          capture_output=True, text=True, env=_env(), timeout=600)
    records = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    last = records[-1] if records else None
    assert proc.returncode == 0, f"the child died ({proc.returncode}) during {last}: {proc.stderr[-2000:]}"
    done = {(r["case"], r["cmd"]): r for r in records if "rc" in r}
    assert len(done) == 2 * len(lines)
    assert not canaries[0].exists(), "the CLI unpickled a file of an artifact"
    by_name = {c.name: c for c in cases}
    for (name, cmd), r in done.items():
        where = f"{name} {cmd}: rc {r['rc']}, stderr {r['stderr']!r}"
        assert "Traceback" not in r["stderr"], where
        if name.startswith("good-") or "side-files" in name:
            assert r["rc"] == 0, where
            continue
        if name.startswith("canary-"):
            assert r["rc"] in ((65,) if cmd == "evaluate" else (0, 65)), where
            continue
        case = by_name[name]
        must_fail = cmd == "evaluate" and not name.startswith("random-") or cmd == "info" and case.meta_bad
        assert r["rc"] in ((65,) if must_fail else (0, 65)), where
        if r["rc"] == 65:
            lines_err = r["stderr"].splitlines()
            assert len(lines_err) == 1 and lines_err[0].startswith("gan4rec: error: "), where


@pytest.mark.parametrize(
    ("case_name", "cmd"),
    [("meta-json-list", "info"), ("current-pickle", "info"), ("seen-indptr-minus-1e6-itemknn", "evaluate")],
)
def test_entry_point_exits_65_in_one_line(case_name: str, cmd: str, bases: dict[str, Path], tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == case_name)
    d = _build(case, bases, tmp_path)
    argv = [sys.executable, "-m", "gan4rec", cmd, str(d)] + (["--data", str(bases["data"])] if cmd == "evaluate" else [])
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 65, (proc.returncode, proc.stderr)
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr


# ------------------------------------------------------------------------------------------ pickle canaries
class _Canary:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def canaries(bases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Artifacts with a pickle canary planted in each place a loader might unpickle: ``(marker, dirs)``."""
    root = tmp_path_factory.mktemp("canaries")
    marker = root / "MARKER"
    blob = pickle.dumps(_Canary(marker))
    np.save(root / "obj.npy", np.array([_Canary(marker)], dtype=object), allow_pickle=True)
    plants: dict[str, Callable[[Path], Any]] = {
        "current": lambda d: _write(d, "CURRENT", blob),
        "meta": lambda d: _write(d, "meta.json", blob),
        "manifest": lambda d: _write(d, "MANIFEST.json", blob, reseal=False),
        "tensors": lambda d: _write(d, "tensors.safetensors", blob),
        "side-files": lambda d: [shutil.copy(root / "obj.npy", _version(d) / "weights.npy"),
                                 (_version(d) / "model.pkl").write_bytes(blob),
                                 (_version(d) / "weights.pt").write_bytes(blob),
                                 (d / "model.pkl").write_bytes(blob)],
    }
    dirs = []
    for where, plant in plants.items():
        for base in ("toppop", "bpr"):
            d = root / f"canary-{where}-{base}"
            shutil.copytree(bases[base], d)
            plant(d)
            dirs.append(d)
    return marker, dirs


def test_pickle_canaries_never_fire(canaries: tuple[Path, list[Path]], tmp_path: Path) -> None:
    # The canary is live: unpickling a twin creates its marker.
    twin = tmp_path / "twin-marker"
    pickle.loads(pickle.dumps(_Canary(twin))).close()
    assert twin.exists()
    marker, dirs = canaries
    for d in dirs:
        try:
            Recommender.load(d)
        except ArtifactError:
            assert "side-files" not in d.name, "files beside the artifact's own are ignored"
        else:
            assert "side-files" in d.name
    assert not marker.exists(), "something unpickled a file of the artifact"


# ------------------------------------------------------------------------------------------ serve
def test_serve_reload_refuses_hostile_versions(bases: dict[str, Path], tmp_path: Path) -> None:
    """The server loads through Recommender.load: a hostile new version is refused and the old one served."""
    state = pytest.importorskip("gan4rec.serve.state")
    d = tmp_path / "m"
    shutil.copytree(bases["ease"], d)
    slot = state.ModelSlot(d)
    old = slot.current
    before = old.model.score([0, 1])
    hostile = [c for c in CASES if c.base == "ease" or c.name in ("meta-json-list", "seen-indptr-minus-1e6")]
    for n, case in enumerate(hostile, 1):
        probe = tmp_path / f"probe-{n}"
        shutil.copytree(bases[case.base], probe)
        case.mutate(probe)
        version = f"v29990101T000000-{n:08x}"
        shutil.copytree(_version(probe), d / version)
        (d / "CURRENT").write_text(version)
        with pytest.raises(ArtifactError):
            slot.reload()
        assert slot.refused == n and slot.current is old
    np.testing.assert_array_equal(slot.current.model.score([0, 1]), before)
    with pytest.raises(ArtifactError):
        state.ModelSlot(d)  # start-up refuses it too
    # A CURRENT that is not a name: refused as well (serve reads CURRENT itself, so any exception counts).
    (d / "CURRENT").write_bytes(pickle.dumps({"v": 1}))
    with pytest.raises(Exception):  # noqa: B017
        slot.reload()
    assert slot.refused == len(hostile) + 1 and slot.current is old
