"""The client side of a SOCKS5 handshake: RFC 1928, with RFC 1929 username/password.

The handshake is a generator of ``_handshake`` steps, so it does no I/O of its own: the shell
that drives it owns the connection, its deadlines and its cancellation. Every read asks for
exactly the bytes the protocol announces, so nothing of the tunnel that follows is ever
consumed here.
"""

from __future__ import annotations

import ipaddress
from typing import Optional

from ._errors import ProxyError
from ._handshake import Handshake, Receive, Resolve, Send
from ._urls import join_host_port

__all__ = ("socks5_handshake", "REPLY_MEANINGS")

_VERSION = 0x05
# RFC 1928 §3: METHOD values.
_NO_AUTH = 0x00
_USERNAME_PASSWORD = 0x02
_NO_ACCEPTABLE = 0xFF
# RFC 1928 §4: CMD and ATYP values.
_CMD_CONNECT = 0x01
_ATYP_IPV4 = 0x01
_ATYP_DOMAIN = 0x03
_ATYP_IPV6 = 0x04
# RFC 1929 §2: the sub-negotiation has its own version.
_AUTH_VERSION = 0x01

# RFC 1928 §6: the REP field of a reply.
REPLY_MEANINGS = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused",
    0x06: "TTL expired",
    0x07: "command not supported",
    0x08: "address type not supported",
}


def _address(host: str) -> bytes:
    """ATYP and DST.ADDR for ``host``: an IP literal as such, anything else as a domain name
    the proxy resolves (RFC 1928 §5)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("ascii")  # URL hosts are IDNA-encoded before they get here
        if not 0 < len(name) <= 255:
            raise ProxyError(f"SOCKS5 cannot carry a host name of {len(name)} bytes") from None
        return bytes((_ATYP_DOMAIN, len(name))) + name
    if ip.version == 4:
        return bytes((_ATYP_IPV4,)) + ip.packed
    return bytes((_ATYP_IPV6,)) + ip.packed


def _authenticate(username: str, password: str) -> Handshake[None]:
    """RFC 1929 §2: VER=1, ULEN, UNAME, PLEN, PASSWD; the reply's STATUS 0 is success."""
    user = username.encode("utf-8")
    secret = password.encode("utf-8")
    # RFC 1929 asks for 1..255 bytes each; like Go, an empty password is let through.
    if not 0 < len(user) <= 255 or len(secret) > 255:
        raise ProxyError("SOCKS5 username must be 1 to 255 bytes and password at most 255 bytes")
    yield Send(bytes((_AUTH_VERSION, len(user))) + user + bytes((len(secret),)) + secret)
    _version, status = yield Receive(2)
    if status != 0:
        raise ProxyError("SOCKS5 proxy rejected the username and password")


def socks5_handshake(host: str, port: int, username: Optional[str] = None, password: str = "", resolve: bool = False) -> Handshake[None]:
    """Ask the proxy to connect to ``host:port``; the handshake ends once the tunnel is open.

    ``host`` is sent as an address when it is an IP literal and as a name otherwise; with
    ``resolve`` (``socks5://``, not ``socks5h://``) a name is looked up here first, once the
    proxy has answered the greeting (PySocks' and urllib3's order: a failed lookup happens on
    a live proxy connection). With a ``username``, username/password authentication is
    offered besides "no authentication".
    Raises ``ProxyError`` for every refusal or protocol violation, naming the RFC 1928 reply
    when there is one.
    """
    methods = bytes((_NO_AUTH, _USERNAME_PASSWORD)) if username is not None else bytes((_NO_AUTH,))
    # RFC 1928 §3: VER, NMETHODS, METHODS.
    yield Send(bytes((_VERSION, len(methods))) + methods)
    version, method = yield Receive(2)
    if version != _VERSION:
        raise ProxyError(f"SOCKS5 proxy answered with protocol version {version}")
    if method == _NO_ACCEPTABLE:
        raise ProxyError("SOCKS5 proxy accepts none of the offered authentication methods")
    if method not in methods:
        raise ProxyError(f"SOCKS5 proxy chose authentication method {method:#04x}, which was not offered")
    if method == _USERNAME_PASSWORD:
        assert username is not None
        yield from _authenticate(username, password)
    if resolve:
        host = yield Resolve(host, port)

    # RFC 1928 §4: VER, CMD, RSV, ATYP, DST.ADDR, DST.PORT (network byte order).
    yield Send(bytes((_VERSION, _CMD_CONNECT, 0x00)) + _address(host) + port.to_bytes(2, "big"))
    # RFC 1928 §6: VER, REP, RSV, ATYP, BND.ADDR, BND.PORT.
    version, reply, _reserved, address_type = yield Receive(4)
    if version != _VERSION:
        raise ProxyError(f"SOCKS5 proxy answered with protocol version {version}")
    if reply != 0x00:
        meaning = REPLY_MEANINGS.get(reply, "unassigned reply code")
        raise ProxyError(f"SOCKS5 proxy could not connect to {join_host_port(host, port)}: {meaning} ({reply:#04x})")
    # BND.ADDR and BND.PORT: read to the end of the reply, not used.
    if address_type == _ATYP_IPV4:
        yield Receive(4 + 2)
    elif address_type == _ATYP_IPV6:
        yield Receive(16 + 2)
    elif address_type == _ATYP_DOMAIN:
        length = yield Receive(1)
        yield Receive(length[0] + 2)
    else:
        raise ProxyError(f"SOCKS5 proxy replied with unknown address type {address_type:#04x}")
