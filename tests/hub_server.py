"""A stand-in for the Hugging Face Hub on 127.0.0.1, for testing `hf://` loading without the network.

It serves the endpoints `huggingface_hub` uses to fetch one file, as the Hub lays them out:

    HEAD/GET /{repo}/resolve/{revision}/{path}     the file (Range requests honoured), with X-Repo-Commit
                                                   and the LFS etag (the content's sha256)
    GET      /api/{models,datasets}/{repo}/tree/{revision}[/path]   files and folders (list_repo_files)
    POST     /api/{models,datasets}/{repo}/paths-info/{revision}    the same for named paths
    GET      /api/{models,datasets}/{repo}[/revision/{rev}]         repo info with siblings
    HEAD/GET /datasets/{repo}/resolve/{revision}/{path}             a dataset's file

Unknown repos, revisions and files answer 404 with the Hub's X-Error-Code. Every request is logged in
`requests` as (method, path) so a test can tell a cache hit (no GET of the file) from a download. Files
are sent in 1 MiB chunks with an optional pause, so a download lasts long enough to report progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK = 1 << 20


@dataclass
class FakeRepo:
    files: dict[str, Path]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    branches: tuple[str, ...] = ("main",)


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo]
    chunk_pause_s: float = 0.0
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    _hashes: dict[Path, str] = field(default_factory=dict)

    def sha256(self, path: Path) -> str:
        if path not in self._hashes:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            self._hashes[path] = h.hexdigest()
        return self._hashes[path]

    def gets_of(self, filename: str) -> int:
        return sum(1 for m, p in self.requests if m == "GET" and p.endswith("/" + filename))


def _key(kind: str, repo_id: str) -> str:
    """Repos are keyed 'owner/name' for models and 'datasets/owner/name' for datasets."""
    return repo_id if kind == "models" else f"datasets/{repo_id}"


def _tree(hub: FakeHub, repo: FakeRepo, under: str, wanted: list[str] | None) -> list[dict[str, object]]:
    """Files (recursively) and the folders above them, under `under` or exactly the `wanted` paths."""
    entries: dict[str, dict[str, object]] = {}
    for name, p in sorted(repo.files.items()):
        parts = name.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            entries.setdefault(folder, {"type": "directory", "path": folder, "oid": "0" * 40, "size": 0})
        size = p.stat().st_size
        entries[name] = {"type": "file", "path": name, "size": size, "oid": hub.sha256(p)[:40],
                         "lfs": {"oid": hub.sha256(p), "size": size, "pointerSize": 134}}  # fmt: skip
    if wanted is not None:
        return [entries[w] for w in wanted if w in entries]
    return [e for path, e in entries.items() if not under or path.startswith(under + "/")]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep pytest's output clean
            pass

        def _error(self, code: int, error_code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(code)
            self.send_header("X-Error-Code", error_code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _repo(self, repo_id: str, revision: str) -> FakeRepo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}")
                return None
            if revision not in repo.branches and revision != repo.commit:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return None
            return repo

        def do_HEAD(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _posted_paths(self) -> list[str]:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = parse_qs(body)
            if "paths" in form:
                return form["paths"]
            try:
                return list(json.loads(body).get("paths", []))
            except (ValueError, AttributeError):
                return []

        def _serve(self) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path))
            if m := re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/(tree|paths-info)/([^/]+)(/.*)?", path):
                repo = self._repo(_key(m[1], m[2]), m[4])
                if repo is not None:
                    wanted = self._posted_paths() if m[3] == "paths-info" else None
                    self._json(_tree(hub, repo, (m[5] or "").strip("/"), wanted))
                return
            if m := re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
                repo = self._repo(_key(m[1], m[2]), m[3] or "main")
                if repo is not None:
                    self._json({"id": m[2], "sha": repo.commit, "private": False, "disabled": False,
                                "gated": False, "cardData": {}, "tags": [],
                                "siblings": [{"rfilename": n} for n in sorted(repo.files)]})  # fmt: skip
                return
            m = re.fullmatch(r"/((?:datasets/)?[^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if m is None:
                self._error(404, "EntryNotFound", f"no route {path}")
                return
            repo = self._repo(m[1], m[2])
            if repo is None:
                return
            file = repo.files.get(m[3])
            if file is None:
                self._error(404, "EntryNotFound", f"Entry not found: {m[3]}")
                return
            size = file.stat().st_size
            start, end = 0, size - 1
            if rng := re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")):
                start, end = int(rng[1]), int(rng[2] or size - 1)
            self.send_response(206 if start or end != size - 1 else 200)
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("ETag", f'"{hub.sha256(file)}"')
            self.send_header("X-Linked-Etag", f'"{hub.sha256(file)}"')
            self.send_header("X-Linked-Size", str(size))
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            if start or end != size - 1:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            with open(file, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    block = f.read(min(CHUNK, left))
                    if not block:
                        break
                    self.wfile.write(block)
                    left -= len(block)
                    if hub.chunk_pause_s:
                        time.sleep(hub.chunk_pause_s)

    return Handler


@contextlib.contextmanager
def fake_hub(repos: dict[str, FakeRepo], *, chunk_pause_s: float = 0.0) -> Iterator[FakeHub]:
    """Serve `repos` on 127.0.0.1 (a free port) for the duration of the block; always shut down."""
    hub = FakeHub(repos, chunk_pause_s=chunk_pause_s)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
