"""Routes to the origin, direct or through a proxy, and their pool keys (Go's ``connectMethod``
and ``connectMethodKey``). No I/O: ``_dial.connect_route`` carries a route out.

A ``Route`` says what to dial and what to do on the connection before HTTP starts:

==============  ============  =====================================================================
proxy scheme    target        on the connection dialed (the proxy, or the origin when direct)
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

from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple, Optional

from ._errors import ProxyError
from ._proxy import EnvironmentProxy, FixedProxy, ProxyChooser, ProxyURL, parse_proxy_url
from ._urls import Target, join_host_port

if TYPE_CHECKING:
    from ._models import Request

__all__ = ("PoolKey", "Route", "direct_route", "route_for")


class PoolKey(NamedTuple):
    """Which connections can serve a request: an immutable value, equal only when every field
    is (Go keys connections by the whole proxy URL, so connections opened with one set of
    proxy credentials never serve a request made with another). ``str(key)`` is the text
    ``pool_stats()`` and the trace show: ``scheme://host:port``, with ``" via PROXY"`` for
    proxied routes, credentials left out."""

    scheme: str
    authority: str  # host:port, IPv6 in brackets (with its zone, RFC 6874 escaped)
    proxy: str = ""  # the proxy's scheme://host:port, or "" when direct
    credentials: Optional[tuple[str, str]] = None

    def __str__(self) -> str:
        text = f"{self.scheme}://{self.authority}"
        return f"{text} via {self.proxy}" if self.proxy else text

    def __repr__(self) -> str:
        return self.__str__()  # never the credentials


class Route:
    """How to reach an origin: what to dial, what to set up on the connection, and its key.

    ``absolute_form`` is true for plain-http requests forwarded by an HTTP proxy, which then
    carry ``proxy_headers`` too.
    """

    __slots__ = ("key", "target", "absolute_form", "proxy_headers", "proxy", "unbounded")

    def __init__(self, target: Target, key: PoolKey, proxy: Optional[ProxyURL] = None) -> None:
        self.key = key
        self.target = target
        self.proxy = proxy
        self.absolute_form = False
        self.proxy_headers: list[tuple[str, str]] = []
        self.unbounded = False  # the request has no Context: bound the proxy handshake


@lru_cache(maxsize=512)
def direct_route(target: Target) -> Route:
    """The route straight to ``target``; never changed once made, so shared per target."""
    scheme, _, authority = target.key.partition("://")
    return Route(target, PoolKey(scheme, authority))


def _proxy_route(target: Target, proxy: ProxyURL) -> Route:
    if target.scheme == "http" and proxy.scheme in ("http", "https"):
        # Go's connectMethod.key leaves the target out here: one connection to the proxy
        # carries absolute-form requests for any origin; the proxy, the connection's HTTP
        # peer, stands where the origin would.
        authority = join_host_port(proxy.host, proxy.port)
        route = Route(target, PoolKey("http", authority, proxy.display, proxy.credentials), proxy)
        route.absolute_form = True
        if proxy.authorization is not None:
            route.proxy_headers = [("Proxy-Authorization", proxy.authorization)]
        return route
    scheme, _, authority = target.key.partition("://")
    return Route(target, PoolKey(scheme, authority, proxy.display, proxy.credentials), proxy)


def route_for(proxy: Optional[ProxyChooser], request: Request, target: Target) -> Route:
    """The route for ``request`` to ``target`` given the Transport's proxy chooser.

    Raises ``ProxyError`` when the chooser names something that is not a usable proxy.
    """
    if proxy is None:
        return direct_route(target)
    # The ignores: the type checker does not narrow ``proxy`` by the ``kind`` it was saved in.
    kind = type(proxy)
    if kind is FixedProxy:
        parsed: Optional[ProxyURL] = proxy.parsed  # type: ignore[attr-defined]
    elif kind is EnvironmentProxy:
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
