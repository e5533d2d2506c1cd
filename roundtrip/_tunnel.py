"""The CONNECT handshake with an HTTP proxy (RFC 9110 §9.3.6), as a ``_handshake`` generator:
no I/O of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ._errors import HeaderTooLarge, ProtocolError, ProxyError
from ._handshake import Handshake, Receive, Send
from ._proxy import ProxyURL
from ._urls import Target, join_host_port
from ._version import USER_AGENT

if TYPE_CHECKING:
    from ._events import ResponseHead
    from ._speedups import Speedups

__all__ = ("connect_handshake",)

_READ_SIZE = 65536


def connect_handshake(target: Target, proxy: ProxyURL, max_head_bytes: int, impl: Speedups, what: str) -> Handshake[None]:
    """``CONNECT host:port`` and its response; the handshake ends once the tunnel is up.

    ``what`` names the proxy in messages. Raises ``ProxyError`` for a non-2xx answer (with the
    proxy's status line), a malformed or oversized (``max_head_bytes``) response head, bytes
    after the response, or a connection that ends first.
    """
    # Go's CONNECT carries no zone either: it means something only on this machine.
    authority = join_host_port(target.host, target.port)
    fields = [("Host", authority), ("User-Agent", USER_AGENT)]  # Go's CONNECT has one too
    if proxy.authorization is not None:
        fields.append(("Proxy-Authorization", proxy.authorization))
    yield Send(impl.encode_request_head("CONNECT", authority, fields))
    parser = impl.ResponseParser("CONNECT", max_head_bytes)
    received = 0
    while True:
        try:
            # Until the final head, the parser returns heads only (the loop ends there).
            head: Optional[ResponseHead] = parser.next_event()  # type: ignore[assignment]
        except HeaderTooLarge as exc:
            raise ProxyError(f"{what}: CONNECT response head exceeds max_response_header_bytes") from exc
        except ProtocolError as exc:
            raise ProxyError(f"{what}: bad CONNECT response: {exc}") from exc
        if head is None:
            data = yield Receive(_READ_SIZE, exact=False)
            if not data:
                if not received:
                    raise ProxyError(f"{what} closed the connection without answering CONNECT")
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
        raise ProxyError(f"{what} refused CONNECT to {authority}: {status}")
    # The origin speaks only after our TLS ClientHello, so a byte here is the proxy's.
    if parser.take_unparsed():
        raise ProxyError(f"{what} sent data after its CONNECT response")
