"""One benchmark process: build one client, run the scenarios it is given, print JSON.

The parent (``runner.py``) starts ``python -m roundtrip._bench.worker JOB`` where JOB is a
JSON object: ``client``, ``host``, ``port``, ``scenarios``, ``duration``, ``warmup``,
``minimum``. The answer is one JSON line on stdout: the client's version and, per scenario,
either a measurement (requests, cpu_s, wall_s, checked) or an ``error``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .clients import load
from .scenarios import SCENARIOS

__all__ = ("main",)


def main(argv: "list[str] | None" = None) -> int:
    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    name, host, port = spec["client"], spec["host"], spec["port"]
    result: dict[str, Any] = {"client": name, "scenarios": {}}
    try:
        client = load(name, host, port)
        result["version"] = client.version()
    except ImportError as exc:  # a library or adapter that is not there: skipped, not failed
        result["unavailable"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(result), flush=True)
        return 0
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(result), flush=True)
        return 1
    for scenario_name in spec["scenarios"]:
        scenario = SCENARIOS[scenario_name]
        try:
            measured = client.measure(scenario, spec["duration"], spec["warmup"], spec["minimum"])
            result["scenarios"][scenario_name] = measured._asdict()
        except Exception as exc:
            result["scenarios"][scenario_name] = {"error": f"{type(exc).__name__}: {exc}"}
            try:  # its connection may be out of step now: start again with a new client
                client.close()
            except Exception:
                pass
            client = load(name, host, port)
    client.close()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
