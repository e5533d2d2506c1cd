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
from typing import Any, Optional, TextIO

from .clients import BY_NAME, REGISTRY, ClientInfo, available
from .scenarios import SCENARIOS
from .servers import BenchServer, find_nginx, start_server

__all__ = ("Settings", "MODES", "run", "format_table", "format_targets", "plot")

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


def _run_worker(info: ClientInfo, server: BenchServer, scenarios: list[str], settings: Settings, placement: Placement) -> dict[str, Any]:
    spec = {
        "client": info.name,
        "host": server.host,
        "port": server.port,
        "scenarios": scenarios,
        "duration": settings.duration,
        "warmup": settings.warmup,
        "minimum": settings.minimum,
    }
    budget = 60 + len(scenarios) * (settings.duration + settings.warmup) * 20
    process = subprocess.Popen(
        [sys.executable, "-m", "roundtrip._bench.worker", json.dumps(spec)],
        # "-m" puts the working directory first on sys.path: run from the package's own parent,
        # so that a source checkout in the caller's directory cannot shadow an installed wheel.
        cwd=_PACKAGE_PARENT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(info),
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


def run(
    client_names: list[str],
    scenario_names: list[str],
    settings: Settings,
    server_kind: str = "auto",
    progress: Optional[TextIO] = None,
) -> dict[str, Any]:
    """Run the benchmark; the result is what ``--json`` writes."""
    selected: list[ClientInfo] = []
    skipped: dict[str, str] = {}
    for name in client_names:
        info = BY_NAME[name]
        reason = available(info)
        if reason is None:
            selected.append(info)
        else:
            skipped[name] = reason
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    placement = Placement()
    server = start_server(server_kind, placement.server_cpu)
    if server.kind == "python":
        placement.description = "unpinned: the embedded server runs in the benchmark's own process"
        placement.client_cpus = None
    runs: list[dict[str, dict[str, Any]]] = []  # runs[r][client] = worker result
    try:
        bar = Progress(settings.runs * len(selected), progress)
        for index in range(settings.runs):
            shift = index % max(1, len(selected))
            order = selected[shift:] + selected[:shift]  # interleave: rotate the order each run
            results: dict[str, Any] = {}
            for info in order:
                bar.step(f"run {index + 1}/{settings.runs}: {info.name}")
                result = _run_worker(info, server, scenario_names, settings, placement)
                bar.advance()
                if "unavailable" in result:  # found out in its own process: skip it from now on
                    skipped[info.name] = result["unavailable"]
                    bar.total -= settings.runs - index - 1
                    continue
                results[info.name] = result
            selected = [info for info in selected if info.name not in skipped]
            runs.append(results)
        bar.finish()
    finally:
        server.stop()
    finished = datetime.datetime.now(datetime.timezone.utc)
    report = _aggregate(runs, [info.name for info in selected], scenario_names)
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
        info.name: {"note": info.note, "version": next((r[info.name].get("version") for r in runs if r[info.name].get("version")), None)}
        for info in selected
    }
    report["skipped"] = skipped
    report["targets"] = _targets(report)
    return report


def _roundtrip_version() -> str:
    import roundtrip

    return roundtrip.__version__


def _roundtrip_implementation() -> str:
    """What ``import roundtrip`` gives in this environment: ``c`` or ``py`` (pure Python)."""
    import roundtrip

    return roundtrip.IMPLEMENTATION


def _aggregate(runs: list[dict[str, Any]], clients: list[str], scenario_names: list[str]) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for scenario_name in scenario_names:
        scenario = SCENARIOS[scenario_name]
        per_client: dict[str, Any] = {}
        for client in clients:
            cell: dict[str, Any] = {"runs": [], "errors": [], "checked": 0, "unit": scenario.unit}
            for run_index, run_results in enumerate(runs):
                worker = run_results.get(client, {})
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
                errors.append(f"{client} / {scenario.label} (run {run_index + 1}): {message}")
            cell["cpu_us"] = _median([r["cpu_us"] for r in cell["runs"]])
            cell["rate"] = _median([r["rate"] for r in cell["runs"]])
            per_client[client] = cell
        results[scenario_name] = per_client
    report = {"results": results, "errors": errors}
    for scenario_name, per_client in results.items():
        for client, cell in per_client.items():
            cell["cpu_vs_raw"] = paired(report, scenario_name, client, "raw", "cpu_us")
            cell["cpu_vs_py"] = paired(report, scenario_name, client, "roundtrip-py", "cpu_us")
            cell["rate_vs_raw"] = paired(report, scenario_name, client, "raw", "rate")
    return report


def paired(report: dict[str, Any], scenario: str, client: str, reference: str, metric: str) -> Optional[float]:
    """Median over runs of ``client``'s ``metric`` divided by ``reference``'s in the same run."""
    cells = report["results"].get(scenario, {})
    if client not in cells or reference not in cells:
        return None
    ours = {r["run"]: r[metric] for r in cells[client]["runs"]}
    theirs = {r["run"]: r[metric] for r in cells[reference]["runs"]}
    return _median([ours[i] / theirs[i] for i in ours if i in theirs and theirs[i]])


# (description, scenario, client, reference, metric, comparison, bound): the speed goals.
TARGETS = (
    ("compiled: CPU per small GET vs raw floor", "small", "roundtrip-c", "raw", "cpu_us", "<=", 1.3),
    ("compiled: CPU per 1 KiB POST vs raw floor", "post", "roundtrip-c", "raw", "cpu_us", "<=", 1.3),
    ("compiled: CPU per 64 KiB GET vs raw floor", "64k", "roundtrip-c", "raw", "cpu_us", "<=", 1.3),
    ("compiled: 1 MiB GET MB/s vs raw floor", "1m", "roundtrip-c", "raw", "rate", ">=", 0.9),
    ("compiled vs pure: CPU per small GET (compiled/pure)", "small", "roundtrip-c", "roundtrip-py", "cpu_us", "<=", 1 / 3),
    ("8 threads, one Transport: req/s vs 8 raw threads", "threads", "roundtrip-c", "raw", "rate", ">=", 0.6),
    ("pure: CPU per small GET vs urllib3", "small", "roundtrip-py", "urllib3", "cpu_us", "<=", 1.0),
)


def _targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for description, scenario, client, reference, metric, comparison, bound in TARGETS:
        ratio = paired(report, scenario, client, reference, metric)
        met = None if ratio is None else (ratio <= bound if comparison == "<=" else ratio >= bound)
        out.append({"target": description, "bound": f"{comparison} {bound:.2f}", "ratio": ratio, "met": met})
    return out


# -- output -----------------------------------------------------------------------------------


def _fmt_ratio(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _fmt_number(value: Optional[float]) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _server_warning(report: dict[str, Any]) -> Optional[str]:
    if report["meta"]["server"] == "python":
        return (
            "!!! WARNING: nginx is not installed, so this ran against the EMBEDDED PYTHON SERVER. It is slower than the\n"
            "!!! clients it serves: req/s and MB/s are bounded by the server, not the client. CPU µs/request (measured in\n"
            "!!! the client process) is still comparable. Install nginx for real numbers."
        )
    return None


def format_table(report: dict[str, Any]) -> str:
    """The results as a Markdown table (aligned, so it reads in a terminal too)."""
    meta = report["meta"]
    lines = []
    warning = _server_warning(report)
    if warning:
        lines += [warning, ""]
    lines.append(
        f"roundtrip {meta['roundtrip_version']} ({meta.get('roundtrip_implementation', '?')}) bench ({meta['mode']}: {meta['runs']} run(s), {meta['duration_s']}s per cell) "
        f"against {meta['server_description']} on 127.0.0.1; {meta['python']}, {meta['cpus']} CPUs, "
        f"load average {meta['load_average_before'][0]:.2f} before / {meta['load_average_after'][0]:.2f} after; "
        f"{meta.get('placement', 'unpinned')}"
    )
    lines.append("")
    header = ["scenario", "client", "CPU µs/req", "CPU ×raw", "CPU ×py", "rate", "rate ×raw", "checked"]
    rows = [header]
    for scenario_name, per_client in report["results"].items():
        scenario = SCENARIOS[scenario_name]
        for client, cell in per_client.items():
            if cell["cpu_us"] is None:
                rows.append([scenario.label, client, "FAILED", "", "", "", "", str(cell["checked"])])
                continue
            rows.append(
                [
                    scenario.label,
                    client,
                    _fmt_number(cell["cpu_us"]),
                    _fmt_ratio(cell["cpu_vs_raw"]),
                    _fmt_ratio(cell["cpu_vs_py"]),
                    f"{_fmt_number(cell['rate'])} {scenario.unit}",
                    _fmt_ratio(cell["rate_vs_raw"]),
                    f"{cell['checked']:,}",
                ]
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {2, 3, 4, 5, 6, 7}

    def render(row: list[str]) -> str:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        return "| " + " | ".join(cells) + " |"

    lines.append(render(header))
    lines.append("|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|")
    previous = None
    for row in rows[1:]:
        shown = list(row)
        if shown[0] == previous:
            shown[0] = ""
        else:
            previous = row[0]
        lines.append(render(shown))
    lines.append("")
    total = sum(cell["checked"] for per_client in report["results"].values() for cell in per_client.values())
    lines.append(
        f"Every response checked (status 200 and exact body length): {total:,} responses, "
        f"{len(report['errors'])} failure(s). CPU = client process user+sys (getrusage), median of runs; "
        f"×raw and ×py are same-run ratios to the raw socket floor and to roundtrip-py, median of runs."
    )
    for name, client in report["clients"].items():
        version = f" [{client['version']}]" if client.get("version") else ""
        lines.append(f"  {name}{version}: {client['note']}")
    for name, reason in report["skipped"].items():
        lines.append(f"  {name}: skipped ({reason})")
    for error in report["errors"]:
        lines.append(f"  FAILED {error}")
    if warning:
        lines += ["", warning]
    return "\n".join(lines)


def format_targets(report: dict[str, Any]) -> str:
    lines = ["Targets (same-run ratios, median of runs):"]
    for target in report["targets"]:
        if target["met"] is None:
            verdict, ratio = "n/a", "—"
        else:
            verdict, ratio = ("met" if target["met"] else "NOT met"), f"{target['ratio']:.2f}"
        lines.append(f"  {target['target']:<55} target {target['bound']:<8} measured {ratio:>6}  {verdict}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: str) -> None:
    """A bar chart PNG: CPU µs per request for each client, one panel per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(report["results"])
    columns = min(3, len(scenarios))
    rows = (len(scenarios) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 0.45 * (len(report["clients"]) + 3) * rows), squeeze=False)
    for index, scenario_name in enumerate(scenarios):
        ax = axes[index // columns][index % columns]
        per_client = report["results"][scenario_name]
        names = [name for name, cell in per_client.items() if cell["cpu_us"] is not None]
        values = [per_client[name]["cpu_us"] for name in names]
        colors = [
            "#d62728" if name.startswith("roundtrip") else "#ff9896" if "+roundtrip" in name else "#7f7f7f" if name == "raw" else "#1f77b4"
            for name in names
        ]
        bars = ax.barh(names, values, color=colors)
        ax.invert_yaxis()
        for bar, name in zip(bars, names):
            ratio = per_client[name]["cpu_vs_raw"]
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {_fmt_ratio(ratio)}", va="center", fontsize=8)
        ax.set_title(SCENARIOS[scenario_name].label, fontsize=10)
        ax.set_xlabel("client CPU µs per request (lower is better)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.set_xlim(0, max(values or [1]) * 1.25)
    for index in range(len(scenarios), rows * columns):
        axes[index // columns][index % columns].axis("off")
    meta = report["meta"]
    title = f"roundtrip bench ({meta['mode']}, {meta['runs']} runs) vs {meta['server_description']}; labels: ×raw socket floor"
    if meta["server"] == "python":
        title += "\nWARNING: embedded Python server (nginx missing)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def nginx_missing() -> bool:
    return find_nginx() is None


def client_names() -> list[str]:
    return [info.name for info in REGISTRY]
