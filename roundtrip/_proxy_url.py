"""Proxy URLs: parsing ``http://``, ``https://``, ``socks5://`` and ``socks5h://`` proxies, and the
fixed-proxy chooser ``proxy_url``."""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any, Callable, Optional
from urllib.parse import unquote

from ._errors import InvalidRequest
from ._urls import escape_zone, split_zone, split_scheme

__all__ = ("ProxyURL", "ProxyChooser", "parse_proxy_url", "proxy_url")

ProxyChooser = Callable[[Any], Optional[str]]


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
        bracketed = f"[{host}%25{escape_zone(zone)}]" if zone else f"[{host}]" if ":" in host else host
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
        try:
            host, zone = split_zone(hostport[1:close])
        except InvalidRequest as exc:
            raise ValueError(f"invalid proxy URL: {exc}") from None
        port_text = hostport[close + 1 :]
        if port_text and not port_text.startswith(":"):
            raise ValueError("invalid proxy URL: bad port")
        port_text = port_text[1:]
    else:
        zone = ""
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
    return ProxyURL(scheme, host.lower(), port, username, password, text, zone)


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


