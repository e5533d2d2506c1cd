"""Proxy choice (Go's ``Transport.Proxy``, ``http.ProxyURL`` and
``golang.org/x/net/http/httpproxy``): proxy URLs (``http://``, ``https://``, ``socks5://``,
``socks5h://``), the fixed chooser ``proxy_url``, and ``proxy_from_environment`` with HTTP_PROXY,
HTTPS_PROXY and NO_PROXY read once per Transport. No I/O: ``_route`` turns the choice into a
route."""

from __future__ import annotations

import base64
import ipaddress
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Union
from urllib.parse import unquote

from ._errors import InvalidRequest
from ._urls import Target, bracket, split_authority, split_scheme, split_target, valid_port

__all__ = (
    "PROXY_FROM_ENVIRONMENT",
    "ProxyURL",
    "ProxyChooser",
    "parse_proxy_url",
    "proxy_url",
    "FixedProxy",
    "NoProxy",
    "EnvironmentProxy",
    "proxy_from_environment",
    "proxy_option",
)

if TYPE_CHECKING:
    from ._models import Request

ProxyChooser = Callable[["Request"], Optional[str]]


_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}

# RFC 3986 §3.2: a proxy URL is refused, never cleaned, when it has control characters or spaces.
_BAD_CHARS = frozenset(chr(c) for c in range(0x21)) | {"\x7f"}


# -- proxy URLs ---------------------------------------------------------------------------------


class ProxyURL:
    """A parsed proxy URL. ``display`` is ``scheme://host:port`` without credentials; the
    credentials are kept apart and never appear in ``repr``, keys or messages."""

    __slots__ = ("scheme", "host", "port", "username", "password", "display", "authorization", "text", "dial_host")

    def __init__(self, scheme: str, host: str, port: int, username: Optional[str], password: str, text: str, zone: str = "") -> None:
        self.scheme = scheme
        self.host = host  # lowercase, IDNA, IPv6 without brackets or zone
        self.dial_host = f"{host}%{zone}" if zone else host  # RFC 6874: a zone, unescaped, is dialed
        self.port = port
        self.username = username  # None when the URL has no userinfo
        self.password = password
        self.text = text  # the URL as given, "http://" added when it had no scheme
        # The zone stays in the display, and so in pool keys: one proxy address on two
        # interfaces is two proxies.
        self.display = f"{scheme}://{bracket(host, zone)}:{port}"
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
    try:
        host, zone, port_text = split_authority(hostport)
    except InvalidRequest as exc:
        raise ValueError(f"invalid proxy URL: {exc}") from None
    if not host:
        raise ValueError("invalid proxy URL: no host")
    if port_text:
        if not valid_port(port_text):
            raise ValueError("invalid proxy URL: bad port")
        port = int(port_text)
    else:
        port = _DEFAULT_PORTS[scheme]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("invalid proxy URL: bad international host name") from None
    return ProxyURL(scheme, host.lower(), port, username, password, text, zone)


class FixedProxy:
    """The chooser ``proxy_url`` returns: the same proxy for every request (Go's ``ProxyURL``)."""

    __slots__ = ("parsed",)

    def __init__(self, parsed: ProxyURL) -> None:
        self.parsed = parsed

    def __call__(self, request: Request) -> Optional[str]:
        return self.parsed.text

    def __repr__(self) -> str:
        return f"proxy_url({self.parsed.display!r})"


def proxy_url(url: str) -> ProxyChooser:
    """A ``proxy`` option that sends every request through ``url``
    (``http://``, ``https://``, ``socks5://`` or ``socks5h://``; no scheme means ``http://``).

    Credentials in the URL (``http://user:password@host:port``, percent-encoded) authenticate
    to the proxy. Raises ``ValueError`` for a URL that is not a usable proxy.
    """
    return FixedProxy(parse_proxy_url(url))




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
        self.networks: list[Union[ipaddress.IPv4Network, ipaddress.IPv6Network]] = []
        self.addresses: list[tuple[Union[ipaddress.IPv4Address, ipaddress.IPv6Address], str]] = []
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


class EnvironmentProxy:
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

    def __call__(self, request: Request) -> Optional[str]:
        scheme, rest = split_scheme(request.url)
        if scheme not in ("http", "https"):
            return None
        proxy = self.for_target(split_target(scheme, rest))
        return None if proxy is None else proxy.text


def proxy_from_environment(request: Request) -> Optional[str]:
    """The proxy URL for ``request`` from the environment, or None to go direct.

    ``HTTPS_PROXY`` (or ``https_proxy``) serves https URLs, ``HTTP_PROXY`` (or ``http_proxy``)
    http URLs; the upper-case name wins when both are set, as in Go. ``HTTP_PROXY`` is not
    used when ``REQUEST_METHOD`` is set (a CGI script). A value without a scheme is an
    ``http://`` proxy. ``NO_PROXY`` lists exceptions (see ``NoProxy``), and ``localhost``,
    ``127.0.0.0/8`` and ``::1`` are never proxied.

    Called directly it reads the environment now; as a Transport's ``proxy`` option (the
    default) the environment is read once, when the Transport is built.
    """
    return EnvironmentProxy(os.environ)(request)


def proxy_option(proxy: Optional[ProxyChooser]) -> Optional[ProxyChooser]:
    """The proxy chooser a Transport keeps, given its ``proxy`` option (called once, by
    ``Transport.__init__``): ``proxy_from_environment`` becomes a chooser bound to the
    environment as it is now, or None when it names no proxy."""
    if proxy is proxy_from_environment:
        chooser = EnvironmentProxy(os.environ)
        return chooser if chooser.active else None
    if proxy is not None and not callable(proxy):
        raise TypeError("proxy must be a callable(Request) -> str or None, or None")
    return proxy


class _FromEnvironment:
    """The default of the Transports' ``proxy=``: proxies from the environment, exactly as
    passing ``roundtrip.proxy_from_environment`` does; its repr says so in ``help()``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "roundtrip.proxy_from_environment"


PROXY_FROM_ENVIRONMENT: Any = _FromEnvironment()
