"""Splitting request URLs into what the wire and the pool need, checked before any I/O.

``urllib.parse`` silently strips tabs and newlines from URLs; a transport must refuse them
instead, so the split is done here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from ._errors import InvalidRequest

__all__ = ("Target", "split_scheme", "split_target", "DEFAULT_PORTS")

DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_scheme_re = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# Control characters (tab, CR and LF included) and spaces are refused, never stripped.
_bad_char_re = re.compile(r"[\x00-\x20\x7f]")
# RFC 3986 §3.2.2 IP-literal, with an RFC 6874 zone: hex digits, colons, dots, "%" and zone chars.
_ipv6_re = re.compile(r"[0-9A-Fa-f:.]+(%25[A-Za-z0-9\-._~%]+|%[A-Za-z0-9\-._~]+)?")
_non_ascii_re = re.compile(r"[^\x00-\x7f]+")


class Target(NamedTuple):
    """Where a request goes and what its request line and Host field say."""

    scheme: str  # "http" or "https"
    host: str  # lowercase; IPv6 without brackets
    port: int
    path: str  # origin-form request target: path and query, never empty
    authority: str  # host[:port] as written, IPv6 in brackets, without userinfo
    key: str  # pool key: scheme://host:port, IPv6 in brackets


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


def _percent_encode(text: str) -> str:
    # Go's EscapedPath: non-ASCII goes on the wire as percent-encoded UTF-8.
    return _non_ascii_re.sub(
        lambda m: "".join(f"%{byte:02X}" for byte in m.group().encode("utf-8")), text
    )


@lru_cache(maxsize=512)
def split_target(scheme: str, rest: str) -> Target:
    """Split the part after ``scheme:`` of an http or https URL.

    Raises ``InvalidRequest`` for a missing host, a bad port, or control characters or spaces
    in the host, path or query.
    """
    if not rest.startswith("//"):
        raise InvalidRequest("no Host in request URL")
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter, 2)
        if found != -1 and found < end:
            end = found
    authority = rest[2:end].rpartition("@")[2]  # userinfo is never sent
    path, _, _fragment = rest[end:].partition("#")
    path, question, query = path.partition("?")

    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            raise InvalidRequest("missing ']' in URL host")
        host = authority[1:close]
        if not _ipv6_re.fullmatch(host):
            raise InvalidRequest("invalid IPv6 address in URL host")
        port_text = authority[close + 1 :]
        if port_text and not port_text.startswith(":"):
            raise InvalidRequest(f"invalid port {port_text!r} after host in URL")
        port_text = port_text[1:]
    else:
        host, colon, port_text = authority.rpartition(":")
        if not colon:
            host, port_text = authority, ""
        elif not port_text:
            authority = host  # Go's removeEmptyPort: "host:" means the default port
        if _bad_char_re.search(host):
            raise InvalidRequest("invalid control character or space in URL host")
        if ":" in host:
            raise InvalidRequest("invalid port in URL: IPv6 hosts need [brackets]")
    if not host:
        raise InvalidRequest("no Host in request URL")
    if port_text:
        if not port_text.isdigit() or not port_text.isascii() or not 0 < int(port_text) < 65536:
            raise InvalidRequest(f"invalid port {':' + port_text!r} after host in URL")
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[scheme]

    if _bad_char_re.search(path):
        raise InvalidRequest("invalid control character or space in URL path")
    if _bad_char_re.search(query):
        raise InvalidRequest("invalid control character or space in URL query")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidRequest("invalid international domain name in URL host") from None
        authority = host + (":" + port_text if port_text else "")
    target = _percent_encode(path or "/") + (question + _percent_encode(query) if question else "")
    if not target.startswith("/"):
        target = "/" + target
    host = host.lower()
    bracketed = f"[{host}]" if ":" in host else host
    return Target(scheme, host, port, target, authority, f"{scheme}://{bracketed}:{port}")
