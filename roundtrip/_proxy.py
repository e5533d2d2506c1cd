"""Routes to the origin, direct or through a proxy (Go's ``connectMethod``)."""

from __future__ import annotations

import ssl
from typing import Any, Callable, Optional

from ._dial import Post, open_socket, start_tls
from ._urls import Target

__all__ = ("Route", "direct_route", "proxy_from_environment", "proxy_option", "route_for")


class Route:
    """How to reach an origin: what to dial, what to set up on the socket, and the pool key.

    ``absolute_form`` is true for plain-http requests forwarded by an HTTP proxy, which then
    carry ``proxy_headers`` too.
    """

    __slots__ = ("key", "target", "absolute_form", "proxy_headers")

    def __init__(self, target: Target) -> None:
        self.key = target.key
        self.target = target
        self.absolute_form = False
        self.proxy_headers: list[tuple[str, str]] = []

    def connect(self, options: Any, post: Post, gone: Callable[[], bool]) -> Any:
        """A socket ready for HTTP/1.1 to the origin (TLS done for https)."""
        target = self.target
        sock = open_socket(target.host, target.port, options.connect_timeout, options.dial, post, gone)
        if target.scheme == "https":
            try:
                sock = start_tls(sock, options.tls_context(), target.host, options.tls_handshake_timeout, post, gone)
            except BaseException:
                sock.close()
                raise
        return sock


def direct_route(target: Target) -> Route:
    return Route(target)


def proxy_from_environment(request: Any) -> Optional[str]:
    """The proxy for ``request`` from HTTP_PROXY, HTTPS_PROXY and NO_PROXY, or None."""
    return None


def proxy_option(proxy: Optional[Callable[[Any], Optional[str]]]) -> Optional[Callable[[Any], Optional[str]]]:
    """The proxy chooser a Transport keeps, given its ``proxy`` option (called once, by
    ``Transport.__init__``)."""
    return proxy


def route_for(proxy: Optional[Callable[[Any], Optional[str]]], request: Any, target: Target) -> Route:
    """The route for ``request`` to ``target`` given the Transport's proxy chooser."""
    if proxy is None:
        return direct_route(target)
    proxy_url = proxy(request)
    if proxy_url is None:
        return direct_route(target)
    raise NotImplementedError("proxies are not supported yet")
