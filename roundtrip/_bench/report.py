"""A run's report as text (the tables, the notes, the targets) and as a bar chart."""

from __future__ import annotations

from typing import Any, Optional

from .scenarios import SCENARIOS

__all__ = ("format_table", "format_targets", "plot")


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


def _render(header: list[str], rows: list[list[str]], left: int) -> list[str]:
    """An aligned Markdown table; the first ``left`` columns are text, the others numbers. A
    first-column value equal to the row above's is left blank."""
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]

    def render(row: list[str]) -> str:
        cells = [cell.ljust(widths[i]) if i < left else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        return "| " + " | ".join(cells) + " |"

    lines = [render(header), "|" + "|".join(("-" * (w + 2)) if i < left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"]
    previous = None
    for row in rows:
        shown = list(row)
        if shown[0] == previous:
            shown[0] = ""
        else:
            previous = row[0]
        lines.append(render(shown))
    return lines


def _numbers(cell: dict[str, Any], unit: str, with_py: bool) -> list[str]:
    if cell["cpu_us"] is None:
        return ["FAILED", "", *([""] if with_py else []), "", "", str(cell["checked"])]
    return [
        _fmt_number(cell["cpu_us"]),
        _fmt_ratio(cell["cpu_vs_raw"]),
        *([_fmt_ratio(cell["cpu_vs_py"])] if with_py else []),
        f"{_fmt_number(cell['rate'])} {unit}",
        _fmt_ratio(cell["rate_vs_raw"]),
        f"{cell['checked']:,}",
    ]


def _skipped(report: dict[str, Any], is_async: bool) -> list[str]:
    """The skipped clients of one table, a client skipped under every loop named once."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for key, reason in report["skipped"].items():
        if key.endswith("(event loop)"):
            if is_async:
                grouped.setdefault((key, reason), [])
            continue
        name, at, loop = key.partition("@")
        if bool(at) == is_async:
            grouped.setdefault((name, reason), []).append(loop)
    return [f"  {name}{' (' + ', '.join(loops) + ')' if loops and loops[0] else ''}: skipped ({reason})" for (name, reason), loops in grouped.items()]


def format_table(report: dict[str, Any]) -> str:
    """The results as Markdown tables (aligned, so they read in a terminal too): the blocking
    scenarios, then the async ones."""
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
    clients = report["clients"]
    blocking = {name: cells for name, cells in report["results"].items() if not SCENARIOS[name].is_async}
    asynchronous = {name: cells for name, cells in report["results"].items() if SCENARIOS[name].is_async}
    if blocking or not asynchronous:
        rows = [
            [SCENARIOS[name].label, key, *_numbers(cell, SCENARIOS[name].unit, True)]
            for name, cells in blocking.items()
            for key, cell in cells.items()
        ]
        lines.append("")
        lines += _render(["scenario", "client", "CPU µs/req", "CPU ×raw", "CPU ×py", "rate", "rate ×raw", "checked"], rows, 2)
        lines.append("")
        for key, client in clients.items():
            if client.get("loop") is None:
                version = f" [{client['version']}]" if client.get("version") else ""
                lines.append(f"  {key}{version}: {client['note']}")
        lines += _skipped(report, False)
    if asynchronous:
        rows = []
        for name, cells in asynchronous.items():
            for key, cell in sorted(cells.items(), key=lambda item: clients[item[0]]["loop"] != "asyncio"):
                rows.append([SCENARIOS[name].label, clients[key]["loop"], clients[key]["name"], *_numbers(cell, SCENARIOS[name].unit, False)])
        lines.append("")
        lines += _render(["async scenario", "loop", "client", "CPU µs/req", "CPU ×floor", "rate", "rate ×floor", "checked"], rows, 3)
        lines.append("")
        notes: dict[str, str] = {}
        for client in clients.values():
            if client.get("loop") is not None and client["name"] not in notes:
                version = f" [{client['version']}]" if client.get("version") else ""
                notes[client["name"]] = f"  {client['name']}{version}: {client['note']}"
        lines += list(notes.values())
        lines += _skipped(report, True)
    lines.append("")
    total = sum(cell["checked"] for per_client in report["results"].values() for cell in per_client.values())
    lines.append(
        f"Every response checked (status 200 and exact body length): {total:,} responses, "
        f"{len(report['errors'])} failure(s). CPU = client process user+sys (getrusage, every thread), median of runs; "
        f"×raw, ×floor and ×py are same-run ratios to the raw socket floor (the asyncio protocol floor of the same loop "
        f"for async) and to roundtrip-py, median of runs."
    )
    for error in report["errors"]:
        lines.append(f"  FAILED {error}")
    if warning:
        lines += ["", warning]
    return "\n".join(lines)


def format_targets(report: dict[str, Any]) -> str:
    """What roundtrip aims for, met or not in this run."""
    lines = ["Targets (same-run ratios, median of runs; against every peer, the closest peer decides):"]
    width = max([len(target["target"]) for target in report["targets"]] + [0])
    for target in report["targets"]:
        if target["met"] is None:
            verdict, ratio = "not measured", "—"
        else:
            verdict, ratio = ("met" if target["met"] else "not met"), f"{target['ratio']:.2f}"
        against = f" ({target['against']})" if target.get("against") else ""
        lines.append(f"  {target['target']:<{width}}  target {target['bound']:<7} measured {ratio:>6}  {verdict}{against}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: str) -> None:
    """A bar chart PNG: CPU µs per request for each client, one panel per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(report["results"])
    columns = min(3, len(scenarios))
    rows = (len(scenarios) + columns - 1) // columns
    most = max([len(cells) for cells in report["results"].values()] + [1])
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 0.45 * (most + 3) * rows), squeeze=False)
    for index, scenario_name in enumerate(scenarios):
        ax = axes[index // columns][index % columns]
        per_client = report["results"][scenario_name]
        names = [name for name, cell in per_client.items() if cell["cpu_us"] is not None]
        values = [per_client[name]["cpu_us"] for name in names]
        colors = [
            "#d62728" if name.startswith("roundtrip") else "#ff9896" if "+roundtrip" in name else "#7f7f7f" if name.startswith("raw") else "#1f77b4"
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
    title = f"roundtrip bench ({meta['mode']}, {meta['runs']} runs) vs {meta['server_description']}; labels: ×raw floor (of the same loop for async)"
    if meta["server"] == "python":
        title += "\nWARNING: embedded Python server (nginx missing)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
