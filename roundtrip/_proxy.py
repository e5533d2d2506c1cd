"""Routes to the origin, direct or through a proxy (Go's ``connectMethod``, the proxy half of
``dialConn``, and ``golang.org/x/net/http/httpproxy`` for the environment).

A ``Route`` says what to dial and what to do on the socket before HTTP starts:

==============  ============  =====================================================================
proxy scheme    target        on the socket dialed (the proxy, or the origin when direct)
==============  ============  =====================================================================
(none)          http / https  nothing / TLS to the origin
http            http          nothing: requests go in absolute form, ``Proxy-Authorization`` on each
http            https         ``CONNECT host:port`` (RFC 9110 §9.3.6), then TLS to the origin
https           http          TLS to the proxy, then absolute-form requests
https           https         TLS to the proxy, CONNECT inside it, TLS to the origin inside that
socks5(h)       http / https  RFC 1928 handshake (names resolved here / by the proxy), then TLS
                              to the origin for https
==============  ============  =====================================================================

Proxy credentials go on the CONNECT, the SOCKS handshake, or the absolute-form request to the
proxy; never inside a tunnel.
"""

from __future__ import annotations

import socket
import ssl
import time
from functools import lru_cache
from typing import Any, Callable, Optional

from . import _speedups
from ._dial import _TICK, Abandoned, Post, lookup, open_socket, start_tls
from ._errors import (
    ConnectTimeout,
    HeaderTooLarge,
    ProtocolError,
    ProxyError,
)
from ._proxy_env import (
    NoProxy,
    _EnvironmentProxy,
    proxy_from_environment,
    proxy_option,
)
from ._proxy_url import ProxyChooser, ProxyURL, _FixedProxy, parse_proxy_url, proxy_url
from ._socks import socks5_connect
from ._tls_layers import _layer_handshake, _TLSLayers
from ._urls import Target

__all__ = ("Route", "direct_route", "proxy_from_environment", "proxy_option", "proxy_url", "route_for", "ProxyURL", "NoProxy", "parse_proxy_url")


# Go's dialConn: a CONNECT whose request can neither time out nor be cancelled still gives up
# after a minute, so that a proxy that stops answering cannot hold a dial thread forever. The
# SOCKS handshake gets the same bound here.
_UNBOUNDED_HANDSHAKE_LIMIT = 60.0
_READ_SIZE = 65536


# -- routes -------------------------------------------------------------------------------------


class _ProxyKey(str):
    """A pool key for a proxied route. Its text is SPEC's ``"scheme://host:port via PROXY"``,
    credentials removed; as a key it also compares the credentials, so that a connection opened
    with one set of credentials is never handed to a request made with another (Go keys its
    connections by the whole proxy URL). Against a plain ``str`` it compares as its text, so
    ``pool_stats()[text]`` finds it."""

    credentials: Optional[tuple[str, str]]

    def __new__(cls, text: str, credentials: Optional[tuple[str, str]]) -> "_ProxyKey":
        key = super().__new__(cls, text)
        key.credentials = credentials
        return key

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _ProxyKey):
            return str.__eq__(self, other) and self.credentials == other.credentials
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return str.__repr__(self)

    def __reduce__(self) -> Any:
        return (str, (str(self),))  # a copy never carries the credentials


class Route:
    """How to reach an origin: what to dial, what to set up on the socket, and the pool key.

    ``absolute_form`` is true for plain-http requests forwarded by an HTTP proxy, which then
    carry ``proxy_headers`` too.
    """

    __slots__ = ("key", "target", "absolute_form", "proxy_headers", "proxy", "unbounded")

    def __init__(self, target: Target) -> None:
        self.key = target.key
        self.target = target
        self.absolute_form = False
        self.proxy_headers: list[tuple[str, str]] = []
        self.proxy: Optional[ProxyURL] = None
        self.unbounded = False  # the request has no Context: bound the proxy handshake

    def connect(self, options: Any, post: Post, gone: Callable[[], bool]) -> Any:
        """A socket ready for HTTP/1.1 to the origin, or to the proxy for absolute-form
        requests (TLS done where the route needs it)."""
        target = self.target
        proxy = self.proxy
        if proxy is None:
            sock = open_socket(target.host, target.port, options.connect_timeout, options.dial, post, gone)
            if target.scheme == "https":
                return _tls(sock, options, target.host, post, gone)
            return sock

        if proxy.scheme in ("socks5", "socks5h"):
            host: Any = target.host
            if proxy.scheme == "socks5":
                # socks5: names are resolved here, once the proxy has answered the greeting.
                host = lambda: _resolve(target.host, target.port, post)  # noqa: E731
            sock = open_socket(proxy.host, proxy.port, options.connect_timeout, options.dial, post, gone)
            try:
                io = _HandshakeIO(sock, self._handshake_deadline(), gone, f"SOCKS5 proxy {proxy.display}")
                socks5_connect(io.send_all, io.recv_exactly, host, target.port, proxy.username, proxy.password)
                io.finish()
            except BaseException:
                sock.close()
                raise
            if target.scheme == "https":
                return _tls(sock, options, target.host, post, gone)
            return sock

        sock = open_socket(proxy.host, proxy.port, options.connect_timeout, options.dial, post, gone)
        if self.absolute_form:
            if proxy.scheme == "https":
                return _tls(sock, options, proxy.host, post, gone)
            return sock
        if proxy.scheme == "https":
            return _tls_in_tls(sock, self, options, post, gone)
        try:
            io = _HandshakeIO(sock, self._handshake_deadline(), gone, f"proxy {proxy.display}")
            _open_tunnel(io, target, proxy, options)
            io.finish()
        except BaseException:
            sock.close()
            raise
        return _tls(sock, options, target.host, post, gone)

    def _handshake_deadline(self) -> Optional[float]:
        """When a CONNECT or SOCKS handshake starting now must be done by, if anything but
        the request's Context bounds it."""
        return time.monotonic() + _UNBOUNDED_HANDSHAKE_LIMIT if self.unbounded else None


@lru_cache(maxsize=512)
def direct_route(target: Target) -> Route:
    """The route straight to ``target``; never changed once made, so shared per target."""
    return Route(target)


def _proxy_route(target: Target, proxy: ProxyURL) -> Route:
    route = Route(target)
    route.proxy = proxy
    if target.scheme == "http" and proxy.scheme in ("http", "https"):
        # Go's connectMethod.key leaves the target out here: one connection to the proxy
        # carries absolute-form requests for any origin. In SPEC's key format the connection's
        # HTTP peer, the proxy, stands where the origin would.
        bracketed = f"[{proxy.host}]" if ":" in proxy.host else proxy.host
        text = f"http://{bracketed}:{proxy.port} via {proxy.display}"
        route.absolute_form = True
        if proxy.authorization is not None:
            route.proxy_headers = [("Proxy-Authorization", proxy.authorization)]
    else:
        text = f"{target.key} via {proxy.display}"
    route.key = _ProxyKey(text, proxy.credentials)
    return route


def route_for(proxy: Optional[ProxyChooser], request: Any, target: Target) -> Route:
    """The route for ``request`` to ``target`` given the Transport's proxy chooser.

    Raises ``ProxyError`` when the chooser names something that is not a usable proxy.
    """
    if proxy is None:
        return direct_route(target)
    kind = type(proxy)
    if kind is _FixedProxy:
        parsed: Optional[ProxyURL] = proxy.parsed  # type: ignore[attr-defined]
    elif kind is _EnvironmentProxy:
        parsed = proxy.for_target(target)  # type: ignore[attr-defined]
    else:
        url = proxy(request)
        if not url:
            return direct_route(target)
        try:
            parsed = parse_proxy_url(url)
        except ValueError as exc:
            raise ProxyError(str(exc)) from None
    if parsed is None:
        return direct_route(target)
    route = _proxy_route(target, parsed)
    route.unbounded = getattr(request, "context", None) is None
    return route


# -- talking to proxies -------------------------------------------------------------------------


def _tls(sock: socket.socket, options: Any, server_hostname: str, post: Post, gone: Callable[[], bool]) -> ssl.SSLSocket:
    try:
        return start_tls(sock, options.tls_context(), server_hostname, options.tls_handshake_timeout, post, gone)
    except BaseException:
        sock.close()  # a no-op once the TLS socket has taken the descriptor over
        raise


def _resolve(host: str, port: int, post: Post) -> str:
    """The first address of ``host``, for a socks5 proxy that must be given an address."""
    return lookup(host, port, post)[0][1][0]


class _HandshakeIO:
    """Blocking-looking I/O with a proxy on the dial thread. Every wait is a short tick, so the
    handshake stops soon after its request has gone (``gone()``: cancelled, past its deadline,
    or failed) and at ``deadline``. Socket errors become ``ProxyError``."""

    __slots__ = ("sock", "deadline", "gone", "what")

    def __init__(self, sock: socket.socket, deadline: Optional[float], gone: Callable[[], bool], what: str) -> None:
        self.sock = sock
        self.deadline = deadline
        self.gone = gone
        self.what = what

    def _call(self, operation: Callable[..., Any], *args: Any) -> Any:
        while True:
            tick = _TICK
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise ConnectTimeout(f"{self.what} did not answer within {_UNBOUNDED_HANDSHAKE_LIMIT:g} s")
                tick = min(tick, left)
            self.sock.settimeout(tick)
            try:
                return operation(*args)
            except socket.timeout:
                if self.gone():
                    raise Abandoned() from None
            except (ssl.SSLError, OSError) as exc:
                raise ProxyError(f"{self.what}: {exc}") from exc

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

    def finish(self) -> None:
        self.sock.settimeout(None)


def _authority(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.port}"


def _open_tunnel(io: _HandshakeIO, target: Target, proxy: ProxyURL, options: Any) -> None:
    """``CONNECT host:port`` (RFC 9110 §9.3.6) and its response; returns once the tunnel is up.

    Raises ``ProxyError`` for a non-2xx answer (with the proxy's status line), a malformed or
    oversized (``max_response_header_bytes``) response head, or a connection that ends first.
    """
    from ._transport import USER_AGENT  # here: _transport imports this module

    impl = _speedups.impl
    authority = _authority(target)
    fields = [("Host", authority), ("User-Agent", USER_AGENT)]  # Go's CONNECT has one too
    if proxy.authorization is not None:
        fields.append(("Proxy-Authorization", proxy.authorization))
    io.send_all(impl.encode_request_head("CONNECT", authority, fields))
    parser = impl.ResponseParser("CONNECT", options.max_response_header_bytes)
    received = 0
    while True:
        try:
            head = parser.next_event()
        except HeaderTooLarge as exc:
            raise ProxyError(f"{io.what}: CONNECT response head exceeds max_response_header_bytes") from exc
        except ProtocolError as exc:
            raise ProxyError(f"{io.what}: bad CONNECT response: {exc}") from exc
        if head is None:
            data = io.recv(_READ_SIZE)
            if not data:
                if not received:
                    raise ProxyError(f"{io.what} closed the connection without answering CONNECT")
                parser.feed_eof()
            else:
                received += len(data)
                parser.feed(data)
            continue
        if head.status_code >= 200:
            break
        # 1xx: informational, the final answer is still to come.
    status = f"{head.http_version} {head.status_code} {head.reason}".rstrip()
    if not 200 <= head.status_code < 300:
        raise ProxyError(f"{io.what} refused CONNECT to {authority}: {status}")
    # The origin speaks only after our TLS ClientHello, so a byte here is the proxy's.
    if parser.take_unparsed():
        raise ProxyError(f"{io.what} sent data after its CONNECT response")


# -- TLS inside TLS -----------------------------------------------------------------------------


def _tls_in_tls(sock: socket.socket, route: Route, options: Any, post: Post, gone: Callable[[], bool]) -> socket.socket:
    proxy = route.proxy
    assert proxy is not None
    try:
        layers = _TLSLayers(sock)
    except BaseException:
        sock.close()
        raise
    try:
        _layer_handshake(layers, options, proxy.host, post, gone)
        io = _HandshakeIO(layers, route._handshake_deadline(), gone, f"proxy {proxy.display}")
        _open_tunnel(io, route.target, proxy, options)
        _layer_handshake(layers, options, route.target.host, post, gone)
        layers.settimeout(None)
    except BaseException:
        layers.close()
        raise
    return layers
