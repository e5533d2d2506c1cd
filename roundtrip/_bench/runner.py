"""The benchmark's parent process: start the server, run every client in its own process for
several interleaved runs, and turn the measurements into medians and same-run ratios.

Methodology (also in ``benchmarks/README.md``):

* Each (client, run) is one fresh process, ``python -m roundtrip._bench.worker``, that runs
  every selected scenario in turn. The order of the clients rotates from run to run, so slow
  drifts of the machine (other load, thermal) spread over all of them.
* Within a process, each scenario warms up (the connection is opened, code paths run), then
  runs for a fixed time and at least a minimum number of requests. Every response, warm-up
  included, is checked: status 200 and the exact body length.
* CPU per request is the worker's own ``getrusage(RUSAGE_SELF)`` user + system time over the
  measured requests (all its threads), divided by their number: the server's CPU is not in it.
* The async scenarios run each asyncio client once per event loop (asyncio's own, and uvloop
  when installed), in a process of its own; their floor is the raw asyncio protocol under the
  same loop.
* Ratios are taken within one run (client / raw floor, client / roundtrip-py, in the same run),
  then the median over runs is reported; absolute numbers are medians over runs too.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple, Optional, TextIO

from .registry import ASYNC_REGISTRY, LOOPS, REGISTRY, ClientInfo, available, loop_available
from .report import format_table, format_targets, plot
from .scenarios import SCENARIOS
from .servers import BenchServer, find_nginx, start_server
from .targets import evaluate, paired

__all__ = ("Settings", "MODES", "Job", "run", "format_table", "format_targets", "plot", "paired", "nginx_missing")

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class Settings:
    """How long and how often to measure."""

    def __init__(self, mode: str, runs: int, duration: float, warmup: float, minimum: int) -> None:
        self.mode = mode
        self.runs = runs
        self.duration = duration  # seconds of measured requests per (client, scenario, run)
        self.warmup = warmup  # seconds of unmeasured requests before that
        self.minimum = minimum  # measured requests at least, whatever the time

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "runs": self.runs, "duration_s": self.duration, "warmup_s": self.warmup, "min_requests": self.minimum}


MODES = {
    "quick": Settings("quick", runs=3, duration=0.15, warmup=0.04, minimum=10),
    "full": Settings("full", runs=5, duration=1.0, warmup=0.2, minimum=50),
    "smoke": Settings("smoke", runs=1, duration=0.01, warmup=0.0, minimum=3),
}


class Progress:
    """A bar on a terminal, one line per step elsewhere."""

    def __init__(self, total: int, stream: Optional[TextIO]) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self.started = time.monotonic()

    def step(self, label: str) -> None:
        if self.stream is None:
            return
        if self.tty:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            bar = "#" * filled + "." * (width - filled)
            elapsed = time.monotonic() - self.started
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} {elapsed:5.1f}s {label:<40.40}")
        else:
            self.stream.write(f"[{self.done + 1}/{self.total}] {label}\n")
        self.stream.flush()

    def advance(self) -> None:
        self.done += 1

    def finish(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def _child_env(info: ClientInfo) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    # The worker must import the very roundtrip this process runs (a source tree or a wheel).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
    for name, value in info.env.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class Placement:
    """Where the server and the clients run. On two cores the same client measures very
    differently depending on whether the server shares its core, so the server gets one CPU
    and the clients the others when the machine lets us choose (Linux, two CPUs or more)."""

    def __init__(self) -> None:
        self.server_cpu: Optional[int] = None
        self.client_cpus: Optional[set[int]] = None
        getter = getattr(os, "sched_getaffinity", None)
        allowed = sorted(getter(0)) if getter is not None else []
        if len(allowed) >= 2:
            self.server_cpu, self.client_cpus = allowed[0], set(allowed[1:])
            clients = ",".join(str(cpu) for cpu in allowed[1:])
            self.description = f"server on CPU {allowed[0]}, clients on CPU {clients}"
        elif getter is None:
            self.description = "unpinned: this platform cannot pin processes to CPUs"
        else:
            self.description = "unpinned: only one CPU available"

    def pin_client(self, pid: int) -> None:
        if self.client_cpus is not None:
            try:
                os.sched_setaffinity(pid, self.client_cpus)
            except OSError:  # it ended already; its report says why
                pass


class Job(NamedTuple):
    """One worker process per run: a client, under an event loop for the async scenarios."""

    key: str  # the client's name, and "@loop" for an async client: "aiohttp@uvloop"
    info: ClientInfo
    loop: Optional[str]  # None for the blocking scenarios
    scenarios: list[str]


def _run_worker(job: Job, server: BenchServer, settings: Settings, placement: Placement) -> dict[str, Any]:
    spec = {
        "client": job.info.name,
        "host": server.host,
        "port": server.port,
        "scenarios": job.scenarios,
        "duration": settings.duration,
        "warmup": settings.warmup,
        "minimum": settings.minimum,
        "loop": job.loop,
    }
    budget = 60 + len(job.scenarios) * (settings.duration + settings.warmup) * 20
    process = subprocess.Popen(
        [sys.executable, "-m", "roundtrip._bench.worker", json.dumps(spec)],
        # "-m" puts the working directory first on sys.path: run from the package's own parent,
        # so that a source checkout in the caller's directory cannot shadow an installed wheel.
        cwd=_PACKAGE_PARENT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(job.info),
        text=True,
    )
    placement.pin_client(process.pid)  # before it measures anything: it is still starting up
    try:
        out, err = process.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"error": f"worker did not finish within {budget:.0f}s"}
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)  # the worker's report (JSON)
            return result
    last = err.strip().splitlines()[-1] if err.strip() else f"exit status {process.returncode}"
    return {"error": f"worker failed: {last}"}


def _median(values: list[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def plan(client_names: list[str], scenario_names: list[str]) -> "tuple[list[Job], dict[str, str]]":
    """The jobs to run and the clients skipped (key: why), in table order."""
    blocking = [name for name in scenario_names if not SCENARIOS[name].is_async]
    asynchronous = [name for name in scenario_names if SCENARIOS[name].is_async]
    jobs: list[Job] = []
    skipped: dict[str, str] = {}
    if blocking:
        for info in REGISTRY:
            if info.name in client_names:
                reason = available(info)
                if reason is None:
                    jobs.append(Job(info.name, info, None, blocking))
                else:
                    skipped[info.name] = reason
    if asynchronous:
        for loop in LOOPS:
            loop_reason = loop_available(loop)
            if loop_reason is not None:
                skipped[f"{loop} (event loop)"] = loop_reason
                continue
            for info in ASYNC_REGISTRY:
                if info.name in client_names:
                    reason = available(info)
                    if reason is None:
                        jobs.append(Job(f"{info.name}@{loop}", info, loop, asynchronous))
                    else:
                        skipped[f"{info.name}@{loop}"] = reason
    return jobs, skipped


def run(
    client_names: list[str],
    scenario_names: list[str],
    settings: Settings,
    server_kind: str = "auto",
    progress: Optional[TextIO] = None,
) -> dict[str, Any]:
    """Run the benchmark; the result is what ``--json`` writes."""
    selected, skipped = plan(client_names, scenario_names)
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    placement = Placement()
    server = start_server(server_kind, placement.server_cpu)
    if server.kind == "python":
        placement.description = "unpinned: the embedded server runs in the benchmark's own process"
        placement.client_cpus = None
    runs: list[dict[str, dict[str, Any]]] = []  # runs[r][job key] = worker result
    try:
        bar = Progress(settings.runs * len(selected), progress)
        for index in range(settings.runs):
            shift = index % max(1, len(selected))
            order = selected[shift:] + selected[:shift]  # interleave: rotate the order each run
            results: dict[str, Any] = {}
            for job in order:
                bar.step(f"run {index + 1}/{settings.runs}: {job.key}")
                result = _run_worker(job, server, settings, placement)
                bar.advance()
                if "unavailable" in result:  # found out in its own process: skip it from now on
                    skipped[job.key] = result["unavailable"]
                    bar.total -= settings.runs - index - 1
                    continue
                results[job.key] = result
            selected = [job for job in selected if job.key not in skipped]
            runs.append(results)
        bar.finish()
    finally:
        server.stop()
    finished = datetime.datetime.now(datetime.timezone.utc)
    report = _aggregate(runs, selected, scenario_names)
    report["meta"] = {
        "roundtrip_version": _roundtrip_version(),
        "roundtrip_implementation": _roundtrip_implementation(),
        "server": server.kind,
        "server_description": server.description,
        "placement": placement.description,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "started": started.isoformat(timespec="seconds"),
        "seconds": round((finished - started).total_seconds(), 1),
        "command": "roundtrip bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else None,
        **settings.as_dict(),
    }
    report["clients"] = {
        job.key: {
            "name": job.info.name,
            "loop": job.loop,
            "role": job.info.role,
            "note": job.info.note,
            "version": next((r[job.key].get("version") for r in runs if job.key in r and r[job.key].get("version")), None),
        }
        for job in selected
    }
    report["skipped"] = skipped
    report["targets"] = evaluate(report)
    return report


def _roundtrip_version() -> str:
    import roundtrip

    return roundtrip.__version__


def _roundtrip_implementation() -> str:
    """What ``import roundtrip`` gives in this environment: ``c`` or ``py`` (pure Python)."""
    import roundtrip

    return roundtrip.IMPLEMENTATION


def floor_of(key: str) -> str:
    """The raw floor a client is compared with: ``raw``, or the floor of the same event loop."""
    _, at, loop = key.partition("@")
    return f"raw@{loop}" if at else "raw"


def _aggregate(runs: list[dict[str, Any]], jobs: list[Job], scenario_names: list[str]) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for scenario_name in scenario_names:
        scenario = SCENARIOS[scenario_name]
        per_client: dict[str, Any] = {}
        for job in jobs:
            if scenario_name not in job.scenarios:
                continue
            cell: dict[str, Any] = {"runs": [], "errors": [], "checked": 0, "unit": scenario.unit}
            for run_index, run_results in enumerate(runs):
                worker = run_results.get(job.key, {})
                measured = worker.get("scenarios", {}).get(scenario_name)
                if measured is None:
                    message = worker.get("error", "no result")
                elif "error" in measured:
                    message = measured["error"]
                else:
                    requests = measured["requests"]
                    wall = measured["wall_s"]
                    rate = requests / wall if scenario.unit == "req/s" else requests * scenario.expect / wall / 1e6
                    cell["runs"].append(
                        {
                            "run": run_index,
                            "requests": requests,
                            "checked": measured["checked"],
                            "cpu_s": measured["cpu_s"],
                            "wall_s": wall,
                            "cpu_us": measured["cpu_s"] / requests * 1e6,
                            "rate": rate,
                        }
                    )
                    cell["checked"] += measured["checked"]
                    continue
                cell["errors"].append(message)
                errors.append(f"{job.key} / {scenario.label} (run {run_index + 1}): {message}")
            cell["cpu_us"] = _median([r["cpu_us"] for r in cell["runs"]])
            cell["rate"] = _median([r["rate"] for r in cell["runs"]])
            per_client[job.key] = cell
        results[scenario_name] = per_client
    report = {"results": results, "errors": errors}
    for scenario_name, per_client in results.items():
        for key, cell in per_client.items():
            floor = floor_of(key)
            cell["cpu_vs_raw"] = paired(report, scenario_name, key, floor, "cpu_us")
            cell["cpu_vs_py"] = None if "@" in key else paired(report, scenario_name, key, "roundtrip-py", "cpu_us")
            cell["rate_vs_raw"] = paired(report, scenario_name, key, floor, "rate")
    return report


def nginx_missing() -> bool:
    return find_nginx() is None
