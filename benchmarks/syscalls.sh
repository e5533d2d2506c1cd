#!/usr/bin/env bash
# System calls per small keep-alive request, steady state, counted with `strace -c -f`.
#
#   benchmarks/syscalls.sh [REQUESTS]        (default 2000; needs strace, and nginx for real numbers)
#
# For each client (the raw-socket floor, roundtrip compiled, roundtrip pure Python) it traces two
# processes that differ only in the number of measured GET /small requests (0 and REQUESTS, both
# after 20 warm-up requests on one keep-alive connection), and prints the difference per request,
# by system call: process start-up, imports, the dial and the warm-up cancel out.
# roundtrip aims for at most 3 system calls per small keep-alive request.
set -euo pipefail

N=${1:-2000}
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
command -v strace >/dev/null || { echo "syscalls.sh: strace is not installed" >&2; exit 2; }

tmp=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

"$PY" -m roundtrip._bench.servers auto >"$tmp/server" &
server_pid=$!
for _ in $(seq 100); do [ -s "$tmp/server" ] && break; sleep 0.1; done
[ -s "$tmp/server" ] || { echo "syscalls.sh: the benchmark server did not start" >&2; exit 1; }
read -r url kind <"$tmp/server"
[ "$kind" = nginx ] || echo "syscalls.sh: WARNING: nginx is not installed; using the embedded Python server" >&2

cat >"$tmp/client.py" <<'PY'
import sys

client, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if client == "raw":
    from roundtrip._bench.clients import RawClient

    host, port = url.split("//")[1].split(":")
    call = RawClient(host, int(port)).bind("GET", "/small", None)
else:
    import roundtrip

    transport = roundtrip.Transport(proxy=None)
    Request = roundtrip.Request

    def call():
        with transport.round_trip(Request("GET", url + "/small")) as resp:
            return resp.status_code, len(resp.read())

for _ in range(20 + count):
    status, length = call()
    assert (status, length) == (200, 13), (status, length)
PY

trace() {  # client impl count -> strace summary file
    local out="$tmp/$1-$3.txt"
    if [ "$2" = py ]; then
        ROUNDTRIP_NO_EXTENSIONS=1 strace -f -c -o "$out" "$PY" "$tmp/client.py" "$1" "$url" "$3"
    else
        env -u ROUNDTRIP_NO_EXTENSIONS strace -f -c -o "$out" "$PY" "$tmp/client.py" "$1" "$url" "$3"
    fi
    echo "$out"
}

echo "system calls per small keep-alive GET (strace -c -f, ${N} requests, against $kind at $url)"
for spec in raw:c roundtrip-c:c roundtrip-py:py; do
    name=${spec%%:*}
    impl=${spec##*:}
    client=$([ "$name" = raw ] && echo raw || echo roundtrip)
    base=$(trace "$client" "$impl" 0)
    full=$(trace "$client" "$impl" "$N")
    "$PY" - "$name" "$base" "$full" "$N" <<'PY'
import sys

def counts(path):
    calls = {}
    for line in open(path):
        fields = line.split()
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
            calls[fields[-1]] = int(fields[3])
    return calls

name, base, full, n = sys.argv[1], counts(sys.argv[2]), counts(sys.argv[3]), int(sys.argv[4])
per = {call: (full.get(call, 0) - base.get(call, 0)) / n for call in set(base) | set(full)}
per = {call: value for call, value in per.items() if abs(value) >= 0.005}
detail = ", ".join(f"{call} {value:.2f}" for call, value in sorted(per.items(), key=lambda kv: -kv[1]))
print(f"  {name:<13} {sum(per.values()):5.2f} per request   ({detail})")
PY
done
