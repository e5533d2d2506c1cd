"""Go's retry rules as two pure functions: how a failed attempt is classified
(``persistConn.mapRoundTripError``) and whether it goes again (``shouldRetryRequest``)."""

from __future__ import annotations

from typing import Optional

__all__ = ("retry_reason", "should_retry")


def retry_reason(bytes_written: int, write_failed: bool, got_response_byte: bool) -> Optional[str]:
    """Why an attempt that failed on its connection may be retried; None when no rule applies.

    - ``"nothing_written"``: no byte of the request reached the connection (Go's
      ``nothingWrittenError``); any request whose body can be replayed may go again.
    - ``"read_from_server_failed"``: the request was written and the first read of the
      response failed (EOF or an error) before any response byte (Go's
      ``transportReadFromServerError``).
    - A write that failed part-way, or a failure after a response byte arrived: None.

    Go's third reason, ``"server_closed_idle"`` (``errServerClosedIdle``), is for a connection
    the request was given that then turned out to have been closed while idle. roundtrip
    checks for that in the same step that hands an idle connection out and replaces a closed
    one before any attempt, so no attempt fails that way.
    """
    if got_response_byte:
        return None
    if bytes_written == 0:
        return "nothing_written"
    if write_failed:
        return None
    return "read_from_server_failed"


def should_retry(reused: bool, reason: Optional[str], rewindable: bool, replayable: bool) -> bool:
    """Go's ``persistConn.shouldRetryRequest``: only on a reused connection, and then
    ``nothing_written`` for any request whose body can be replayed, the other reasons only
    for replayable requests (idempotent method or Idempotency-Key, body replayable)."""
    if not reused:
        return False  # a fresh connection's failure is the server's answer
    if reason == "nothing_written":
        return rewindable  # the server never saw it: any method may go again
    if not replayable:
        return False  # not idempotent, or the body is gone
    return reason in ("server_closed_idle", "read_from_server_failed")
