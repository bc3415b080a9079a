"""A loopback stand-in for the Hugging Face Hub endpoints that huggingface_hub calls to push and to download.

Point a client at it with ``HF_ENDPOINT=http://127.0.0.1:PORT``. It answers, in the formats of the installed
huggingface_hub's requests (read from its hf_api.py, _commit_api.py, lfs.py and file_download.py):

- ``POST /api/repos/create``                        create_repo (409 when it exists)
- ``POST /api/models/ORG/NAME/branch/BRANCH``       create_branch
- ``POST /api/validate-yaml``                       the README front-matter check create_commit makes first
- ``POST /api/models/ORG/NAME/preupload/REV``       upload modes: ``lfs`` for binary files, ``regular`` else
- ``POST /ORG/NAME.git/info/lfs/objects/batch``     the LFS batch API (basic transfer) + ``PUT /_lfs/OID``
- ``POST /api/models/ORG/NAME/commit/REV``          the NDJSON commit (header, file, lfsFile, deletedFile)
- ``HEAD|GET /ORG/NAME/resolve/REV/PATH``           hf_hub_download's metadata and download
- ``GET /api/models/ORG/NAME[/revision/REV]``       model_info / repo_info
- ``GET /api/agent-harnesses``                       the registry huggingface_hub fetches for its user agent

LFS uploads go, as on the Hub, to a pre-signed URL (no Authorization header; a signature in the query that the
batch answer issued).

Repositories live in memory: each branch points at a commit, each commit at a tree {path: bytes}. Writes
need ``Authorization: Bearer TOKEN`` when the server was given a token. Every request is logged (method, path,
whether it was authorised) in :attr:`HubStandIn.requests`; the token itself is never stored.

Run it alone with ``python tests/_hub_server.py [PORT]``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml

_REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
_BINARY_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".png", ".jpg", ".jpeg", ".onnx", ".npz")


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports for regular files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Repo:
    def __init__(self, private: bool) -> None:
        self.private = private
        self.commits: dict[str, dict[str, bytes]] = {}
        self.lfs: set[str] = set()  # paths stored as LFS files
        first = hashlib.sha1(b"initial").hexdigest()
        self.commits[first] = {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}
        self.branches = {"main": first}


class HubStandIn:
    """The server; use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, token: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.repos: dict[str, _Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, bool]] = []
        self.signatures: set[str] = set()
        self.binary_suffixes = _BINARY_SUFFIXES  # files the preupload answer sends to LFS; () = all regular
        self.lock = threading.Lock()
        stand_in = self

        class Handler(_Handler):
            hub = stand_in

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HubStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The tree of ``repo_id`` at ``revision`` (a branch or a commit)."""
        repo = self.repos[repo_id]
        return dict(repo.commits[repo.branches.get(revision, revision)])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubStandIn

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # ------------------------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes | dict | list | None = None, headers: dict | None = None,
              head: bool = False) -> None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        body = body or b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message}, head=head)

    def _authorised(self) -> bool:
        return self.hub.token is None or self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _log(self) -> bool:
        ok = self._authorised()
        with self.hub.lock:
            self.hub.requests.append((self.command, urlsplit(self.path).path, ok))
        return ok

    def _repo(self, repo_id: str, head: bool = False) -> _Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorised()):
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head=head)
            return None
        return repo

    def _commit_of(self, repo: _Repo, revision: str, head: bool = False) -> str | None:
        sha = repo.branches.get(revision, revision if revision in repo.commits else None)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Revision {revision} not found", head=head)
        return sha

    # ------------------------------------------------------------------------------------ reads
    def do_HEAD(self) -> None:
        self._resolve(head=True)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/api/agent-harnesses":
            self._log()
            self._send(200, {"standardEnvVars": [], "harnesses": {}})
            return
        m = re.fullmatch(rf"/api/models/{_REPO}(?:/revision/(?P<rev>.+))?", path)
        if m:
            self._log()
            repo = self._repo(m["repo"])
            if repo is None:
                return
            sha = self._commit_of(repo, unquote(m["rev"] or "main"))
            if sha is None:
                return
            tree = repo.commits[sha]
            self._send(200, {"id": m["repo"], "modelId": m["repo"], "sha": sha, "private": repo.private,
                             "library_name": None, "tags": [], "siblings": [{"rfilename": p} for p in sorted(tree)]})
            return
        self._resolve(head=False)

    def _resolve(self, head: bool) -> None:
        path = urlsplit(self.path).path
        self._log()
        m = re.fullmatch(rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
        if not m:
            self._error(404, "EntryNotFound", f"no route {path}", head=head)
            return
        repo = self._repo(m["repo"], head=head)
        if repo is None:
            return
        sha = self._commit_of(repo, unquote(m["rev"]), head=head)
        if sha is None:
            return
        name = unquote(m["file"])
        data = repo.commits[sha].get(name)
        headers = {"X-Repo-Commit": sha}
        if data is None:
            self._send(404, {"error": "Entry not found"},
                       {**headers, "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"}, head=head)
            return
        oid = hashlib.sha256(data).hexdigest() if name in repo.lfs else git_blob_oid(data)
        headers.update({"ETag": f'"{oid}"', "Content-Type": "application/octet-stream", "Accept-Ranges": "none"})
        self._send(200, data, headers, head=head)

    # ------------------------------------------------------------------------------------ writes
    def do_PUT(self) -> None:
        url = urlsplit(self.path)
        self._log()
        body = self._body()
        m = re.fullmatch(r"/_lfs/(?P<oid>[0-9a-f]{64})", url.path)
        if not m:
            self._error(404, "EntryNotFound", f"no route {url.path}")
            return
        signature = dict(p.partition("=")[::2] for p in url.query.split("&")).get("X-Amz-Signature")
        if signature not in self.hub.signatures:
            self._error(403, "Forbidden", "the pre-signed URL's signature is not one the batch API issued")
            return
        if hashlib.sha256(body).hexdigest() != m["oid"]:
            self._error(400, "BadRequest", "content does not match its sha256")
            return
        with self.hub.lock:
            self.hub.lfs_objects[m["oid"]] = body
        self._send(200, b"")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        ok = self._log()
        body = self._body()
        if path == "/api/validate-yaml":
            self._validate_yaml(body)
            return
        if not ok:
            self._error(401, "Unauthorized", "Invalid username or password.")
            return
        if path == "/api/repos/create":
            self._create_repo(json.loads(body))
            return
        for pattern, handler in (
            (rf"/api/models/{_REPO}/branch/(?P<rev>.+)", self._create_branch),
            (rf"/api/models/{_REPO}/preupload/(?P<rev>.+)", self._preupload),
            (rf"/api/models/{_REPO}/commit/(?P<rev>.+)", self._commit),
            (rf"/{_REPO}\.git/info/lfs/objects/batch", self._lfs_batch),
        ):
            m = re.fullmatch(pattern, path)
            if m:
                handler(m, body)
                return
        self._error(404, "EntryNotFound", f"no route {path}")

    def _validate_yaml(self, body: bytes) -> None:
        content = json.loads(body).get("content", "")
        m = re.match(r"\A---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(m.group(1)) if m else {}
        except yaml.YAMLError as exc:
            self._send(400, {"errors": [{"message": f"invalid YAML: {exc}"}], "warnings": []})
            return
        if m and not isinstance(meta, dict):
            self._send(400, {"errors": [{"message": "metadata must be a YAML mapping"}], "warnings": []})
            return
        self._send(200, {"errors": [], "warnings": []})

    def _create_repo(self, payload: dict) -> None:
        repo_id = f"{payload.get('organization')}/{payload['name']}"
        if payload.get("type") not in (None, "model"):
            self._error(400, "BadRequest", "this stand-in holds model repositories only")
            return
        with self.hub.lock:
            if repo_id in self.hub.repos:  # the Hub's 409 names the repo's url, which create_repo(exist_ok) returns
                message = "You already created this model repo"
                self._send(409, {"error": message, "url": f"{self.hub.url}/{repo_id}"},
                           {"X-Error-Code": "Conflict", "X-Error-Message": message})
                return
            self.hub.repos[repo_id] = _Repo(private=payload.get("visibility") == "private")
        self._send(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _create_branch(self, m: re.Match, body: bytes) -> None:
        repo = self._repo(m["repo"])
        if repo is None:
            return
        branch = unquote(m["rev"])
        payload = json.loads(body or b"{}")
        with self.hub.lock:
            if branch in repo.branches:
                self._error(409, "Conflict", "Reference already exists")
                return
            start = payload.get("startingPoint") or "main"
            repo.branches[branch] = repo.branches.get(start, start)
        self._send(200, {})

    def _preupload(self, m: re.Match, body: bytes) -> None:
        repo = self._repo(m["repo"])
        if repo is None:
            return
        sha = self._commit_of(repo, unquote(m["rev"]))
        if sha is None:
            return
        tree = repo.commits[sha]
        files = []
        for f in json.loads(body)["files"]:
            suffixes = self.hub.binary_suffixes
            lfs = bool(suffixes) and f["path"].lower().endswith(suffixes) and f["size"] > 0
            old = tree.get(f["path"])
            oid = None
            if old is not None:
                oid = hashlib.sha256(old).hexdigest() if f["path"] in repo.lfs else git_blob_oid(old)
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        self._send(200, {"files": files, "commitOid": sha})

    def _lfs_batch(self, m: re.Match, body: bytes) -> None:
        if self._repo(m["repo"]) is None:
            return
        objects = []
        for obj in json.loads(body)["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_objects:
                signature = hashlib.sha256(f"{obj['oid']}{len(self.hub.signatures)}".encode()).hexdigest()
                with self.hub.lock:
                    self.hub.signatures.add(signature)
                href = f"{self.hub.url}/_lfs/{obj['oid']}?X-Amz-Signature={signature}"
                entry["actions"] = {"upload": {"href": href, "header": {}}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"})

    def _commit(self, m: re.Match, body: bytes) -> None:
        if self.headers.get("Content-Type") != "application/x-ndjson":
            self._error(400, "BadRequest", "a commit is NDJSON (Content-Type: application/x-ndjson)")
            return
        repo = self._repo(m["repo"])
        if repo is None:
            return
        branch = unquote(m["rev"])
        if branch not in repo.branches:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
            return
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header" or not lines[0]["value"].get("summary"):
            self._error(400, "BadRequest", "the first NDJSON line must be the header with a summary")
            return
        with self.hub.lock:
            tree = dict(repo.commits[repo.branches[branch]])
            lfs_paths = set(repo.lfs)
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                if key == "file":
                    if value.get("encoding") != "base64":
                        self._error(400, "BadRequest", "file content must be base64")
                        return
                    tree[value["path"]] = base64.b64decode(value["content"])
                    lfs_paths.discard(value["path"])
                elif key == "lfsFile":
                    data = self.hub.lfs_objects.get(value["oid"])
                    if data is None or len(data) != value["size"]:
                        self._error(400, "BadRequest", f"LFS object {value['oid']} of {value['path']} was not uploaded")
                        return
                    tree[value["path"]] = data
                    lfs_paths.add(value["path"])
                elif key in ("deletedFile", "deletedFolder"):
                    prefix = value["path"].rstrip("/") + "/"
                    gone = [p for p in tree if p == value["path"] or (key == "deletedFolder" and p.startswith(prefix))]
                    for p in gone:
                        del tree[p]
                else:
                    self._error(400, "BadRequest", f"unknown NDJSON key {key!r}")
                    return
            sha = hashlib.sha1(json.dumps([lines[0], sorted((p, git_blob_oid(d)) for p, d in tree.items()),
                                           repo.branches[branch]]).encode()).hexdigest()
            repo.commits[sha] = tree
            repo.lfs = lfs_paths
            repo.branches[branch] = sha
        self._send(200, {"success": True, "commitOid": sha, "commitUrl": f"{self.hub.url}/{m['repo']}/commit/{sha}",
                         "pullRequestUrl": None})


if __name__ == "__main__":  # pragma: no cover
    import sys
    import time

    with HubStandIn(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0) as hub:
        print(hub.url, flush=True)
        while True:
            time.sleep(3600)
