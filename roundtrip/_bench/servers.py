"""The servers the benchmark measures against: a real nginx on 127.0.0.1, or, where nginx is
not installed, an embedded Python server (slower than the clients it serves, so its numbers
are marked as such).

Both serve the same four endpoints:

========  ======  ==========================================
path      method  response
========  ======  ==========================================
/small    GET     200, 13-byte body ``Hello, World!``
/64k      GET     200, 65,536-byte body
/1m       GET     200, 1,048,576-byte body
/post     POST    200, 2-byte body ``ok`` (request body read)
========  ======  ==========================================

``python -m roundtrip._bench.servers [auto|nginx|python]`` starts one, prints its base URL and serves until it
gets SIGTERM or SIGINT (``benchmarks/syscalls.sh`` uses this).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

__all__ = ("BODIES", "POST_REPLY", "BenchServer", "NginxServer", "PythonServer", "start_server", "find_nginx", "free_port", "wait_listening")

BODIES = {
    "/small": b"Hello, World!",
    "/64k": bytes(range(256)) * 256,
    "/1m": bytes(range(256)) * 4096,
}
POST_REPLY = b"ok"
START_TIMEOUT = 10.0

# What the tests read from the access log: which connection (and its how-many-th request) served
# each request, so keep-alive can be checked as nginx itself saw it.
ACCESS_LOG_FORMAT = "$connection $connection_requests $request_method $request_uri $status $request_length"

NGINX_CONF = """\
{user}worker_processes 1;
{affinity}daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    {access_log}
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    sendfile on;
    tcp_nodelay on;
    open_file_cache max=16 inactive=300s;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {prefix}/www;
        location = /post {{ client_max_body_size 64m; return 200 "{post_reply}"; }}
{locations}
    }}
}}
"""


def _nginx_string(data: bytes) -> str:
    """``data`` inside an nginx double-quoted string (its escapes: backslash, quote, newline)."""
    text = data.decode("latin-1")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def find_nginx() -> Optional[str]:
    """The nginx binary, or None when it is not installed."""
    binary = shutil.which("nginx")
    if binary is None:
        for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
            if os.access(candidate, os.X_OK):
                return candidate
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, alive: Callable[[], bool], what: str) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection; RuntimeError if ``alive()`` turns
    false (the process died) or START_TIMEOUT passes first."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if not alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start listening on 127.0.0.1:{port}")
            time.sleep(0.02)


class BenchServer:
    """What the runner needs of a server."""

    kind = ""  # "nginx" or "python"
    description = ""
    host = "127.0.0.1"
    port = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "BenchServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class NginxServer(BenchServer):
    """nginx with a private prefix (a temporary directory unless ``prefix`` is given): 1 worker,
    keep-alive for (practically) ever, access log off.

    The test suite runs the same nginx with more on it; a subclass sets these:
    ``bodies`` (URL path to the bytes of a static file), ``post_reply`` (the body /post answers),
    ``locations`` (further ``location`` blocks), ``log_requests`` (an access log in
    ``ACCESS_LOG_FORMAT``, read back with ``access_log()``).
    """

    kind = "nginx"
    bodies: dict[str, bytes] = BODIES
    post_reply: bytes = POST_REPLY
    locations = ""
    log_requests = False

    def __init__(self, binary: Optional[str] = None, prefix: Optional[Path] = None, cpu: Optional[int] = None) -> None:
        binary = binary or find_nginx()
        if binary is None:
            raise FileNotFoundError("nginx is not installed")
        self._own_prefix = prefix is None
        self.prefix = Path(tempfile.mkdtemp(prefix="roundtrip-bench-nginx-")) if prefix is None else prefix
        self.port = free_port()
        www = self.prefix / "www"
        www.mkdir(parents=True)
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / name).mkdir()
        for path, data in self.bodies.items():
            file = www / path.lstrip("/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        # As root, nginx's workers would run as "nobody", which cannot read our 0700 prefix.
        user = "user root;\n" if os.geteuid() == 0 else ""
        if self.log_requests:
            access_log = f"log_format probe '{ACCESS_LOG_FORMAT}';\n    access_log {self.prefix}/access.log probe;"
        else:
            access_log = "access_log off;"
        conf = self.prefix / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                user=user,
                # The one worker on that CPU (a bit mask, lowest CPU rightmost).
                affinity="" if cpu is None else f"worker_cpu_affinity 1{'0' * cpu};\n",
                prefix=self.prefix,
                port=self.port,
                access_log=access_log,
                post_reply=_nginx_string(self.post_reply),
                locations=self.locations,
            )
        )
        version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
        self.description = version.replace("nginx version: ", "") or "nginx"
        self._stderr = open(self.prefix / "stderr.log", "wb")
        self.process = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        try:
            wait_listening(self.port, lambda: self.process.poll() is None, "nginx")
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}: {self._log()}") from None

    def url(self, path: str) -> str:
        return self.base_url + path

    def access_log(self) -> list[list[str]]:
        """The access log so far, each line split into the fields of ``ACCESS_LOG_FORMAT``
        (empty unless ``log_requests``). nginx writes a line once it has sent the response."""
        path = self.prefix / "access.log"
        if not path.exists():
            return []
        return [line.split() for line in path.read_text().splitlines()]

    def _log(self) -> str:
        parts = []
        for name in ("stderr.log", "error.log"):
            path = self.prefix / name
            if path.exists():
                parts.append(path.read_text(errors="replace").strip())
        return " | ".join(part for part in parts if part)

    def stop(self) -> None:
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown: idle keep-alives are dropped
            try:
                process.wait(START_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if getattr(self, "_stderr", None) is not None and not self._stderr.closed:
            self._stderr.close()
        if self._own_prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)


class PythonServer(BenchServer):
    """A small threaded HTTP/1.1 server: keep-alive, Content-Length and chunked request bodies,
    ``Expect: 100-continue``. One thread per connection; it is slower than nginx and shares the
    machine's cores with the clients, so its requests/s are a floor, not a fair race."""

    kind = "python"
    description = "embedded Python server (FALLBACK: nginx not available)"

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, 0))
        self._listener.listen(1024)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="bench-server", daemon=True)
        self._acceptor.start()
        wait_listening(self.port, self._acceptor.is_alive, "the embedded server")

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self._stopping.is_set():
                conn.close()
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            _serve_connection(conn)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        try:  # wake accept()
            socket.create_connection((self.host, self.port), timeout=1).close()
        except OSError:
            pass
        self._acceptor.join(START_TIMEOUT)
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(START_TIMEOUT)


def _serve_connection(conn: socket.socket) -> None:
    """Answer requests on one connection until the client closes it."""
    recv = conn.recv
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            data = recv(65536)
            if not data:
                return
            buf += data
            end = buf.find(b"\r\n\r\n")
        head, buf = buf[:end], buf[end + 4 :]
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        method, target = parts[0], parts[1].decode("latin-1")
        length = 0
        chunked = expect_continue = close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"expect":
                expect_continue = value == b"100-continue"
            elif name == b"connection":
                close = b"close" in value
        if expect_continue:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            rest = _skip_chunked(conn, buf)
            if rest is None:
                return
            buf = rest
        else:
            while len(buf) < length:
                data = recv(max(65536, length - len(buf)))
                if not data:
                    return
                buf += data
            buf = buf[length:]
        path = target.split("?", 1)[0]
        if path == "/post":
            status, body = b"200 OK", POST_REPLY
        elif path in BODIES and method in (b"GET", b"HEAD"):
            status, body = b"200 OK", BODIES[path]
        else:
            status, body = b"404 Not Found", b"not found\n"
        head_out = b"HTTP/1.1 %s\r\nServer: roundtrip-bench\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n%s\r\n" % (
            status,
            len(body),
            b"Connection: close\r\n" if close else b"",
        )
        if method == b"HEAD":
            conn.sendall(head_out)
        elif len(body) <= 65536:
            conn.sendall(head_out + body)
        else:
            conn.sendall(head_out)
            conn.sendall(body)
        if close:
            return


def _skip_chunked(conn: socket.socket, buf: bytes) -> Optional[bytes]:
    """Read and drop a chunked request body (RFC 9112 §7.1); the bytes after it, or None if
    the client went away."""
    while True:
        while b"\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None
            buf += data
        line, _, buf = buf.partition(b"\r\n")
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers up to the blank line
                while b"\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return None
                    buf += data
                line, _, buf = buf.partition(b"\r\n")
                if not line:
                    return buf
        while len(buf) < size + 2:
            data = conn.recv(65536)
            if not data:
                return None
            buf += data
        buf = buf[size + 2 :]


def start_server(kind: str = "auto", cpu: Optional[int] = None) -> BenchServer:
    """``"nginx"``, ``"python"``, or ``"auto"`` (nginx when installed, else the embedded
    server), its worker pinned to ``cpu`` when given (nginx only: the embedded server runs in
    the caller's process). Raises ``FileNotFoundError`` for ``"nginx"`` when it is missing."""
    if kind == "python":
        return PythonServer()
    if kind == "nginx" or find_nginx() is not None:
        return NginxServer(cpu=cpu)
    return PythonServer()


def _serve_forever(kind: str) -> None:
    server = start_server(kind)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(server.base_url, server.kind, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()


if __name__ == "__main__":
    _serve_forever(sys.argv[1] if len(sys.argv) > 1 else "auto")
