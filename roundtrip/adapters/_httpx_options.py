"""``httpx.HTTPTransport``'s constructor arguments, as options of a ``roundtrip.Transport``."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Iterable, Optional
from urllib.parse import quote

import httpx

import roundtrip

__all__ = ("adapter_setup", "transport_options", "check_versions", "Dialer", "AsyncDialer", "proxy_text")

# httpcore's connect retries wait 0 s, then 0.5 s, doubling (its exponential_backoff, factor 0.5).
RETRY_BACKOFF = 0.5
UNSET: Any = object()
# The defaults of httpx.HTTPTransport and httpx.AsyncHTTPTransport (they share them).
DEFAULTS: dict[str, Any] = {
    "verify": True, "cert": None, "trust_env": True, "http1": True, "http2": False,
    "limits": httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0),
    "proxy": None, "uds": None, "local_address": None, "socket_options": None,
}


def adapter_setup(adapter: str, transport: Any, given: dict[str, Any], dial: type) -> tuple[Optional[dict[str, Any]], int]:
    """``(options, retries)`` for an adapter named ``adapter`` from its constructor arguments:
    the given ``transport`` (then ``options`` is ``None``) or the ``roundtrip`` options that
    mean what the httpx arguments in ``given`` mean, with ``dial`` (``Dialer`` or
    ``AsyncDialer``) for ``uds``, ``local_address`` and ``socket_options``."""
    given = dict(given)
    check_versions(given.get("http1", True), given.get("http2", False), adapter)  # even with a transport
    retries = int(given.pop("retries", 0))
    if retries < 0:
        raise ValueError("retries must be 0 or more")
    if transport is not None:
        if given:
            raise ValueError(
                f"{adapter}(transport=...) uses that Transport as it is: "
                f"{', '.join(sorted(given))} cannot change it (leave transport out to have one made)"
            )
        return None, retries
    return transport_options(**{**DEFAULTS, **given}, dial=dial, adapter=adapter), retries


def transport_options(
    *,
    verify: Any,
    cert: Any,
    trust_env: bool,
    http1: bool,
    http2: bool,
    limits: httpx.Limits,
    proxy: Any,
    uds: Optional[str],
    local_address: Optional[str],
    socket_options: Optional[Iterable[Any]],
    dial: type = None,  # type: ignore[assignment]
    adapter: str = "HTTPXTransport",
) -> dict[str, Any]:
    """Keyword arguments of ``roundtrip.Transport`` (or ``AsyncTransport``, with ``dial`` set to
    ``AsyncDialer``) that mean what httpx's arguments mean."""
    check_versions(http1, http2, adapter)
    options: dict[str, Any] = {
        "disable_compression": True,  # httpx decodes Content-Encoding itself
        # httpx.create_ssl_context is what httpx.HTTPTransport uses: same CA bundle (certifi),
        # same SSL_CERT_FILE / SSL_CERT_DIR handling under trust_env, same warnings.
        "ssl_context": httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env),
        # httpx.HTTPTransport never reads proxy variables itself: httpx.Client does, and mounts
        # a transport made with proxy=... for them. Without proxy= it always goes direct.
        "proxy": _FixedProxy(proxy_text(proxy, adapter)) if proxy is not None else None,
    }
    options.update(_limits(limits))
    if uds is not None or local_address is not None or socket_options is not None:
        options["dial"] = (dial or Dialer)(uds, local_address, list(socket_options) if socket_options is not None else None)
    return options


def check_versions(http1: bool, http2: bool, adapter: str = "HTTPXTransport") -> None:
    """Refuse what cannot be spoken: HTTP/1.1 is the only version this transport speaks."""
    # http2=True next to http1=True lets the connection use HTTP/2 where the server agrees;
    # HTTP/1.1 is always an allowed outcome, and the only one this transport reaches. Without
    # http1 there is nothing it can speak.
    if not http1:
        if http2:
            raise NotImplementedError(
                f"{adapter} speaks HTTP/1.1 only: http1=False, http2=True (HTTP/2 only) needs "
                f"httpx.{_HTTPX_CLASS.get(adapter, 'HTTPTransport')}; with http1=True, http2=True is accepted and HTTP/1.1 is used"
            )
        raise ValueError(f"{adapter} needs http1=True: HTTP/1.1 is the only version it speaks")


# the httpx class each adapter stands in for
_HTTPX_CLASS = {"HTTPXTransport": "HTTPTransport", "HTTPXAsyncTransport": "AsyncHTTPTransport"}


def _limits(limits: httpx.Limits) -> dict[str, Any]:
    # httpcore's max_connections counts every connection of the pool; roundtrip limits
    # connections per host, so the nearest meaning is that limit per host. Keep-alive counts
    # are global in both; httpcore has no per-host idle cap, so that one follows the global one.
    options: dict[str, Any] = {"idle_conn_timeout": limits.keepalive_expiry}
    max_connections = limits.max_connections
    options["max_conns_per_host"] = 0 if max_connections is None else max_connections
    keepalive = limits.max_keepalive_connections
    if keepalive is None:
        options["max_idle_conns"] = 0  # no limit
        options["max_idle_conns_per_host"] = 1 << 30
    elif keepalive <= 0:
        options["disable_keep_alives"] = True
    else:
        if max_connections is not None:
            keepalive = min(keepalive, max_connections)  # as httpcore clamps it
        options["max_idle_conns"] = keepalive
        options["max_idle_conns_per_host"] = keepalive
    return options


def proxy_text(proxy: Any, adapter: str = "HTTPXTransport") -> str:
    """A proxy URL for ``roundtrip.proxy_url`` from httpx's ``proxy=`` (a str, ``httpx.URL``
    or ``httpx.Proxy``), its credentials in the userinfo; checked as httpx checks it."""
    if not isinstance(proxy, httpx.Proxy):
        proxy = httpx.Proxy(url=proxy)  # raises ValueError for a scheme httpx does not proxy
    extra = [name for name in proxy.headers if name.lower() != "proxy-authorization"]
    if extra:
        raise NotImplementedError(f"{adapter} cannot send extra proxy headers ({', '.join(extra)})")
    url = proxy.url
    # httpx hands a socks5:// proxy the host name to resolve (httpcore's SOCKS proxy sends the
    # domain name); roundtrip spells that socks5h://.
    scheme = "socks5h" if url.scheme == "socks5" else url.scheme
    host = url.raw_host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    port = f":{url.port}" if url.port is not None else ""
    userinfo = ""
    if proxy.auth is not None:
        username, password = proxy.auth
        userinfo = f"{quote(username, safe='')}:{quote(password, safe='')}@"
    return f"{scheme}://{userinfo}{host}{port}"


class _FixedProxy:
    """The ``proxy`` option: this one proxy for every request."""

    __slots__ = ("url", "_parsed")

    def __init__(self, url: str) -> None:
        self.url = url
        roundtrip.proxy_url(url)  # raises ValueError now for a URL roundtrip cannot use

    def __call__(self, request: Any) -> str:
        return self.url


class Dialer:
    """The ``dial`` option for ``uds``, ``local_address`` and ``socket_options``.

    ``uds``: every connection goes to that Unix socket, whatever the URL's host (the URL
    still gives the ``Host`` header and the TLS server name). ``local_address``: the local IP
    to connect from. ``socket_options``: ``(level, option, value)`` triples set before
    connecting, as httpcore sets them.
    """

    def __init__(self, uds: Optional[str], local_address: Optional[str], socket_options: Optional[list[Any]]) -> None:
        self.uds = uds
        self.local_address = local_address
        self.socket_options = socket_options or []

    def __call__(self, host: str, port: int, timeout: Optional[float]) -> socket.socket:
        if self.uds is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._apply_options(sock)
                sock.settimeout(timeout)
                sock.connect(self.uds)
            except BaseException:
                sock.close()
                raise
            return sock
        source = (self.local_address, 0) if self.local_address is not None else None
        last: Optional[OSError] = None
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                self._apply_options(sock)
                sock.settimeout(timeout)
                if source is not None:
                    sock.bind(source)
                sock.connect(address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise last if last is not None else OSError(f"no address for {host}")

    def _apply_options(self, sock: socket.socket) -> None:
        for option in self.socket_options:
            sock.setsockopt(*option)


class AsyncDialer(Dialer):
    """``Dialer`` for an ``AsyncTransport``: the same choices, connecting without blocking the
    event loop (a cancel or deadline cancels the connect)."""

    async def __call__(self, host: str, port: int, timeout: Optional[float]) -> socket.socket:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        if self.uds is not None:
            targets: list[tuple[Any, ...]] = [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", self.uds)]
        else:
            targets = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        source = (self.local_address, 0) if self.local_address is not None and self.uds is None else None
        last: Optional[OSError] = None
        for family, kind, proto, _, address in targets:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                self._apply_options(sock)
                if source is not None:
                    sock.bind(source)
                try:
                    await asyncio.wait_for(loop.sock_connect(sock, address), timeout)
                except asyncio.TimeoutError as exc:  # not an OSError before Python 3.11
                    raise socket.timeout(f"connect to {address} timed out") from exc
                if family != socket.AF_UNIX:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:  # TimeoutError included: the next address gets its own timeout
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise last if last is not None else OSError(f"no address for {host}")
