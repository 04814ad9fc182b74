"""A local HTTP server that answers the calls `huggingface_hub` makes to download a model.

`models fetch` talks to whatever `HF_ENDPOINT` names, so the tests point it here and the real
download code runs (listing, HEAD for metadata, ranged GETs to resume) without a hub:

    GET  /api/models/<id>                        model info: commit sha and file list
    GET  /api/models/<id>/tree/<sha>?recursive=  the file tree with sizes and blob ids
    HEAD /<id>/resolve/<sha>/<path>              ETag, X-Repo-Commit, Content-Length
    GET  /<id>/resolve/<sha>/<path>              the bytes, honouring Range

Every request is recorded, so a test can say which files were (not) downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class FakeHub:
    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Range header
        self.cut_once: set[str] = set()  # files whose first GET stops halfway, as a dropped link
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> None:
        self.repos[repo_id] = files

    def sha(self, repo_id: str) -> str:
        return hashlib.sha1(repo_id.encode()).hexdigest()

    def downloaded(self, repo_id: str) -> set[str]:
        """Files whose bytes were asked for (GET of a resolve URL)."""
        prefix = f"/{repo_id}/resolve/"
        return {path[len(prefix):].split("/", 1)[1] for method, path, _ in self.requests
                if method == "GET" and path.startswith(prefix)}

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet test output
            pass

        def do_HEAD(self):
            self._answer(body=False)

        def do_GET(self):
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path, self.headers.get("Range")))
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?", path):
                return self._info(m[1])
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/[^/]+", path):
                return self._tree(m[1])
            if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/[^/]+/(.+)", path):
                return self._file(m[1], m[2], body)
            self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"})

        def _info(self, repo_id: str) -> None:
            files = hub.repos.get(repo_id)
            if files is None:
                return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
            self._json({"id": repo_id, "sha": hub.sha(repo_id), "siblings": [{"rfilename": f} for f in files]})

        def _tree(self, repo_id: str) -> None:
            self._json([{"type": "file", "path": name, "size": len(data), "oid": _oid(data)}
                        for name, data in hub.repos[repo_id].items()])

        def _file(self, repo_id: str, name: str, body: bool) -> None:
            data = hub.repos.get(repo_id, {}).get(name)
            if data is None:
                return self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"})
            headers = {"ETag": f'"{_oid(data)}"', "X-Repo-Commit": hub.sha(repo_id), "Accept-Ranges": "bytes"}
            start = 0
            if body and (rng := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")):
                start = int(rng[1])
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            if body and name in hub.cut_once:
                hub.cut_once.discard(name)
                headers["Content-Length"] = str(len(data))
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data[:len(data) // 2])
                self.close_connection = True
                return
            self._send(206 if start else 200, data[start:], headers, body=body)

        def _json(self, obj) -> None:
            self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json"})

        def _send(self, status: int, data: bytes, headers: dict, body: bool = True) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


def _oid(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def repo_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
