"""Load benchmark of ``gan4rec serve`` with wrk: ``/healthz`` then ``/recommend`` over random known users.

The server runs pinned to one core (one uvicorn worker, one torch/OpenMP thread), wrk pinned to another.
Two back-to-back runs with identical wrk settings measure ``/healthz`` (the cost of the HTTP stack alone)
and ``/recommend?user=U&k=10`` with ``U`` drawn uniformly from the known users by a seeded wrk Lua script.
The table reports p50, p99 and req/s of both, non-2xx answers, and ``p99(/recommend) / p99(/healthz)``
(target <= 3).

Usage::

    python benchmarks/serve_wrk.py                       # EASE (l2=500) on the CFGAN ML-100K split
    python benchmarks/serve_wrk.py --model-dir MODEL     # any saved model
    python benchmarks/serve_wrk.py --duration 10 --connections 64 --json result.json

Needs ``wrk`` and ``taskset`` (Debian: wrk, util-linux) and at least two cores. Without ``--model-dir`` it
trains EASE on ``../shared/datasets/cfgan-ml100k`` (or ``$GAN4REC_SHARED/datasets``) and exits with a
message when that split is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model as _cpu_model

SHARED = Path(os.environ.get("GAN4REC_SHARED", ROOT.parent / "shared")) / "datasets"

_LUA = """-- Random known users, seeded: the same request sequence on every run.
math.randomseed(%(seed)d)
local users = {%(users)s}
local n = #users
request = function()
  return wrk.format("GET", "/recommend?user=" .. users[math.random(n)] .. "&k=%(k)d")
end
"""




def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _train_default(out: Path) -> Path:
    from gan4rec.data.io import read_uir_pair
    from gan4rec.models import create

    folder = SHARED / "cfgan-ml100k"
    train_file, test_file = folder / "ML100K.train", folder / "ML100K.test"
    if not train_file.is_file() or not test_file.is_file():
        sys.exit(f"serve_wrk: {folder} is absent; pass --model-dir with a saved model instead")
    train, _ = read_uir_pair(train_file, test_file, format="uir")
    model = create("ease", {"l2": 500.0}).fit(train)
    model.save(out)
    return out


def _known_users(model_dir: Path) -> list[str]:
    from gan4rec.artifacts import load_artifact

    arrays, meta = load_artifact(model_dir)
    counts = arrays["seen.indptr"][1:] - arrays["seen.indptr"][:-1]
    ids = meta["user_map"]["ids"]
    return [str(ids[i]) for i in range(len(ids)) if counts[i] > 0]


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"serve_wrk: the server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"serve_wrk: the server was not ready within {timeout:.0f} s")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _parse_wrk(out: str) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", out, re.MULTILINE)
        if m:
            res[f"p{pct}_ms"] = _ms(m.group(1))
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    res["req_per_s"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return res


def _wrk(args: argparse.Namespace, url: str, script: Path | None, duration: str) -> tuple[list[str], str]:
    cmd = ["taskset", "-c", args.wrk_core, "wrk", f"-t{args.wrk_threads}", f"-c{args.connections}",
           f"-d{duration}", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return cmd, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path,
                   help="saved model (default: EASE trained on the CFGAN ML-100K split)")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unreported warm-up per endpoint")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--server-core", default="0")
    p.add_argument("--wrk-core", default="1")
    p.add_argument("-k", type=int, default=10, help="list length of /recommend")
    p.add_argument("--seed", type=int, default=42, help="seed of the wrk Lua user sequence")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args(argv)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"serve_wrk: {tool} is not installed (Debian: apt-get install wrk util-linux)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("serve_wrk: needs two cores (server and wrk on separate ones)")

    with tempfile.TemporaryDirectory(prefix="gan4rec-wrk-") as tmp:
        work = Path(tmp)
        model_dir = args.model_dir or _train_default(work / "ease")
        users = _known_users(model_dir)
        script = work / "recommend.lua"
        script.write_text(_LUA % {"seed": args.seed, "k": args.k,
                                  "users": ",".join(_lua_string(u) for u in users)})
        port = _free_port()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        server_cmd = ["taskset", "-c", args.server_core, sys.executable, "-m", "gan4rec", "-q", "serve",
                      str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                      "--threads", "1", "--no-access-log"]
        proc = subprocess.Popen(server_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, proc)
            from gan4rec.artifacts import read_artifact_meta

            model_name = read_artifact_meta(model_dir)["model"]
            if args.warmup > 0:
                _wrk(args, base + "/healthz", None, f"{args.warmup}s")
                _wrk(args, base + "/recommend", script, f"{args.warmup}s")
            runs = {}
            for name, url, lua in (("/healthz", base + "/healthz", None),
                                   ("/recommend", base + "/recommend", script)):
                cmd, out = _wrk(args, url, lua, f"{args.duration}s")
                runs[name] = {"command": " ".join(shlex.quote(c) for c in cmd), **_parse_wrk(out), "raw": out}
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    ratio = runs["/recommend"]["p99_ms"] / runs["/healthz"]["p99_ms"]
    machine = {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
               "server_core": args.server_core, "wrk_core": args.wrk_core, "server_workers": 1,
               "server_torch_threads": 1, "wrk_threads": args.wrk_threads, "connections": args.connections,
               "duration_s": args.duration, "warmup_s": args.warmup, "model": model_name,
               "known_users": len(users), "load_average_1m_at_end": os.getloadavg()[0]}
    print(f"server:  {' '.join(shlex.quote(c) for c in server_cmd)}")
    for name, r in runs.items():
        print(f"wrk {name}: {r['command']}")
    print(f"machine: {machine['cpu']}, {machine['cores']} cores; server on core {args.server_core} "
          "(1 worker, "
          f"1 torch thread), wrk on core {args.wrk_core} ({args.wrk_threads} thread, {args.connections} "
          f"connections, {args.duration} s per run after {args.warmup} s warm-up); model {model_name}, "
          f"{len(users)} known users, k={args.k}; 1-min load average at the end "
          f"{machine['load_average_1m_at_end']:.2f} (other processes share these cores when it exceeds ~2)")
    print()
    print(f"| {'endpoint':<11}| {'p50 ms':>8} | {'p99 ms':>8} | {'req/s':>9} | {'requests':>9} "
          f"| {'non-2xx':>7} "
          f"| {'sock err':>8} |")
    print(f"|{'-' * 12}|{'-' * 10}|{'-' * 10}|{'-' * 11}|{'-' * 11}|{'-' * 9}|{'-' * 10}|")
    for name, r in runs.items():
        print(f"| {name:<11}| {r['p50_ms']:>8.2f} | {r['p99_ms']:>8.2f} | {r['req_per_s']:>9.0f} | "
              f"{r['requests']:>9} | {r['non_2xx']:>7} | {r['socket_errors']:>8} |")
    print()
    verdict = "meets" if ratio <= 3.0 else "misses"
    print(f"p99(/recommend) / p99(/healthz) = {ratio:.2f} ({verdict} the target <= 3)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "server_command": server_cmd, "runs": runs,
                                         "p99_ratio": ratio}, indent=2) + "\n")
    bad = sum(r["non_2xx"] + r["socket_errors"] for r in runs.values())
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
