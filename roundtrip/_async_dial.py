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
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar

from . import _dial, _speedups
from ._dial_schedule import DialSchedule
from ._errors import ConnectError, ConnectTimeout, Error, ProxyError, TLSError, TLSHandshakeTimeout
from ._handshake import Handshake, Resolve, Send
from ._socks import socks5_handshake
from ._tcp import Candidate, _candidate, _is_ip, _scope_id, _strerror
from ._async_tls import MemoryTLS, loop_layers_tls
from ._tls import tls_context
from ._tunnel import connect_handshake
from ._urls import join_host_port

if TYPE_CHECKING:
    from ._async_connection import AsyncConnection
    from ._options import Options
    from ._route import Route

__all__ = ("connect_route", "Post", "HookFailed")

_T = TypeVar("_T")

Post = Callable[..., None]  # post(hook_name, *args): run a trace hook now, on the loop


class HookFailed(Exception):
    """A trace hook raised while dialing; ``error`` is what it raised."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[Any]:
    """The loop's resolver (a module attribute so that tests can stand in for DNS)."""
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)


async def lookup(loop: asyncio.AbstractEventLoop, host: str, port: int, post: Post) -> list[Candidate]:
    """``_tcp.lookup`` with the loop's resolver."""
    if _is_ip(host):
        if ":" not in host:
            return [Candidate(socket.AF_INET, (host, port), host)]
        address, _, zone = host.partition("%")
        return [Candidate(socket.AF_INET6, (address, port, 0, _scope_id(host, zone, port) if zone else 0), host)]
    post("dns_start", host)
    try:
        infos = await _resolve(loop, host, port)
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


_Factory = Callable[[], asyncio.BaseProtocol]


async def attach(loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: _Factory, options: Options, post: Post, tls_hostname: Optional[str]) -> tuple[asyncio.BaseTransport, Any]:
    """Hand ``sock`` to the loop with a new ``protocol()``, TLS first when ``tls_hostname`` is
    given (the handshake within ``tls_handshake_timeout``). Closes ``sock`` on failure."""
    if tls_hostname is None:
        try:
            return await loop.create_connection(protocol, sock=sock)
        except BaseException:
            sock.close()
            raise

    async def handshake(context: ssl.SSLContext, timeout: Optional[float]) -> tuple[asyncio.BaseTransport, Any]:
        return await loop.create_connection(protocol, sock=sock, ssl=context, server_hostname=tls_hostname, ssl_handshake_timeout=timeout)

    return await _tls(handshake, options, post, sock.close)


async def _tls(handshake: Callable[[ssl.SSLContext, Optional[float]], Awaitable[_T]], options: Options, post: Post, close: Callable[[], object]) -> _T:
    """One TLS handshake with its trace events, timeout and errors (as ``_tls._handshake``
    reports them); ``close()`` is called if it fails."""
    try:
        post("tls_handshake_start")
        context = tls_context(options)
        timeout = options.tls_handshake_timeout
        # The loop's own bound is needed as well: without one, it waits 60 s at most.
        connecting = handshake(context, timeout if timeout else None)
        result = await (connecting if timeout is None else asyncio.wait_for(connecting, timeout))
    except BaseException as exc:
        close()
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
        close()
        raise
    return result


class _Handshaking(asyncio.Protocol):
    """The protocol of a connection while a proxy handshake runs on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buffer = bytearray()
        self.eof = False
        self.lost: Optional[BaseException] = None
        self.waiter: Optional[asyncio.Future[None]] = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # the transport closes; the handshake fails on what it was reading

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.eof = True
        self.lost = exc
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def receive(self, size: int, exact: bool, what: str) -> bytes:
        while len(self.buffer) < (size if exact else 1):
            if self.eof:
                if self.lost is not None:
                    raise ProxyError(f"{what}: {self.lost}")
                if exact:
                    raise ProxyError(f"{what} closed the connection during the handshake")
                return b""
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


async def _run_handshake(loop: asyncio.AbstractEventLoop, handshake: Handshake[_T], transport: asyncio.BaseTransport, protocol: _Handshaking, post: Post, what: str) -> _T:
    """Drive a ``_handshake`` generator on the connection (``_dial.run_handshake`` on a loop)."""
    try:
        step = next(handshake)
        while True:
            if type(step) is Send:
                if protocol.eof:
                    raise ProxyError(f"{what}: {protocol.lost or 'connection closed'}")
                transport.write(step.data)  # type: ignore[attr-defined]
                step = handshake.send(b"")
            elif type(step) is Resolve:
                step = handshake.send((await lookup(loop, step.host, step.port, post))[0].sockaddr[0])
            else:
                step = handshake.send(await protocol.receive(step.size, step.exact, what))
    except StopIteration as done:
        result: _T = done.value  # what the generator returned
        return result


async def _handshake_bounded(loop: asyncio.AbstractEventLoop, handshake: Handshake[None], route: Route, transport: asyncio.BaseTransport, protocol: _Handshaking, post: Post, what: str) -> None:
    """A proxy handshake; with no Context to bound it, at most ``_dial``'s limit (Go's dialConn)."""
    running = _run_handshake(loop, handshake, transport, protocol, post, what)
    if not route.unbounded:
        await running
        return
    limit = _dial._UNBOUNDED_HANDSHAKE_LIMIT
    try:
        await asyncio.wait_for(running, limit)
    except (asyncio.TimeoutError, TimeoutError) as exc:
        if isinstance(exc, Error):
            raise
        raise ConnectTimeout(f"{what} did not answer within {limit:g} s") from None


async def connect_route(loop: asyncio.AbstractEventLoop, route: Route, options: Options, post: Post, make_conn: Callable[[], AsyncConnection]) -> AsyncConnection:
    """A connection ready for HTTP/1.1 to the origin, or to the proxy for absolute-form
    requests: TCP, the proxy's handshake, and TLS where the route needs them."""
    target = route.target
    proxy = route.proxy
    if proxy is None:
        sock = await open_socket(loop, target.dial_host, target.port, options, post)
        return (await attach(loop, sock, make_conn, options, post, target.host if target.scheme == "https" else None))[1]  # type: ignore[no-any-return]
    sock = await open_socket(loop, proxy.dial_host, proxy.port, options, post)
    if route.absolute_form:
        return (await attach(loop, sock, make_conn, options, post, proxy.host if proxy.scheme == "https" else None))[1]  # type: ignore[no-any-return]
    if proxy.scheme in ("socks5", "socks5h"):
        # socks5: the name is resolved here (socks5h leaves it to the proxy).
        handshake = socks5_handshake(target.host, target.port, proxy.username, proxy.password, resolve=proxy.scheme == "socks5")
        what = f"SOCKS5 proxy {proxy.display}"
    else:
        handshake = connect_handshake(target, proxy, options.max_response_header_bytes, _speedups.impl, what := f"proxy {proxy.display}")
    handshaking = _Handshaking(loop)
    transport, _ = await attach(loop, sock, lambda: handshaking, options, post, proxy.host if proxy.scheme == "https" else None)
    try:
        await _handshake_bounded(loop, handshake, route, transport, handshaking, post, what)
        conn = make_conn()
        transport.set_protocol(conn)
        conn.connection_made(transport)
    except BaseException:
        transport.abort()  # type: ignore[attr-defined]
        raise
    if target.scheme != "https":
        return conn
    # TLS to the origin inside the tunnel; over an https proxy, TLS inside TLS.

    layered = proxy.scheme != "https" or loop_layers_tls(loop, transport)

    async def handshake_inside(context: ssl.SSLContext, timeout: Optional[float]) -> asyncio.BaseTransport:
        if not layered:
            memory = MemoryTLS(transport, conn, context, target.host)  # type: ignore[arg-type]
            await memory.handshake()
            return memory  # type: ignore[return-value]
        inner = await loop.start_tls(transport, conn, context, server_hostname=target.host, ssl_handshake_timeout=timeout)
        if inner is None:
            raise ConnectError(f"{what}: the connection closed during the TLS handshake")
        return inner

    inner = await _tls(handshake_inside, options, post, transport.abort)  # type: ignore[attr-defined]
    conn.connection_made(inner)
    return conn
