"""What each benchmark scenario sends and what every response must be."""

from __future__ import annotations

from typing import NamedTuple, Optional

from .servers import BODIES, POST_REPLY

__all__ = ("Scenario", "SCENARIOS", "THREADS")

THREADS = 8


class Scenario(NamedTuple):
    name: str  # as given to --scenarios
    label: str  # as printed in the table
    method: str
    path: str
    body: Optional[bytes]  # request body
    expect: int  # exact response body length; the status must be 200
    threads: int  # 1 = sequential; more = that many threads sharing one client
    batch: int  # requests between clock checks
    unit: str  # "req/s" or "MB/s": how the rate is reported


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("small", "GET 13 B", "GET", "/small", None, len(BODIES["/small"]), 1, 20, "req/s"),
        Scenario("64k", "GET 64 KiB", "GET", "/64k", None, len(BODIES["/64k"]), 1, 5, "req/s"),
        Scenario("1m", "GET 1 MiB", "GET", "/1m", None, len(BODIES["/1m"]), 1, 1, "MB/s"),
        Scenario("post", "POST 1 KiB", "POST", "/post", b"x" * 1024, len(POST_REPLY), 1, 20, "req/s"),
        Scenario("threads", f"{THREADS} threads GET 13 B", "GET", "/small", None, len(BODIES["/small"]), THREADS, 10, "req/s"),
    )
}
