"""Proxies for the tests: real ones (Debian's tinyproxy and microsocks, each on a free 127.0.0.1
port with a private configuration, stopped by PID), a TLS front that turns any TCP proxy into
an https proxy, and scripted handlers for ``ScriptedServer`` that play a proxy exactly (and
badly) as a test needs. Every wait has a deadline."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from roundtrip._bench.servers import free_port, wait_listening
from roundtrip._speedups import env_flag
from servers import IO_TIMEOUT, ScriptedConnection, respond

try:
    import trustme
except ImportError:  # pragma: no cover - trustme is a test requirement
    trustme = None  # type: ignore[assignment]

IN_CI = env_flag("CI")


def _wait_for_port(port: int, process: subprocess.Popen, name: str, log: Path) -> None:
    try:
        wait_listening(port, lambda: process.poll() is None, name)
    except RuntimeError as exc:
        _stop(process)
        text = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"{exc}: {text}") from None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(IO_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def _spawn(argv: list[str], output: Path) -> subprocess.Popen:
    with open(output, "wb") as sink:  # the child keeps its copy; ours is closed at once
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)


TINYPROXY_CONF = """\
Port {port}
Listen 127.0.0.1
Allow 127.0.0.1
Timeout 30
MaxClients 64
LogFile "{prefix}/tinyproxy.log"
LogLevel Info
PidFile "{prefix}/tinyproxy.pid"
"""


class Tinyproxy:
    """tinyproxy in the foreground (``-d``) with a private config; CONNECT allowed to any port
    (no ``ConnectPort`` line). ``basic_auth=(user, password)`` makes it demand credentials."""

    def __init__(self, prefix: Path, basic_auth: Optional[tuple[str, str]] = None) -> None:
        binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        if not os.path.exists(binary):
            raise FileNotFoundError("tinyproxy is not installed")
        prefix.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.port = free_port()
        conf = TINYPROXY_CONF.format(port=self.port, prefix=prefix)
        if basic_auth is not None:
            conf += f"BasicAuth {basic_auth[0]} {basic_auth[1]}\n"
        (prefix / "tinyproxy.conf").write_text(conf)
        self.process = _spawn([binary, "-d", "-c", str(prefix / "tinyproxy.conf")], prefix / "stdout.log")
        _wait_for_port(self.port, self.process, "tinyproxy", prefix / "tinyproxy.log")

    def url(self, scheme: str = "http", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.prefix / "tinyproxy.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = IO_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        _stop(self.process)


class Microsocks:
    """microsocks (SOCKS5) on 127.0.0.1, optionally demanding a username and password."""

    def __init__(self, prefix: Path, user: Optional[str] = None, password: Optional[str] = None) -> None:
        binary = shutil.which("microsocks") or "/usr/bin/microsocks"
        if not os.path.exists(binary):
            raise FileNotFoundError("microsocks is not installed")
        prefix.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        argv = [binary, "-i", "127.0.0.1", "-p", str(self.port)]
        if user is not None:
            argv += ["-u", user, "-P", password or ""]
        self.process = _spawn(argv, prefix / "microsocks.log")
        _wait_for_port(self.port, self.process, "microsocks", prefix / "microsocks.log")

    def url(self, scheme: str = "socks5", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop(self.process)


def _start_or_skip(factory: Callable[[], Any], name: str) -> Any:
    try:
        return factory()
    except FileNotFoundError:
        if IN_CI:
            pytest.fail(f"{name} is not installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")


@pytest.fixture(scope="session")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    proxy = _start_or_skip(lambda: Tinyproxy(tmp_path_factory.mktemp("tinyproxy")), "tinyproxy")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def tinyproxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    """tinyproxy demanding ``alice`` / ``s3cret``."""
    proxy = _start_or_skip(lambda: Tinyproxy(tmp_path_factory.mktemp("tinyproxy-auth"), ("alice", "s3cret")), "tinyproxy")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def microsocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Microsocks]:
    proxy = _start_or_skip(lambda: Microsocks(tmp_path_factory.mktemp("microsocks")), "microsocks")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def microsocks_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Microsocks]:
    """microsocks demanding ``bob`` / ``hunter2``."""
    proxy = _start_or_skip(lambda: Microsocks(tmp_path_factory.mktemp("microsocks-auth"), "bob", "hunter2"), "microsocks")
    yield proxy
    proxy.stop()


# -- TLS ----------------------------------------------------------------------------------------


class Certificates:
    """A trustme CA with one certificate for ``127.0.0.1`` and ``localhost``."""

    def __init__(self) -> None:
        if trustme is None:
            raise RuntimeError("trustme is required")
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("127.0.0.1", "localhost")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="session")
def certs() -> Certificates:
    return Certificates()


def tls_handler(context: ssl.SSLContext, handler: Callable[[ScriptedConnection], None]) -> Callable[[ScriptedConnection], None]:
    """Run ``handler`` on the connection after a server-side TLS handshake."""

    def wrapped(conn: ScriptedConnection) -> None:
        try:
            conn.sock = context.wrap_socket(conn.sock, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client gave up on the handshake: that is the test's business
        conn.sock.settimeout(IO_TIMEOUT)
        handler(conn)

    return wrapped


# -- relaying -----------------------------------------------------------------------------------


def relay(a: socket.socket, b: socket.socket, a_to_b: bytes = b"", timeout: float = 30.0) -> None:
    """Copy bytes both ways between ``a`` and ``b`` until one side ends or ``timeout`` passes;
    ``a_to_b`` is what was already read from ``a``."""
    if a_to_b:
        b.sendall(a_to_b)
    deadline = time.monotonic() + timeout
    peers = {a: b, b: a}
    for sock in peers:
        sock.setblocking(True)
        sock.settimeout(IO_TIMEOUT)
    while time.monotonic() < deadline:
        ready = [s for s in peers if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready, _, _ = select.select(list(peers), [], [], 0.1)
        for sock in ready:
            try:
                data = sock.recv(65536)
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                return
            try:
                peers[sock].sendall(data)
            except OSError:
                return


def drip_send(conn: ScriptedConnection, data: bytes) -> None:
    """Send ``data`` one byte per segment (TCP_NODELAY must be on), to exercise readers that
    must reassemble."""
    for index in range(len(data)):
        conn.sock.send(data[index : index + 1])


def tunnel_handler(connects: list[bytes], answer: bytes = b"HTTP/1.1 200 Connection established\r\n\r\n", drip: bool = False) -> Callable[[ScriptedConnection], None]:
    """A CONNECT proxy: records each CONNECT head in ``connects``, sends ``answer`` (a byte at a
    time with ``drip``) and relays."""

    def handler(conn: ScriptedConnection) -> None:
        head = conn.read_head()
        connects.append(head)
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=IO_TIMEOUT)
        try:
            if drip:
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                drip_send(conn, answer)
            else:
                conn.send(answer)
            leftover, conn.buffer = conn.buffer, b""
            relay(conn.sock, upstream, leftover)
        finally:
            upstream.close()

    return handler


class TLSFront:
    """An https proxy made from a TCP one: TLS is terminated here and the bytes relayed to
    ``upstream_port`` on 127.0.0.1. Stopped (and its threads joined) by ``stop()``."""

    def __init__(self, upstream_port: int, context: ssl.SSLContext) -> None:
        self.upstream_port = upstream_port
        self.context = context
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="tls-front", daemon=True)
        self._acceptor.start()

    def url(self, userinfo: str = "") -> str:
        return f"https://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            self._socks.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(IO_TIMEOUT)
        try:
            tls = self.context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            sock.close()
            return
        self._socks.append(tls)
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=IO_TIMEOUT)
        self._socks.append(upstream)
        try:
            relay(tls, upstream)
        finally:
            upstream.close()
            tls.close()

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join(IO_TIMEOUT)
        self.listener.close()
        for sock in self._socks:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(IO_TIMEOUT)
        for sock in self._socks:
            sock.close()


# -- scripted SOCKS5 ----------------------------------------------------------------------------


class SocksRecord:
    """What a scripted SOCKS5 client sent: offered methods, credentials, and the request."""

    def __init__(self) -> None:
        self.methods: bytes = b""
        self.credentials: Optional[tuple[bytes, bytes]] = None
        self.address_type: Optional[int] = None
        self.address: Any = None
        self.port: Optional[int] = None


def socks_handler(
    records: list[SocksRecord],
    *,
    method: Optional[int] = None,
    auth_status: int = 0,
    reply: int = 0,
    relay_to: Optional[int] = None,
    respond_with: Optional[bytes] = None,
    drip: bool = False,
) -> Callable[[ScriptedConnection], None]:
    """A SOCKS5 server following RFC 1928/1929 to the letter and recording what it got.

    ``method`` forces the chosen method (default: username/password if offered, else none);
    ``reply`` is the REP code; after success it relays to ``relay_to`` on 127.0.0.1, or sends
    ``respond_with`` for each request. ``drip`` sends the handshake replies a byte at a time."""

    def handler(conn: ScriptedConnection) -> None:
        send = conn.send
        if drip:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            send = lambda data: drip_send(conn, data)  # noqa: E731
        record = SocksRecord()
        records.append(record)
        version, count = conn.read_exactly(2)
        assert version == 5
        record.methods = conn.read_exactly(count)
        chosen = method if method is not None else (2 if 2 in record.methods else 0)
        send(bytes((5, chosen)))
        if chosen == 0xFF:
            return
        if chosen == 2:
            assert conn.read_exactly(1) == b"\x01"
            user = conn.read_exactly(conn.read_exactly(1)[0])
            password = conn.read_exactly(conn.read_exactly(1)[0])
            record.credentials = (user, password)
            send(bytes((1, auth_status)))
            if auth_status:
                return
        version, command, _reserved, address_type = conn.read_exactly(4)
        assert (version, command) == (5, 1)
        record.address_type = address_type
        if address_type == 1:
            record.address = socket.inet_ntop(socket.AF_INET, conn.read_exactly(4))
        elif address_type == 4:
            record.address = socket.inet_ntop(socket.AF_INET6, conn.read_exactly(16))
        else:
            record.address = conn.read_exactly(conn.read_exactly(1)[0]).decode()
        record.port = int.from_bytes(conn.read_exactly(2), "big")
        # A domain-name bound address, to exercise that branch of the reply parser.
        send(bytes((5, reply, 0, 3, 4)) + b"bind" + (1080).to_bytes(2, "big"))
        if reply:
            return
        if relay_to is not None:
            upstream = socket.create_connection(("127.0.0.1", relay_to), timeout=IO_TIMEOUT)
            try:
                leftover, conn.buffer = conn.buffer, b""
                relay(conn.sock, upstream, leftover)
            finally:
                upstream.close()
        elif respond_with is not None:
            for _ in conn.requests():
                conn.send(respond_with)

    return handler


__all__ = [
    "Certificates",
    "Microsocks",
    "SocksRecord",
    "TLSFront",
    "Tinyproxy",
    "certs",
    "drip_send",
    "microsocks",
    "microsocks_auth",
    "relay",
    "respond",
    "socks_handler",
    "tinyproxy",
    "tinyproxy_auth",
    "tls_handler",
    "tunnel_handler",
]
