"""Messages of the response parser's errors, defined once for both twins.

``_speedups_py`` and the compiled ``_speedups_c`` take these at import, so the two raise the
same text for the same bytes.
"""

from __future__ import annotations

BAD_HEAD = "malformed response head"
BAD_CHUNKED = "malformed chunked body"
CLOSED_IN_HEAD = "server closed the connection inside the response head"
CLOSED_IN_BODY = "server closed the connection inside a chunked body"
HEAD_TOO_LARGE = "response head too large"
LINE_TOO_LONG = "chunk header or trailers too large"
# Go's parseHexUint: a chunk size is at most 16 hex digits (64 bits), leading zeros aside.
CHUNK_SIZE_TOO_LARGE = "chunk size too large"
# Feeding bytes after feed_eof() is a caller's bug (h11 words it the same way).
FED_AFTER_EOF = "received close, then received more data?"
