"""One benchmark process: build one client, run the scenarios it is given, print JSON.

The parent (``runner.py``) starts ``python -m roundtrip._bench.worker JOB`` where JOB is a
JSON object: ``client``, ``host``, ``port``, ``scenarios``, ``duration``, ``warmup``,
``minimum``, and for the async scenarios ``loop`` (``asyncio`` or ``uvloop``). The answer is one
JSON line on stdout: the client's version and, per scenario, either a measurement (requests,
cpu_s, wall_s, checked) or an ``error``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Callable, cast

from .base import AsyncClient, Client, library
from .registry import load
from .scenarios import SCENARIOS

__all__ = ("main",)


def _run_blocking(spec: dict[str, Any], result: dict[str, Any]) -> int:
    name, host, port = spec["client"], spec["host"], spec["port"]
    try:
        client = cast(Client, load(name, host, port))
        result["version"] = client.version()
    except ImportError as exc:  # a library or adapter that is not there: skipped, not failed
        result["unavailable"] = f"{type(exc).__name__}: {exc}"
        return 0
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
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
            client = cast(Client, load(name, host, port))
    client.close()
    return 0


async def _run_async(spec: dict[str, Any], result: dict[str, Any]) -> int:
    name, host, port = spec["client"], spec["host"], spec["port"]

    async def fresh() -> AsyncClient:
        client = cast(AsyncClient, load(name, host, port, is_async=True))
        await client.open()
        return client

    try:
        client = await fresh()
        result["version"] = client.version()
    except ImportError as exc:
        result["unavailable"] = f"{type(exc).__name__}: {exc}"
        return 0
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        return 1
    for scenario_name in spec["scenarios"]:
        scenario = SCENARIOS[scenario_name]
        try:
            measured = await client.measure(scenario, spec["duration"], spec["warmup"], spec["minimum"])
            result["scenarios"][scenario_name] = measured._asdict()
        except Exception as exc:
            result["scenarios"][scenario_name] = {"error": f"{type(exc).__name__}: {exc}"}
            try:
                await client.aclose()
            except Exception:
                pass
            client = await fresh()
    await client.aclose()
    return 0


def _loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if loop == "uvloop":
        factory: Callable[[], asyncio.AbstractEventLoop] = library("uvloop").new_event_loop
        return factory
    return asyncio.new_event_loop


def main(argv: "list[str] | None" = None) -> int:
    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    result: dict[str, Any] = {"client": spec["client"], "scenarios": {}}
    loop_name = spec.get("loop")
    if loop_name is None:
        status = _run_blocking(spec, result)
    else:
        try:
            loop = _loop_factory(loop_name)()
        except ImportError as exc:
            result["unavailable"] = f"{type(exc).__name__}: {exc}"
            print(json.dumps(result), flush=True)
            return 0
        asyncio.set_event_loop(loop)
        try:
            status = loop.run_until_complete(_run_async(spec, result))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
        result["loop"] = loop_name
    print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
