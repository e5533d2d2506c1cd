"""Opening connections (Go's ``dialConn``): DNS, TCP connect, TLS, each bounded by its timeout.

Dials run on their own thread so that a waiting request can take whichever comes first, a
returned connection or its dial. Trace events are posted to the waiting request, whose thread
runs the hooks. A dial whose request has gone stops at the next 50 ms tick.
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import ssl
import time
from typing import Any, Callable, Optional

from ._errors import ConnectError, ConnectTimeout, Error, TLSError, TLSHandshakeTimeout

__all__ = ("open_socket", "lookup", "start_tls", "Abandoned")

_TICK = 0.05  # how often a dial looks whether its request still wants it


class Abandoned(Exception):
    """The request this dial was for has gone; the dial stops."""


Post = Callable[..., None]  # post(hook_name, *args): run a trace hook on the caller's thread


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _wait(sock: socket.socket, events: int, deadline: Optional[float], gone: Callable[[], bool], timeout_error: Callable[[], Error]) -> None:
    poller = select.poll()
    poller.register(sock, events | select.POLLERR | select.POLLHUP)
    while True:
        tick = _TICK
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise timeout_error()
            tick = min(tick, left)
        if poller.poll(tick * 1000):
            return
        if gone():
            raise Abandoned()


def _connect(host: str, port: int, family: int, sockaddr: Any, timeout: Optional[float], gone: Callable[[], bool]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        err = sock.connect_ex(sockaddr)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            raise ConnectError(f"dial tcp {host}:{port}: {errno.errorcode.get(err, err)} {_strerror(err)}")
        if err:
            deadline = None if timeout is None else time.monotonic() + timeout
            _wait(sock, select.POLLOUT, deadline, gone, lambda: ConnectTimeout(f"dial tcp {host}:{port}: i/o timeout"))
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise ConnectError(f"dial tcp {host}:{port}: connect: {_strerror(err)}")
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except BaseException:
        sock.close()
        raise


def _strerror(err: int) -> str:
    import os

    return os.strerror(err).lower()


def lookup(host: str, port: int, post: Post) -> list[tuple[int, Any]]:
    """``(family, sockaddr)`` candidates for ``host``; an IP literal needs no lookup (and no
    DNS trace events)."""
    if _is_ip(host):
        return [(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port))]
    post("dns_start", host)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        error = ConnectError(f"dial tcp: lookup {host}: {exc}")
        post("dns_done", [], error)
        raise error from exc
    candidates: list[tuple[int, Any]] = [
        (family, sockaddr[:2] if family == socket.AF_INET else sockaddr) for family, _, _, _, sockaddr in infos
    ]
    post("dns_done", [sockaddr[0] for _, sockaddr in candidates], None)
    return candidates


def open_socket(host: str, port: int, timeout: Optional[float], dial: Any, post: Post, gone: Callable[[], bool]) -> socket.socket:
    """A connected TCP socket to ``host:port``, by the caller's ``dial`` or the default one."""
    if dial is not None:
        try:
            sock = dial(host, port, timeout)
        except Error:
            raise
        except socket.timeout as exc:
            raise ConnectTimeout(f"dial {host}:{port}: {exc}") from exc
        except OSError as exc:
            raise ConnectError(f"dial {host}:{port}: {exc}") from exc
        sock.settimeout(None)
        return sock
    candidates = lookup(host, port, post)
    last: Optional[BaseException] = None
    for family, sockaddr in candidates:
        if gone():
            raise Abandoned()
        addr = (sockaddr[0], port)
        post("connect_start", addr)
        try:
            sock = _connect(host, port, family, sockaddr, timeout, gone)
        except Abandoned:
            raise
        except Error as exc:
            post("connect_done", addr, exc)
            last = exc
            continue
        except OSError as exc:
            error = ConnectError(f"dial tcp {host}:{port}: {exc}")
            post("connect_done", addr, error)
            last = error
            continue
        post("connect_done", addr, None)
        return sock
    assert last is not None
    raise last


def start_tls(sock: socket.socket, context: ssl.SSLContext, server_hostname: str, timeout: Optional[float], post: Post, gone: Callable[[], bool]) -> ssl.SSLSocket:
    """Wrap ``sock`` in TLS and complete the handshake within ``timeout`` seconds."""
    post("tls_handshake_start")
    try:
        tls = context.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
    except (ssl.SSLError, ssl.CertificateError, ValueError) as exc:
        error = TLSError(f"tls: {exc}")
        post("tls_handshake_done", error)
        raise error from exc
    deadline = None if timeout is None else time.monotonic() + timeout

    def timed_out() -> Error:
        return TLSHandshakeTimeout("net/http: TLS handshake timeout")

    try:
        tls.setblocking(False)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                _wait(tls, select.POLLIN, deadline, gone, timed_out)
            except ssl.SSLWantWriteError:
                _wait(tls, select.POLLOUT, deadline, gone, timed_out)
        tls.setblocking(True)
    except Abandoned:
        tls.close()
        raise
    except Error as exc:
        tls.close()
        post("tls_handshake_done", exc)
        raise
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        tls.close()
        error = TLSError(f"tls: {exc}")
        post("tls_handshake_done", error)
        raise error from exc
    post("tls_handshake_done", None)
    return tls
