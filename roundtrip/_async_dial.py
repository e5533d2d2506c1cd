"""Dialing a route on an event loop (Go's ``Transport.dialConn``): DNS through the loop's
resolver, the addresses tried as ``_dial_schedule`` says (Happy Eyeballs), the proxy's
handshake (the generators of ``_tunnel`` and ``_socks``, driven here), and TLS.

Everything awaits, so a dial stops the moment its task is cancelled; every socket opened on
the way is closed when a dial fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._dial_schedule import DialSchedule
from ._errors import ConnectError, ConnectTimeout, Error, TLSError, TLSHandshakeTimeout
from ._tcp import Candidate, _candidate, _is_ip, _scope_id, _strerror
from ._tls import tls_context
from ._urls import join_host_port

if TYPE_CHECKING:
    from ._async_connection import AsyncConnection
    from ._options import Options
    from ._route import Route

__all__ = ("connect_route", "Post", "HookFailed")

Post = Callable[..., None]  # post(hook_name, *args): run a trace hook now, on the loop


class HookFailed(Exception):
    """A trace hook raised while dialing; ``error`` is what it raised."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


async def lookup(loop: asyncio.AbstractEventLoop, host: str, port: int, post: Post) -> list[Candidate]:
    """``_tcp.lookup`` with the loop's resolver."""
    if _is_ip(host):
        if ":" not in host:
            return [Candidate(socket.AF_INET, (host, port), host)]
        address, _, zone = host.partition("%")
        return [Candidate(socket.AF_INET6, (address, port, 0, _scope_id(host, zone, port) if zone else 0), host)]
    post("dns_start", host)
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        error = ConnectError(f"dial tcp: lookup {host}: {exc}")
        post("dns_done", [], error)
        raise error from exc
    candidates = [_candidate(family, sockaddr) for family, _, _, _, sockaddr in infos if family in (socket.AF_INET, socket.AF_INET6)]
    if not candidates:
        error = ConnectError(f"dial tcp: lookup {host}: no IPv4 or IPv6 address")
        post("dns_done", [], error)
        raise error
    post("dns_done", [candidate.host for candidate in candidates], None)
    return candidates


def _address(candidate: Candidate) -> tuple[str, int]:
    return (candidate.host, candidate.sockaddr[1])


async def _connect(loop: asyncio.AbstractEventLoop, candidate: Candidate, timeout: Optional[float]) -> socket.socket:
    """One TCP connect, bounded by ``timeout``: a connected non-blocking socket with TCP_NODELAY."""
    where = join_host_port(*_address(candidate))
    try:
        sock = socket.socket(candidate.family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectError(f"dial tcp {where}: socket: {exc}") from exc
    try:
        sock.setblocking(False)
        if timeout is None:
            await loop.sock_connect(sock, candidate.sockaddr)
        else:
            await asyncio.wait_for(loop.sock_connect(sock, candidate.sockaddr), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except BaseException as exc:
        sock.close()
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and not isinstance(exc, Error):
            raise ConnectTimeout(f"dial tcp {where}: i/o timeout") from None
        if isinstance(exc, OSError) and not isinstance(exc, Error):
            what = _strerror(exc.errno) if exc.errno else str(exc)
            raise ConnectError(f"dial tcp {where}: connect: {what}") from None
        raise


async def _race(loop: asyncio.AbstractEventLoop, candidates: list[Candidate], timeout: Optional[float], post: Post) -> socket.socket:
    """Connect to one of ``candidates`` (Happy Eyeballs, see ``_dial_schedule``)."""
    if len(candidates) == 1:
        # The common case needs no racing: no task of its own.
        address = _address(candidates[0])
        post("connect_start", address)
        try:
            sock = await _connect(loop, candidates[0], timeout)
        except Error as exc:
            post("connect_done", address, exc)
            raise
        try:
            post("connect_done", address, None)
        except BaseException:
            sock.close()
            raise
        return sock
    schedule: DialSchedule[Candidate] = DialSchedule(candidates, lambda candidate: candidate.family, time.monotonic())
    flying: dict[asyncio.Task[socket.socket], Any] = {}
    winner: Optional[socket.socket] = None
    try:
        while winner is None:
            for attempt in schedule.due(time.monotonic()):
                post("connect_start", _address(attempt.address))
                flying[loop.create_task(_connect(loop, attempt.address, timeout))] = attempt
            if not flying and schedule.exhausted:
                raise schedule.error
            wake = schedule.wake_at()
            wait = None if wake is None else max(wake - time.monotonic(), 0.0)
            done, _ = await asyncio.wait(flying, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                attempt = flying.pop(task)
                error = task.exception()
                if error is None and winner is None:
                    winner = task.result()
                    post("connect_done", _address(attempt.address), None)
                elif error is None:
                    task.result().close()
                else:
                    post("connect_done", _address(attempt.address), error)
                    schedule.failed(attempt, error, time.monotonic())
        # Go's dialParallel cancels the losing racers, which report the cancellation.
        for task, attempt in list(flying.items()):
            task.cancel()
            where = join_host_port(*_address(attempt.address))
            post("connect_done", _address(attempt.address), ConnectError(f"dial tcp {where}: operation was canceled"))
        return winner
    except BaseException:
        if winner is not None:
            winner.close()
        raise
    finally:
        for task in flying:
            task.cancel()
        if flying:
            # Let the cancelled connects close their sockets before the dial returns.
            await asyncio.wait(flying)


async def open_socket(loop: asyncio.AbstractEventLoop, host: str, port: int, options: Options, post: Post) -> socket.socket:
    """A connected TCP socket to ``host:port`` by the caller's async ``dial`` or the default one."""
    dial = options.dial
    if dial is not None:
        try:
            sock: socket.socket = await dial(host, port, options.connect_timeout)  # type: ignore[misc]
        except Error:
            raise
        except (asyncio.TimeoutError, TimeoutError, socket.timeout) as exc:
            raise ConnectTimeout(f"dial {join_host_port(host, port)}: {exc}") from exc
        except OSError as exc:
            raise ConnectError(f"dial {join_host_port(host, port)}: {exc}") from exc
        sock.setblocking(False)
        return sock
    candidates = await lookup(loop, host, port, post)
    return await _race(loop, candidates, options.connect_timeout, post)


async def attach(loop: asyncio.AbstractEventLoop, sock: socket.socket, make_conn: Callable[[], AsyncConnection], options: Options, post: Post, tls_hostname: Optional[str]) -> AsyncConnection:
    """Hand ``sock`` to the loop with a new connection protocol, TLS first when ``tls_hostname``
    is given (the handshake within ``tls_handshake_timeout``). Closes ``sock`` on failure."""
    if tls_hostname is None:
        try:
            _, conn = await loop.create_connection(make_conn, sock=sock)
        except BaseException:
            sock.close()
            raise
        return conn
    try:
        post("tls_handshake_start")
        context = tls_context(options)
    except BaseException:
        sock.close()
        raise
    timeout = options.tls_handshake_timeout
    try:
        connecting = loop.create_connection(make_conn, sock=sock, ssl=context, server_hostname=tls_hostname, ssl_handshake_timeout=timeout if timeout else None)
        if timeout is None:
            _, conn = await connecting
        else:
            _, conn = await asyncio.wait_for(connecting, timeout)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and not isinstance(exc, Error):
            error: Error = TLSHandshakeTimeout("net/http: TLS handshake timeout")
        elif isinstance(exc, (ssl.SSLError, ssl.CertificateError, OSError, ValueError)) and not isinstance(exc, Error):
            error = TLSError(f"tls: {exc}")
        else:
            raise
        post("tls_handshake_done", error)
        raise error from None
    try:
        post("tls_handshake_done", None)
    except BaseException:
        conn.close()
        raise
    return conn


async def connect_route(loop: asyncio.AbstractEventLoop, route: Route, options: Options, post: Post, make_conn: Callable[[], AsyncConnection]) -> AsyncConnection:
    """A connection ready for HTTP/1.1 to the origin (or to the proxy for absolute-form)."""
    target = route.target
    proxy = route.proxy
    if proxy is None:
        sock = await open_socket(loop, target.dial_host, target.port, options, post)
        return await attach(loop, sock, make_conn, options, post, target.host if target.scheme == "https" else None)
    raise ConnectError(f"proxy {proxy.display}: proxies are not supported by AsyncTransport yet")
