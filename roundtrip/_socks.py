"""The client side of a SOCKS5 handshake: RFC 1928, with RFC 1929 username/password.

The handshake is written against two callables, ``send(data)`` and ``recv_exactly(n)``, so it
does no I/O of its own: the caller owns the socket, its deadlines and its cancellation. Every
read asks for exactly the bytes the protocol announces, so nothing of the tunnel that follows
is ever consumed here.
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Optional

from ._errors import ProxyError

__all__ = ("socks5_connect", "REPLY_MEANINGS")

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


def _authenticate(send: Callable[[bytes], None], recv_exactly: Callable[[int], bytes], username: str, password: str) -> None:
    """RFC 1929 §2: VER=1, ULEN, UNAME, PLEN, PASSWD; the reply's STATUS 0 is success."""
    user = username.encode("utf-8")
    secret = password.encode("utf-8")
    # RFC 1929 asks for 1..255 bytes each; like Go, an empty password is let through.
    if not 0 < len(user) <= 255 or len(secret) > 255:
        raise ProxyError("SOCKS5 username must be 1 to 255 bytes and password at most 255 bytes")
    send(bytes((_AUTH_VERSION, len(user))) + user + bytes((len(secret),)) + secret)
    _version, status = recv_exactly(2)
    if status != 0:
        raise ProxyError("SOCKS5 proxy rejected the username and password")


def socks5_connect(
    send: Callable[[bytes], None],
    recv_exactly: Callable[[int], bytes],
    host: "str | Callable[[], str]",
    port: int,
    username: Optional[str] = None,
    password: str = "",
) -> None:
    """Ask the proxy to connect to ``host:port``; return once the tunnel is open.

    ``host`` is sent as an address when it is an IP literal and as a name otherwise. With a
    ``username``, username/password authentication is offered besides "no authentication".
    ``host`` may be a callable giving the host once the greeting is done: a name resolved on
    this side is then looked up after the proxy has been reached, in the order PySocks and
    urllib3 use, so a failed lookup happens on a live proxy connection.
    ``recv_exactly`` must return exactly ``n`` bytes or raise. Raises ``ProxyError`` for every
    refusal or protocol violation, naming the RFC 1928 reply when there is one.
    """
    methods = bytes((_NO_AUTH, _USERNAME_PASSWORD)) if username is not None else bytes((_NO_AUTH,))
    # RFC 1928 §3: VER, NMETHODS, METHODS.
    send(bytes((_VERSION, len(methods))) + methods)
    version, method = recv_exactly(2)
    if version != _VERSION:
        raise ProxyError(f"SOCKS5 proxy answered with protocol version {version}")
    if method == _NO_ACCEPTABLE:
        raise ProxyError("SOCKS5 proxy accepts none of the offered authentication methods")
    if method not in methods:
        raise ProxyError(f"SOCKS5 proxy chose authentication method {method:#04x}, which was not offered")
    if method == _USERNAME_PASSWORD:
        assert username is not None
        _authenticate(send, recv_exactly, username, password)

    if callable(host):
        host = host()
    # RFC 1928 §4: VER, CMD, RSV, ATYP, DST.ADDR, DST.PORT (network byte order).
    send(bytes((_VERSION, _CMD_CONNECT, 0x00)) + _address(host) + port.to_bytes(2, "big"))
    # RFC 1928 §6: VER, REP, RSV, ATYP, BND.ADDR, BND.PORT.
    version, reply, _reserved, address_type = recv_exactly(4)
    if version != _VERSION:
        raise ProxyError(f"SOCKS5 proxy answered with protocol version {version}")
    if reply != 0x00:
        meaning = REPLY_MEANINGS.get(reply, "unassigned reply code")
        raise ProxyError(f"SOCKS5 proxy could not connect to {_display(host, port)}: {meaning} ({reply:#04x})")
    if address_type == _ATYP_IPV4:
        recv_exactly(4 + 2)
    elif address_type == _ATYP_IPV6:
        recv_exactly(16 + 2)
    elif address_type == _ATYP_DOMAIN:
        recv_exactly(recv_exactly(1)[0] + 2)
    else:
        raise ProxyError(f"SOCKS5 proxy replied with unknown address type {address_type:#04x}")


def _display(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
