"""The HTTP service as a client sees it: offline API docs, ids echoed in the id map's type, strict request
bodies, readiness without secrets, ``OPTIONS`` and the OpenAPI's key declaration, and connection timeouts.

The docs and the timeouts are checked against a real server (``run_server`` in a subprocess on 127.0.0.1,
a free port); the rest in process with ``TestClient``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from fastapi.testclient import TestClient

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.synthetic import make_synthetic
from gan4rec.models import create
from gan4rec.serve.app import create_app

KEY = "http-test-key-0123456789"
H = {"X-API-Key": KEY}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Saved EASE models with integer ids (``int``) and string ids (``str``), and an API-key file."""
    path = tmp_path_factory.mktemp("serve-http")
    data = make_synthetic(60, 30, 700, n_factors=3, random_state=0)
    create("ease", {"l2": 10.0}).fit(data).save(path / "int")
    users = np.array([f"u{i}" for i in data.user_map.ids.tolist()])
    items = np.array([f"i{i}" for i in data.item_map.ids.tolist()])
    coo = data.csr().tocoo()
    named = Interactions.from_indices(coo.row, coo.col, IdMap(users), IdMap(items))
    create("ease", {"l2": 10.0}).fit(named).save(path / "str")
    (path / "keys.txt").write_text(KEY + "\n")
    return path


@pytest.fixture(scope="module")
def int_client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(root / "int")) as c:
        yield c


@pytest.fixture(scope="module")
def str_client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(root / "str")) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@contextlib.contextmanager
def _server(model_dir: Path, **options: Any) -> Iterator[int]:
    """``run_server(model_dir, **options)`` in a subprocess on 127.0.0.1 and a free port; its port."""
    port = _free_port()
    code = ("import json, sys; from gan4rec.serve.app import run_server; "
            "run_server(sys.argv[1], **json.loads(sys.argv[2]))")
    settings = {"host": "127.0.0.1", "port": port, "access_log": False, "log_level": "warning",
                "graceful_timeout": 5.0, **options}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-c", code, str(model_dir), json.dumps(settings)],
                                stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"server exited with {proc.returncode}: {log.read().decode()[-2000:]}")
                with contextlib.suppress(OSError):
                    if _get(port, "/healthz")[0] == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail("server not ready in time")
                time.sleep(0.1)
            yield port
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ------------------------------------------------------------------------------------------------ docs
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_api_docs_render_offline_in_headless_chromium(root: Path, tmp_path: Path) -> None:
    """/docs (Swagger UI) and /redoc render with every non-loopback host unreachable: no CDN needed."""
    pytest.importorskip("fastapi_offline", reason="the serve extra's fastapi-offline ships the docs assets")

    def dom(url: str) -> str:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               # No network beyond this machine: a dead proxy for every other host, and no name resolves.
               "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
               f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}", "--window-size=1280,2000",
               "--virtual-time-budget=20000", "--dump-dom", url]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120).stdout

    with _server(root / "int", api_key_file=str(root / "keys.txt")) as port:
        status, page = _get(port, "/docs")
        assert status == 200 and b"https://" not in page and b"http://" not in page
        swagger = dom(f"http://127.0.0.1:{port}/docs")
        assert 'class="swagger-ui' in swagger, swagger[-2000:]
        for path in ("/recommend", "/explain", "/similar", "/admin/reload"):
            assert f'data-path="{path}"' in swagger, path
        assert "gan4rec" in swagger
        redoc = dom(f"http://127.0.0.1:{port}/redoc")
        assert "/recommend" in redoc and "/similar" in redoc, redoc[-2000:]
        status, icon = _get(port, "/favicon.ico")
        assert status == 200 and icon.startswith(b"<svg")


# ------------------------------------------------------------------------------------------------ ids
def _users(client: TestClient) -> list[Any]:
    return client.app.state.slot.current.model.user_map_.ids.tolist()  # type: ignore[attr-defined]


def test_users_are_echoed_in_the_type_of_the_id_map(int_client: TestClient, str_client: TestClient) -> None:
    """Integer ids come back as integers and string ids as strings, for known and unknown users alike."""
    known = _users(int_client)[3]
    for sent, echoed, strategy in [
        (str(known), known, "model"),
        ("999999", 999999, "popularity_fallback"),  # unknown, parses as an integer id
        ("abc", "abc", "popularity_fallback"),  # unknown, cannot be an integer id: as sent
        ("99999999999999999999", "99999999999999999999", "popularity_fallback"),  # beyond int64
    ]:
        body = int_client.get("/recommend", params={"user": sent, "k": 2}).json()
        assert body["user"] == echoed and type(body["user"]) is type(echoed), sent
        assert body["strategy"] == strategy
    res = int_client.post("/recommend", json={"users": [known, str(known), "999999", 999999, "abc"],
                                              "k": 2}).json()["results"]
    assert [r["user"] for r in res] == [known, known, 999999, 999999, "abc"]
    assert [type(r["user"]) for r in res] == [int, int, int, int, str]

    name = _users(str_client)[3]
    assert isinstance(name, str)
    for sent, strategy in [(name, "model"), ("999999", "popularity_fallback"), ("zz", "popularity_fallback")]:
        body = str_client.get("/recommend", params={"user": sent, "k": 2}).json()
        assert body["user"] == sent and body["strategy"] == strategy
    res = str_client.post("/recommend", json={"users": [name, 999999, "999999", "zz"], "k": 2}).json()
    assert [r["user"] for r in res["results"]] == [name, "999999", "999999", "zz"]


def test_the_echo_rule_is_in_the_openapi_schema(int_client: TestClient) -> None:
    spec = int_client.get("/openapi.json").json()
    text = spec["components"]["schemas"]["Recommendation"]["properties"]["user"]["description"]
    assert "integer for integer ids" in text and "echoed as sent" in text
