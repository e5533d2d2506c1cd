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

import base64
import ipaddress
import os
import socket
import ssl
import time
from functools import lru_cache
from typing import Any, Callable, Mapping, Optional, Union
from urllib.parse import unquote

from . import _speedups
from ._dial import Abandoned, Post, open_socket, start_tls
from ._errors import ConnectError, ConnectTimeout, Error, HeaderTooLarge, ProtocolError, ProxyError, TLSError, TLSHandshakeTimeout
from ._socks import socks5_connect
from ._urls import Target, split_scheme, split_target

__all__ = ("Route", "direct_route", "proxy_from_environment", "proxy_option", "proxy_url", "route_for", "ProxyURL")

ProxyChooser = Callable[[Any], Optional[str]]

_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
_TICK = 0.05  # like _dial: how often a proxy handshake looks whether its request has gone
# Go's dialConn: a CONNECT whose request can neither time out nor be cancelled still gives up
# after a minute, so that a proxy that stops answering cannot hold a dial thread forever. The
# SOCKS handshake gets the same bound here.
_UNBOUNDED_HANDSHAKE_LIMIT = 60.0
_READ_SIZE = 65536

# RFC 3986 §3.2: a proxy URL is refused, never cleaned, when it has control characters or spaces.
_BAD_CHARS = frozenset(chr(c) for c in range(0x21)) | {"\x7f"}


# -- proxy URLs ---------------------------------------------------------------------------------


class ProxyURL:
    """A parsed proxy URL. ``display`` is ``scheme://host:port`` without credentials; the
    credentials are kept apart and never appear in ``repr``, keys or messages."""

    __slots__ = ("scheme", "host", "port", "username", "password", "display", "authorization", "text")

    def __init__(self, scheme: str, host: str, port: int, username: Optional[str], password: str, text: str) -> None:
        self.scheme = scheme
        self.host = host  # lowercase, IDNA, IPv6 without brackets
        self.port = port
        self.username = username  # None when the URL has no userinfo
        self.password = password
        self.text = text  # the URL as given, "http://" added when it had no scheme
        bracketed = f"[{host}]" if ":" in host else host
        self.display = f"{scheme}://{bracketed}:{port}"
        # Go's connectMethod.proxyAuth: any userinfo means Basic auth, even an empty password.
        self.authorization: Optional[str] = None
        if username is not None:
            token = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
            self.authorization = f"Basic {token}"

    @property
    def credentials(self) -> Optional[tuple[str, str]]:
        return None if self.username is None else (self.username, self.password)

    def __repr__(self) -> str:
        hidden = "" if self.username is None else " (with credentials)"
        return f"<ProxyURL {self.display}{hidden}>"


@lru_cache(maxsize=64)
def parse_proxy_url(text: str) -> ProxyURL:
    """Parse ``[scheme://][user[:password]@]host[:port][/...]``; no scheme means ``http://``.

    Raises ``ValueError`` whose message never repeats the credentials.
    """
    if not isinstance(text, str):
        raise ValueError(f"proxy URL must be a str, not {type(text).__name__}")
    if any(char in _BAD_CHARS for char in text):
        raise ValueError("invalid proxy URL: control character or space")
    if "://" not in text:
        text = "http://" + text  # Go's parseProxy: "host:port" means an http proxy
    scheme, rest = split_scheme(text)
    if not rest.startswith("//"):
        raise ValueError("invalid proxy URL: no scheme")
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported proxy scheme {scheme!r}: use http, https, socks5 or socks5h")
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter, 2)
        if found != -1:
            end = min(end, found)
    userinfo, at, hostport = rest[2:end].rpartition("@")
    username: Optional[str] = None
    password = ""
    if at:
        user_text, _, password_text = userinfo.partition(":")
        username, password = unquote(user_text), unquote(password_text)
    if hostport.startswith("["):
        close = hostport.find("]")
        if close == -1:
            raise ValueError("invalid proxy URL: missing ']' in host")
        host, port_text = hostport[1:close], hostport[close + 1 :]
        if port_text and not port_text.startswith(":"):
            raise ValueError("invalid proxy URL: bad port")
        port_text = port_text[1:]
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            host, port_text = hostport, ""
    if not host:
        raise ValueError("invalid proxy URL: no host")
    if port_text:
        if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
            raise ValueError("invalid proxy URL: bad port")
        port = int(port_text)
    else:
        port = _DEFAULT_PORTS[scheme]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("invalid proxy URL: bad international host name") from None
    return ProxyURL(scheme, host.lower(), port, username, password, text)


class _FixedProxy:
    """The chooser ``proxy_url`` returns: the same proxy for every request (Go's ``ProxyURL``)."""

    __slots__ = ("parsed",)

    def __init__(self, parsed: ProxyURL) -> None:
        self.parsed = parsed

    def __call__(self, request: Any) -> Optional[str]:
        return self.parsed.text

    def __repr__(self) -> str:
        return f"proxy_url({self.parsed.display!r})"


def proxy_url(url: str) -> ProxyChooser:
    """A ``proxy`` option that sends every request through ``url``
    (``http://``, ``https://``, ``socks5://`` or ``socks5h://``; no scheme means ``http://``).

    Credentials in the URL (``http://user:password@host:port``, percent-encoded) authenticate
    to the proxy. Raises ``ValueError`` for a URL that is not a usable proxy.
    """
    return _FixedProxy(parse_proxy_url(url))


# -- the environment ----------------------------------------------------------------------------


def _split_host_port(entry: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort`` as NO_PROXY uses it: ``(host, port)``, the port ``""`` when
    there is none. Brackets are removed from IPv6 literals."""
    if entry.startswith("["):
        close = entry.find("]")
        if close != -1:
            rest = entry[close + 1 :]
            if rest.startswith(":"):
                return entry[1:close], rest[1:]
            if not rest:
                return entry[1:close], ""
        return entry, ""
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, port
    return entry, ""  # no port, or a bare IPv6 literal


def _ip(host: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    """``host`` as an IP address (IPv4-mapped IPv6 as IPv4, as Go compares them), or None."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class NoProxy:
    """NO_PROXY parsed once (Go's ``httpproxy.config.init`` and ``useProxy``).

    Entries are comma-separated and case-insensitive: ``*`` (no proxy at all), an IP address or
    CIDR range (``10.0.0.0/8``), a host name matching itself and its subdomains (``example.com``),
    a leading ``.`` or ``*.`` matching subdomains only (``.example.com``); IP addresses and
    names may carry a port (``example.com:8080``, ``[::1]:80``), which must then match too.
    """

    __slots__ = ("everything", "networks", "addresses", "domains")

    def __init__(self, text: str) -> None:
        self.everything = False
        self.networks: list[Any] = []
        self.addresses: list[tuple[Any, str]] = []
        self.domains: list[tuple[str, str, bool]] = []  # (".suffix", port, also the name itself)
        for entry in text.split(","):
            entry = entry.strip().lower()
            if not entry:
                continue
            if entry == "*":
                self.everything = True
                return
            if "/" in entry:
                try:
                    self.networks.append(ipaddress.ip_network(entry, strict=False))
                    continue
                except ValueError:
                    pass
            host, port = _split_host_port(entry)
            if not host:
                continue  # ":80": no host, a malformed entry; ignored like Go
            ip = _ip(host)
            if ip is not None:
                self.addresses.append((ip, port))
                continue
            if host.startswith("*."):
                host = host[1:]
            match_itself = not host.startswith(".")
            if match_itself:
                host = "." + host
            if not host.isascii():
                try:
                    host = "." + host[1:].encode("idna").decode("ascii")
                except UnicodeError:
                    pass
            self.domains.append((host, port, match_itself))

    def excludes(self, host: str, port: int) -> bool:
        """Whether a request to ``host:port`` (lowercase, IDNA, no brackets) goes direct.

        Loopback (``localhost``, ``127.0.0.0/8``, ``::1``) always goes direct.
        """
        if host == "localhost":
            return True
        ip = _ip(host)
        if ip is not None and ip.is_loopback:
            return True
        if self.everything:
            return True
        port_text = str(port)
        if ip is not None:
            for network in self.networks:
                if ip in network:
                    return True
            for address, wanted in self.addresses:
                if address == ip and (not wanted or wanted == port_text):
                    return True
        for suffix, wanted, match_itself in self.domains:
            if host.endswith(suffix) or (match_itself and host == suffix[1:]):
                if not wanted or wanted == port_text:
                    return True
        return False


def _first_set(environ: Mapping[str, str], *names: str) -> str:
    """Go's ``getEnvAny``: the first of ``names`` with a non-empty value, so ``HTTP_PROXY``
    wins over ``http_proxy`` when both are set."""
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return ""


def _env_proxy(text: str) -> Optional[ProxyURL]:
    if not text:
        return None
    try:
        return parse_proxy_url(text)
    except ValueError:
        return None  # Go's config.init ignores a proxy it cannot parse


class _EnvironmentProxy:
    """``proxy_from_environment`` bound to one reading of the environment."""

    __slots__ = ("http", "https", "no_proxy", "cgi")

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.http = _env_proxy(_first_set(environ, "HTTP_PROXY", "http_proxy"))
        self.https = _env_proxy(_first_set(environ, "HTTPS_PROXY", "https_proxy"))
        self.no_proxy = NoProxy(_first_set(environ, "NO_PROXY", "no_proxy"))
        # httpoxy (golang.org/s/cgihttpproxy): in a CGI script, HTTP_PROXY may come from a
        # request's "Proxy:" header, so it is not used for http requests.
        self.cgi = bool(environ.get("REQUEST_METHOD"))

    @property
    def active(self) -> bool:
        return self.http is not None or self.https is not None

    def for_target(self, target: Target) -> Optional[ProxyURL]:
        """Go's ``config.proxyForURL``."""
        if target.scheme == "https":
            proxy = self.https
        else:
            proxy = None if self.cgi else self.http
        if proxy is None or self.no_proxy.excludes(target.host, target.port):
            return None
        return proxy

    def __call__(self, request: Any) -> Optional[str]:
        scheme, rest = split_scheme(request.url)
        if scheme not in ("http", "https"):
            return None
        proxy = self.for_target(split_target(scheme, rest))
        return None if proxy is None else proxy.text


def proxy_from_environment(request: Any) -> Optional[str]:
    """The proxy URL for ``request`` from the environment, or None to go direct.

    ``HTTPS_PROXY`` (or ``https_proxy``) serves https URLs, ``HTTP_PROXY`` (or ``http_proxy``)
    http URLs; the upper-case name wins when both are set, as in Go. ``HTTP_PROXY`` is not
    used when ``REQUEST_METHOD`` is set (a CGI script). A value without a scheme is an
    ``http://`` proxy. ``NO_PROXY`` lists exceptions (see ``NoProxy``), and ``localhost``,
    ``127.0.0.0/8`` and ``::1`` are never proxied.

    Called directly it reads the environment now; as a Transport's ``proxy`` option (the
    default) the environment is read once, when the Transport is built.
    """
    return _EnvironmentProxy(os.environ)(request)


def proxy_option(proxy: Optional[ProxyChooser]) -> Optional[ProxyChooser]:
    """The proxy chooser a Transport keeps, given its ``proxy`` option (called once, by
    ``Transport.__init__``): ``proxy_from_environment`` becomes a chooser bound to the
    environment as it is now, or None when it names no proxy."""
    if proxy is proxy_from_environment:
        chooser = _EnvironmentProxy(os.environ)
        return chooser if chooser.active else None
    if proxy is not None and not callable(proxy):
        raise TypeError("proxy must be a callable(Request) -> str or None, or None")
    return proxy


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
            host = target.host
            if proxy.scheme == "socks5":
                host = _resolve(host, target.port, post)  # socks5: names are resolved here
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
    if _ip(host) is not None:
        return host
    post("dns_start", host)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        error = ConnectError(f"dial tcp: lookup {host}: {exc}")
        post("dns_done", [], error)
        raise error from exc
    addresses = [sockaddr[0] for _, _, _, _, sockaddr in infos]
    post("dns_done", addresses, None)
    return addresses[0]


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


class _TLSLayers(socket.socket):
    """TLS layers done in memory (``ssl.SSLObject``) over one TCP socket: TLS to an https
    proxy, and TLS to the origin inside its CONNECT tunnel (an ``ssl.SSLSocket`` cannot wrap
    another). It owns the TCP descriptor, so the connection code's shutdown, peek and select
    work on it as on any socket; the timeout applies to each wait on the network.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock.family, sock.type, sock.proto, fileno=sock.detach())
        self._layers: list[tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]] = []
        self._unsent = bytearray()  # ciphertext for the network, kept across a timeout

    def add_layer(self, context: ssl.SSLContext, server_hostname: str) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
        self._layers.append((tls, incoming, outgoing))

    def handshake(self) -> None:
        """Advance the handshake of the innermost layer; raises ``socket.timeout`` when a wait
        times out, and may be called again after that."""
        level = len(self._layers) - 1
        tls, incoming, _ = self._layers[level]
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                self._push(level)
                data = self._read(level - 1, _READ_SIZE)
                if not data:
                    raise ConnectionResetError("connection closed during the TLS handshake") from None
                incoming.write(data)
                continue
            self._push(level)
            self._flush()
            return

    def _push(self, level: int) -> None:
        """Move what ``level`` has to send down through the layers below it."""
        while level >= 0:
            data = self._layers[level][2].read()
            if not data:
                return
            if level == 0:
                self._unsent += data
            else:
                self._layers[level - 1][0].write(data)
            level -= 1

    def _flush(self) -> None:
        while self._unsent:
            sent = super().send(self._unsent)
            del self._unsent[:sent]

    def _read(self, level: int, size: int) -> bytes:
        """Plaintext of layer ``level`` (``-1``: the network); ``b""`` at the end."""
        if level < 0:
            self._flush()
            return super().recv(size)
        tls, incoming, _ = self._layers[level]
        while True:
            try:
                return tls.read(size)
            except ssl.SSLWantReadError:
                self._push(level)
                data = self._read(level - 1, _READ_SIZE)
                if data:
                    incoming.write(data)
                else:
                    incoming.write_eof()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # like SSLSocket's suppress_ragged_eofs

    def recv(self, bufsize: int, flags: int = 0) -> bytes:  # type: ignore[override]
        if flags:
            raise ValueError("flags are not supported on a TLS tunnel")
        return self._read(len(self._layers) - 1, bufsize)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data)

    def send(self, data: Any, flags: int = 0) -> int:  # type: ignore[override]
        """Encrypt all of ``data``. What the network does not take before a timeout stays
        queued and goes out before anything else is sent or received."""
        if flags:
            raise ValueError("flags are not supported on a TLS tunnel")
        self._flush()  # a timeout here accepts nothing: the caller may send ``data`` again
        level = len(self._layers) - 1
        self._layers[level][0].write(data)
        self._push(level)
        try:
            self._flush()
        except socket.timeout:
            pass  # accepted and queued
        return len(memoryview(data).cast("B"))

    def sendall(self, data: Any, flags: int = 0) -> None:  # type: ignore[override]
        self.send(data, flags)
        self._flush()

    def pending(self) -> int:
        return self._layers[-1][0].pending() if self._layers else 0


def _layer_handshake(layers: _TLSLayers, options: Any, server_hostname: str, post: Post, gone: Callable[[], bool]) -> None:
    """A TLS handshake on a new innermost layer, with ``start_tls``'s events, timeout and errors."""
    post("tls_handshake_start")
    try:
        layers.add_layer(options.tls_context(), server_hostname)
    except (ssl.SSLError, ssl.CertificateError, ValueError) as exc:
        error = TLSError(f"tls: {exc}")
        post("tls_handshake_done", error)
        raise error from exc
    timeout = options.tls_handshake_timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            tick = _TICK
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TLSHandshakeTimeout("net/http: TLS handshake timeout")
                tick = min(tick, left)
            layers.settimeout(tick)
            try:
                layers.handshake()
                break
            except socket.timeout:
                if gone():
                    raise Abandoned() from None
        layers.settimeout(None)
    except Abandoned:
        raise
    except Error as exc:
        post("tls_handshake_done", exc)
        raise
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        error = TLSError(f"tls: {exc}")
        post("tls_handshake_done", error)
        raise error from exc
    post("tls_handshake_done", None)


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

