"""Dataset registry, verifying download cache and loading by name.

Downloads go to a loopback HTTP server started per test; nothing here reaches the network, writes into
../shared or into ~/.cache (the cache is a tmp_path, HOME and XDG_CACHE_HOME are redirected too).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import logging
import re
import stat
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gan4rec.data.datasets import DATASETS, DatasetSpec, cache_root, dataset_info, fetch, load_dataset, verify
from gan4rec.errors import DataError, MissingInputError

# A tiny ML-100K-like folder: 3 users, 4 items, 7 distinct (user, item) ratings.
U_DATA = (
    b"1\t1\t5\t881250949\n"
    b"1\t2\t3\t881250950\n"
    b"1\t3\t4\t881250951\n"
    b"2\t1\t4\t891717742\n"
    b"2\t4\t1\t891717743\n"
    b"3\t2\t2\t878887116\n"
    b"3\t3\t5\t878887117\n"
)
_FLAGS = {1: "0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0", 2: "0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0"}
U_ITEM = "".join(
    f"{i}|Movie {i} (1995)|01-Jan-1995||http://example.invalid/{i}|{_FLAGS[1 + i % 2]}\n" for i in range(1, 5)
).encode("latin-1")
U_USER = b"1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"
FILES = {"u.data": U_DATA, "u.item": U_ITEM, "u.user": U_USER}
HASHES = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}


def make_zip(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    """A zip of ``members``; ``symlink`` names an extra member stored as a symbolic link."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def tiny_zip(folder: str = "tiny-100k", extra: dict[str, bytes] | None = None) -> bytes:
    members = {f"{folder}/{name}": data for name, data in FILES.items()}
    members[f"{folder}/ua.base"] = U_DATA  # like the publisher's extra split files: unverified, unused
    return make_zip({**members, **(extra or {})})


def tiny_spec(url: str | None, **kw) -> DatasetSpec:
    return DatasetSpec(name="tiny-100k", layout="100k", description="test fixture", url=url,
                       folder="tiny-100k", **{"sha256": HASHES, **kw})


class Server:
    """A loopback HTTP server that serves fixed bytes per path and counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.truncated: set[str] = set()  # paths whose body is cut in half (Content-Length is the full size)
        self.stalled: set[str] = set()  # paths that never answer until the server closes
        self.release = threading.Event()
        routes, requests, truncated, stalled, release = (
            self.routes, self.requests, self.truncated, self.stalled, self.release
        )

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                if self.path in stalled:
                    release.wait(10)
                    return
                body = routes.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in truncated else body)

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder in tmp_path, made the default; the real home cache is out of reach."""
    root = tmp_path / "cache"
    monkeypatch.setenv("GAN4REC_DATA", str(root))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("GAN4REC_OFFLINE", raising=False)
    return root


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was used")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def leftovers(root: Path) -> list[str]:
    """Names in the cache other than finished dataset folders and zips: temp files, half unpacked dirs."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".")) if root.exists() else []


# ---------------------------------------------------------------------------------------------- registry
def test_registry_urls_folders_and_only_known_hashes() -> None:
    movielens = {
        "ml-100k": "100k", "ml-1m": "1m", "ml-latest-small": "latest", "ml-20m": "20m", "ml-25m": "25m",
    }
    assert set(DATASETS) == {*movielens, "citeulike-t", "synthetic"}
    for name, layout in movielens.items():
        spec = DATASETS[name]
        assert spec.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
        assert (spec.folder, spec.layout, spec.name) == (name, layout, name)
        assert "no redistribution" in spec.licence and spec.description
    # Hashes only where known for certain: ML-100K's files, u.data's being the published digest.
    # CiteULike-t: users.dat and mult.dat, from the project's shared data README.
    assert {n for n, s in DATASETS.items() if s.sha256} == {"ml-100k", "citeulike-t"}
    assert set(DATASETS["citeulike-t"].sha256) == {"users.dat", "mult.dat"} and DATASETS["citeulike-t"].url is None
    hashes = DATASETS["ml-100k"].sha256
    assert hashes["u.data"] == "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
    assert set(hashes) == {"README", "u.data", "u.genre", "u.info", "u.item", "u.occupation", "u.user"}
    assert DATASETS["ml-1m"].required == ("ratings.dat",) and DATASETS["ml-25m"].required == ("ratings.csv",)
    assert DATASETS["synthetic"].url is None


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'ml-2m'; known datasets: ml-100k, ml-1m, .*thetic"):
        fetch("ml-2m")
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("nope")


def test_spec_rejects_bad_hash_and_name() -> None:
    with pytest.raises(DataError, match="sha256 of 'u.data'.*64 lowercase hex"):
        DatasetSpec(name="x", layout="100k", description="", sha256={"u.data": "abc"})
    with pytest.raises(DataError, match="dataset name '../x'"):
        DatasetSpec(name="../x", layout="100k", description="")
    with pytest.raises(DataError, match="layout='2k'"):
        DatasetSpec(name="x", layout="2k", description="")


def test_cache_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GAN4REC_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "gan4rec"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "gan4rec"
    monkeypatch.setenv("GAN4REC_DATA", str(tmp_path / "data"))
    assert cache_root() == tmp_path / "data"
    assert cache_root(tmp_path / "explicit") == tmp_path / "explicit"


# ---------------------------------------------------------------------------------------------- download
def test_download_extracts_verifies_and_then_stays_offline(cache: Path, server: Server,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/tiny.zip"] = tiny_zip()
    spec = tiny_spec(f"{server.base}/tiny.zip")
    folder = fetch(spec)
    assert folder == cache / "tiny-100k"
    assert server.requests == ["/tiny.zip"]
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data
    assert (folder / "ua.base").is_file()  # unverified extras are kept, harmlessly
    source = json.loads((folder / ".gan4rec-source.json").read_text())
    assert source["url"] == f"{server.base}/tiny.zip"
    assert source["zip_sha256"] == hashlib.sha256(server.routes["/tiny.zip"]).hexdigest()
    assert leftovers(cache) == [] and sorted(p.name for p in cache.iterdir()) == ["tiny-100k"]
    assert verify(spec, folder) is True

    # The copy is now used as is: no request, even when the network is forbidden.
    monkeypatch.setenv("GAN4REC_OFFLINE", "1")
    assert fetch(spec) == folder
    assert server.requests == ["/tiny.zip"]


def test_load_dataset_end_to_end(cache: Path, server: Server) -> None:
    pytest.importorskip("gan4rec.data.io")
    server.routes["/tiny.zip"] = tiny_zip()
    data = load_dataset(tiny_spec(f"{server.base}/tiny.zip"))
    assert data.shape == (3, 4) and data.nnz == 7
    assert data.user_map.ids.tolist() == [1, 2, 3] and data.item_map.ids.tolist() == [1, 2, 3, 4]
    assert data.row(0).tolist() == [0, 1, 2] and data.row(1).tolist() == [0, 3]
    assert np.asarray(data.ratings).tolist() == [5, 3, 4, 4, 1, 2, 5]
    assert "genres" in data.item_features and "age" in data.user_features
    assert data.user_features["age"].tolist() == [24, 53, 23]
    # min_rating is passed on to the reader: ratings >= 4 leave 4 interactions.
    assert load_dataset(tiny_spec(f"{server.base}/tiny.zip"), min_rating=4).nnz == 4


def test_url_argument_overrides_the_spec(cache: Path, server: Server) -> None:
    server.routes["/mirror/t.zip"] = tiny_zip()
    folder = fetch(tiny_spec("http://127.0.0.1:9/never-used.zip"), url=f"{server.base}/mirror/t.zip")
    assert (folder / "u.data").read_bytes() == U_DATA
    assert server.requests == ["/mirror/t.zip"]


def test_flat_zip_without_top_folder(cache: Path, server: Server) -> None:
    server.routes["/flat.zip"] = make_zip(FILES)
    folder = fetch(tiny_spec(f"{server.base}/flat.zip"))
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(FILES)


def test_zip_placed_in_the_cache_is_unpacked_offline(cache: Path, no_network: None) -> None:
    cache.mkdir()
    (cache / "tiny-100k.zip").write_bytes(tiny_zip())
    folder = fetch(tiny_spec("https://files.example.invalid/tiny.zip"), offline=True)
    assert (folder / "u.user").read_bytes() == U_USER
    assert (cache / "tiny-100k.zip").is_file()  # the user's zip is left alone
    assert leftovers(cache) == []


def test_hash_mismatch_names_file_and_hashes_and_leaves_nothing(cache: Path, server: Server) -> None:
    server.routes["/tiny.zip"] = tiny_zip()
    wrong = "0" * 64
    spec = tiny_spec(f"{server.base}/tiny.zip", sha256={**HASHES, "u.data": wrong})
    with pytest.raises(DataError) as err:
        fetch(spec)
    msg = str(err.value)
    assert "u.data" in msg and wrong in msg and HASHES["u.data"] in msg
    assert not (cache / "tiny-100k").exists()
    assert leftovers(cache) == []


def test_existing_copy_with_wrong_hash_is_reported_not_deleted(cache: Path, no_network: None) -> None:
    folder = cache / "tiny-100k"
    folder.mkdir(parents=True)
    for name, data in FILES.items():
        (folder / name).write_bytes(data)
    (folder / "u.item").write_bytes(U_ITEM + b"5|Extra|01-Jan-1995||x|" + b"0|" * 18 + b"0\n")
    with pytest.raises(DataError, match=r"u\.item has sha256 [0-9a-f]{64}, expected " + HASHES["u.item"]):
        fetch(tiny_spec("https://files.example.invalid/tiny.zip"))
    assert (folder / "u.item").exists()


@pytest.mark.parametrize(
    ("member", "why"),
    [("../evil", r"outside the archive folder \('\.\.'\)"), ("tiny-100k/../../evil", r"\('\.\.'\)"),
     ("/abs/evil", "absolute or malformed"), ("C:/evil", "absolute or malformed"),
     ("tiny-100k\\..\\evil", "absolute or malformed")],
)
def test_zip_slip_is_refused(cache: Path, server: Server, tmp_path: Path, member: str, why: str) -> None:
    good = {f"tiny-100k/{n}": d for n, d in FILES.items()}
    server.routes["/evil.zip"] = make_zip({**good, member: b"pwned"})
    with pytest.raises(DataError, match=why):
        fetch(tiny_spec(f"{server.base}/evil.zip"))
    assert not (tmp_path / "evil").exists() and not (cache / "evil").exists()
    assert not (cache / "tiny-100k").exists() and leftovers(cache) == []


def test_symlink_member_is_refused(cache: Path, server: Server) -> None:
    good = {f"tiny-100k/{n}": d for n, d in FILES.items()}
    server.routes["/link.zip"] = make_zip(good, symlink="tiny-100k/link")
    with pytest.raises(DataError, match="'tiny-100k/link' is a symbolic link"):
        fetch(tiny_spec(f"{server.base}/link.zip"))
    assert not (cache / "tiny-100k").exists() and leftovers(cache) == []


def test_oversized_archive_is_refused(cache: Path, server: Server) -> None:
    # 2 MB of zeros compress to a few KB: the declared size is what the guard checks.
    server.routes["/bomb.zip"] = tiny_zip(extra={"tiny-100k/zeros": bytes(2_000_000)})
    with pytest.raises(DataError, match=r"unpacks to \d+ bytes, more than the 1000000 allowed"):
        fetch(tiny_spec(f"{server.base}/bomb.zip", max_unpacked_bytes=1_000_000))
    assert not (cache / "tiny-100k").exists() and leftovers(cache) == []


def test_non_zip_and_wrong_archive(cache: Path, server: Server) -> None:
    server.routes["/page.zip"] = b"<html>not found</html>"
    with pytest.raises(DataError, match="is not a zip archive"):
        fetch(tiny_spec(f"{server.base}/page.zip"))
    server.routes["/other.zip"] = make_zip({"ml-1m/ratings.dat": b"1::1::5::1\n"})
    with pytest.raises(DataError, match=r"holds no tiny-100k/u\.data"):
        fetch(tiny_spec(f"{server.base}/other.zip"))
    assert sorted(p.name for p in cache.iterdir()) == []


def test_http_error_gives_missing_input_with_instructions(cache: Path, server: Server) -> None:
    with pytest.raises(MissingInputError) as err:
        fetch(tiny_spec(f"{server.base}/absent.zip"))
    msg = str(err.value)
    assert f"so that {cache / 'tiny-100k' / 'u.data'} exists" in msg
    assert "download failed: HTTP 404" in msg and "GAN4REC_DATA" in msg
    assert leftovers(cache) == []


def test_truncated_download_is_discarded(cache: Path, server: Server) -> None:
    server.routes["/cut.zip"] = tiny_zip()
    server.truncated.add("/cut.zip")
    with pytest.raises(MissingInputError, match="download failed: .*cut.zip"):
        fetch(tiny_spec(f"{server.base}/cut.zip"))
    assert not (cache / "tiny-100k").exists() and leftovers(cache) == []


def test_stalled_server_times_out(cache: Path, server: Server) -> None:
    server.stalled.add("/slow.zip")
    with pytest.raises(MissingInputError, match="download failed: .*timed out"):
        fetch(tiny_spec(f"{server.base}/slow.zip"), timeout=0.3)
    assert leftovers(cache) == []


def test_offline_without_copy_says_where_to_put_the_files(cache: Path, no_network: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN4REC_OFFLINE", "1")
    with pytest.raises(MissingInputError) as err:
        fetch("ml-1m")
    assert str(err.value) == (
        "dataset 'ml-1m' not found: put the files of ml-1m.zip "
        "(https://files.grouplens.org/datasets/movielens/ml-1m.zip) so that "
        f"{cache / 'ml-1m' / 'ratings.dat'} exists, or set GAN4REC_DATA to a folder holding ml-1m/ "
        "(offline: GAN4REC_OFFLINE is set)"
    )
    assert not cache.exists()  # offline never creates the cache
    with pytest.raises(MissingInputError, match=r"\(offline=True\)"):
        fetch("ml-20m", offline=True)


def test_folder_without_ratings_file_is_not_overwritten(cache: Path, no_network: None) -> None:
    (cache / "ml-1m").mkdir(parents=True)
    (cache / "ml-1m" / "movies.dat").write_text("1::Toy Story (1995)::Animation\n")
    with pytest.raises(MissingInputError, match=r"ml-1m exists but has no ratings\.dat.*remove the folder"):
        fetch("ml-1m")
    assert (cache / "ml-1m" / "movies.dat").is_file()


def test_file_in_place_of_the_folder(cache: Path, no_network: None) -> None:
    cache.mkdir()
    (cache / "ml-1m").write_text("not a folder")
    with pytest.raises(DataError, match=r"ml-1m is a file, expected the folder of dataset 'ml-1m'"):
        fetch("ml-1m")


def test_unverified_copy_logs_a_warning(
    cache: Path, no_network: None, caplog: pytest.LogCaptureFixture
) -> None:
    (cache / "ml-1m").mkdir(parents=True)
    (cache / "ml-1m" / "ratings.dat").write_text("1::1::5::978300760\n")
    with caplog.at_level(logging.WARNING, logger="gan4rec.data.datasets"):
        assert fetch("ml-1m") == cache / "ml-1m"
    assert any("'ml-1m'" in r.message and "unverified" in r.message for r in caplog.records)


def test_synthetic_is_not_fetched() -> None:
    with pytest.raises(DataError, match="generated, not fetched"):
        fetch("synthetic")


# ---------------------------------------------------------------------------------------------- shared data
def test_shared_ml100k_resolves_offline_and_verifies(shared_datasets: Path, monkeypatch: pytest.MonkeyPatch,
                                                     no_network: None) -> None:
    pytest.importorskip("gan4rec.data.io")
    monkeypatch.setenv("GAN4REC_DATA", str(shared_datasets))
    monkeypatch.setenv("GAN4REC_OFFLINE", "1")
    assert fetch("ml-100k") == shared_datasets / "ml-100k"
    info = dataset_info("ml-100k")
    json.dumps(info)  # JSON-ready
    assert info["verified"] is True and info["folder"] == str(shared_datasets / "ml-100k")
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (943, 1682, 100_000)
    assert info["ratings"] == {
        "values": [1.0, 2.0, 3.0, 4.0, 5.0], "counts": [6110, 11370, 27145, 34174, 21201],
    }
    assert (info["timestamps"]["min"], info["timestamps"]["max"]) == (874724710, 893286638)
    assert info["timestamps"]["min_utc"] == "1997-09-20T03:05:10+00:00"
    assert info["density"] == pytest.approx(100_000 / (943 * 1682))
    assert {"age", "gender", "occupation"} <= set(info["user_features"]) and "genres" in info["item_features"]


def test_shared_latest_small_loads_unverified(shared_datasets: Path, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture, no_network: None) -> None:
    pytest.importorskip("gan4rec.data.io")
    if not (shared_datasets / "ml-latest-small" / "ratings.csv").is_file():
        pytest.skip("no ml-latest-small in the shared datasets")
    monkeypatch.setenv("GAN4REC_DATA", str(shared_datasets))
    with caplog.at_level(logging.WARNING, logger="gan4rec.data.datasets"):
        data = load_dataset("ml-latest-small", offline=True)
    assert data.nnz == 100_004 and data.n_users == 671
    assert any("unverified" in r.message for r in caplog.records)


# ---------------------------------------------------------------------------------------------- synthetic
def test_load_synthetic_presets_and_overrides() -> None:
    data = load_dataset("synthetic", size="ml-100k")
    assert data.shape == (943, 1682) and data.nnz == 100_000
    small = load_dataset("synthetic", n_users=60, n_items=90, n_interactions=1500, random_state=4)
    assert small.shape == (60, 90) and small.nnz == 1500
    assert small.fingerprint() == load_dataset("synthetic", n_users=60, n_items=90, n_interactions=1500,
                                               random_state=4).fingerprint()
    liked = load_dataset(
        "synthetic", n_users=60, n_items=90, n_interactions=1500, random_state=4, min_rating=4
    )
    assert liked.nnz == int((np.asarray(small.ratings) >= 4).sum()) and liked.shape == small.shape
    with pytest.raises(DataError, match=r"size='ml-2m'; expected one of ml-100k, ml-1m, ml-20m"):
        load_dataset("synthetic", size="ml-2m")
    with pytest.raises(DataError, match="synthetic dataset only"):
        load_dataset("ml-100k", size="ml-1m")


def test_synthetic_info_is_json_ready() -> None:
    info = dataset_info("synthetic", n_users=40, n_items=70, n_interactions=900, random_state=1)
    text = json.dumps(info)
    assert info["verified"] is None and info["folder"] is None
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (40, 70, 900)
    assert info["generator"] == {"n_users": 40, "n_items": 70, "n_interactions": 900, "random_state": 1}
    assert info["ratings"]["values"] == [1.0, 2.0, 3.0, 4.0, 5.0] and sum(info["ratings"]["counts"]) == 900
    assert info["item_features"] == ["genres"] and re.fullmatch(r"[0-9a-f]{64}", info["fingerprint"])
    assert "NaN" not in text
