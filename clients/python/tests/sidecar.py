"""A real tollgate sidecar for the tests: `tollgate serve --demo` on free loopback ports.

The binary is $TOLLGATE_BIN (the Makefile builds it once), else it is built from this checkout
with `go build -o` into a temporary directory.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from typing import List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sidecar:
    """Starts `tollgate serve --demo` and waits for /health/ready; stop() ends it."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="tollgate-py-")
        binary = os.environ.get("TOLLGATE_BIN")
        if not binary:
            binary = os.path.join(self.tmp, "tollgate")
            subprocess.run(["go", "build", "-o", binary, "./cmd/tollgate"], cwd=REPO, check=True)
        self.port, webhook, ops = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ops = f"http://127.0.0.1:{ops}"
        self.log = open(os.path.join(self.tmp, "sidecar.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--demo", "--data-dir", os.path.join(self.tmp, "data"),
             "--listen", f"127.0.0.1:{self.port}", "--webhook-listen", f"127.0.0.1:{webhook}",
             "--ops-listen", f"127.0.0.1:{ops}", "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tollgate exited with {self.proc.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(self.ops + "/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"tollgate not ready within 60s: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read()[-4000:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class SharedSidecar:
    """Mixin for a TestCase class: one `tollgate serve --demo` for all of the class's tests."""

    sidecar: Sidecar

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.sidecar = Sidecar()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sidecar.stop()
        super().tearDownClass()


class Failing:
    """A local HTTP server that answers every request with one status and body (a 503 by
    default), optionally after holding it for `delay` seconds: the sidecar misbehaving."""

    def __init__(self, status: int = 503, delay: float = 0.0,
                 body: bytes = b'{"error":{"code":"unavailable","message":"store: not durable"}}',
                 close_after: bool = False) -> None:
        self.requests: List[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                outer.requests.append(f"{self.command} {self.path}")
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                # close_after: hang up after answering without saying so, as a server closing an
                # idle keep-alive connection does.
                self.close_connection = close_after

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A client that gave up (timed out) hangs up before the answer: expected here.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[assignment]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """A listener that accepts connections and never answers: a hung sidecar."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: List[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def stop(self) -> None:
        self._stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


class Drip:
    """A server that answers one byte every 20 ms, forever: a per-read socket timeout would
    never fire on it; only a total deadline ends the call."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(c,), daemon=True).start()

    def _drip(self, c: socket.socket) -> None:
        with c:
            try:
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self._stop.wait(0.02):
                    c.sendall(b"X")
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()


def closed_port() -> str:
    """A loopback URL nothing listens on: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


