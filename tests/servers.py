"""Servers on 127.0.0.1 for the tests: scripted raw sockets for exact bytes and faults, and a
real nginx. Every blocking call has a deadline, and every server stops by itself."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

from roundtrip._bench.servers import BODIES, NginxServer

IO_TIMEOUT = 10.0  # no scripted step waits longer than this


class ClientGone(Exception):
    """The client closed the connection while the script expected more."""


class ScriptedConnection:
    """The server side of one accepted connection, driven by a test's handler."""

    def __init__(self, sock: socket.socket, server: "ScriptedServer", index: int) -> None:
        self.sock = sock
        self.server = server
        self.index = index  # 0 for the first connection the server accepted
        self.buffer = bytearray()
        sock.settimeout(IO_TIMEOUT)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ClientGone()
        self.buffer += data

    def read_until(self, marker: bytes) -> bytes:
        start = 0
        while True:
            found = self.buffer.find(marker, start)
            if found != -1:
                break
            start = max(0, len(self.buffer) - len(marker) + 1)
            self._fill()
        end = found + len(marker)
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    def read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def read_head(self) -> bytes:
        """The next request head, blank line included."""
        return self.read_until(b"\r\n\r\n")

    def read_request(self) -> "ReceivedRequest":
        """The next whole request (head and body, Content-Length or chunked), recorded on
        the server."""
        head = self.read_head()
        request = ReceivedRequest(head, b"", self.index)
        if request.header("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size_line = self.read_until(b"\r\n")
                raw += size_line
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    trailer = self.read_until(b"\r\n")
                    raw += trailer
                    while trailer != b"\r\n":
                        trailer = self.read_until(b"\r\n")
                        raw += trailer
                    break
                chunk = self.read_exactly(size + 2)
                raw += chunk
                request.body += chunk[:-2]
            request.raw_body = raw
        else:
            length = int(request.header("content-length", "0"))
            request.body = request.raw_body = self.read_exactly(length)
        self.server.received.append(request)
        return request

    def requests(self) -> Iterator["ReceivedRequest"]:
        """Requests until the client closes the connection."""
        while True:
            try:
                yield self.read_request()
            except (ClientGone, ConnectionError, socket.timeout):
                return

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def wait_closed(self, timeout: float = IO_TIMEOUT) -> bool:
        """Whether the client closes the connection within ``timeout`` (reading and dropping
        anything it still sends)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except (socket.timeout, ConnectionError):
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)

    def reset(self) -> None:
        """Close with an RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


class ReceivedRequest:
    """A request as the server received it."""

    def __init__(self, head: bytes, body: bytes, connection: int) -> None:
        self.head = head
        self.body = body
        self.raw_body = body
        self.connection = connection
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        self.method, self.target, self.version = (self.request_line.split(" ") + ["", ""])[:3]
        self.headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        for field, value in self.headers:
            if field.lower() == name.lower():
                return value
        return default

    def header_names(self) -> list[str]:
        return [field for field, _ in self.headers]

    @property
    def raw(self) -> bytes:
        return self.head + self.raw_body


Handler = Callable[[ScriptedConnection], None]


class ScriptedServer:
    """Accepts connections on 127.0.0.1 and runs ``handler`` for each on its own thread.

    ``handler`` may be a list: the n-th connection gets the n-th handler (the last one repeats).
    """

    def __init__(self, handler: "Handler | list[Handler]", family: int = socket.AF_INET) -> None:
        self.handlers = handler if isinstance(handler, list) else [handler]
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.host = "[::1]" if family == socket.AF_INET6 else "127.0.0.1"
        self.received: list[ReceivedRequest] = []
        self.accepted = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[ScriptedConnection] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="scripted-server", daemon=True)
        self._acceptor.start()

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def _accept_loop(self) -> None:
        deadline = time.monotonic() + 120  # a server never outlives a test by much
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            index = self.accepted
            self.accepted += 1
            conn = ScriptedConnection(sock, self, index)
            self._conns.append(conn)
            handler = self.handlers[min(index, len(self.handlers) - 1)]
            thread = threading.Thread(target=self._run, args=(handler, conn), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, handler: Handler, conn: ScriptedConnection) -> None:
        try:
            handler(conn)
        except (ClientGone, ConnectionError):
            pass
        except BaseException as exc:  # reported by close()
            self.errors.append(exc)
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(IO_TIMEOUT)
        self.listener.close()
        for conn in self._conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(IO_TIMEOUT)
        if self.errors:
            raise self.errors[0]


def respond(status: int = 200, body: bytes = b"", headers: Optional[list[tuple[str, str]]] = None, reason: str = "OK") -> bytes:
    """A response with Content-Length framing."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    fields = list(headers or [])
    if not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in fields):
        fields.append(("Content-Length", str(len(body))))
    lines.extend(f"{name}: {value}" for name, value in fields)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def keep_alive_handler(body: bytes = b"ok", headers: Optional[list[tuple[str, str]]] = None) -> Handler:
    """Answer every request on the connection with ``body``."""

    def handler(conn: ScriptedConnection) -> None:
        for _ in conn.requests():
            conn.send(respond(200, body, headers))

    return handler


# -- faults shared by the tests: each reads one request, then misbehaves -----------------------


def malformed_status(conn: ScriptedConnection) -> None:
    conn.read_request()
    conn.send(b"HTTP/1.1 abc nonsense\r\n\r\n")
    conn.wait_closed()


def close_without_answer(conn: ScriptedConnection) -> None:
    conn.read_request()
    conn.close()


def body_cut_short(conn: ScriptedConnection) -> None:
    """Content-Length 10, three bytes, then the connection closes."""
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conn.close()


def bad_chunk(conn: ScriptedConnection) -> None:
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
    conn.wait_closed()


def silent(conn: ScriptedConnection) -> None:
    """Never answers; returns when the client gives up and closes."""
    conn.read_request()
    conn.wait_closed()


@contextmanager
def full_accept_queue() -> Iterator[tuple[str, int]]:
    """An address whose TCP connect hangs: a listener with backlog 0 whose accept queue is
    full (Linux then drops further SYNs, so the client keeps retrying). Skips the test where
    the kernel completes such connects anyway."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        for _ in range(64):
            sock = socket.socket()
            fillers.append(sock)
            sock.setblocking(False)
            sock.connect_ex(listener.getsockname())
            _, writable, _ = select.select([], [sock], [], 0.2)
            if not writable:  # this one hangs: the queue is full
                yield listener.getsockname()
                return
        pytest.skip("the kernel completes every connect to a listener with a full accept queue")
    finally:
        for sock in fillers:
            sock.close()
        listener.close()


# -- nginx --------------------------------------------------------------------------------------


class Nginx(NginxServer):
    """The benchmark's nginx (one config writer, one wait for it to listen), with what the tests
    read on top: an access log naming each request's connection, a 1 MiB file of random bytes
    (a misplaced piece of a repeating pattern could go unnoticed), gzip under /gz/, a header echo
    and a bare 404. It runs in ``prefix``, which the caller removes."""

    post_reply = b"posted\n"
    log_requests = True
    locations = """\
        location = /echo-headers { return 200 "$http_user_agent|$http_accept_encoding\\n"; }
        location /gz/ { gzip on; gzip_min_length 1; gzip_types *; }
        location = /notfound { return 404; }"""

    def __init__(self, prefix: Path) -> None:
        self.bodies = {
            **BODIES,
            "/1m": os.urandom(1 << 20),
            "/gz/text": b"compress me please " * 2000,
        }
        super().__init__(prefix=prefix)
        self.files = {path.lstrip("/"): data for path, data in self.bodies.items()}
