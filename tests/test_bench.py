"""``roundtrip bench`` beyond its smallest run (tests/test_cli.py): the async scenarios, the
peers and the notes for those missing, the targets, the raw asyncio floor, and the commands the
documentation shows. Every run here is the hidden smoke mode, a few requests per cell; nothing
is timed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import roundtrip
from roundtrip._bench import main as bench_main
from roundtrip._bench.aclients import HTTPXNullAsyncClient, HTTPXRoundtripAsyncClient, _FloorProtocol
from roundtrip._bench.scenarios import SCENARIOS
from roundtrip._bench.targets import evaluate
from servers import ScriptedServer, keep_alive_handler

# The bench runs each implementation in processes of its own: one parameter is enough.
pytestmark = pytest.mark.once(impl="py")

ROOT = Path(__file__).resolve().parents[1]
HINT = "not installed: pip install 'roundtrip-http[bench]'"

# A sitecustomize that makes the named top-level modules look uninstalled, in the bench and in
# every worker it starts (they inherit PYTHONPATH).
HIDE = """\
import sys

class _Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Hidden())
"""


def _bench(tmp_path: Path, *args: str, hide: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE.format(names=set(hide)))
    report_path = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{ROOT}")
    result = subprocess.run(
        [sys.executable, "-m", "roundtrip", "bench", "--smoke", "--no-progress", "--json", str(report_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, json.loads(report_path.read_text())


def test_async_scenarios_have_a_row_per_loop_and_client_and_missing_ones_are_noted(tmp_path):
    out, report = _bench(
        tmp_path,
        "--clients", "roundtrip-c", "httpx", "pycurl",
        "--scenarios", "small", "async-small", "async64-post",
        hide=("pycurl", "uvloop"),
    )
    assert report["errors"] == []
    assert list(report["results"]) == ["small", "async-small", "async64-post"]
    has_async = hasattr(roundtrip, "AsyncTransport")
    expected = {"raw@asyncio", "httpx@asyncio"} | ({"roundtrip-c@asyncio"} if has_async else set())
    for scenario in ("async-small", "async64-post"):
        cells = report["results"][scenario]
        assert set(cells) == expected, scenario
        assert cells["raw@asyncio"]["cpu_vs_raw"] == 1.0
        for cell in cells.values():
            assert cell["checked"] >= cell["runs"][0]["requests"] > 0 and cell["cpu_vs_py"] is None
    # The 64 tasks each sent at least one measured request.
    assert report["results"]["async64-post"]["raw@asyncio"]["runs"][0]["requests"] >= 64
    assert set(report["results"]["small"]) == {"raw", "roundtrip-c", "httpx"}

    # Two tables: the blocking one as before, the async one with the loop and ×floor columns.
    assert re.search(r"^\| scenario +\| client +\| CPU µs/req \| CPU ×raw \| CPU ×py \| +rate \| rate ×raw \| checked \|$", out, re.M)
    assert re.search(r"^\| async scenario +\| loop +\| client +\| CPU µs/req \| CPU ×floor \| +rate \| rate ×floor \| checked \|$", out, re.M)
    assert re.search(r"^\| 64 tasks POST 1 KiB +\| asyncio \| raw +\| .* req/s \| +1\.00× \|", out, re.M)
    assert re.search(r"^\| +\| asyncio \| httpx +\|", out, re.M)
    assert "uvloop  |" not in out
    # Skipped, with what to install.
    assert f"  pycurl: skipped ({HINT})" in out
    assert f"  uvloop (event loop): skipped ({HINT})" in out
    assert report["skipped"]["pycurl"] == HINT
    if not has_async:
        assert "  roundtrip-c (asyncio): skipped (this roundtrip has no roundtrip.AsyncTransport)" in out

    targets = {target["target"]: target for target in report["targets"]}
    assert "asyncio, 64 tasks POST 1 KiB: CPU per request vs the asyncio floor" in targets
    assert "uvloop, async GET 13 B: CPU per request vs the uvloop floor" in targets
    assert targets["uvloop, async GET 13 B: CPU per request vs the uvloop floor"]["met"] is None
    assert re.search(r"^  uvloop, async GET 13 B: CPU per request vs the uvloop floor +target <= 1\.50 +measured +— +not measured$", out, re.M)


def test_no_async_runs_only_the_blocking_scenarios(tmp_path):
    out, report = _bench(tmp_path, "--no-async", "--clients", "raw")
    assert list(report["results"]) == ["small", "64k", "1m", "post", "threads"]
    assert "async scenario" not in out and not any("@" in key for key in report["skipped"])


def test_list_names_the_async_clients_the_loops_and_the_scenarios(capsys):
    assert bench_main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "blocking clients:\n" in out and "async clients:\n" in out and "event loops:\n" in out
    for name in ("pyreqwest", "rnet", "curl_cffi", "httpr", "pycurl", "uvloop", "async64-small", "async-post"):
        assert re.search(rf"^  {re.escape(name)} ", out, re.M), name


def _feed(protocol: _FloorProtocol, data: bytes, step: int) -> None:
    """As the loop does: ask for a buffer, fill at most what it has room for, report it."""
    at = 0
    while at < len(data):
        buffer = protocol.get_buffer(-1)
        piece = data[at : at + min(step, len(buffer))]
        buffer[: len(piece)] = piece
        protocol.buffer_updated(len(piece))
        at += len(piece)


@pytest.mark.parametrize("step", [1, 7, 1 << 20])
def test_the_async_floor_frames_responses_by_content_length_however_they_arrive(step):
    loop = asyncio.new_event_loop()
    try:
        protocol = _FloorProtocol()
        body = bytes(range(256)) * 300  # larger than the first buffer
        for status, payload in ((200, b"Hello, World!"), (404, body), (200, b"")):
            protocol.waiter = waiter = loop.create_future()
            head = f"HTTP/1.1 {status} X\r\nServer: t\r\ncontent-length: {len(payload)}\r\n\r\n".encode()
            _feed(protocol, head + payload, step)
            assert waiter.result() == (status, len(payload))
            assert protocol.used == 0 and protocol.total == -1
    finally:
        loop.close()


def _cell(*values: float, metric: str = "cpu_us") -> dict[str, Any]:
    other = "rate" if metric == "cpu_us" else "cpu_us"
    return {"runs": [{"run": i, metric: v, other: 1.0} for i, v in enumerate(values)]}


def test_targets_against_every_peer_name_the_peer_that_comes_closest():
    clients = {
        "raw": {"role": "floor", "loop": None},
        "roundtrip-c": {"role": "roundtrip", "loop": None},
        "pycurl": {"role": "peer", "loop": None},
        "urllib3": {"role": "peer", "loop": None},
        "httpx+nothing": {"role": "cost", "loop": None},
        "raw@uvloop": {"role": "floor", "loop": "uvloop"},
        "roundtrip-c@uvloop": {"role": "roundtrip", "loop": "uvloop"},
        "aiohttp@uvloop": {"role": "peer", "loop": "uvloop"},
        "aiohttp@asyncio": {"role": "peer", "loop": "asyncio"},
    }
    results = {
        "small": {"raw": _cell(30, 30, 30), "roundtrip-c": _cell(50, 60, 40), "pycurl": _cell(40, 40, 40), "urllib3": _cell(200, 200, 200), "httpx+nothing": _cell(1, 1, 1)},
        "async64-small": {
            "raw@uvloop": _cell(10, 10, 10, metric="rate"),
            "roundtrip-c@uvloop": _cell(9, 9, 9, metric="rate"),
            "aiohttp@uvloop": _cell(8, 8, 8, metric="rate"),
            "aiohttp@asyncio": _cell(100, 100, 100, metric="rate"),
        },
    }
    targets = {t["target"]: t for t in evaluate({"results": results, "clients": clients})}
    # Only the scenarios measured are judged.
    assert all(t["scenario"] in results for t in targets.values())
    vs_peers = targets["GET 13 B: CPU per request vs every peer"]
    assert (vs_peers["ratio"], vs_peers["against"], vs_peers["met"]) == (1.25, "pycurl", False)  # median of 50/40, 60/40, 40/40
    vs_floor = targets["GET 13 B: CPU per request vs the raw floor"]
    assert vs_floor["ratio"] == pytest.approx(50 / 30) and vs_floor["bound"] == "<= 1.30" and vs_floor["met"] is False
    # Under uvloop only uvloop's peers count: aiohttp under asyncio's loop is faster but not compared.
    uv = targets["uvloop, 64 tasks GET 13 B: req/s vs every peer"]
    assert (uv["ratio"], uv["against"], uv["met"]) == (9 / 8, "aiohttp", True)
    assert targets["asyncio, 64 tasks GET 13 B: req/s vs every peer"]["met"] is None


ADAPTER_TARGET = "CPU per request, {lib}+roundtrip − {lib}+nothing vs roundtrip-c"


def test_adapter_targets_subtract_the_librarys_own_cost_run_by_run():
    clients = {
        "roundtrip-c": {"role": "roundtrip", "loop": None},
        "httpx+roundtrip": {"role": "adapter", "loop": None},
        "httpx+nothing": {"role": "cost", "loop": None},
        "requests+roundtrip": {"role": "adapter", "loop": None},
        "roundtrip-c@uvloop": {"role": "roundtrip", "loop": "uvloop"},
        "httpx+roundtrip@uvloop": {"role": "adapter", "loop": "uvloop"},
        "httpx+nothing@uvloop": {"role": "cost", "loop": "uvloop"},
        "httpx+nothing@asyncio": {"role": "cost", "loop": "asyncio"},
        "httpx@uvloop": {"role": "peer", "loop": "uvloop"},
    }
    results = {
        "small": {
            "roundtrip-c": _cell(30, 40, 30),
            "httpx+roundtrip": _cell(100, 120, 90),
            "httpx+nothing": _cell(60, 60, 60),
            "requests+roundtrip": _cell(300, 300, 300),  # requests+nothing not measured
        },
        "async64-small": {
            "roundtrip-c@uvloop": _cell(20, 20, 20),
            "httpx+roundtrip@uvloop": _cell(120, 125, 130),
            "httpx+nothing@uvloop": _cell(100, 100, 100),
            "httpx+nothing@asyncio": _cell(1, 1, 1),  # another loop's: not subtracted
            "httpx@uvloop": _cell(1000, 1000, 1000),
        },
    }
    targets = {t["target"]: t for t in evaluate({"results": results, "clients": clients})}
    httpx = targets["GET 13 B: " + ADAPTER_TARGET.format(lib="httpx")]
    # Per run: (100-60)/30, (120-60)/40, (90-60)/30; the median is 4/3.
    assert httpx["ratio"] == pytest.approx(4 / 3) and httpx["bound"] == "<= 1.30" and httpx["met"] is False
    assert httpx["against"] is None
    requests = targets["GET 13 B: " + ADAPTER_TARGET.format(lib="requests")]
    assert (requests["ratio"], requests["met"]) == (None, None)
    uv = targets["uvloop, 64 tasks GET 13 B: " + ADAPTER_TARGET.format(lib="httpx")]
    assert uv["ratio"] == pytest.approx(25 / 20) and uv["met"] is True
    assert targets["asyncio, 64 tasks GET 13 B: " + ADAPTER_TARGET.format(lib="httpx")]["met"] is None
    # The adapter and the do-nothing transport are not peers: httpx alone decides.
    assert targets["uvloop, 64 tasks GET 13 B: req/s vs every peer"]["against"] == "httpx"


def test_the_adapter_targets_cover_both_adapters_blocking_and_httpx_async_under_every_loop():
    from roundtrip._bench.registry import LOOPS
    from roundtrip._bench.targets import TARGETS

    adapter = {(t.scenario, t.client, t.minus, t.reference, t.bound) for t in TARGETS if t.minus is not None}
    expected = {(s, f"{lib}+roundtrip", f"{lib}+nothing", "roundtrip-c", 1.3) for s in ("small", "post") for lib in ("httpx", "requests")}
    expected |= {
        (name, f"httpx+roundtrip@{loop}", f"httpx+nothing@{loop}", f"roundtrip-c@{loop}", 1.3)
        for loop in LOOPS
        for name, scenario in SCENARIOS.items()
        if scenario.is_async
    }
    assert adapter == expected


def test_async_httpx_over_roundtrip_sends_every_request_and_over_nothing_replays_one_recording():
    pytest.importorskip("httpx")
    server = ScriptedServer(keep_alive_handler(b"Hello, World!", [("Content-Type", "text/plain")]))

    async def main() -> "tuple[list[tuple[int, int]], list[tuple[int, int]], str]":
        seen = []
        for cls in (HTTPXRoundtripAsyncClient, HTTPXNullAsyncClient):
            client = cls("127.0.0.1", server.port)
            await client.open()
            try:
                call = await client.bind("GET", "/small", None)
                post = await client.bind("POST", "/post", b"x" * 1024)
                seen.append([await call(), await call(), await post(), await call()])
                version = client.version()
            finally:
                await client.aclose()
        return seen[0], seen[1], version

    try:
        over_roundtrip, over_nothing, version = asyncio.run(main())
    finally:
        server.close()
    assert over_roundtrip == over_nothing == [(200, 13)] * 4
    # Four through roundtrip, then one GET and one POST recorded: nothing else left the process.
    assert [r.head.split(b" ", 2)[:2] for r in server.received] == [
        [b"GET", b"/small"], [b"GET", b"/small"], [b"POST", b"/post"], [b"GET", b"/small"], [b"GET", b"/small"], [b"POST", b"/post"],
    ]
    assert version.endswith(", do-nothing transport")


def test_async_adapter_rows_and_every_adapter_target_show_in_a_run(tmp_path):
    pytest.importorskip("httpx")
    pytest.importorskip("requests")
    out, report = _bench(
        tmp_path,
        "--clients", "roundtrip-c", "httpx+roundtrip", "httpx+nothing", "requests+roundtrip", "requests+nothing",
        "--scenarios", "small", "async-small", "async64-small",
        hide=("uvloop",),
    )
    assert report["errors"] == []
    assert set(report["results"]["small"]) == {"raw", "roundtrip-c", "httpx+roundtrip", "httpx+nothing", "requests+roundtrip", "requests+nothing"}
    for scenario in ("async-small", "async64-small"):
        assert set(report["results"][scenario]) == {"raw@asyncio", "roundtrip-c@asyncio", "httpx+roundtrip@asyncio", "httpx+nothing@asyncio"}
    assert report["clients"]["httpx+roundtrip@asyncio"]["role"] == "adapter"
    assert report["clients"]["httpx+nothing@asyncio"]["role"] == "cost"
    assert re.search(r"^\| +\| asyncio \| httpx\+roundtrip +\|", out, re.M)
    assert re.search(r"^\| +\| asyncio \| httpx\+nothing +\|", out, re.M)
    assert "  httpx+roundtrip [" in out and "]: httpx.AsyncClient over roundtrip.adapters.HTTPXAsyncTransport, pool of 64" in out
    assert re.search(r"^  httpx\+nothing \[[^]]*, do-nothing transport\]: httpx.AsyncClient over a do-nothing transport", out, re.M)

    targets = {target["target"]: target for target in report["targets"]}
    measured = [
        "GET 13 B: " + ADAPTER_TARGET.format(lib="httpx"),
        "GET 13 B: " + ADAPTER_TARGET.format(lib="requests"),
        "asyncio, async GET 13 B: " + ADAPTER_TARGET.format(lib="httpx"),
        "asyncio, 64 tasks GET 13 B: " + ADAPTER_TARGET.format(lib="httpx"),
    ]
    for name in measured:
        assert targets[name]["ratio"] is not None and targets[name]["met"] is not None, name
        assert re.search(rf"^  {re.escape(name)} +target <= 1\.30 +measured +-?\d+\.\d\d  (met|not met)$", out, re.M), name
    unmeasured = "uvloop, async GET 13 B: " + ADAPTER_TARGET.format(lib="httpx")
    assert targets[unmeasured]["met"] is None


BENCH_COMMAND = re.compile(r"^\s*(?:\$ )?(?:pip install [^&\n]*&& )?roundtrip bench\b([^\n#`]*)", re.M)
INSTALL_BENCH = re.compile(r"""^\s*(?:\$ )?pip install ["']?(?:roundtrip-http|\.)\[[\w,]*bench""", re.M)
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_bench_command_the_documentation_shows_is_accepted(capsys):
    seen = 0
    for page in PAGES:
        text = page.read_text()
        plots = False
        for match in BENCH_COMMAND.finditer(text):
            args = shlex.split(match.group(1))
            if "..." in args or any(arg.startswith("[") for arg in args):  # a synopsis, not a command
                continue
            seen += 1
            plots = plots or "--plot" in args
            # --list stops after the arguments are checked: nothing is measured.
            assert bench_main([*args, "--list"]) == 0, f"{page.relative_to(ROOT)}: roundtrip bench {match.group(1)}"
        # --plot draws with matplotlib: a page that shows it shows the install of the bench extra.
        if plots:
            assert INSTALL_BENCH.search(text), f"{page.relative_to(ROOT)} shows --plot but not how to install it"
    capsys.readouterr()
    assert seen >= 5


def test_the_bench_extra_installs_plotting_and_every_peer():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[<>=;\s]", requirement, maxsplit=1)[0] for requirement in extras["bench"]}
    assert {"matplotlib", "pycurl", "curl_cffi", "httpr", "rnet", "pyreqwest", "urllib3", "aiohttp", "uvloop", "httpx", "requests"} <= names
