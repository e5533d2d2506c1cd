"""Splitting request URLs into what the wire and the pool need, checked before any I/O.

``urllib.parse`` silently strips tabs and newlines from URLs; a transport must refuse them
instead, so the split is done here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from . import _messages
from ._errors import InvalidRequest

__all__ = ("Target", "bracket", "join_host_port", "split_authority", "valid_port", "split_scheme", "split_target", "split_zone", "escape_zone", "DEFAULT_PORTS")

DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_scheme_re = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# Control characters (tab, CR and LF included) and spaces are refused, never stripped.
_bad_char_re = re.compile(r"[\x00-\x20\x7f]")
# RFC 3986 §3.2.2 IP-literal: hex digits, colons, and dots for an embedded IPv4 address.
_ipv6_re = re.compile(r"[0-9A-Fa-f:.]+")
# RFC 6874 §2: ZoneID = 1*( unreserved / pct-encoded ), introduced by "%25" (an escaped "%").
_zone_re = re.compile(r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})+")
_zone_escape_re = re.compile(r"%([0-9A-Fa-f]{2})")
_zone_unreserved_re = re.compile(r"[^A-Za-z0-9\-._~]")
_non_ascii_re = re.compile(r"[^\x00-\x7f]+")


class Target(NamedTuple):
    """Where a request goes and what its request line and Host field say."""

    scheme: str  # "http" or "https"
    host: str  # lowercase; IPv6 without brackets
    port: int
    path: str  # origin-form request target: path and query, never empty
    authority: str  # host[:port] as written, IPv6 in brackets, without userinfo
    key: str  # pool key: scheme://host:port, IPv6 in brackets (with its zone, RFC 6874 escaped)
    zone: str = ""  # an IPv6 zone (RFC 6874), unescaped: "lo" for "[fe80::1%25lo]"; "" if none

    @property
    def dial_host(self) -> str:
        """What to connect to: the host, with ``%zone`` for a scoped IPv6 address."""
        return f"{self.host}%{self.zone}" if self.zone else self.host


def split_scheme(url: str) -> tuple[str, str]:
    """``(lowercase scheme, rest)``; the scheme is ``""`` when the URL has none."""
    if url.startswith("http://"):  # the common spellings skip the regex
        return "http", url[5:]
    if url.startswith("https://"):
        return "https", url[6:]
    match = _scheme_re.match(url)
    if match is None:
        return "", url
    return match.group(1).lower(), url[match.end() :]


def split_zone(host: str) -> tuple[str, str]:
    """``(address, unescaped zone)`` of the text between an IP-literal's brackets.

    RFC 6874 §2: the zone follows an escaped "%" ("%25") and may itself be percent-encoded.
    Like Go's ``url.parseHost``, a bare "%" (``[fe80::1%eth0]``) is refused rather than
    guessed at: it is a percent-escape that is not one.
    """
    address, escaped, zone = host.partition("%25")
    if not escaped:
        if "%" in host:
            raise InvalidRequest("invalid IPv6 zone in URL host: write the zone's '%' as %25", "url")
        return host, ""
    if not zone:
        raise InvalidRequest("invalid IPv6 zone in URL host: empty zone after %25", "url")
    if not _zone_re.fullmatch(zone):
        raise InvalidRequest("invalid IPv6 zone in URL host: bad character or percent-escape", "url")
    try:
        unescaped = _zone_escape_re.sub(lambda m: chr(int(m.group(1), 16)), zone).encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidRequest("invalid IPv6 zone in URL host: escapes are not UTF-8", "url") from None
    # Go's unescape (encodeZone) refuses escaped bytes that could not appear in a host, such
    # as controls; an interface name never holds one.
    if _bad_char_re.search(unescaped):
        raise InvalidRequest("invalid IPv6 zone in URL host: control character or space", "url")
    return address, unescaped


def escape_zone(zone: str) -> str:
    """The zone as a URL writes it (RFC 6874 §2), for the pool key."""
    return _zone_unreserved_re.sub(
        lambda m: "".join(f"%{byte:02X}" for byte in m.group().encode("utf-8")), zone
    )


def _percent_encode(text: str) -> str:
    # Go's EscapedPath: non-ASCII goes on the wire as percent-encoded UTF-8.
    return _non_ascii_re.sub(
        lambda m: "".join(f"%{byte:02X}" for byte in m.group().encode("utf-8")), text
    )


def split_authority(authority: str) -> tuple[str, str, str]:
    """``(host, zone, port)`` of ``host[:port]`` (RFC 3986 §3.2.2, §3.2.3): an IPv6 address in
    brackets, with an RFC 6874 zone, unescaped; ``port`` is the text after the colon, ``""``
    when there is none. A host without brackets is split at its last colon; the caller checks
    the host and the port. Raises ``InvalidRequest`` for a bracket left open, an IPv6 address
    that is not one, a bad zone, or anything but a port after the brackets."""
    if not authority.startswith("["):
        host, colon, port = authority.rpartition(":")
        return (host, "", port) if colon else (authority, "", "")
    close = authority.find("]")
    if close == -1:
        raise InvalidRequest("missing ']' in URL host", "url")
    host, zone = split_zone(authority[1:close])
    if not _ipv6_re.fullmatch(host):
        raise InvalidRequest("invalid IPv6 address in URL host", "url")
    rest = authority[close + 1 :]
    if rest and not rest.startswith(":"):
        raise InvalidRequest(f"invalid port {rest!r} after host in URL", "url")
    return host, zone, rest[1:]


def valid_port(port: str) -> bool:
    """A port of a URL: decimal digits, 1 to 65535."""
    return port.isascii() and port.isdigit() and 0 < int(port) < 65536


def bracket(host: str, zone: str = "") -> str:
    """``host`` as it stands in a URL authority: an IPv6 address in brackets, with its zone
    (RFC 6874, escaped) when it has one."""
    if zone:
        return f"[{host}%25{escape_zone(zone)}]"
    return f"[{host}]" if ":" in host else host


def join_host_port(host: str, port: int, zone: str = "") -> str:
    """Go's ``net.JoinHostPort``: ``host:port``, an IPv6 host in brackets."""
    return f"{bracket(host, zone)}:{port}"


@lru_cache(maxsize=512)
def split_target(scheme: str, rest: str) -> Target:
    """Split the part after ``scheme:`` of an http or https URL.

    Raises ``InvalidRequest`` for a missing host, a bad port, or control characters or spaces
    in the host, path or query.
    """
    if not rest.startswith("//"):
        raise InvalidRequest(_messages.NO_HOST, "url")
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter, 2)
        if found != -1 and found < end:
            end = found
    authority = rest[2:end].rpartition("@")[2]  # userinfo is never sent
    path, _, _fragment = rest[end:].partition("#")
    path, question, query = path.partition("?")

    bracketed = authority.startswith("[")
    host, zone, port_text = split_authority(authority)
    if bracketed:
        if zone or authority.endswith(":"):
            # Go's removeZone: the zone means something only on this machine, so the Host
            # field (and an absolute-form target) carries the address alone; and Go's
            # removeEmptyPort: "host:" means the default port.
            authority = f"[{host}]" + (f":{port_text}" if port_text else "")
    else:
        if authority.endswith(":"):
            authority = host  # Go's removeEmptyPort: "host:" means the default port
        if _bad_char_re.search(host):
            raise InvalidRequest("invalid control character or space in URL host", "url")
        if ":" in host:
            raise InvalidRequest("invalid port in URL: IPv6 hosts need [brackets]", "url")
    if not host:
        raise InvalidRequest(_messages.NO_HOST, "url")
    if port_text:
        if not valid_port(port_text):
            raise InvalidRequest(f"invalid port {':' + port_text!r} after host in URL", "url")
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[scheme]

    if _bad_char_re.search(path):
        raise InvalidRequest("invalid control character or space in URL path", "url")
    if _bad_char_re.search(query):
        raise InvalidRequest("invalid control character or space in URL query", "url")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidRequest("invalid international domain name in URL host", "url") from None
        authority = host + (":" + port_text if port_text else "")
    target = _percent_encode(path or "/") + (question + _percent_encode(query) if question else "")
    if not target.startswith("/"):
        target = "/" + target
    host = host.lower()
    # Go's connectMethodKey holds the zone: connections over different interfaces stay apart.
    # The zone keeps its case; interface names are case-sensitive.
    return Target(scheme, host, port, target, authority, f"{scheme}://{join_host_port(host, port, zone)}", zone)
