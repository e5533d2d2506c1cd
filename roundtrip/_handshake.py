"""Proxy handshakes as state, with no I/O (the CONNECT of ``_tunnel``, the SOCKS5 of ``_socks``).

A handshake is a generator. It yields what it needs done, ``Send(data)``,
``Receive(size, exact)`` or ``Resolve(host, port)``, and is sent back the bytes received
(``b""`` at EOF for a receive that is not ``exact``; an ``exact`` one gets exactly ``size``
bytes, or the driver fails the handshake), or the address the name resolved to. What the generator returns is the handshake's result. A shell drives it on its
connection, with its own deadlines and cancellation: ``_dial.run_handshake`` on a socket, and
an event loop can drive the same generator.
"""

from __future__ import annotations

from typing import Any, Generator, NamedTuple, TypeVar, Union, final

__all__ = ("Send", "Receive", "Resolve", "Handshake")


# Final, so that ``type(step) is Send`` narrows the step for the type checker.
@final
class Send(NamedTuple):
    """Send all of ``data``."""

    data: bytes


@final
class Receive(NamedTuple):
    """Receive ``size`` bytes, exactly, or (not ``exact``) at most ``size`` and ``b""`` at EOF."""

    size: int
    exact: bool = True


@final
class Resolve(NamedTuple):
    """Look ``host`` up as the dial would, and send back its first address (a str)."""

    host: str
    port: int


_T = TypeVar("_T")

# Handshake[result type]: sent bytes after a Receive, an address (str) after a Resolve.
Handshake = Generator[Union[Send, Receive, Resolve], Any, _T]
