"""``roundtrip bench``: roundtrip against the raw-socket floor, its own pure-Python twin, and the
HTTP clients people use, on a local nginx (or an embedded Python server where nginx is missing).

Modules: ``servers`` (nginx and the fallback), ``scenarios`` (what is sent and checked),
``base`` (the measuring loops), ``clients``, ``peers`` and ``aclients`` (one class per client:
blocking ones that need no extra, the other libraries, the asyncio ones), ``registry`` (which
clients exist and which can run here), ``worker`` (one client's process), ``runner`` (the
parent: runs, medians, same-run ratios, JSON), ``report`` (tables and plot) and ``targets``.
``docs/benchmarks.md`` and ``benchmarks/README.md`` have the methodology.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from typing import NoReturn, Optional, Sequence

__all__ = ("main",)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _names(values: Optional[list[str]]) -> list[str]:
    """``--clients a b`` and ``--clients a,b`` alike."""
    return [name for value in values or [] for name in value.split(",") if name]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``roundtrip bench`` with ``argv``; return the exit status (1 if any response failed
    its check)."""
    from . import runner
    from .registry import ASYNC_REGISTRY, LOOPS, REGISTRY, available, loop_available
    from .scenarios import SCENARIOS

    all_clients = list(dict.fromkeys(info.name for info in REGISTRY + ASYNC_REGISTRY))
    parser = _Parser(
        prog="roundtrip bench",
        description="Benchmark roundtrip against a raw-socket floor, its pure-Python twin and other HTTP clients "
        "on a local nginx, in blocking scenarios and (with asyncio's loop and uvloop) async ones. Quick by default "
        "(a minute or two); --full for the published table. "
        "Numbers: client CPU µs per request (getrusage in the client's own process) and requests/s (MB/s for 1 MiB), "
        "medians of interleaved runs, with same-run ratios to the raw floor and to roundtrip-py. "
        "Other libraries: pip install 'roundtrip-http[bench]'.",
    )
    parser.add_argument("--full", action="store_true", help="the README run: more runs, longer cells (a few minutes)")
    parser.add_argument("--json", metavar="FILE", help="also write every measurement as JSON to FILE")
    parser.add_argument("--plot", metavar="FILE", help="also draw a bar chart PNG to FILE (needs matplotlib: pip install 'roundtrip-http[bench]')")
    parser.add_argument("--clients", nargs="+", metavar="CLIENT", help=f"clients to run (default: all installed): {', '.join(all_clients)}; raw is always run as the reference")
    parser.add_argument("--scenarios", nargs="+", metavar="SCENARIO", help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--async", dest="run_async", action=argparse.BooleanOptionalAction, default=True, help="run the async scenarios (default: yes; --no-async leaves them out unless --scenarios names them)")
    parser.add_argument("--runs", type=int, metavar="N", help="runs per client (default: 3 quick, 5 full)")
    parser.add_argument("--duration", type=float, metavar="S", help="measured seconds per client, scenario and run (default: 0.15 quick, 1.0 full)")
    parser.add_argument("--server", choices=("auto", "nginx", "python"), default="auto", help="nginx, the embedded Python server, or nginx when installed (default)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--list", action="store_true", help="list clients (and whether each can run here) and scenarios, then exit")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # one tiny run, for tests
    opts = parser.parse_args(argv)

    clients = _names(opts.clients) or all_clients
    unknown = [name for name in clients if name not in all_clients]
    if unknown:
        parser.error(f"unknown client(s) {', '.join(unknown)}; choose from {', '.join(all_clients)}")
    if "raw" not in clients:
        clients.insert(0, "raw")
    clients = [name for name in all_clients if name in clients]  # table order
    scenarios = _names(opts.scenarios) or [name for name, s in SCENARIOS.items() if opts.run_async or not s.is_async]
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    scenarios = [name for name in SCENARIOS if name in scenarios]

    if opts.list:
        for title, registry in (("blocking clients", REGISTRY), ("async clients", ASYNC_REGISTRY)):
            print(f"{title}:")
            states = [(info, "ok" if reason is None else f"skipped: {reason}") for info in registry for reason in [available(info)]]
            width = max(len(state) for _, state in states)
            for info, state in states:
                print(f"  {info.name:<20} {state:<{width}}  {info.note}")
        print("event loops:")
        for loop in LOOPS:
            reason = loop_available(loop)
            print(f"  {loop:<20} {'ok' if reason is None else 'skipped: ' + reason}")
        print("scenarios:")
        for scenario in SCENARIOS.values():
            print(f"  {scenario.name:<20} {scenario.label}")
        return 0

    if opts.plot and importlib.util.find_spec("matplotlib") is None:
        print(
            "roundtrip bench: error: --plot needs matplotlib, which is not installed "
            "(pip install matplotlib, or pip install 'roundtrip-http[bench]')",
            file=sys.stderr,
        )
        return 2
    if opts.server == "nginx" and runner.nginx_missing():
        print("roundtrip bench: error: --server nginx, but nginx is not installed", file=sys.stderr)
        return 2

    base = runner.MODES["smoke" if opts.smoke else "full" if opts.full else "quick"]
    settings = runner.Settings(
        base.mode if opts.runs is None and opts.duration is None else base.mode + " (custom)",
        runs=opts.runs if opts.runs is not None else base.runs,
        duration=opts.duration if opts.duration is not None else base.duration,
        warmup=base.warmup,
        minimum=base.minimum,
    )
    if settings.runs < 1 or settings.duration <= 0:
        parser.error("--runs must be at least 1 and --duration positive")

    if opts.server == "python" or (opts.server == "auto" and runner.nginx_missing()):
        why = "as asked (--server python)" if opts.server == "python" else "because nginx is NOT installed"
        print(
            f"roundtrip bench: WARNING: using the embedded Python server {why}; it is slower than the clients, "
            "so req/s are bounded by the server (CPU per request stays comparable)",
            file=sys.stderr,
        )
    progress = None if opts.no_progress else sys.stderr
    report = runner.run(clients, scenarios, settings, server_kind=opts.server, progress=progress)
    print(runner.format_table(report))
    print()
    print(runner.format_targets(report))
    sys.stdout.flush()
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"roundtrip bench: wrote {opts.json}", file=sys.stderr)
    if opts.plot:
        runner.plot(report, opts.plot)
        print(f"roundtrip bench: wrote {opts.plot}", file=sys.stderr)
    return 1 if report["errors"] else 0
