"""What each benchmark scenario sends and what every response must be."""

from __future__ import annotations

from typing import NamedTuple, Optional

from .servers import BODIES, POST_REPLY

__all__ = ("Scenario", "SCENARIOS", "THREADS", "TASKS")

THREADS = 8
TASKS = 64


class Scenario(NamedTuple):
    name: str  # as given to --scenarios
    label: str  # as printed in the table
    method: str
    path: str
    body: Optional[bytes]  # request body
    expect: int  # exact response body length; the status must be 200
    threads: int  # blocking clients: 1 = sequential; more = that many threads sharing one client
    batch: int  # requests between clock checks
    unit: str  # "req/s" or "MB/s": how the rate is reported
    tasks: int = 0  # asyncio clients: that many tasks on one client and one loop (0 = a blocking scenario)

    @property
    def is_async(self) -> bool:
        return self.tasks > 0


_SMALL = len(BODIES["/small"])
_POST = b"x" * 1024

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("small", "GET 13 B", "GET", "/small", None, _SMALL, 1, 20, "req/s"),
        Scenario("64k", "GET 64 KiB", "GET", "/64k", None, len(BODIES["/64k"]), 1, 5, "req/s"),
        Scenario("1m", "GET 1 MiB", "GET", "/1m", None, len(BODIES["/1m"]), 1, 1, "MB/s"),
        Scenario("post", "POST 1 KiB", "POST", "/post", _POST, len(POST_REPLY), 1, 20, "req/s"),
        Scenario("threads", f"{THREADS} threads GET 13 B", "GET", "/small", None, _SMALL, THREADS, 10, "req/s"),
        Scenario("async-small", "async GET 13 B", "GET", "/small", None, _SMALL, 1, 20, "req/s", tasks=1),
        Scenario("async-post", "async POST 1 KiB", "POST", "/post", _POST, len(POST_REPLY), 1, 20, "req/s", tasks=1),
        Scenario(f"async{TASKS}-small", f"{TASKS} tasks GET 13 B", "GET", "/small", None, _SMALL, 1, 5, "req/s", tasks=TASKS),
        Scenario(f"async{TASKS}-post", f"{TASKS} tasks POST 1 KiB", "POST", "/post", _POST, len(POST_REPLY), 1, 5, "req/s", tasks=TASKS),
    )
}
SYNC_SCENARIOS = [name for name, s in SCENARIOS.items() if not s.is_async]
ASYNC_SCENARIOS = [name for name, s in SCENARIOS.items() if s.is_async]
