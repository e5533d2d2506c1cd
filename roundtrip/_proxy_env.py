"""Proxies from the environment (Go's ``golang.org/x/net/http/httpproxy``): HTTP_PROXY,
HTTPS_PROXY and NO_PROXY, read once per Transport."""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Mapping, Optional, Union

from ._proxy_url import ProxyChooser, ProxyURL, parse_proxy_url
from ._urls import Target, split_scheme, split_target

__all__ = ("NoProxy", "proxy_from_environment", "proxy_option")

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


