"""Dialing a route (Go's ``Transport.dialConn``): TCP to the origin or the proxy, the proxy's
handshake, and TLS where the route needs it; the result is the connection's stream.

Every step waits in short ticks (``_tcp.ticks``), so a dial stops soon after its request has
gone (cancelled, past its deadline, or failed) and at each step's own deadline.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import TYPE_CHECKING, Callable, Optional, TypeVar, Union

from . import _speedups
from ._errors import ConnectTimeout, ProxyError
from ._handshake import Handshake, Resolve, Send
from ._route import Route
from ._socks import socks5_handshake
from ._streams import SocketStream, Stream, TLSStream
from ._tcp import Post, lookup, open_socket, ticks
from ._tls import TLSLayers, add_tls_layer, start_tls
from ._tunnel import connect_handshake

if TYPE_CHECKING:
    from ._options import Options

_T = TypeVar("_T")
_A = TypeVar("_A")

__all__ = ("connect_route", "run_handshake")

# Go's dialConn: a CONNECT whose request can neither time out nor be cancelled still gives up
# after a minute, so that a proxy that stops answering cannot hold a dial thread forever. The
# SOCKS handshake gets the same bound here.
_UNBOUNDED_HANDSHAKE_LIMIT = 60.0


def connect_route(route: Route, options: Options, post: Post, gone: Callable[[], bool]) -> Stream:
    """A stream ready for HTTP/1.1 to the origin, or to the proxy for absolute-form requests.

    ``post(hook, *args)`` reports trace events; ``gone()`` says the request no longer wants
    this dial. Every socket opened is closed if the dial fails.
    """
    target = route.target
    proxy = route.proxy
    if proxy is None:
        sock = open_socket(target.dial_host, target.port, options.connect_timeout, options.dial, post, gone)
        return _tls_if(target.scheme == "https", sock, options, target.host, post, gone)

    if proxy.scheme in ("socks5", "socks5h"):
        # socks5: the name is resolved here (socks5h leaves it to the proxy).
        handshake = socks5_handshake(target.host, target.port, proxy.username, proxy.password, resolve=proxy.scheme == "socks5")
        sock = open_socket(proxy.dial_host, proxy.port, options.connect_timeout, options.dial, post, gone)
        _handshake_or_close(sock, handshake, route, f"SOCKS5 proxy {proxy.display}", post, gone)
        return _tls_if(target.scheme == "https", sock, options, target.host, post, gone)

    sock = open_socket(proxy.dial_host, proxy.port, options.connect_timeout, options.dial, post, gone)
    what = f"proxy {proxy.display}"
    if route.absolute_form:
        return _tls_if(proxy.scheme == "https", sock, options, proxy.host, post, gone)
    tunnel = connect_handshake(target, proxy, options.max_response_header_bytes, _speedups.impl, what)
    if proxy.scheme == "http":
        _handshake_or_close(sock, tunnel, route, what, post, gone)
        return _tls_if(True, sock, options, target.host, post, gone)
    # TLS to the proxy, CONNECT inside it, TLS to the origin inside that.
    try:
        layers = TLSLayers(sock)
    except BaseException:
        sock.close()
        raise
    try:
        add_tls_layer(layers, options, proxy.host, post, gone)
        run_handshake(tunnel, _HandshakeIO(layers, _deadline(route), gone, what), post)
        add_tls_layer(layers, options, target.host, post, gone)
    except BaseException:
        layers.close()
        raise
    return TLSStream(layers)


def _tls_if(wanted: bool, sock: socket.socket, options: Options, server_hostname: str, post: Post, gone: Callable[[], bool]) -> Stream:
    if not wanted:
        return SocketStream(sock)
    return TLSStream(start_tls(sock, options, server_hostname, post, gone))


def _deadline(route: Route) -> Optional[float]:
    """When a proxy handshake starting now must be done by, if anything but the request's
    Context bounds it."""
    return time.monotonic() + _UNBOUNDED_HANDSHAKE_LIMIT if route.unbounded else None


def _handshake_or_close(sock: socket.socket, handshake: Handshake[None], route: Route, what: str, post: Post, gone: Callable[[], bool]) -> None:
    try:
        run_handshake(handshake, _HandshakeIO(sock, _deadline(route), gone, what), post)
    except BaseException:
        sock.close()
        raise


def run_handshake(handshake: Handshake[_T], io: "_HandshakeIO", post: Post) -> _T:
    """Drive a ``_handshake`` generator on ``io``; returns the handshake's result."""
    try:
        step = next(handshake)
        while True:
            if type(step) is Send:
                io.send_all(step.data)
                step = handshake.send(b"")
            elif type(step) is Resolve:
                step = handshake.send(lookup(step.host, step.port, post)[0].sockaddr[0])
            elif step.exact:
                step = handshake.send(io.recv_exactly(step.size))
            else:
                step = handshake.send(io.recv(step.size))
    except StopIteration as done:
        io.sock.settimeout(None)
        result: _T = done.value  # what the generator returned
        return result


class _HandshakeIO:
    """Blocking-looking I/O with a proxy on the dial thread, in ticks; socket errors become
    ``ProxyError`` naming the proxy (``what``)."""

    __slots__ = ("sock", "deadline", "gone", "what")

    def __init__(self, sock: Union[socket.socket, TLSLayers], deadline: Optional[float], gone: Callable[[], bool], what: str) -> None:
        self.sock = sock
        self.deadline = deadline
        self.gone = gone
        self.what = what

    def _timed_out(self) -> ConnectTimeout:
        return ConnectTimeout(f"{self.what} did not answer within {_UNBOUNDED_HANDSHAKE_LIMIT:g} s")

    def _call(self, operation: Callable[[_A], _T], arg: _A) -> _T:
        for tick in ticks(self.deadline, self.gone, self._timed_out):
            self.sock.settimeout(tick)
            try:
                return operation(arg)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError) as exc:
                raise ProxyError(f"{self.what}: {exc}") from exc
        raise AssertionError("ticks ends only by raising")  # pragma: no cover

    def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        sent = 0
        while sent < len(view):
            sent += self._call(self.sock.send, view[sent:])

    def recv(self, size: int) -> bytes:
        return self._call(self.sock.recv, size)

    def recv_exactly(self, size: int) -> bytes:
        parts = []
        while size:
            data = self.recv(size)
            if not data:
                raise ProxyError(f"{self.what} closed the connection during the handshake")
            parts.append(data)
            size -= len(data)
        return b"".join(parts)
