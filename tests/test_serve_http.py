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


# ------------------------------------------------------------------------------------------------ strictness
@pytest.mark.parametrize("path, body, fragment", [
    ("/recommend", {"users": [1], "k": True}, "k: expected an integer, got a boolean"),
    ("/recommend", {"users": [1], "k": 3.5}, "k: expected an integer, got a fractional number"),
    ("/recommend", {"users": [1], "k": "3"}, "k: Input should be a valid integer"),
    ("/recommend", {"history": [1], "exclude_seen": 0}, "exclude_seen: Input should be a valid boolean"),
    ("/recommend", {"users": [1], "exclude_seen": "false"}, "exclude_seen: Input should be a valid boolean"),
    ("/explain", {"user": 1, "items": [1], "top": True}, "top: expected an integer, got a boolean"),
])
def test_request_bodies_take_no_loose_types(int_client: TestClient, path: str, body: dict[str, Any],
                                            fragment: str) -> None:
    r = int_client.post(path, json=body)
    assert r.status_code == 422 and fragment in r.json()["detail"], r.text


def test_strict_fields_still_take_their_own_types(int_client: TestClient) -> None:
    user = _users(int_client)[0]
    for k in (3, 3.0):  # 3.0 is an integer to JSON Schema (and so to the OpenAPI's clients)
        r = int_client.post("/recommend", json={"users": [user], "k": k, "exclude_seen": False})
        assert r.status_code == 200 and len(r.json()["results"][0]["items"]) == 3
    assert int_client.post("/explain", json={"user": user, "items": [1], "top": 2}).status_code == 200


# ------------------------------------------------------------------------------------------------ keys
def test_readiness_is_public_but_its_details_need_the_key(root: Path, data_dir_corrupt: Path) -> None:
    with TestClient(create_app(data_dir_corrupt, api_key=KEY)) as c:
        (data_dir_corrupt / "CURRENT").write_text("v-missing")  # the next reload is refused
        assert c.post("/admin/reload", headers=H).status_code == 409
        for headers in ({}, {"X-API-Key": "wrong-key-0123456789"}):
            r = c.get("/readyz", headers=headers)
            assert r.status_code == 200 and r.json() == {"status": "ready"}
        details = c.get("/readyz", headers=H).json()
        assert details["status"] == "ready" and details["refused_reloads"] == 1
        assert str(data_dir_corrupt) in details["last_reload_error"]  # server paths: for key holders only
    with TestClient(create_app(root / "int")) as c:  # an open server has no secrets to keep
        assert set(c.get("/readyz").json()) > {"status", "model_version", "last_reload_error"}


@pytest.fixture
def data_dir_corrupt(root: Path, tmp_path: Path) -> Path:
    """A copy of the integer-id model whose artifact the test may break."""
    shutil.copytree(root / "int", tmp_path / "m")
    return tmp_path / "m"


def test_openapi_declares_the_key_only_where_the_server_has_keys(root: Path) -> None:
    def secured(spec: dict[str, Any]) -> set[str]:
        return {f"{method.upper()} {path}" for path, ops in spec["paths"].items()
                for method, op in ops.items() if op.get("security")}

    with TestClient(create_app(root / "int")) as c:
        spec = c.get("/openapi.json").json()
        assert "securitySchemes" not in spec.get("components", {}) and secured(spec) == set()
        assert c.post("/admin/reload").status_code == 403  # admin stays disabled without keys
    with TestClient(create_app(root / "int", api_key=KEY)) as c:
        spec = c.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
        assert {"GET /recommend", "POST /recommend", "GET /explain", "POST /explain", "GET /similar",
                "GET /history", "GET /items", "GET /info", "GET /metrics", "POST /admin/reload", "POST /items",
                "DELETE /items/{item}"} == secured(spec)


# ------------------------------------------------------------------------------------------------ methods
def test_options_and_405_name_every_method_of_a_path(int_client: TestClient) -> None:
    for path, allow in [("/recommend", "GET, POST, OPTIONS"), ("/explain", "GET, POST, OPTIONS"),
                        ("/admin/reload", "POST, OPTIONS"), ("/healthz", "GET, OPTIONS"),
                        ("/items", "GET, POST, OPTIONS")]:
        r = int_client.options(path)
        assert r.status_code == 204 and r.headers["allow"] == allow, path
        r = int_client.delete(path)
        assert r.status_code == 405 and r.headers["allow"] == allow, path
    assert int_client.options("/no/such/path").status_code == 404


# ------------------------------------------------------------------------------------------------ timeouts
def _until_closed(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends until it closes the connection; fails if it is still open after ``seconds``."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {seconds} s; received {data[:200]!r}")
    except ConnectionResetError:
        pass
    return data


def _request(port: int, raw: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if raw:
        sock.sendall(raw)
    return sock


@contextlib.contextmanager
def _normal_client(port: int) -> Iterator[list[int]]:
    """A client asking ``/healthz`` and ``/recommend`` over and over meanwhile; the statuses it got."""
    import threading

    statuses: list[int] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            for path in ("/healthz", "/recommend?user=1&k=3"):
                try:
                    statuses.append(_get(port, path, H)[0])
                except OSError:
                    statuses.append(-1)
            time.sleep(0.05)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(timeout=30)


def test_idle_and_slow_connections_are_closed_while_others_are_served(root: Path) -> None:
    """With 1 s timeouts: an idle keep-alive connection, a connection that sends nothing, a half-sent head,
    a head trickled byte by byte and a half-sent body are all closed (the last three with 408); meanwhile
    a normal client gets only 200s. Bounds are generous (10 s): closed at all, not how fast."""
    options = {"keep_alive_timeout": 1, "head_timeout": 1, "body_timeout": 1,
               "api_key_file": str(root / "keys.txt")}
    with _server(root / "int", **options) as port, _normal_client(port) as statuses:
        with _request(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n") as idle:
            answer = _until_closed(idle, 10)  # kept alive (no "connection: close"), then closed once idle
            assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" not in answer.lower()
        with _request(port, b"") as silent:
            assert _until_closed(silent, 10) == b""
        with _request(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n") as half_head:
            assert _until_closed(half_head, 10).startswith(b"HTTP/1.1 408")
        head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * 100 + b"\r\n\r\n"
        answer, sent = _trickle(port, head, every=0.1)
        assert sent < len(head) and answer.startswith(b"HTTP/1.1 408"), (sent, answer[:100])
        body = b'{"users": [1], "k": 3}'
        with _request(port, b"POST /recommend HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                            b"X-API-Key: " + KEY.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body[:5]) as half_body:
            answer = _until_closed(half_body, 10)
            assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower()
            assert b"request body not received within 1 s" in answer
    assert len(statuses) > 4 and set(statuses) == {200}


def _trickle(port: int, head: bytes, every: float) -> tuple[bytes, int]:
    """Send ``head`` one byte at a time until the server answers or closes; (its answer, bytes sent)."""
    import select

    sent = 0
    with _request(port, b"") as sock:
        while sent < len(head):
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered or closed: stop writing into a closed connection
            try:
                sock.sendall(head[sent : sent + 1])
            except OSError:
                break
            sent += 1
            time.sleep(every)
        return _until_closed(sock, 10), sent


def test_open_connections_are_capped(root: Path) -> None:
    """With ``limit_concurrency=3``, the third open connection's request gets 503; once others close, 200."""
    with _server(root / "int", keep_alive_timeout=30, limit_concurrency=3) as port:
        held: list[socket.socket] = []
        try:
            statuses = []
            for _ in range(3):
                sock = _request(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                held.append(sock)
                statuses.append(int(sock.recv(65536)[9:12]))
            assert statuses == [200, 200, 503]
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 10
        while _get(port, "/healthz")[0] != 200:
            assert time.monotonic() < deadline, "the cap did not free up after the connections closed"
            time.sleep(0.1)


@pytest.mark.parametrize("option, value", [("keep_alive_timeout", 0), ("head_timeout", -1.0),
                                           ("body_timeout", float("nan")), ("body_timeout", True),
                                           ("limit_concurrency", 0)])
def test_run_server_refuses_bad_limits(root: Path, option: str, value: Any) -> None:
    from gan4rec.errors import DataError
    from gan4rec.serve.app import run_server

    with pytest.raises(DataError, match=f"^{option} must be"):
        run_server(root / "int", **{option: value})


def test_docs_fall_back_to_the_cdn_without_fastapi_offline(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "fastapi_offline", None)  # its import now fails
    with TestClient(create_app(root / "int")) as c:
        assert c.get("/recommend", params={"user": "1"}).status_code == 200
        assert "cdn" in c.get("/docs").text.lower()
    assert "fastapi-offline is not installed" in caplog.text
