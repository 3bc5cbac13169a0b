"""A small model hub on 127.0.0.1 for the store tests: the Hugging Face hub's paths, real files.

    GET /api/models/{org}/{repo}/tree/{rev}?recursive=true   the files, with LFS sha256 and size
    GET /{org}/{repo}/resolve/{rev}/{path}                   302 to /cdn/{org}/{repo}/{path}
    GET /cdn/{org}/{repo}/{path}                             the bytes: Range, If-Range, ETag

Each test sets `hub.faults` to make the hub misbehave the way real servers and networks do:

    drop_after=N        send the full Content-Length, then only N bytes, then close
    stall_after=N       send N bytes, then send nothing (the client must give up)
    wrong_hash=True     the listing publishes a hash that is not the file's
    length_short=N      Content-Length N bytes below the truth (the body is sent whole)
    length_long=N       Content-Length N bytes above the truth (the connection then closes)
    token="T"           every path needs "Authorization: Bearer T", else 401
    redirect_loop=True  resolve/ redirects to itself, forever
    no_range=True       Range is ignored (200 with the whole file)
    bad_range=True      a Range request gets 206 with the file from byte 0 (Content-Range says so)
    only="TEXT"         the file faults above hit only files whose path holds TEXT
    page=N              the listing comes N entries a page, each linking the next (Link header)
    cdn_host="H"        resolve/ redirects to http://H:PORT/cdn/... (another host name, as the
                        real hub's storage is)

`hub.requests` records (method, path, Range header, Authorization header) of every request;
`hub.proxied` the URLs of those that came to it as an HTTP proxy (absolute-form requests).
"""
import hashlib
import http.server
import json
import os
import threading
import time
import urllib.parse


class Repo:
    """files: {path in repo: bytes}."""

    def __init__(self, files):
        self.files = files


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    @property
    def hub(self):
        return self.server.hub

    def _send(self, code, body=b"", ctype="application/json", headers=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code, msg):
        self._send(code, json.dumps({"error": msg}).encode())

    def do_GET(self):  # noqa: N802 (http.server's name)
        f = self.hub.faults
        path = urllib.parse.urlsplit(self.path).path
        if self.path.startswith("http://"):  # absolute form: asked as an HTTP proxy
            self.hub.proxied.append(self.path)
        self.hub.requests.append((self.command, path, self.headers.get("Range"),
                                  self.headers.get("Authorization")))
        if f.get("token") and self.headers.get("Authorization") != f"Bearer {f['token']}":
            return self._error(401, "Invalid credentials")
        parts = [urllib.parse.unquote(p) for p in path.split("/")[1:]]
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            return self._tree(parts[2] + "/" + parts[3], int(query.get("cursor", ["0"])[0]))
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, file = parts[0] + "/" + parts[1], "/".join(parts[4:])
            if f.get("redirect_loop"):
                return self._send(302, headers={"Location": self.path})
            if repo not in self.hub.repos or file not in self.hub.repos[repo].files:
                return self._error(404, "Entry not found")
            loc = "/cdn/" + urllib.parse.quote(repo + "/" + file)
            if f.get("cdn_host"):
                loc = f"http://{f['cdn_host']}:{self.server.server_address[1]}{loc}"
            return self._send(302, headers={"Location": loc})
        if parts[:1] == ["cdn"] and len(parts) >= 4:
            return self._file(parts[1] + "/" + parts[2], "/".join(parts[3:]))
        return self._error(404, "Not found")

    def _tree(self, repo, cursor):
        if repo not in self.hub.repos:
            return self._error(404, "Repository not found")
        out = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": "sub"}]
        for p, data in self.hub.repos[repo].files.items():
            sha = hashlib.sha256(data).hexdigest()
            if self.hub.faults.get("wrong_hash"):
                sha = hashlib.sha256(data + b"x").hexdigest()
            e = {"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data),
                 "path": p}
            if p.endswith(".gguf"):
                e["lfs"] = {"oid": sha, "size": len(data), "pointerSize": 134}
            out.append(e)
        page = self.hub.faults.get("page")
        headers = {}
        if page:
            if cursor + page < len(out):
                nxt = urllib.parse.urlsplit(self.path).path + f"?recursive=true&cursor={cursor + page}"
                headers["Link"] = f'<{self.hub.url}{nxt}>; rel="next"'
            out = out[cursor:cursor + page]
        self._send(200, json.dumps(out).encode(), headers=headers)

    def _file(self, repo, file):
        f = self.hub.faults
        if f.get("only") and f["only"] not in file:
            f = {}
        r = self.hub.repos.get(repo)
        if not r or file not in r.files:
            return self._error(404, "Entry not found")
        data = r.files[file]
        etag = '"' + hashlib.sha256(data).hexdigest() + '"'
        start, code = 0, 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range != etag:
            rng = None  # RFC 9110: another version of the file, so all of it
        if rng and not f.get("no_range") and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if f.get("bad_range"):
                start = 0
            elif start >= len(data):
                return self._send(416, headers={"Content-Range": f"bytes */{len(data)}"})
            code = 206
        body = data[start:]
        length = len(body) - f.get("length_short", 0) + f.get("length_long", 0)
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if f.get("length_long") or f.get("length_short"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        cut = f.get("drop_after", f.get("stall_after"))
        if cut is not None and start < cut:
            self.wfile.write(body[:cut - start])
            self.wfile.flush()
            if "stall_after" in f:
                self.hub.stalled.wait(30)
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that hangs up mid-body is what the fault tests do on purpose


class Hub:
    """Serves repos ({"org/repo": Repo}) on 127.0.0.1 in a thread; close() stops it."""

    def __init__(self, repos):
        self.repos = repos
        self.faults = {}
        self.requests = []
        self.proxied = []
        self.stalled = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.hub = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stalled.set()
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    import sys
    files = {os.path.basename(p): open(p, "rb").read() for p in sys.argv[1:]}
    hub = Hub({"local/models": Repo(files)})
    print(hub.url, flush=True)
    while True:
        time.sleep(3600)
