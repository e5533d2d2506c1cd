"""``Trace``: hooks into the life of one request (Go's ``net/http/httptrace``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from ._headers import Headers

__all__ = ("Trace", "GotConnInfo", "HOOKS")

HOOKS = (
    "get_conn",
    "got_conn",
    "put_idle_conn",
    "dns_start",
    "dns_done",
    "connect_start",
    "connect_done",
    "tls_handshake_start",
    "tls_handshake_done",
    "wrote_headers",
    "wait_100_continue",
    "got_100_continue",
    "got_1xx_response",
    "wrote_request",
    "got_first_response_byte",
    "retried",
)


class Trace:
    """Callbacks run on the calling thread as a request progresses.

    Every hook is an optional keyword argument (see ``HOOKS``); an exception raised by a hook
    propagates out of ``round_trip`` and the connection is closed.

    ``retried(reason, attempt)`` runs before a failed attempt on a reused connection goes
    again on another connection (``attempt`` is 1 for the first retry). ``reason`` follows
    Go's classification of the failure:

    - ``"nothing_written"``: no byte of the request reached the connection; any request whose
      body can be replayed goes again, POST included.
    - ``"read_from_server_failed"``: the request was written, then the connection ended (EOF
      or an error) before the first byte of a response; only replayable requests (GET, HEAD,
      OPTIONS, TRACE, or an ``Idempotency-Key``) go again.
    - ``"server_closed_idle"``: Go's name for a connection that turns out to have been closed
      by the server while idle after the request was given it. roundtrip checks an idle
      connection in the same step that hands it out and replaces a closed one without an
      attempt, so its transports do not report this reason; the name is kept for round
      trippers that can.

    A write that broke part-way, or a failure after a response byte arrived, is never retried.
    """

    __slots__ = HOOKS

    # What a hook returns is ignored.
    get_conn: Optional[Callable[[str], object]]
    got_conn: Optional[Callable[["GotConnInfo"], object]]
    put_idle_conn: Optional[Callable[[Optional[BaseException]], object]]
    dns_start: Optional[Callable[[str], object]]
    dns_done: Optional[Callable[[list[str], Optional[BaseException]], object]]
    connect_start: Optional[Callable[[tuple[str, int]], object]]
    connect_done: Optional[Callable[[tuple[str, int], Optional[BaseException]], object]]
    tls_handshake_start: Optional[Callable[[], object]]
    tls_handshake_done: Optional[Callable[[Optional[BaseException]], object]]
    wrote_headers: Optional[Callable[[], object]]
    wait_100_continue: Optional[Callable[[], object]]
    got_100_continue: Optional[Callable[[], object]]
    got_1xx_response: Optional[Callable[[int, "Headers"], object]]
    wrote_request: Optional[Callable[[Optional[BaseException]], object]]
    got_first_response_byte: Optional[Callable[[], object]]
    retried: Optional[Callable[[str, int], object]]

    def __init__(self, **hooks: Callable[..., object]) -> None:
        unknown = set(hooks) - set(HOOKS)
        if unknown:
            raise TypeError(f"unknown trace hook(s): {', '.join(sorted(unknown))}")
        for name in HOOKS:
            hook = hooks.get(name)
            if hook is not None and not callable(hook):
                raise TypeError(f"trace hook {name} must be callable")
            setattr(self, name, hook)


class GotConnInfo:
    """What ``Trace.got_conn`` learns about the connection a request got."""

    __slots__ = ("reused", "was_idle", "idle_time", "tls_version")

    def __init__(self, reused: bool, was_idle: bool, idle_time: float, tls_version: Optional[str] = None) -> None:
        self.reused = reused
        self.was_idle = was_idle
        self.idle_time = idle_time
        #: The TLS version the connection negotiated with the origin ("TLSv1.3"), or None
        #: for plain HTTP (Go hands the whole ``tls.ConnectionState`` to ``TLSHandshakeDone``).
        self.tls_version = tls_version

    def __repr__(self) -> str:
        return (
            f"GotConnInfo(reused={self.reused}, was_idle={self.was_idle}, idle_time={self.idle_time:.6f}, "
            f"tls_version={self.tls_version!r})"
        )
