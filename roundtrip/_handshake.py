"""Proxy handshakes as state, with no I/O (the CONNECT of ``_tunnel``, the SOCKS5 of ``_socks``).

A handshake is a generator. It yields what it needs done, ``Send(data)`` or
``Receive(size, exact)``, and is sent back the bytes received (``b""`` at EOF for a receive that
is not ``exact``; an ``exact`` one gets exactly ``size`` bytes, or the driver fails the
handshake). What the generator returns is the handshake's result. A shell drives it on its
connection, with its own deadlines and cancellation: ``_dial.run_handshake`` on a socket, and
an event loop can drive the same generator.
"""

from __future__ import annotations

from typing import Generator, NamedTuple, TypeVar, Union, final

__all__ = ("Send", "Receive", "Handshake")


# Final, so that ``type(step) is Send`` tells the type checker the other step is a Receive.
@final
class Send(NamedTuple):
    """Send all of ``data``."""

    data: bytes


@final
class Receive(NamedTuple):
    """Receive ``size`` bytes, exactly, or (not ``exact``) at most ``size`` and ``b""`` at EOF."""

    size: int
    exact: bool = True


_T = TypeVar("_T")

Handshake = Generator[Union[Send, Receive], bytes, _T]  # Handshake[result type]
