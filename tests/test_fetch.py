"""Downloads end to end on loopback: resume, checksum refusal, safe extraction, the manifest, verification,
and how runs treat verified, unverified and absent data. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.data.fetch import download, safe_extract
from benchmark.errors import BenchError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


class Server:
    """Serves ``files`` (path -> bytes) with Range support; ``cut_at`` ends a full response early (a dropped
    connection); ``ignore_range`` answers every request whole, as Python's stock handler does."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[dict[str, str]] = []
        self.cut_at: int | None = None
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                server.requests.append({"path": self.path, "range": self.headers.get("Range", "")})
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes=") and not server.ignore_range:
                    start = int(rng[6:].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if server.cut_at is not None and not start:
                    self.wfile.write(part[:server.cut_at])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(part)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _ml1m_zip() -> bytes:
    base = FIXTURES / "ml-1m" / "ml-1m"
    return _zip({f"ml-1m/{p.name}": p.read_bytes() for p in sorted(base.iterdir())})


def _cards(tmp_path: Path, monkeypatch, url: str, archive_sha256: str) -> Path:
    """A copy of the cards where ml-1m downloads from loopback and publishes the fixture's checksums."""
    cards = tmp_path / "cards"
    shutil.copytree(REPO / "datasets", cards)
    card = cards / "ml-1m.toml"
    text = card.read_text().replace("https://files.grouplens.org/datasets/movielens/ml-1m.zip", url)
    text = text.replace('archive_md5 = "c4d9eecfca2ab87c1945afe126590906"', f'archive_sha256 = "{archive_sha256}"')
    movies = hashlib.sha256((FIXTURES / "ml-1m" / "ml-1m" / "movies.dat").read_bytes()).hexdigest()
    users = hashlib.sha256((FIXTURES / "ml-1m" / "ml-1m" / "users.dat").read_bytes()).hexdigest()
    text = text.replace("0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9", movies)
    text = text.replace("1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3", users)
    card.write_text(text)
    monkeypatch.setenv("PROMO_BENCH_CARDS", str(cards))
    return cards


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    body = bytes(range(256)) * 400
    server.files["/a.zip"] = body
    server.cut_at = 10_000
    dest = tmp_path / "a.zip"
    with pytest.raises(BenchError, match="run the command again to resume"):
        download(server.url("/a.zip"), dest, progress=False)
    assert (tmp_path / "a.zip.part").stat().st_size == 10_000 and not dest.exists()
    download(server.url("/a.zip"), dest, progress=False)
    assert dest.read_bytes() == body and not (tmp_path / "a.zip.part").exists()
    assert server.requests[-1]["range"] == "bytes=10000-"


def test_a_server_that_ignores_range_restarts_the_file(server, tmp_path):
    body = b"x" * 5000 + b"y" * 5000
    server.files["/b.zip"] = body
    (tmp_path / "b.zip.part").write_bytes(b"garbage")
    server.ignore_range = True
    download(server.url("/b.zip"), tmp_path / "b.zip", progress=False)
    assert (tmp_path / "b.zip").read_bytes() == body


def test_fetch_verifies_extracts_records_and_then_runs(server, tmp_path, monkeypatch, capsys):
    archive = _ml1m_zip()
    server.files["/ml-1m.zip"] = archive
    _cards(tmp_path, monkeypatch, server.url("/ml-1m.zip"), hashlib.sha256(archive).hexdigest())
    root = tmp_path / "data"
    monkeypatch.setenv("PROMO_BENCH_DATA", str(root))
    server.cut_at = 300  # the first try drops; fetch again resumes
    assert main(["data", "fetch", "ml-1m", "--no-progress"]) == 2
    assert "resume" in capsys.readouterr().err
    server.cut_at = None
    assert main(["data", "fetch", "ml-1m", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "sha256 ok" in out and "ml-1m: verified" in out
    manifest = json.loads((root / "ml-1m" / ".promo-bench-verified.json").read_text())
    ratings = (FIXTURES / "ml-1m" / "ml-1m" / "ratings.dat").read_bytes()
    assert manifest["files"]["ml-1m/ratings.dat"] == hashlib.sha256(ratings).hexdigest()
    assert main(["data", "verify", "ml-1m"]) == 0
    assert main(["data", "fetch", "ml-1m", "--no-progress"]) == 0 and "already present" in capsys.readouterr().out
    # verified: a plain run takes it, and its record says so
    results = tmp_path / "results"
    assert main(["run", "--method", "popular", "--dataset", "ml-1m", "--seeds", "1", "--results", str(results),
                 "--no-progress", "--protocol", "loo"]) == 0
    record = json.loads(next(results.rglob("*.json")).read_text())
    assert record["dataset"]["verification"]["status"] == "verified"
    # a modified copy fails verification, is refused, and is usable only when asked for
    (root / "ml-1m" / "ml-1m" / "ratings.dat").write_bytes(ratings.replace(b"::5::", b"::4::", 1))
    assert main(["data", "verify", "ml-1m"]) == 1
    assert main(["run", "--method", "popular", "--dataset", "ml-1m", "--seeds", "1", "--results", str(results),
                 "--no-progress", "--protocol", "loo"]) == 2
    assert "failed verification" in capsys.readouterr().err
    assert main(["run", "--method", "popular", "--dataset", "ml-1m", "--seeds", "1", "--results", str(results),
                 "--no-progress", "--protocol", "loo", "--allow-unverified"]) == 0
    statuses = sorted(json.loads(p.read_text())["dataset"]["verification"]["status"] for p in results.rglob("*.json"))
    assert statuses == ["unverified", "verified"]
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "rep"), "--format", "latex,csv",
                 "--reference", "none"]) == 0
    tex = "\n".join(p.read_text() for p in (tmp_path / "rep").rglob("*.tex"))
    assert "ml-1m [unverified]" in tex and "failed checksum verification" in tex


def test_checksum_mismatch_is_refused_and_the_file_deleted(server, tmp_path, monkeypatch, capsys):
    server.files["/ml-1m.zip"] = _ml1m_zip()
    _cards(tmp_path, monkeypatch, server.url("/ml-1m.zip"), "0" * 64)
    monkeypatch.setenv("PROMO_BENCH_DATA", str(tmp_path / "data"))
    assert main(["data", "fetch", "ml-1m", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "does not match the published" in err and "was deleted" in err
    folder = tmp_path / "data" / "ml-1m"
    assert not (folder / "ml-1m.zip").exists() and not (folder / "ml-1m").exists()


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil.txt", "ml-1m/../../evil.txt"])
def test_zip_member_escaping_the_folder_is_refused(tmp_path, member):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip({"ml-1m/ok.txt": b"fine", member: b"boom"}))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(BenchError, match="refusing to extract anything"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_tar_links_are_refused(tmp_path):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("KuaiRand-Pure/data/log.csv")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(BenchError, match="is a symlink"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []


def test_tar_archive_extracts(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(FIXTURES / "kuairand-pure" / "KuaiRand-Pure", arcname="KuaiRand-Pure")
    names = safe_extract(archive, tmp_path / "out")
    assert "KuaiRand-Pure/data/user_features_pure.csv" in names
    assert (tmp_path / "out" / "KuaiRand-Pure" / "data" / "user_features_pure.csv").is_file()


def test_manual_source_explains_then_verifies_what_was_put_there(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROMO_BENCH_DATA", str(tmp_path / "data"))
    assert main(["data", "fetch", "tmall"]) == 1
    out = capsys.readouterr().out
    assert "tianchi.aliyun.com/dataset/42" in out and str(tmp_path / "data" / "tmall") in out
    shutil.copytree(FIXTURES / "tmall", tmp_path / "data" / "tmall", dirs_exist_ok=True)
    assert main(["data", "fetch", "tmall"]) == 1  # the fixture is not the official file
    assert "differs from a6bc8eabc40b" in capsys.readouterr().out


def test_run_all_lists_what_it_leaves_out(tmp_path, monkeypatch, capsys):
    from benchmark.runner import select_datasets

    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "kuairand-pure", root / "kuairand-pure")
    monkeypatch.setenv("PROMO_BENCH_DATA", str(root))
    chosen = select_datasets(None, None, allow_unverified=True)
    err = capsys.readouterr().err
    assert "kuairand-pure" in chosen and "ml-1m" not in chosen and "tmall" not in chosen
    assert "skipping ml-1m: not present; get it with `promo-bench data fetch ml-1m`" in err
    assert "skipping tmall: not present; get it with `promo-bench data fetch tmall`" in err
    try:
        chosen = select_datasets(None, None)
    except BenchError:
        chosen = []  # no recbole here: nothing verified is left
    assert "kuairand-pure" not in chosen
    assert "skipping kuairand-pure: its files fail verification" in capsys.readouterr().err
