"""Messages defined once for both twins: the response parser's errors, and the validation
errors with the part of the request they name.

``_speedups_py`` and the compiled ``_speedups_c`` take these at import, so the two raise the
same class with the same text for the same input.
"""

from __future__ import annotations

import json

from ._errors import InvalidRequest

BAD_HEAD = "malformed response head"
# A head whose lines all parse but whose Content-Length is invalid or conflicting (RFC 9110
# §8.6); named apart so that an adapter can raise what its library raises for it.
BAD_CONTENT_LENGTH = "malformed response head: invalid or conflicting Content-Length"
BAD_CHUNKED = "malformed chunked body"
CLOSED_IN_HEAD = "server closed the connection inside the response head"
CLOSED_IN_BODY = "server closed the connection inside a chunked body"
HEAD_TOO_LARGE = "response head too large"
LINE_TOO_LONG = "chunk header or trailers too large"
# Go's parseHexUint: a chunk size is at most 16 hex digits (64 bits), leading zeros aside.
CHUNK_SIZE_TOO_LARGE = "chunk size too large"
# Feeding bytes after feed_eof() is a caller's bug (h11 words it the same way).
FED_AFTER_EOF = "received close, then received more data?"


# The URL has no host (Go's "http: no Host in request URL").
NO_HOST = "no Host in request URL"

# Validation before any I/O (Go's httpguts rules and validMethod). Names and methods are quoted
# as JSON quotes them; a header value is never echoed: it may be a secret.


def invalid_method(method: str) -> InvalidRequest:
    return InvalidRequest(f"invalid method {json.dumps(method)}", "method")


def invalid_header_name(name: str) -> InvalidRequest:
    return InvalidRequest(f"invalid header field name {json.dumps(name)}", "header")


def invalid_header_value(name: str) -> InvalidRequest:
    return InvalidRequest(f"invalid header field value for key {json.dumps(name)}", "header")


def unencodable_header_value(name: str) -> InvalidRequest:
    return InvalidRequest(f"header field value for key {json.dumps(name)} cannot be encoded as latin-1", "header")
